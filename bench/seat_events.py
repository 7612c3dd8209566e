"""Seat events at the database's speed: `import_csv seat-events` against PostgreSQL's own keyed write of the same
intervals (issue 21, docs/performance.md "Seat events").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_seat_bench .venv/bin/python bench/seat_events.py \
        --events 145000 --scale 4 --json bench/seat_events.json

On a migrated PostgreSQL database it adds --partners partners with --customers customers each (a seat_days
service each, overage on), imports a year of seat history generated here (seeded: members join and leave every
month), then writes the next months' events as a CSV file of --events rows (streamed, never held in memory) and
measures, each in a process of its own (`manage.py import_csv`, as an operator runs it):

  a. `import_csv seat-events FILE` into the database holding the year of history (the set-based path,
     partners/seat_staging.py);
  b2. before a, PostgreSQL writing the same members and seats into the project's own tables (indexes, trigger,
     foreign keys), checking no rule and auditing nothing, rolled back: the floor of any import into them;
  b. PostgreSQL alone: COPY of the same file into a temporary table, and one INSERT ... SELECT writing the seat
     intervals it holds (each assign with its member's next event as its end) into a table keyed by customer,
     with an index on customer, member and start; and a/b (target <= 3);
  c. the same file imported again (nothing new; known by its SHA-256); and c/b (target <= 1); c2. the same events
     in another order (other bytes: read and looked up in full);
  d. a file --scale times larger (after the first), its import and d/a against the events' ratio (linear: at most
     4.5 for 4 times the events);
  e. the importing process's peak memory (max RSS of the child process) for the largest file (target < 200 MB at
     1,000,000 events).

Prints a table and writes the numbers as JSON (--json). Targets live here and in docs/performance.md, never in
timed tests. The partners it adds stay; run it on a database of its own.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings.base")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from bench.kit import Results, postgres_started  # noqa: E402

TARGETS = {"a/b": 3.0, "c/b": 1.0, "d/a": 4.5, "e": 200.0}
HEADER = "partner,customer,member,action,at\n"


class World:
    """The partners and customers, and each member's state as the generated history leaves it."""

    def __init__(self, prefix: str, partners: int, customers: int, seed: int):
        self.rng = random.Random(seed)
        self.partners = [f"{prefix}-p{p:03d}" for p in range(partners)]
        self.customers = [(partner, f"c{c:04d}") for partner in self.partners for c in range(customers)]
        self.open: dict[tuple, bool] = {}  # (partner, customer, member) -> holds a seat
        self.members: dict[tuple, list] = {}  # (partner, customer) -> its members' keys
        self.next_member = 0

    def create(self) -> None:
        from djmoney.money import Money

        from partners.models import Customer, Method, Partner, Service

        with transaction.atomic():
            partners = {p.slug: p for p in Partner.objects.bulk_create(
                Partner(slug=slug, name=slug) for slug in self.partners)}
            Customer.objects.bulk_create(Customer(partner=partners[p], slug=c, name=c) for p, c in self.customers)
            Service.objects.bulk_create(Service(partner=p, code="seats", name="Seats", method=Method.SEAT_DAYS,
                                                unit_price=Money("10.00", "USD"), committed_quantity=10,
                                                overage_enabled=True, start_date=datetime(2020, 1, 1).date())
                                        for p in partners.values())

    def events(self, start: datetime, end: datetime, count: int):
        """`count` valid events between start and end, in time order: members join and leave."""
        span = (end - start).total_seconds()
        for n in range(count):
            at = start + timedelta(seconds=span * n / count)
            partner, customer = self.rng.choice(self.customers)
            opened = [key for key in self._sample(partner, customer) if self.open.get(key)]
            if opened and self.rng.random() < 0.45:
                key = opened[0]
                self.open[key] = False
                yield f"{key[0]},{key[1]},{key[2]},unassign,{at:%Y-%m-%dT%H:%M:%SZ}\n"
            else:
                closed = [key for key in self._sample(partner, customer) if self.open.get(key) is False]
                key = closed[0] if closed and self.rng.random() < 0.3 else self._new(partner, customer)
                self.open[key] = True
                yield f"{key[0]},{key[1]},{key[2]},assign,{at:%Y-%m-%dT%H:%M:%SZ}\n"

    def _sample(self, partner, customer):
        members = self.members.get((partner, customer), [])
        return [self.rng.choice(members) for _ in range(3)] if members else []

    def _new(self, partner, customer):
        self.next_member += 1
        key = (partner, customer, f"user{self.next_member:07d}")
        self.members.setdefault((partner, customer), []).append(key)
        return key


def write(path: Path, lines) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for line in lines:
            out.write(line)
            n += 1
    return n


# manage.py in a process of its own that reports its own peak memory when it exits: VmHWM, its address space's high
# water mark (getrusage's ru_maxrss keeps, across fork and exec, the peak of the parent that started it)
CHILD = ("import atexit, runpy, sys; atexit.register(lambda: sys.stderr.write("
         "[line for line in open('/proc/self/status') if line.startswith('VmHWM')][0])); "
         "sys.argv = ['manage.py', 'import_csv', 'seat-events', sys.argv[1]]; "
         "runpy.run_path(%r, run_name='__main__')")


def import_file(path: Path) -> tuple[float, float, str]:
    """`manage.py import_csv seat-events FILE` in a process of its own: (seconds, its peak RSS in MB, its line)."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD % str(ROOT / "manage.py"), str(path)],
                          capture_output=True, text=True, env={**os.environ, "NO_PROGRESS": "1"}, check=False)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stderr[-2000:]}")
    peak = max((int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("VmHWM:")), default=0)
    return seconds, peak / 1024, done.stdout.strip().splitlines()[-1]


def import_here(path: Path) -> tuple[float, str]:
    """The import of `import_csv seat-events FILE`, in this process (as bench/usage_records.py): its own time,
    without starting Python and Django. Returns (seconds, its summary line, and how it went)."""
    from billing.core.actor import Actor
    from billing.core.importing import run_import_file

    began = time.perf_counter()
    summary = run_import_file("seat-events", path, actor=Actor(label="bench"), source=path.name)
    seconds = time.perf_counter() - began
    if not summary.ok:
        raise SystemExit(f"import refused: {summary.errors[:3]}")
    how = "set-based" if summary.staged else "row by row"
    return seconds, f"{summary.created:,} created, {summary.unchanged:,} unchanged, {how}"


def _copy_in(cursor, path: Path) -> None:
    """The file by COPY into a temporary table bench_seat_in, each row numbered in file order."""
    cursor.execute("CREATE TEMP TABLE bench_seat_in (n bigserial, partner text, customer text, member text, "
                   "action text, at timestamptz) ON COMMIT DROP")
    with path.open("rb") as source, cursor.copy(
            "COPY bench_seat_in (partner, customer, member, action, at) FROM STDIN WITH (FORMAT csv, HEADER true)"
    ) as copy:
        while chunk := source.read(1 << 20):
            copy.write(chunk)


def keyed_write(path: Path) -> float:
    """PostgreSQL alone: COPY the file into a temporary table, then one INSERT ... SELECT of the intervals it holds
    into a table keyed by customer with an index on (customer, member, start); rolled back."""
    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        # a table of the database's own (logged, as the seats' table is), keyed by customer, with the index the
        # issue names; created and rolled back with the transaction
        cursor.execute("CREATE TABLE bench_seats (id bigserial PRIMARY KEY, customer text, member text, "
                       "assigned_at timestamptz, removed_at timestamptz)")
        cursor.execute("CREATE INDEX ON bench_seats (customer, member, assigned_at)")
        _copy_in(cursor, path)
        cursor.execute("""
            INSERT INTO bench_seats (customer, member, assigned_at, removed_at)
            SELECT partner || '/' || customer, member, at, next_at FROM (
                SELECT *, lead(at) OVER (PARTITION BY partner, customer, member ORDER BY at, n) AS next_at
                FROM bench_seat_in) x
            WHERE action = 'assign'
        """)
        transaction.set_rollback(True)
    return time.perf_counter() - began


def own_tables_write(path: Path) -> float:
    """PostgreSQL writing the same file into the project's own tables, checking no rule and auditing nothing: COPY
    into a temporary table, one INSERT ... SELECT of the members it names (those not there yet), one of the seat
    intervals (each assign with its member's next event as its end) into the seats' table with its indexes, trigger
    and foreign key, and the commit's key checks; rolled back. The floor of any import into these tables."""
    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        _copy_in(cursor, path)
        cursor.execute("""
            CREATE TEMP TABLE bench_seat_keyed ON COMMIT DROP AS
            SELECT i.n, c.partner_id, c.id AS customer_id, i.member, i.action, i.at
            FROM bench_seat_in i JOIN partners_partner p ON p.slug = i.partner
            JOIN partners_customer c ON c.partner_id = p.id AND c.slug = i.customer
        """)
        cursor.execute("""
            INSERT INTO partners_member (customer_id, name)
            SELECT DISTINCT k.customer_id, k.member FROM bench_seat_keyed k
            WHERE NOT EXISTS (SELECT FROM partners_member m WHERE m.customer_id = k.customer_id AND m.name = k.member)
        """)
        cursor.execute("""
            CREATE TEMP TABLE bench_seat_ev ON COMMIT DROP AS
            SELECT k.*, m.id AS member_id, lead(at) OVER (PARTITION BY m.id ORDER BY at, n) AS next_at,
                   row_number() OVER (PARTITION BY m.id ORDER BY at, n) AS k
            FROM bench_seat_keyed k JOIN partners_member m ON m.customer_id = k.customer_id AND m.name = k.member
        """)
        # the seats open before the file that it ends, rebuilt with their end; then the new intervals
        cursor.execute("""
            CREATE TEMP TABLE bench_seat_ended ON COMMIT DROP AS
            SELECT s.id, s.partner_id, s.customer_id, s.member_id, s.assigned_at, e.at AS removed_at, s.source
            FROM partners_seatassignment s JOIN bench_seat_ev e ON e.member_id = s.member_id AND e.k = 1
            WHERE s.removed_at IS NULL
        """)
        cursor.execute("DELETE FROM partners_seatassignment WHERE id IN (SELECT id FROM bench_seat_ended)")
        cursor.execute("""
            INSERT INTO partners_seatassignment (partner_id, customer_id, member_id, assigned_at, removed_at,
                                                 start_date, end_date, source)
            SELECT partner_id, customer_id, member_id, assigned_at, removed_at, (assigned_at AT TIME ZONE 'UTC')::date,
                   (removed_at AT TIME ZONE 'UTC')::date, source
            FROM (SELECT partner_id, customer_id, member_id, at AS assigned_at, next_at AS removed_at, 'bench' AS source
                  FROM bench_seat_ev WHERE action = 'assign'
                  UNION ALL
                  SELECT partner_id, customer_id, member_id, assigned_at, removed_at, source FROM bench_seat_ended) w
            ORDER BY partner_id, assigned_at
        """)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        transaction.set_rollback(True)
    return time.perf_counter() - began


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=20)
    parser.add_argument("--customers", type=int, default=50, help="customers per partner")
    parser.add_argument("--history", type=int, default=600_000, help="events of the year of history")
    parser.add_argument("--events", type=int, default=145_000, help="events of the file measured")
    parser.add_argument("--scale", type=int, default=4, help="the larger file: this many times --events")
    parser.add_argument("--memory-events", type=int, default=1_000_000,
                        help="events of the file whose import's memory is measured (a process of its own)")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    info = postgres_started("bench/seat_events.py", **{k: v for k, v in vars(args).items() if k != "json"})
    world = World(f"seatbench{int(time.time()) % 100000}", args.partners, args.customers, args.seed)
    world.create()
    results = Results()
    now = datetime.now(UTC).replace(microsecond=0)
    year_start = now - timedelta(days=425)
    history_end = now - timedelta(days=60)
    folder = Path(tempfile.mkdtemp(prefix="seat-bench-"))
    history = folder / "history.csv"
    rows = write(history, world.events(year_start, history_end, args.history))
    seconds, line = import_here(history)
    results.add("h", f"the year of history: {rows:,} events ({line})", seconds)
    month = folder / "month.csv"
    write(month, world.events(now - timedelta(days=59), now - timedelta(days=45), args.events))
    # before the import, which would leave these seats in place: the members and seats it writes, rolled back
    own = min(own_tables_write(month) for _ in range(3))
    imported, line = import_here(month)
    results.add("a", f"import_csv seat-events, {args.events:,} events after the history ({line})", imported)
    floor = min(keyed_write(month) for _ in range(3))
    results.add("b", "PostgreSQL: COPY + one INSERT ... SELECT of the intervals, keyed table (best of 3)", floor)
    results.add("a/b", "import / PostgreSQL's keyed write", imported / floor, unit="x", target=TARGETS["a/b"])
    results.add("b2", "PostgreSQL: COPY + members + the intervals into the seats' own table, no rule, no audit "
                      "(best of 3)", own)
    results.add("a/b2", "import / PostgreSQL's write into the project's tables", imported / own, unit="x")
    results.add("b2/b", "the project's tables / the keyed table, for the same write", own / floor, unit="x")
    again, line = import_here(month)
    results.add("c", f"the same file again, nothing new ({line})", again)
    results.add("c/b", "again / PostgreSQL's keyed write", again / floor, unit="x", target=TARGETS["c/b"])
    # the same events in other bytes (newest first): not known by its fingerprint, read and looked up in full
    reordered = folder / "reordered.csv"
    lines = month.read_text(encoding="utf-8").splitlines(keepends=True)
    write(reordered, reversed(lines[1:]))
    del lines
    again_read, line = import_here(reordered)
    results.add("c2", f"the same events in another order, read in full ({line})", again_read)
    results.add("c2/b", "the same events again, read in full / PostgreSQL's keyed write", again_read / floor,
                unit="x")
    larger = folder / "larger.csv"
    write(larger, world.events(now - timedelta(days=44), now - timedelta(days=21), args.events * args.scale))
    bigger, line = import_here(larger)
    results.add("d", f"{args.scale} times the events: {args.events * args.scale:,} ({line})", bigger)
    results.add("d/a", f"time ratio for {args.scale} times the events", bigger / imported, unit="x",
                target=TARGETS["d/a"] * args.scale / 4)
    # the memory of an operator's run: the largest file again (nothing new) and a file as large of new events, each
    # imported by `manage.py import_csv` in a process of its own
    largest = folder / "largest.csv"
    write(largest, world.events(now - timedelta(days=20), now - timedelta(hours=1), args.memory_events))
    started, peak, line = import_file(largest)
    results.add("e", f"peak memory of `manage.py import_csv` of {args.memory_events:,} new events (max RSS; "
                     f"{started:.1f} s with Python's start)", peak, unit="MB", target=TARGETS["e"])
    results.finish(info, args.json)
    for path in (history, month, reordered, larger, largest):
        path.unlink(missing_ok=True)
    return results


if __name__ == "__main__":
    main()

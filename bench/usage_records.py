"""Usage records at the database's speed: `import_csv call-usage` against PostgreSQL's own COPY of the same file.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_usage_bench .venv/bin/python bench/usage_records.py \
        --records 1000000 --json bench/usage_records.json

On a migrated PostgreSQL database it adds a partner with --customers customers, writes a month of N call usage
records as a CSV file (streamed: the file is never held in memory) and measures:

  a. `import_csv call-usage FILE` (the COPY staging path, metering/usage_staging.py);
  b. PostgreSQL alone: COPY of the same file into a table of the same columns, typed, keyed as the records are
     (unique partner + record id, an index on customer + start), logged as the records' table is; and a/b,
     the target (docs/performance.md, "Usage records");
  c. the same file imported again (every row an exact duplicate: nothing written);
  d. the month's meters (metering.usage_records.usage_record_totals) against the same GROUP BY written by hand
     over the records' table (each the best of 3);
  e. the import's peak memory (this process's maximum resident set size).

Prints a table and writes the numbers as JSON (--json). Targets live here and in docs/performance.md, never in
timed tests. The records it imports stay (a later run adds another partner); --drop removes them.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import statistics
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

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench.kit import Results, drop_partners, postgres_started, timed  # noqa: E402
from billing.core.periods import Period  # noqa: E402

TARGETS = {"a/b": 3.0, "d/floor": 3.0}
HEADER = "partner,customer,record_id,user,started_at,duration_seconds,direction,destination\n"
DIRECTIONS = ["outbound"] * 5 + ["inbound"] * 4 + ["internal"]
DESTINATIONS = ["local", "national", "mobile", "international", "toll-free"]


def write_file(path: Path, *, partner: str, customers: int, records: int, month: Period, seed: int) -> None:
    """A month of calls, one per row, in no particular order of time."""
    rng = random.Random(seed)
    seconds = (month.end - month.start).total_seconds()
    with path.open("w") as out:
        out.write(HEADER)
        for n in range(records):
            start = month.start + timedelta(seconds=int(rng.random() * seconds))
            duration = int(rng.expovariate(1 / 180)) if rng.random() > 0.05 else 0
            out.write(f"{partner},c{n % customers:05d},call-{n:010d},ext-{rng.randrange(100, 600)},"
                      f"{start:%Y-%m-%dT%H:%M:%SZ},{duration},{rng.choice(DIRECTIONS)},{rng.choice(DESTINATIONS)}\n")


def copy_keyed(path: Path) -> float:
    """COPY of the file into a table of the same columns, keyed and indexed as the records' table (rolled back)."""
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("""
            CREATE TABLE bench_call_keyed (partner text NOT NULL, customer text NOT NULL, record_id text NOT NULL,
                "user" text, started_at timestamptz NOT NULL, duration_seconds integer NOT NULL,
                direction text NOT NULL, destination text NOT NULL)
        """)
        cursor.execute("CREATE UNIQUE INDEX ON bench_call_keyed (partner, record_id)")
        cursor.execute("CREATE INDEX ON bench_call_keyed (customer, started_at)")
        began = time.perf_counter()
        with path.open("rb") as source, cursor.copy(
                "COPY bench_call_keyed FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            while block := source.read(1 << 20):
                copy.write(block)
        seconds = time.perf_counter() - began
        transaction.set_rollback(True)
    return seconds


def best_of(runs: int, fn, *args) -> tuple[float, object]:
    """The fastest of a few runs (the first reads the table from disk, later ones from the page cache, as the
    billing run finds it after the import)."""
    timings = [timed(fn, *args) for _ in range(runs)]
    return min(t for t, _ in timings), timings[0][1]


def totals_by_hand(partner_id: int, month: Period) -> None:
    """The meters' GROUP BY written by hand over the records' table: the database's own speed for the question."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT customer_id, direction, destination, count(*), sum((duration_seconds::bigint + 59) / 60)
            FROM metering_callusagerecord WHERE partner_id = %s AND started_at >= %s AND started_at < %s
            GROUP BY 1, 2, 3
        """, [partner_id, month.start, month.end])
        cursor.fetchall()


def main(argv=None) -> Results:
    from metering.models import CallUsageRecord
    from metering.usage_records import usage_record_totals
    from partners.models import Customer, Partner

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--month", help="YYYY-MM (default: last month)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="imports (each of a new partner) and COPYs, in turn")
    parser.add_argument("--drop", action="store_true", help="remove the benchmark's partner and records afterwards")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    month = Period.parse(args.month) if args.month else Period.of(datetime.now(UTC).date()).previous()
    info = postgres_started("bench/usage_records.py", records=args.records, customers=args.customers,
                            month=str(month))
    results = Results()
    partners = []
    path = Path(tempfile.mkstemp(suffix=".csv", prefix="call-usage-")[1])
    try:
        imports, floors = [], []
        for attempt in range(args.repeat):  # a fresh partner each time, the import and PostgreSQL's COPY in turn
            slug = f"bench-calls-{int(time.time())}-{attempt}"
            partner = Partner.objects.create(slug=slug, name="Benchmark calls partner")
            partners.append(partner)
            Customer.objects.bulk_create(Customer(partner=partner, slug=f"c{n:05d}", name=f"Customer {n}")
                                         for n in range(args.customers))
            seconds, _ = timed(write_file, path, partner=slug, customers=args.customers, records=args.records,
                               month=month, seed=args.seed)
            if attempt == 0:
                print(f"  file: {path.stat().st_size / 1e6:.0f} MB written in {seconds:.1f} s", flush=True)
            out = io.StringIO()
            imported, _ = timed(call_command, "import_csv", "call-usage", str(path), stdout=out)
            print(f"  run {attempt + 1}: {out.getvalue().strip()} in {imported:.2f} s", flush=True)
            imports.append(imported)
            floors.append(copy_keyed(path))
            print(f"  run {attempt + 1}: COPY into the keyed table in {floors[-1]:.2f} s", flush=True)
        imported, floor = statistics.median(imports), statistics.median(floors)
        runs = f"median of {args.repeat}" if args.repeat > 1 else "1 run"
        results.add("a", f"import_csv call-usage, {args.records:,} records ({runs})", imported)
        results.add("b", f"PostgreSQL: COPY of the same file into a keyed table, same indexes ({runs})", floor)
        results.add("a/b", "import / COPY into the keyed table", imported / floor, unit="x", target=TARGETS["a/b"])
        again, _ = timed(call_command, "import_csv", "call-usage", str(path), stdout=io.StringIO())
        results.add("c", "the same file imported again (every row an exact duplicate)", again)
        results.add("c/b", "again / COPY into the keyed table", again / floor, unit="x")
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {CallUsageRecord._meta.db_table}")
        rated, totals = best_of(3, usage_record_totals, [partner.pk], month)
        results.add("d", f"the month's meters of the partner ({len(totals):,} customer meters, best of 3)", rated)
        by_hand, _ = best_of(3, totals_by_hand, partner.pk, month)
        results.add("d floor", "the same GROUP BY written by hand over the records' table (best of 3)", by_hand)
        results.add("d/floor", "meters / hand-written GROUP BY", rated / by_hand, unit="x", target=TARGETS["d/floor"])
        results.add("e", "peak memory of the importing process (max RSS)",
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, unit="MB")
    finally:
        path.unlink(missing_ok=True)
        if args.drop:
            drop_partners(partners, lambda partner: CallUsageRecord.objects.filter(partner=partner))
    results.finish(info, args.json)
    return results


if __name__ == "__main__":
    main()

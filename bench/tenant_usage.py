"""Daily usage snapshots at the database's speed: `import_csv tenant-usage` against PostgreSQL's own COPY of the file.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_tenant_bench .venv/bin/python bench/tenant_usage.py \\
        --snapshots 500000 --json bench/tenant_usage.json

On a migrated PostgreSQL database it adds a partner with --customers customers, writes N daily snapshots of them
(each customer's days in a row, as a tenant export lists them; streamed: the file is never held in memory) and
measures:

  a. `import_csv tenant-usage FILE` (the COPY staging path, metering/tenant_staging.py);
  b. PostgreSQL alone: COPY of the same file into a table of the same columns, typed, keyed as the snapshots are
     (unique customer + date), logged as the snapshots' table is; and a/b;
  b2. PostgreSQL alone, closer to the import's work: COPY of the same rows with customer ids instead of slugs into a
     table shaped as the snapshots' (LIKE it, with its key, checks and the foreign key to the customers, checked
     at once rather than at commit); and a/b2;
  c. the same file imported again (every snapshot stored with the same values: nothing written);
  d. the same file with every value changed (every snapshot updated);
  e. with --engine N: the row-by-row engine (billing.core.importing.run_import) on the first N rows, for scale.

Prints a table and writes the numbers as JSON (--json). The snapshots it imports stay (a later run adds another
partner); --drop removes them.
"""

from __future__ import annotations

import argparse
import io
import os
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
from django.db import connection, transaction  # noqa: E402

from bench.kit import Results, drop_partners, postgres_started, timed  # noqa: E402

HEADER = "partner,customer,date,users_count,storage_bytes,messages_count\n"


def write_file(path: Path, *, partner: str, customers: int, snapshots: int, bump: int = 0, limit: int | None = None):
    """`snapshots` daily snapshots: each customer's last days up to yesterday, one customer after another
    (`bump` added to every count: another file of the same dates; `limit`: only the first rows)."""
    days = -(-snapshots // customers)
    first = datetime.now(UTC).date() - timedelta(days=days)
    rows = snapshots if limit is None else min(limit, snapshots)
    with path.open("w") as out:
        out.write(HEADER)
        for n in range(rows):
            customer, day = divmod(n, days)
            users = 5 + (customer * 7 + day // 30) % 200 + bump
            out.write(f"{partner},c{customer:05d},{first + timedelta(days=day)},{users},"
                      f"{users * 1_500_000_000 + day * 1000},{users * 40 + day}\n")


def copy_keyed(path: Path) -> float:
    """COPY of the file into a table of the same columns, keyed as the snapshots' table (rolled back)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("""
            CREATE TABLE bench_usage_keyed (partner text NOT NULL, customer text NOT NULL, date date NOT NULL,
                users_count integer NOT NULL, storage_bytes bigint NOT NULL, messages_count bigint)
        """)
        cursor.execute("CREATE UNIQUE INDEX ON bench_usage_keyed (partner, customer, date)")
        began = time.perf_counter()
        with path.open("rb") as source, cursor.copy(
                "COPY bench_usage_keyed FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            while block := source.read(1 << 20):
                copy.write(block)
        seconds = time.perf_counter() - began
        transaction.set_rollback(True)
    return seconds


def copy_shaped(path: Path, customer_ids: dict[str, int]) -> float:
    """COPY of the file's rows, with customer ids, into a table shaped as the snapshots' with its foreign key
    (rolled back): what PostgreSQL itself needs to store the snapshots."""
    ids_path = path.with_suffix(".ids.csv")
    stamp = datetime.now(UTC).isoformat()
    with path.open() as source, ids_path.open("w") as out:
        next(source)
        for line in source:
            _, customer, rest = line.split(",", 2)
            out.write(f"{customer_ids[customer]},{rest.rstrip()},{stamp},bench\n")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_usage_shaped (LIKE metering_usagesnapshot INCLUDING ALL)")
            cursor.execute("ALTER TABLE bench_usage_shaped ADD FOREIGN KEY (customer_id) REFERENCES partners_customer")
            began = time.perf_counter()
            with ids_path.open("rb") as source, cursor.copy(
                    "COPY bench_usage_shaped (customer_id, date, users_count, storage_bytes, messages_count, "
                    "recorded_at, source) "
                    "FROM STDIN WITH (FORMAT csv)") as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
            seconds = time.perf_counter() - began
            transaction.set_rollback(True)
    finally:
        ids_path.unlink(missing_ok=True)
    return seconds


def import_csv(path: Path) -> tuple[float, str]:
    out = io.StringIO()
    seconds, _ = timed(call_command, "import_csv", "tenant-usage", str(path), stdout=out)
    return seconds, out.getvalue().strip()


def engine_rows(path: Path) -> float:
    """The row-by-row engine on the file (rolled back): what the import costs without the COPY path."""
    from billing.core.importing import open_csv, run_import

    with transaction.atomic():
        with open_csv(path) as stream:
            seconds, summary = timed(run_import, "tenant-usage", stream)
        assert summary.ok, summary.errors[:3]
        transaction.set_rollback(True)
    return seconds


def main(argv=None) -> Results:
    from metering.models import UsageSnapshot
    from partners.models import Customer, Partner

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=int, default=500_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3, help="imports (each of a new partner) and COPYs, in turn")
    parser.add_argument("--engine", type=int, default=0, metavar="N",
                        help="also time the row-by-row engine on the first N rows")
    parser.add_argument("--drop", action="store_true", help="remove the benchmark's partners and snapshots afterwards")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    info = postgres_started("bench/tenant_usage.py", snapshots=args.snapshots, customers=args.customers)
    results = Results()
    partners = []
    path = Path(tempfile.mkstemp(suffix=".csv", prefix="tenant-usage-")[1])
    try:
        imports, floors, shaped = [], [], []
        for attempt in range(args.repeat):  # a fresh partner each time, the import and PostgreSQL's COPY in turn
            slug = f"bench-usage-{int(time.time())}-{attempt}"
            partner = Partner.objects.create(slug=slug, name="Benchmark usage partner")
            partners.append(partner)
            Customer.objects.bulk_create(Customer(partner=partner, slug=f"c{n:05d}", name=f"Customer {n}")
                                         for n in range(args.customers))
            seconds, _ = timed(write_file, path, partner=slug, customers=args.customers, snapshots=args.snapshots)
            if attempt == 0:
                print(f"  file: {path.stat().st_size / 1e6:.0f} MB written in {seconds:.1f} s", flush=True)
            imported, said = import_csv(path)
            print(f"  run {attempt + 1}: {said} in {imported:.2f} s", flush=True)
            imports.append(imported)
            floors.append(copy_keyed(path))
            print(f"  run {attempt + 1}: COPY into the keyed table in {floors[-1]:.2f} s", flush=True)
            ids = dict(Customer.objects.filter(partner=partner).values_list("slug", "id"))
            shaped.append(copy_shaped(path, ids))
            print(f"  run {attempt + 1}: COPY into a table shaped as the snapshots' in {shaped[-1]:.2f} s", flush=True)
        imported, floor = statistics.median(imports), statistics.median(floors)
        runs = f"median of {args.repeat}" if args.repeat > 1 else "1 run"
        results.add("a", f"import_csv tenant-usage, {args.snapshots:,} new snapshots ({runs})", imported)
        results.add("b", f"PostgreSQL: COPY of the same file into a keyed table ({runs})", floor)
        results.add("a/b", "import / COPY into the keyed table", imported / floor, unit="x")
        results.add("b2", f"PostgreSQL: COPY of the rows into a table shaped as the snapshots' ({runs})",
                    statistics.median(shaped))
        results.add("a/b2", "import / COPY into the shaped table", imported / statistics.median(shaped), unit="x")
        again, said = import_csv(path)
        print(f"  again: {said}", flush=True)
        results.add("c", "the same file imported again (every snapshot unchanged)", again)
        results.add("c/b", "again / COPY into the keyed table", again / floor, unit="x")
        write_file(path, partner=slug, customers=args.customers, snapshots=args.snapshots, bump=1)
        changed, said = import_csv(path)
        print(f"  changed: {said}", flush=True)
        results.add("d", "the same dates with other values (every snapshot updated)", changed)
        results.add("d/b", "changed / COPY into the keyed table", changed / floor, unit="x")
        if args.engine:
            write_file(path, partner=slug, customers=args.customers, snapshots=args.snapshots, bump=2,
                       limit=args.engine)
            seconds = engine_rows(path)
            rows = min(args.engine, args.snapshots)
            results.add("e", f"the row-by-row engine, {rows:,} updated snapshots (rolled back)", seconds)
            results.add("e/row", "the engine per 500,000 rows at that pace", seconds / rows * 500_000)
    finally:
        path.unlink(missing_ok=True)
        if args.drop:
            drop_partners(partners, lambda partner: UsageSnapshot.objects.filter(customer__partner=partner))
    results.finish(info, args.json)
    return results


if __name__ == "__main__":
    main()

"""Benchmark: stream a seat-events file of N rows through import_csv, then meter the month.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench \
        .venv/bin/python bench/import_and_meter.py 10000 100000

Prints a table of rows, seconds, queries and peak memory (RSS growth) per size. Each size runs in
a fresh partner; the database must be migrated (`python manage.py migrate`). Targets live here,
never in timed tests.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings.base")

import django

django.setup()

from django.db import connection, reset_queries  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from billing.core.importing import run_import_file  # noqa: E402
from billing.core.periods import Period  # noqa: E402
from metering.selectors import seat_days_by_customer  # noqa: E402
from partners.models import Customer, Partner  # noqa: E402

CUSTOMERS = 50


def make_file(partner: str, rows: int) -> Path:
    """rows/2 members, each assigned and removed once in March 2026."""
    path = Path(tempfile.mkstemp(suffix=".csv")[1])
    members = rows // 2
    with path.open("w") as out:
        out.write("partner,customer,member,action,at\n")
        for n in range(members):
            customer = f"c{n % CUSTOMERS}"
            day_in, day_out = 1 + n % 14, 15 + n % 14
            out.write(f"{partner},{customer},m{n},assign,2026-03-{day_in:02d}T08:{n % 60:02d}:{n % 59:02d}Z\n")
            out.write(f"{partner},{customer},m{n},unassign,2026-03-{day_out:02d}T17:{n % 60:02d}:{n % 59:02d}Z\n")
    return path


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(sizes):
    print(f"database: {connection.vendor}")
    print(f"{'rows':>10} {'import s':>9} {'queries':>8} {'rss MB':>8} {'meter s':>8} {'seat-days':>10}")
    for size in sizes:
        slug = f"bench{size}-{int(time.time())}"
        partner = Partner.objects.create(slug=slug, name=f"Bench {size}")
        Customer.objects.bulk_create(Customer(partner=partner, slug=f"c{i}", name=f"C{i}") for i in range(CUSTOMERS))
        path = make_file(slug, size)
        before = rss_mb()
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            summary = run_import_file("seat-events", path)
        elapsed = time.perf_counter() - started
        assert summary.ok, summary.errors[:5]
        queries = len(captured)
        reset_queries()
        started = time.perf_counter()
        period = Period(2026, 3)
        metered = seat_days_by_customer(partner_ids=[partner.pk], first=period.first, last=period.last)
        meter_s = time.perf_counter() - started
        total = sum(days for days, _ in metered.values())
        print(f"{size:>10} {elapsed:>9.2f} {queries:>8} {rss_mb() - before:>8.1f} {meter_s:>8.2f} {total:>10}")
        path.unlink()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000])

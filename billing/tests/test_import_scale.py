"""Imports validate in bulk: the number of queries grows with batches, not with rows (docs/performance.md)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.core.importing import run_import_text
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory


def seat_events(partner, customers, members_per_customer):
    rows = ["partner,customer,member,action,at"]
    for c in customers:
        for n in range(members_per_customer):
            rows.append(f"{partner.slug},{c.slug},m{n},assign,2026-03-0{1 + n % 9}T08:{n % 60:02d}:00Z")
            rows.append(f"{partner.slug},{c.slug},m{n},unassign,2026-03-1{n % 9}T18:{n % 60:02d}:00Z")
    return "\n".join(rows) + "\n"


def queries_for(text, kind="seat-events"):
    """(reads and updates, inserts): bulk inserts are split in chunks by SQLite's parameter limit."""
    with CaptureQueriesContext(connection) as captured:
        summary = run_import_text(kind, text)
    assert summary.ok, summary.errors
    inserts = sum(1 for q in captured.captured_queries if q["sql"].startswith("INSERT"))
    return len(captured) - inserts, inserts


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["seat-events", "customers"])
def test_query_count_does_not_grow_with_rows(settings, kind):
    settings.IMPORT_BATCH_SIZE = 10_000
    small, large = PartnerFactory(slug="small"), PartnerFactory(slug="large")
    for partner in (small, large):
        ServiceFactory(partner=partner, committed_quantity=5, overage_enabled=True)
    if kind == "seat-events":
        few = queries_for(seat_events(small, [CustomerFactory(partner=small, slug="c0")], 3))
        many = queries_for(seat_events(large, [CustomerFactory(partner=large, slug=f"c{i}") for i in range(5)], 40))
    else:
        few = queries_for("partner,slug,name\n" + "".join(f"small,k{i},K {i}\n" for i in range(3)), kind)
        many = queries_for("partner,slug,name\n" + "".join(f"large,k{i},K {i}\n" for i in range(400)), kind)
    assert many[0] == few[0], (few, many)
    # 400 rows in chunks of about a hundred: a handful of inserts, never one per row
    assert many[1] <= few[1] + 24, (few, many)

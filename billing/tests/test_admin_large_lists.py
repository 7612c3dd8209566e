"""Admin lists stay fast at the benchmark's size (docs/performance.md): no list of thousands of
customers in the filter, and an estimated count of an unfiltered list of millions of rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from billing.core import paging
from partners.admin.kit import CustomerFilter
from partners.models import SeatAssignment
from partners.tests.factories import CustomerFactory, MemberFactory, PartnerFactory

SEATS = "/admin/partners/seatassignment/"


@pytest.fixture
def customers(db):
    a, b = PartnerFactory(slug="alpha"), PartnerFactory(slug="bravo")
    return a, b, [CustomerFactory(partner=a, name=f"A{n}") for n in range(3)] + [CustomerFactory(partner=b, name="B0")]


def test_the_customer_filter_waits_for_a_partner_when_there_are_too_many_customers(admin_client, customers,
                                                                                   monkeypatch):
    a, _, listed = customers
    page = admin_client.get(SEATS).content.decode()
    assert all(f"?customer={c.pk}" in page for c in listed)  # few customers: all offered at once
    monkeypatch.setattr(CustomerFilter, "most_unnarrowed", 2)
    page = admin_client.get(SEATS).content.decode()
    assert not any(f"customer={c.pk}" in page for c in listed)
    page = admin_client.get(f"{SEATS}?partner__id__exact={a.pk}").content.decode()
    assert [c for c in listed if f"customer={c.pk}" in page] == listed[:3]  # the partner's, not the other's
    chosen = admin_client.get(f"{SEATS}?customer={listed[3].pk}").content.decode()
    assert "B0 (bravo)" in chosen  # the chosen one stays shown


@pytest.mark.postgres
def test_an_unfiltered_list_of_a_large_table_is_counted_from_the_statistics(admin_client, customers, monkeypatch):
    _, _, listed = customers
    for n in range(5):
        SeatAssignment(partner=listed[0].partner, customer=listed[0], member=MemberFactory(customer=listed[0]),
                       assigned_at=datetime(2026, 3, 1 + n, tzinfo=UTC)).save()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE partners_seatassignment")
        cursor.execute("UPDATE pg_class SET reltuples = 2500000 WHERE relname = 'partners_seatassignment'")
    monkeypatch.setattr(paging, "ESTIMATE_ABOVE", 1000)
    page = admin_client.get(SEATS).content.decode()
    assert "2500000" in page.replace(",", "")  # the estimate, not the 5 rows counted
    filtered = admin_client.get(f"{SEATS}?partner__id__exact={listed[0].partner_id}").content.decode()
    assert "2500000" not in filtered.replace(",", "")  # any filter: counted exactly

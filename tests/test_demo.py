"""`load_demo`: a working admin with realistic data, dated relative to today, built through the
import engine (so it obeys the seat rules) and idempotent."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from billing.periods import Period
from partners.models import (
    AuditLog,
    Customer,
    Member,
    Partner,
    PartnerUser,
    Role,
    SeatAssignment,
    SeatPurchase,
    Service,
    UtilizationAlert,
)

pytestmark = pytest.mark.django_db

MODELS = [Partner, Customer, Service, Member, SeatAssignment, SeatPurchase, UtilizationAlert, AuditLog,
          PartnerUser, get_user_model()]


def load_demo() -> str:
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def counts():
    return {model.__name__: model.objects.count() for model in MODELS}


@pytest.fixture
def demo():
    return load_demo()


def test_load_demo_twice_changes_nothing_the_second_time(demo):
    first = counts()
    second_output = load_demo()
    assert counts() == first
    assert "nothing changed" in second_output
    assert "user: admin  password: admin" in demo
    assert get_user_model().objects.get(username="admin").is_superuser


def test_the_demo_partner_has_customers_a_commitment_a_cap_and_history(demo):
    partner = Partner.objects.get(slug="northwind")
    assert partner.currency == "USD" and partner.tax_rate == 8 and partner.billing_contacts
    assert partner.customers.count() == 5
    seats = Service.objects.get(partner=partner, code="seats")
    assert seats.customer is None and seats.committed_quantity == 12 and seats.overage_enabled
    assert seats.overage_price.amount > seats.unit_price.amount
    assert seats.seat_purchases.count() == 1
    assert Service.objects.filter(partner=partner, method="flat").exists()
    assert Customer.objects.get(partner=partner, slug="contoso-dental").seat_cap == 5
    history = SeatAssignment.objects.filter(partner=partner)
    first = Period.of(timezone.now().date()).previous().previous().previous()
    assert history.order_by("assigned_at").first().start_date == first.first
    assert history.filter(removed_at__isnull=True).count() >= 14
    roles = set(PartnerUser.objects.filter(partner=partner).values_list("role", flat=True))
    assert roles == {Role.BILLING, Role.TECHNICIAN}
    assert AuditLog.objects.filter(action="seat.import", partner=partner).exists()


def test_the_demo_history_never_passes_a_cap(demo):
    """The import engine refuses breaches; this guards the generator against a silently shrunk
    history (a refused file raises, so here every capped customer reaches its cap at most)."""
    for customer in Customer.objects.filter(seat_cap__isnull=False):
        events = []
        for a in SeatAssignment.objects.filter(customer=customer):
            events.append((a.assigned_at, 1))
            if a.removed_at:
                events.append((a.removed_at, -1))
        active = peak = 0
        for _, step in sorted(events, key=lambda e: (e[0], e[1])):
            active += step
            peak = max(peak, active)
        assert 0 < peak <= customer.seat_cap, customer.slug


def test_statements_of_a_demo_month_list_the_customers_with_seat_days(demo, cli):
    month = Period.of(timezone.now().date()).previous()
    result = cli("export_report", "statements", "--period", str(month), "--partner", "northwind")
    assert result.status == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert {r["customer"] for r in rows} == set(
        Customer.objects.filter(partner__slug="northwind").values_list("slug", flat=True)
    )
    assert all(int(r["seat_days"]) > 0 for r in rows), rows
    assert all(r["period"] == str(month) for r in rows)

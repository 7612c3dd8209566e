"""`load_demo`: a working admin with realistic data, dated relative to today, built through the
import engine (so it obeys the seat rules) and idempotent."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from billing.core.periods import Period, utc_date
from invoicing.choices import RunStatus
from invoicing.models import BillingRun, Invoice, InvoiceKind, InvoiceState, Payment
from invoicing.rating import rate_partner_month
from metering.models import AgentPresence, InventorySync, RmmAgent, Suspension, UsageSnapshot
from partners.models import (
    AuditLog,
    Customer,
    Member,
    Method,
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
          PartnerUser, get_user_model(), UsageSnapshot, Suspension, RmmAgent, AgentPresence, InventorySync]

# What the CI of the current month carries per method (advance for this month, arrears for the
# previous one, per_asset prorations of the previous month): every method of billing-rules 3 is there.
EXPECTED_LINE_TYPES = {
    Method.SEAT_DAYS: {"usage", "minimum", "overage"},
    Method.PEAK: {"usage"},
    Method.CMQ: {"recurring", "variable_usage"},
    Method.LICENSES: {"usage"},
    Method.PER_ASSET: {"recurring", "proration"},
    Method.PER_HOST: {"recurring"},
    Method.FLAT: {"recurring"},
}


def load_demo() -> str:
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def counts():
    return {model.__name__: model.objects.count() for model in MODELS}


def quick_pdf(invoice) -> bytes:
    """WeasyPrint takes a fraction of a second per invoice: the demo's ~36 PDFs are stubbed here
    (invoicing/tests/test_pdf.py renders real ones)."""
    return b"%PDF-1.7 demo stub"


@pytest.fixture(autouse=True)
def quick_pdfs(monkeypatch):
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", quick_pdf)


@pytest.fixture(scope="module")
def _demo_loaded(django_db_setup, django_db_blocker):
    """The demo loaded once for this module's tests (each reads it, or loads it again to find nothing to do): in
    a transaction rolled back when the module ends, each test's own transaction a savepoint inside it. Tests that
    need an empty database are in tests/test_demo_loading.py."""
    with django_db_blocker.unblock(), pytest.MonkeyPatch.context() as patch:
        patch.setattr("invoicing.pdf.render_invoice_pdf", quick_pdf)
        with transaction.atomic():
            yield load_demo()
            transaction.set_rollback(True)


@pytest.fixture
def demo(_demo_loaded, db):
    return _demo_loaded


def test_demo_ends_with_issued_invoices_of_every_kind_with_pdfs(demo):
    issued = Invoice.objects.filter(state=InvoiceState.ISSUED)
    assert set(issued.values_list("kind", flat=True)) == {InvoiceKind.CI, InvoiceKind.INV, InvoiceKind.CN}
    assert not issued.filter(pdf="").exists()
    assert set(issued.values_list("partner__slug", flat=True)) >= {"northwind", "keystone", "brightline"}
    assert Payment.objects.exists()
    line_types = set(issued.values_list("lines__line_type", flat=True))
    assert {"first_month", "one_time", "proration", "credit", "tax", "variable_usage"} <= line_types


def this_month() -> Period:
    return Period.of(utc_date(timezone.now()))


def test_load_demo_twice_changes_nothing_the_second_time(demo):
    first = counts()
    snapshots = list(UsageSnapshot.objects.values_list("pk", "date", "users_count", "storage_bytes").order_by("pk"))
    presences = list(AgentPresence.objects.values_list("pk", "present_from", "present_until").order_by("pk"))
    second_output = load_demo()
    assert counts() == first
    assert list(UsageSnapshot.objects.values_list("pk", "date", "users_count", "storage_bytes")
                .order_by("pk")) == snapshots
    assert list(AgentPresence.objects.values_list("pk", "present_from", "present_until").order_by("pk")) == presences
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


def test_the_demo_s_billing_runs_show_on_the_admin_s_billing_page(demo):
    runs = BillingRun.objects.order_by("through")
    assert runs.exists() and all(run.status == RunStatus.SUCCEEDED and not run.draft for run in runs)
    assert sum(run.document_count for run in runs) == Invoice.objects.issued().exclude(kind=InvoiceKind.CN).count()


def test_every_demo_partner_has_a_named_portal_user(demo):
    """One login per billing kind, with a person's name, so each kind's portal can be tried and the audit
    log reads with names."""
    users = PartnerUser.objects.select_related("user", "partner")
    assert {pu.partner.slug for pu in users} == set(Partner.objects.values_list("slug", flat=True))
    assert all(pu.user.get_full_name() for pu in users)
    assert all(pu.user.check_password("demo-pass") for pu in users)


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


# --- one partner per method, ready to bill --------------------------------------------------------
def test_the_current_months_invoice_has_lines_for_every_method(demo):
    """rate_partner_month for the current month: advance lines for it, arrears for the previous
    month (the usage period), per_asset prorations of the previous month. Every amount is a Decimal
    rounded to the currency's 2 places."""
    month = this_month()
    found = defaultdict(set)
    for partner in Partner.objects.all():
        lines = rate_partner_month(partner=partner, month=month)
        assert lines, partner.slug
        for line in lines:
            found[line.service.method].add(line.line_type)
            assert isinstance(line.amount, Decimal), line
            assert line.amount.as_tuple().exponent == -2, line
            assert line.document == "CI" and line.issue_date == month.first, line
            if line.line_type in ("usage", "minimum", "overage", "variable_usage"):
                assert line.period == month.previous(), line
    assert dict(found) == EXPECTED_LINE_TYPES
    # one partner per method besides the seat partners
    methods = defaultdict(set)
    for slug, method in Service.objects.values_list("partner__slug", "method"):
        methods[slug].add(method)
    assert methods["summit-cloud"] == {Method.PEAK}
    assert methods["ridgeline"] == {Method.CMQ}
    assert methods["brightline"] == {Method.LICENSES}
    assert methods["keystone"] == {Method.PER_ASSET}
    assert methods["clearwave"] == {Method.PER_HOST}
    assert methods["granite-it"] == {Method.FLAT}
    assert methods["northwind"] == {Method.SEAT_DAYS, Method.FLAT}
    peak = Service.objects.filter(partner__slug="summit-cloud")
    assert {s.customer_id is None for s in peak} == {True, False}  # partner-level and customer-level
    assert {s.meter for s in peak} == {"users"}


def lines_of(slug, month):
    return rate_partner_month(partner=Partner.objects.get(slug=slug), month=month)


def test_cmq_bills_variable_usage_above_the_commitment_for_one_month_only(demo):
    cmq = Service.objects.get(partner__slug="ridgeline")
    assert (cmq.meter, cmq.committed_quantity, cmq.start_date.day) == ("assets", 50, 1)
    assert cmq.overage_price.amount > cmq.unit_price.amount
    month = this_month()
    variable = [line for line in lines_of("ridgeline", month) if line.line_type == "variable_usage"]
    assert len(variable) == 1 and variable[0].quantity > 0
    assert "Variable Monthly Usage" in variable[0].description
    assert variable[0].amount == variable[0].quantity * cmq.overage_price.amount
    earlier = lines_of("ridgeline", month.previous())
    assert {line.line_type for line in earlier} == {"recurring"}  # the month before stayed within 50


def test_licenses_count_storage_and_stop_for_the_suspended_tenant(demo):
    service = Service.objects.get(partner__slug="brightline")
    assert service.storage_per_license_gb == 50 and service.tiers == "25:4.00;100:3.50;inf:3.00"
    lines = {line.customer.slug: line for line in lines_of("brightline", this_month())}
    assert set(lines) == set(Customer.objects.filter(partner__slug="brightline").values_list("slug", flat=True))
    heavy = UsageSnapshot.objects.filter(customer__slug="northfield-surveyors").order_by("-date").first()
    assert lines["northfield-surveyors"].quantity > heavy.users_count  # storage-driven
    total = sum(line.quantity for line in lines.values())
    assert 25 < total <= 100 and {line.unit_price for line in lines.values()} == {Decimal("3.50")}
    suspended = Suspension.objects.get(customer__slug="old-mill-bakery")
    assert suspended.unsuspended_at is None
    assert Period.of(suspended.suspended_at.date()) == this_month().previous()
    assert 1 < suspended.suspended_at.day < 28
    # suspended all of the current month so far: no licenses on next month's invoice
    assert "old-mill-bakery" not in {line.customer.slug for line in lines_of("brightline", this_month().next())}


def test_rmm_inventories_go_forward_and_nothing_is_dated_in_the_future(demo):
    today = utc_date(timezone.now())
    for slug in ("keystone", "ridgeline"):
        syncs = list(InventorySync.objects.filter(partner__slug=slug).order_by("as_of"))
        assert len(syncs) >= 5
        dates = [s.as_of for s in syncs]
        assert dates == sorted(set(dates)) and dates[-1] <= today
        assert dates[0] == this_month().previous().previous().previous().first
    keystone = InventorySync.objects.filter(partner__slug="keystone")
    assert all(keystone.filter(**{f"{change}__gt": 0}).exists() for change in ("added", "moved", "removed"))
    filters = set(Service.objects.filter(partner__slug="keystone").values_list("rmm_filter", flat=True))
    assert "Acme" in filters and "Birchwood/Servers" in filters  # ORG and ORG/GROUP
    prorations = [line for line in lines_of("keystone", this_month()) if line.line_type == "proration"]
    assert {line.quantity > 0 for line in prorations} == {True, False}  # increments and decrements
    assert AuditLog.objects.filter(action="inventory.apply", partner__slug="keystone").count() == keystone.count()
    # nothing is dated in the future; the nightly usage sync has run today
    assert not UsageSnapshot.objects.filter(date__gt=today).exists()
    assert not Suspension.objects.filter(suspended_at__gt=timezone.now()).exists()
    assert not AgentPresence.objects.filter(present_from__gt=today).exists()
    assert UsageSnapshot.objects.filter(date=today).exists()


def test_per_host_first_month_uses_the_rounded_daily_rate(demo):
    service = Service.objects.get(code="pinecrest-meetings")
    assert service.proration == "rounded_daily_rate" and service.start_date.day == 10
    previous = this_month().previous()
    assert service.start_date == previous.first.replace(day=10)
    first_month = [line for line in lines_of("clearwave", previous) if line.line_type == "first_month"]
    assert len(first_month) == 1
    line = first_month[0]
    daily = (Decimal(150) / previous.days).quantize(Decimal("0.01"))
    assert line.document == "INV" and line.issue_date == service.start_date
    assert line.amount == daily * (previous.days - 10)  # 4.84 x 21 = 101.64 in a 31-day month
    hosts = {line.service.code: line.quantity for line in lines_of("clearwave", this_month())}
    assert hosts == {"northgate-meetings": 25, "lumen-meetings": 4, "pinecrest-meetings": 10}

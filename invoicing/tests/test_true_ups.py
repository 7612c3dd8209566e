"""Billing over time (billing-rules 4.11, 4.12): data recorded after a month was invoiced is trued up on the next
CI, in either direction and again after a true-up; no month of a per_asset service is left unbilled."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from djmoney.money import Money

from billing.core.actor import Actor
from invoicing.models import FactChange, InvoiceLine, InvoiceState
from invoicing.services import billing_run, run
from metering.models import Suspension, UsageSnapshot
from metering.services import AgentRow, inventory_apply
from partners.models import Method
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    ServiceFactory,
)
from tests.examples import export

ACTOR = Actor(label="true-up test")


def bill(through: str):
    return billing_run(through=date.fromisoformat(through), actor=ACTOR)


def lines(partner, line_type, month=None):
    found = InvoiceLine.objects.filter(invoice__partner=partner, invoice__state=InvoiceState.ISSUED,
                                       line_type=line_type).order_by("invoice__issue_date", "period", "id")
    if month:
        found = found.filter(invoice__month=month)
    return [(line.invoice.month, line.period, line.quantity, line.amount, line.description) for line in found]


@pytest.fixture
def partner():
    return PartnerFactory(slug="acme", tax_rate=D("0"))


@pytest.mark.django_db
def test_late_seat_events_are_trued_up_up_and_then_down_again(partner):
    """20.00 a seat-month, no commitment. April: one seat all month (30 seat-days, 20.00) on the May CI. A seat
    from 16 April recorded after that CI: the June CI carries +0.5 seat-months (15 seat-days), +10.00 for April.
    That seat then found never to have existed: the July CI takes it back for April (a true-up of a true-up) and
    for May."""
    customer = CustomerFactory(partner=partner, slug="birch")
    ServiceFactory(partner=partner, customer=customer, code="seats", name="Seats", start_date=date(2026, 4, 1))
    SeatAssignmentFactory(member=MemberFactory(customer=customer, name="ann"),
                          assigned_at=datetime(2026, 4, 1, tzinfo=UTC))
    bill("2026-05-01")
    assert [(p, a) for _, p, _, a, _ in lines(partner, "usage")] == [("2026-04", D("20.00"))]
    periods = export("periods", "--period", "2026-04")
    late = SeatAssignmentFactory(member=MemberFactory(customer=customer, name="bob"),
                                 assigned_at=datetime(2026, 4, 16, tzinfo=UTC))
    bill("2026-06-01")
    assert lines(partner, "true_up") == [
        ("2026-06", "2026-04", D("0.5"), D("10.00"), "Seats: true-up for April 2026: 15 seat-days recorded after the "
                                                    "invoice")]
    assert [(r["period"], r["billed"], r["expected"]) for r in export("billing-gaps", "--period", "2026-06")] == []
    late.delete()
    assert [(r["service"], r["period"], r["billed"], r["expected"], r["difference"]) for r in export(
        "billing-gaps", "--period", "2026-06")] == [("seats", "2026-04", "30.00", "20.00", "-10.00"),
                                             ("seats", "2026-05", "40.00", "20.00", "-20.00")]
    bill("2026-07-01")
    assert [(m, p, q, a) for m, p, q, a, _ in lines(partner, "true_up", "2026-07")] == [
        ("2026-07", "2026-04", D("-0.5"), D("-10.00")), ("2026-07", "2026-05", D("-1"), D("-20.00"))]
    bill("2026-07-01")  # rerun: nothing more
    assert len(lines(partner, "true_up")) == 3
    assert export("periods", "--period", "2026-04") == periods  # April as it was invoiced


@pytest.mark.django_db
def test_a_late_usage_snapshot_is_trued_up_both_ways(partner):
    """Peak users at 5.00: 10 users in April (50.00 on the May CI). A snapshot of 14 users on 20 April recorded
    late: +4, +20.00 on the June CI; corrected to 8 later: -4, -20.00 on the July CI."""
    customer = CustomerFactory(partner=partner, slug="birch")
    ServiceFactory(partner=partner, customer=customer, code="users", name="Users", method=Method.PEAK,
                   meter="users", unit_price=Money("5.00", "USD"), start_date=date(2026, 4, 1))
    UsageSnapshot.objects.create(customer=customer, date=date(2026, 4, 1), users_count=10, storage_bytes=0)
    bill("2026-05-01")
    late = UsageSnapshot.objects.create(customer=customer, date=date(2026, 4, 20), users_count=14, storage_bytes=0)
    UsageSnapshot.objects.create(customer=customer, date=date(2026, 5, 1), users_count=10, storage_bytes=0)
    bill("2026-06-01")
    assert [(m, p, q, a) for m, p, q, a, _ in lines(partner, "true_up")] == [("2026-06", "2026-04", D("4"), D("20.00"))]
    late.users_count = 8
    late.save()
    bill("2026-07-01")
    assert [(m, p, q, a) for m, p, q, a, _ in lines(partner, "true_up", "2026-07")] == [
        ("2026-07", "2026-04", D("-4"), D("-20.00"))]
    april = [a for _, p, _, a, _ in lines(partner, "usage") + lines(partner, "true_up") if p == "2026-04"]
    assert sum(april) == D("50.00")  # 10 users, as now known


@pytest.mark.django_db
def test_a_late_suspension_is_trued_up(partner):
    """Peak users ignore suspended days: a suspension over all of April recorded after the May CI takes the
    50.00 back on the June CI; taken out again, the July CI bills it back."""
    customer = CustomerFactory(partner=partner, slug="birch")
    ServiceFactory(partner=partner, customer=customer, code="users", name="Users", method=Method.PEAK,
                   meter="users", unit_price=Money("5.00", "USD"), start_date=date(2026, 4, 1))
    UsageSnapshot.objects.create(customer=customer, date=date(2026, 3, 1), users_count=10, storage_bytes=0)
    bill("2026-05-01")
    suspension = Suspension.objects.create(customer=customer, suspended_at=datetime(2026, 3, 31, 12, tzinfo=UTC),
                                           unsuspended_at=datetime(2026, 5, 1, 0, tzinfo=UTC))
    bill("2026-06-01")
    assert [(m, p, q, a) for m, p, q, a, _ in lines(partner, "true_up")] == [
        ("2026-06", "2026-04", D("-10"), D("-50.00"))]
    # the suspension was entered by mistake and is taken out: April is owed again, on the July CI
    suspension.delete()
    bill("2026-07-01")
    assert [(m, p, q, a) for m, p, q, a, _ in lines(partner, "true_up", "2026-07")] == [
        ("2026-07", "2026-04", D("10"), D("50.00"))]


def agents(count: int, organization: str = "birch") -> dict[str, AgentRow]:
    return {f"a{n}": AgentRow(f"a{n}", f"PC-{n}", organization, "", "Windows", None) for n in range(count)}


def per_asset(partner, start: date):
    customer = CustomerFactory(partner=partner, slug="birch", rmm_organization="birch")
    return ServiceFactory(partner=partner, customer=customer, code="agents", name="Agents", method=Method.PER_ASSET,
                          unit_price=Money("310.00", "USD"), start_date=start)


@pytest.mark.django_db
def test_a_per_asset_service_with_no_agent_on_its_start_date_bills_its_first_month_on_the_next_ci(partner):
    """Starts 17 March with no agent; 10 agents from 22 March at 310.00: March is 10 days of 31 x 3,100.00 =
    1,000.00, on the April CI (the first-month INV had nothing to bill on 17 March)."""
    per_asset(partner, date(2026, 3, 17))
    bill("2026-03-17")
    inventory_apply(partner=partner, as_of=date(2026, 3, 22), agents=agents(10), actor=ACTOR)
    bill("2026-04-01")
    assert [(m, p, q, a) for m, p, q, a, _ in lines(partner, "proration")] == [
        ("2026-04", "2026-03", D("10"), D("1000.00"))]
    assert [(p, a) for _, p, _, a, _ in lines(partner, "recurring")] == [("2026-04", D("3100.00"))]
    bill("2026-04-01")
    assert len(lines(partner, "proration")) == 1


@pytest.mark.django_db
def test_a_month_with_no_ci_is_billed_on_the_next_ci(partner):
    """The partner's only service is per_asset from 1 March, with no agent then: no CI for March. 10 agents
    from 29 March: the April CI carries 3 days of 31 x 3,100.00 = 300.00 for March."""
    per_asset(partner, date(2026, 3, 1))
    assert bill("2026-03-01") == []
    inventory_apply(partner=partner, as_of=date(2026, 3, 29), agents=agents(10), actor=ACTOR)
    bill("2026-04-01")
    assert [(m, p, q, a) for m, p, q, a, _ in lines(partner, "proration")] == [
        ("2026-04", "2026-03", D("10"), D("300.00"))]


@pytest.fixture
def one_late_user(partner):
    """Peak users at 5.00: 10 users in April invoiced on the May CI, then an 11th on 2 April recorded late."""
    customer = CustomerFactory(partner=partner, slug="birch")
    ServiceFactory(partner=partner, customer=customer, code="users", name="Users", method=Method.PEAK,
                   meter="users", unit_price=Money("5.00", "USD"), start_date=date(2026, 4, 1))
    UsageSnapshot.objects.create(customer=customer, date=date(2026, 4, 1), users_count=10, storage_bytes=0)
    bill("2026-05-01")
    UsageSnapshot.objects.create(customer=customer, date=date(2026, 4, 2), users_count=11, storage_bytes=0)
    return partner


@pytest.mark.django_db
def test_a_draft_shows_the_true_ups_a_run_would_make(one_late_user):
    partner = one_late_user
    drafts = billing_run(through=date(2026, 6, 1), draft=True, actor=ACTOR)
    ups = [line for draft in drafts for line in draft.lines.all() if line.line_type == "true_up"]
    assert [(line.period, line.amount) for line in ups] == [("2026-04", D("5.00"))]
    assert not lines(partner, "true_up")


@pytest.mark.django_db
def test_the_run_summary_names_the_true_ups(one_late_user, cli):
    result = cli("run_billing", "--through", "2026-06-01")
    assert "Users: true-up for April 2026: peak 11, invoiced 10: 5.00 USD" in result.out


@pytest.mark.django_db
def test_the_daily_runs_within_a_month_leave_true_ups_to_the_next_ci(one_late_user):
    """The daily job bills through today: on 15 May, the May CI is issued already, so nothing is measured again
    and nothing is issued; the June CI carries the true-up."""
    partner = one_late_user
    assert bill("2026-05-15") == []
    assert not lines(partner, "true_up")
    bill("2026-06-01")
    assert [(m, p, a) for m, p, _, a, _ in lines(partner, "true_up")] == [("2026-06", "2026-04", D("5.00"))]


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_run_measures_again_only_from_the_month_a_fact_changed_in(partner, monkeypatch):
    """PostgreSQL logs every write to what the true-up methods read (FactChange, by triggers): a run measures
    again only from the earliest month a write since the last such run covers, and nothing when none did."""

    customer = CustomerFactory(partner=partner, slug="birch")
    ServiceFactory(partner=partner, customer=customer, code="users", name="Users", method=Method.PEAK,
                   meter="users", unit_price=Money("5.00", "USD"), start_date=date(2026, 3, 1))
    UsageSnapshot.objects.create(customer=customer, date=date(2026, 3, 1), users_count=10, storage_bytes=0)
    bill("2026-05-01")
    assert not FactChange.objects.filter(partner_id=partner.pk).exists()  # consumed by the run that measured
    measured_again = []
    real = run.rate_partners_month

    def spy(**kwargs):
        if kwargs.get("methods") is not None:
            measured_again.append(str(kwargs["month"]))
        return real(**kwargs)

    monkeypatch.setattr(run, "rate_partners_month", spy)
    bill("2026-06-01")
    assert measured_again == []  # nothing changed since the May run
    UsageSnapshot.objects.create(customer=customer, date=date(2026, 4, 20), users_count=14, storage_bytes=0)
    bill("2026-07-01")
    assert measured_again == ["2026-04", "2026-05", "2026-06"]  # from April, the month the late snapshot is in
    assert [(m, p, a) for m, p, _, a, _ in lines(partner, "true_up")] == [
        ("2026-07", "2026-04", D("20.00")), ("2026-07", "2026-05", D("20.00"))]


@pytest.mark.django_db
def test_a_flat_service_and_a_cmq_commitment_entered_late_bill_their_missed_months_once(partner):
    """billing-rules 4.11, 4.12: flat and a cmq commitment have no true-up, but no month of their life is left
    unbilled. Support (flat 30.00, partner-level) is billed from 1 April. On 20 May a flat Backup (12.00) from
    10 April and a cmq Users commitment (5 users at 2.00) from 1 April are entered. The June CI carries, with
    their own types and periods: Backup's first month (12.00 x 21/30 = 8.40) and May (12.00), Users' April
    and May commitments (10.00 each); then June's own lines. No INV dated 10 April; a rerun adds nothing, and a
    later price dated back reaches neither month (no true-up)."""
    ServiceFactory(partner=partner, code="support", method=Method.FLAT, unit_price=Money("30.00", "USD"),
                   start_date=date(2026, 4, 1))
    customer = CustomerFactory(partner=partner, slug="birch")
    bill("2026-04-01")
    bill("2026-05-01")
    backup = ServiceFactory(partner=partner, customer=customer, code="backup", name="Backup", method=Method.FLAT,
                            unit_price=Money("12.00", "USD"), start_date=date(2026, 4, 10))
    ServiceFactory(partner=partner, customer=customer, code="users", name="Users", method=Method.CMQ, meter="users",
                   unit_price=Money("2.00", "USD"), committed_quantity=5, start_date=date(2026, 4, 1))
    bill("2026-05-20")
    assert not InvoiceLine.objects.filter(invoice__partner=partner, service=backup).exists()  # no INV dated back
    bill("2026-06-01")
    june = sorted((line.service.code, line.line_type, line.period, line.amount) for line in InvoiceLine.objects.filter(
        invoice__partner=partner, invoice__month="2026-06", service__code__in=["backup", "users"]))
    assert june == [
        ("backup", "first_month", "2026-04", D("8.40")), ("backup", "recurring", "2026-05", D("12.00")),
        ("backup", "recurring", "2026-06", D("12.00")),
        ("users", "recurring", "2026-04", D("10.00")), ("users", "recurring", "2026-05", D("10.00")),
        ("users", "recurring", "2026-06", D("10.00"))]
    assert lines(partner, "true_up") == []
    assert bill("2026-06-01") == []
    assert [(r["service"], r["period"]) for r in export("billing-gaps", "--period", "2026-06")] == []

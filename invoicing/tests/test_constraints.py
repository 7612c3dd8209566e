"""What a billing rerun relies on is refused by the DATABASE, not only by the Python.

Each test writes a valid row, then a duplicate straight into the table (bulk_create or a queryset update:
no model save(), no service check) and expects an IntegrityError. They run on SQLite by default and on
PostgreSQL under `DATABASE_URL` (CI), with the same constraints (invoicing 0005-0006, metering 0007).

The duplicates a rerun could make: a second issued CI for a partner's month, a number twice, an issued
invoice without a number, a second child for one customer of a CI, a charge twice on one invoice, a
one-time charge or a first month on two invoices, a line credited twice, and a per_asset unit change
posted twice. The last one is not "one line per (service, month, date)": a corrected inventory of the
latest as-of date may change a date already posted (billing-rules decision (t)), and the next CI
then posts the difference as posting 2. What must never happen is the same posting twice, which is
what a rerun that lost track of an earlier posting would write; the last tests show both.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from djmoney.money import Money

from billing.core.actor import Actor
from invoicing.models import ChildInvoice, Invoice, InvoiceLine, InvoiceSequence, InvoiceState, LineType
from invoicing.services import billing_run, run
from metering.models import AgentPresence
from metering.services import AgentRow, inventory_apply
from metering.tests.factories import RmmAgentFactory
from partners.models import Member, Method, SeatAssignment
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="constraints test")
D = Decimal


def refused(write) -> str:
    """The write fails in the database; returns the database's message (it names the constraint)."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        write()
    return str(caught.value)


def invoice(partner, **fields) -> Invoice:
    fields = {"kind": "INV", "issue_date": date(2026, 4, 1), "due_date": date(2026, 5, 1), "currency": "USD",
              **fields}
    return Invoice.objects.bulk_create([Invoice(partner=partner, **fields)])[0]


def line(inv: Invoice, **fields) -> InvoiceLine:
    fields = {"line_type": LineType.RECURRING, "period": "2026-04", "amount": D("10.00"), "description": "x",
              **fields}
    return InvoiceLine(invoice=inv, **fields)


@pytest.fixture
def partner():
    return PartnerFactory(slug="constrained")


# --- invoices -------------------------------------------------------------------------------------

def test_one_issued_ci_per_partner_and_month(partner):
    invoice(partner, kind="CI", month="2026-04", number="CI-0001", state=InvoiceState.ISSUED)
    message = refused(lambda: invoice(partner, kind="CI", month="2026-04", number="CI-0002",
                                      state=InvoiceState.ISSUED))
    assert "one_issued_ci_per_partner_month" in message or "UNIQUE" in message
    invoice(partner, kind="CI", month="2026-05", number="CI-0003", state=InvoiceState.ISSUED)  # another month
    invoice(partner, kind="CI", month="2026-04")  # a draft may be rebuilt beside it


def test_invoice_numbers_are_unique(partner):
    invoice(partner, number="INV-0001", state=InvoiceState.ISSUED)
    refused(lambda: invoice(partner, number="INV-0001", state=InvoiceState.ISSUED, issue_date=date(2026, 4, 2)))


def test_an_issued_invoice_has_a_number(partner):
    refused(lambda: invoice(partner, state=InvoiceState.ISSUED))
    draft = invoice(partner)
    refused(lambda: Invoice.objects.filter(pk=draft.pk).update(state=InvoiceState.ISSUED))


def test_a_ci_names_its_month(partner):
    """A CI without a month would escape the one-CI-per-month constraint."""
    refused(lambda: invoice(partner, kind="CI", month="", number="CI-0001", state=InvoiceState.ISSUED))


def test_one_child_per_customer_and_one_partner_child_per_ci(partner):
    acme = CustomerFactory(partner=partner, slug="acme")
    ci = invoice(partner, kind="CI", month="2026-04")
    ChildInvoice.objects.bulk_create([ChildInvoice(invoice=ci, customer=acme, due_date=date(2026, 5, 1)),
                                      ChildInvoice(invoice=ci, customer=None, due_date=date(2026, 5, 1))])
    refused(lambda: ChildInvoice.objects.bulk_create([ChildInvoice(invoice=ci, customer=acme,
                                                                   due_date=date(2026, 5, 1))]))
    refused(lambda: ChildInvoice.objects.bulk_create([ChildInvoice(invoice=ci, customer=None,
                                                                   due_date=date(2026, 5, 1))]))
    other = invoice(partner, kind="CI", month="2026-05")
    ChildInvoice.objects.bulk_create([ChildInvoice(invoice=other, customer=acme, due_date=date(2026, 6, 1))])


# --- seats ----------------------------------------------------------------------------------------

def test_one_open_seat_per_member_and_a_seat_ends_after_it_starts(partner):
    """What seat-day metering counts on: a member holds at most one open seat (partners 0025 keeps it while it
    re-keys the seats), and a seat never ends before it starts."""
    customer = CustomerFactory(partner=partner, slug="acme")
    member = Member.objects.create(customer=customer, name="ana")

    def seat(**fields):
        return SeatAssignment(partner=partner, customer=customer, member=member, **fields).set_dates()

    start = datetime(2026, 4, 1, 9, tzinfo=UTC)
    SeatAssignment.objects.bulk_create([seat(assigned_at=start)])
    message = refused(lambda: SeatAssignment.objects.bulk_create([seat(assigned_at=start + timedelta(days=1))]))
    assert "one_open_seat_per_member" in message or "UNIQUE" in message
    SeatAssignment.objects.bulk_create([seat(assigned_at=start - timedelta(days=9), removed_at=start)])  # closed
    refused(lambda: SeatAssignment.objects.bulk_create([seat(assigned_at=start, removed_at=start - timedelta(1))]))


def test_a_seat_s_dates_are_its_instants_utc_dates(partner):
    """Metering counts the dates, the imports read the instants: a shell's update() of an instant alone (removed_at
    set, end_date left blank or stale; an end taken off with its date kept; another start) is refused; with its
    date, as save() writes it, it passes. 23:30 at -02:00 is the next UTC day."""
    customer = CustomerFactory(partner=partner, slug="acme")
    member = Member.objects.create(customer=customer, name="ana")
    open_seat = SeatAssignment.objects.create(partner=partner, customer=customer, member=member,
                                              assigned_at=datetime(2026, 4, 1, 9, tzinfo=UTC))
    seats = SeatAssignment.objects.filter(pk=open_seat.pk)
    end = datetime(2026, 4, 10, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    message = refused(lambda: seats.update(removed_at=end))
    assert "seat_dates_are_the_instants_utc_dates" in message or "CHECK" in message
    refused(lambda: seats.update(removed_at=end, end_date=date(2026, 4, 10)))  # the local date, not UTC's
    refused(lambda: seats.update(assigned_at=datetime(2026, 3, 1, tzinfo=UTC)))
    seats.update(removed_at=end, end_date=date(2026, 4, 11))
    refused(lambda: seats.update(removed_at=None))
    seats.update(removed_at=None, end_date=None)
    closed = SeatAssignment.objects.get(pk=open_seat.pk)
    closed.removed_at = end
    closed.save()
    assert closed.end_date == date(2026, 4, 11)


# --- lines ----------------------------------------------------------------------------------------

def test_a_charge_once_per_invoice(partner):
    ci = invoice(partner, kind="CI", month="2026-04")
    InvoiceLine.objects.bulk_create([line(ci, key="recurring:1:2026-04")])
    refused(lambda: InvoiceLine.objects.bulk_create([line(ci, key="recurring:1:2026-04")]))
    # lines without a key (tax) are not charges that could repeat
    InvoiceLine.objects.bulk_create([line(ci, line_type=LineType.TAX), line(ci, line_type=LineType.TAX)])


def test_a_one_time_charge_on_one_invoice_only(partner):
    first, second = invoice(partner), invoice(partner, issue_date=date(2026, 4, 2))
    InvoiceLine.objects.bulk_create([line(first, line_type=LineType.ONE_TIME, key="one_time:7")])
    refused(lambda: InvoiceLine.objects.bulk_create([line(second, line_type=LineType.ONE_TIME, key="one_time:7")]))


def test_a_first_month_on_one_invoice_only(partner):
    first, second = invoice(partner), invoice(partner, issue_date=date(2026, 4, 2))
    key = "first_month:3:2026-04:2026-04-10"
    InvoiceLine.objects.bulk_create([line(first, line_type=LineType.FIRST_MONTH, key=key)])
    refused(lambda: InvoiceLine.objects.bulk_create([line(second, line_type=LineType.FIRST_MONTH, key=key)]))


def test_a_line_credited_once(partner):
    first, second = invoice(partner, kind="CN"), invoice(partner, kind="CN", issue_date=date(2026, 4, 2))
    InvoiceLine.objects.bulk_create([line(first, line_type=LineType.CREDIT, key="credit:41")])
    refused(lambda: InvoiceLine.objects.bulk_create([line(second, line_type=LineType.CREDIT, key="credit:41")]))


def test_each_posting_of_a_unit_change_once(partner):
    """(service, month, effective date, posting) once among proration lines, on whatever invoice; the
    same date posted again as a correction (posting 2) is allowed; an unnumbered proration is refused."""
    agents = ServiceFactory(partner=partner, code="agents", method=Method.PER_ASSET)
    may, june, july = (invoice(partner, kind="CI", month=m) for m in ("2026-05", "2026-06", "2026-07"))
    change = {"line_type": LineType.PRORATION, "service": agents, "period": "2026-04",
              "effective_date": date(2026, 4, 10), "key": f"proration:{agents.pk}:2026-04:2026-04-10"}
    InvoiceLine.objects.bulk_create([line(may, posting=1, **change)])
    refused(lambda: InvoiceLine.objects.bulk_create([line(june, posting=1, **change)]))
    InvoiceLine.objects.bulk_create([line(june, posting=2, **change)])
    refused(lambda: InvoiceLine.objects.bulk_create([line(july, posting=None, **change)]))
    refused(lambda: InvoiceLine.objects.bulk_create([line(july, posting=3, **{**change, "effective_date": None})]))


# --- metering: an inventory applied again never doubles an agent ------------------------------------

def test_one_presence_per_agent_and_start_date(partner):
    agent = RmmAgentFactory(partner=partner)
    AgentPresence.objects.bulk_create([AgentPresence(agent=agent, partner=partner, organization="ACME",
                                                     present_from=date(2026, 4, 1), present_until=date(2026, 4, 9))])
    refused(lambda: AgentPresence.objects.bulk_create([AgentPresence(
        agent=agent, partner=partner, organization="OTHER", present_from=date(2026, 4, 1))]))
    refused(lambda: AgentPresence.objects.bulk_create([AgentPresence(
        agent=agent, partner=partner, organization="ACME", present_from=date(2026, 5, 2),
        present_until=date(2026, 5, 1))]))


# --- the billing run meets them ---------------------------------------------------------------------

def agents_at(partner, as_of: str, count: int) -> None:
    inventory_apply(partner=partner, as_of=date.fromisoformat(as_of), actor=ACTOR, agents={
        f"pc-{n}": AgentRow(f"pc-{n}", f"PC-{n}", "ACME", "") for n in range(count)})


@pytest.fixture
def keystone():
    """Agents 10.00 for Acme from 1 March; 3 agents from 1 March, 5 from 10 April."""
    partner = PartnerFactory(slug="keystone", billing_emails="")
    acme = CustomerFactory(partner=partner, slug="acme", rmm_organization="ACME")
    service = ServiceFactory(partner=partner, customer=acme, code="agents", method=Method.PER_ASSET,
                             unit_price=Money(D("10.00"), "USD"), start_date=date(2026, 3, 1))
    agents_at(partner, "2026-03-01", 3)
    agents_at(partner, "2026-04-10", 5)
    return service


def prorations(service) -> list[tuple]:
    return sorted(InvoiceLine.objects.filter(service=service, line_type=LineType.PRORATION).values_list(
        "invoice__number", "period", "effective_date", "quantity", "amount", "posting"))


def test_a_corrected_date_posts_again_as_the_next_posting(keystone):
    """The May CI posts +2 from 10 April (2 x 10.00 x 21/30 = 14.00, posting 1). A corrected inventory as
    of 10 April (the latest) says 4: the June CI posts -1 from 10 April (-7.00, posting 2), and May's
    normal line (5 on 1 May) -1 from 1 May (-10.00, posting 1). The constraint lets the correction in."""
    billing_run(through=date(2026, 5, 1), actor=ACTOR)
    agents_at(keystone.partner, "2026-04-10", 4)
    billing_run(through=date(2026, 7, 1), actor=ACTOR)
    assert prorations(keystone) == [
        ("CI-0003", "2026-04", date(2026, 4, 10), D("2"), D("14.00"), 1),
        ("CI-0004", "2026-04", date(2026, 4, 10), D("-1"), D("-7.00"), 2),
        ("CI-0004", "2026-05", date(2026, 5, 1), D("-1"), D("-10.00"), 1),
    ]
    assert billing_run(through=date(2026, 7, 1), actor=ACTOR) == []


def test_a_rerun_that_lost_a_posting_is_refused_and_writes_nothing(keystone, monkeypatch):
    """A rerun whose reading of what was billed misses the +2 already posted on the May CI (a bug this
    test plants) would post it again on the June CI; the database refuses the second posting 1, and
    the partner's whole run rolls back: no June CI, no number taken."""
    billing_run(through=date(2026, 5, 1), actor=ACTOR)
    real = run.billed_units_by_partner

    def forgetful(*, partner_ids, extra=(), through=None):
        billed = real(partner_ids=partner_ids, extra=extra, through=through)
        for partner in billed.values():
            for units in partner.values():
                units.changes.clear()
                units.postings.clear()
                units.amounts.clear()
        return billed

    monkeypatch.setattr(run, "billed_units_by_partner", forgetful)
    with pytest.raises(IntegrityError):
        billing_run(through=date(2026, 6, 1), actor=ACTOR)
    assert list(Invoice.objects.values_list("number", flat=True).order_by("number")) == [
        "CI-0001", "CI-0002", "CI-0003"]
    assert InvoiceSequence.objects.get(prefix="CI").last == 3
    assert len(prorations(keystone)) == 1

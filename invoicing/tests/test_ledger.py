"""The ledger (billing-rules 4.5-4.8): the account a CI states, payments, credit notes and the payment status.

A CI states: previous balance = the previous CI's amount due; payments (paid on a date in
[previous CI date, this CI date)) and credit notes (issued in that window) since; individual
invoices issued in that window (other_invoices); amount due = previous - payments and credits +
other invoices + this CI's total. A payment or INV dated before the previous CI but recorded after
it was issued shows on the next CI, so the amount due always equals the partner's balance.
Credit notes negate whole invoices exactly, or chosen lines with their own tax; a line is credited
once. Payment status: open, partially_paid, paid, overdue, void.

"Today" matters to credit notes (dated the day they are issued), to payment statuses and to the
ledger (when things were recorded against when CIs were issued), so the tests travel in time.
Every amount is worked out by hand in the docstrings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from djmoney.money import Money

from billing.core.actor import Actor
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, LineType, OneTimeCharge, Payment, PaymentStatus
from invoicing.services import (
    BillingError,
    billing_run,
    credit_note_issue,
    invoice_status,
    invoice_statuses_refresh,
    partner_balance,
    payment_record,
)
from partners.models import Method, Partner, Service
from partners.tests.factories import PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

D = Decimal
ACTOR = Actor(label="test")


def service(partner: Partner, code: str, method: str, price: str, **fields) -> Service:
    fields.setdefault("start_date", date(2026, 3, 1))
    return ServiceFactory(partner=partner, code=code, name=code.title(), method=method,
                          unit_price=Money(D(price), partner.currency), **fields)


def charge(partner: Partner, description: str, quantity: str, price: str, day: str,
           taxable: bool = True) -> OneTimeCharge:
    return OneTimeCharge.objects.create(partner=partner, description=description, quantity=D(quantity),
                                        unit_price=D(price), date=date.fromisoformat(day), taxable=taxable)


def bill(partner: Partner, through: str) -> list[Invoice]:
    return billing_run(through=date.fromisoformat(through), partner_slug=partner.slug, actor=ACTOR)


def pay(invoice: Invoice, amount: str, paid_on: str, reference: str = "") -> Payment:
    return payment_record(invoice=invoice, amount=D(amount), paid_on=date.fromisoformat(paid_on),
                          reference=reference, actor=ACTOR)


def on(day: str):
    """Travel to 06:00 UTC of a date, the clock running (credit notes are dated today, statuses judge
    today, and the ledger compares when things were recorded with when CIs were issued)."""
    return time_machine.travel(datetime.fromisoformat(day).replace(hour=6, tzinfo=UTC), tick=True)


def statement(invoice: Invoice) -> tuple:
    invoice.refresh_from_db()
    return (invoice.previous_balance, invoice.payments_and_credits, invoice.other_invoices, invoice.total,
            invoice.amount_due)


def number(partner: Partner, kind: str, issue_date: str) -> Invoice:
    return Invoice.objects.issued().get(partner=partner, kind=kind, issue_date=date.fromisoformat(issue_date))


# --- the statement on a CI ---------------------------------------------------------------------------

def test_ci_statement_previous_balance_payments_other_invoices_and_amount_due():
    """Tax 10%, terms 30: flat 100.00 from 1 March (CI total 100.00 + 10.00 = 110.00); a 50.00 router on
    15 March (INV 55.00); a 10.00 cable on 1 April (INV 11.00, dated the April CI's day).
    Billed on 31 March: March CI: nothing before it: 0 - 0 + 0 + 110.00 = 110.00; the router's INV.
    On 1 April, before billing: payments of 60.00 dated 1 March (the previous CI's date: counts for
    April), 55.00 dated 20 March for the router, 10.00 dated 1 April (April's own date: counts for May).
    April CI: previous 110.00, payments 60.00 + 55.00 = 115.00, other INVs 55.00 (router; the cable is
    dated 1 April, so it is May's), total 110.00: 110.00 - 115.00 + 55.00 + 110.00 = 160.00.
    May CI (billed 1 May): previous 160.00, payments 10.00, other 11.00 (cable), total 110.00: 271.00.
    The partner's balance agrees: documents 110 + 55 + 110 + 11 + 110 = 396.00 less 125.00 paid = 271.00."""
    partner = PartnerFactory(slug="ledger", tax_rate=D("10"), payment_terms_days=30)
    service(partner, "flat", Method.FLAT, "100.00")
    charge(partner, "Router", "1", "50.00", "2026-03-15")
    charge(partner, "Cable", "1", "10.00", "2026-04-01")

    with on("2026-03-31"):
        bill(partner, "2026-03-31")
    march = number(partner, "CI", "2026-03-01")
    router = number(partner, "INV", "2026-03-15")
    assert statement(march) == (D("0"), D("0"), D("0"), D("110.00"), D("110.00"))
    assert router.total == D("55.00") and router.amount_due == D("55.00")

    with on("2026-04-01"):
        pay(march, "60.00", "2026-03-01")
        pay(router, "55.00", "2026-03-20")
        pay(march, "10.00", "2026-04-01")
        bill(partner, "2026-04-01")
    with on("2026-05-01"):
        bill(partner, "2026-05-01")

    april, may = number(partner, "CI", "2026-04-01"), number(partner, "CI", "2026-05-01")
    assert number(partner, "INV", "2026-04-01").total == D("11.00")
    assert statement(april) == (D("110.00"), D("115.00"), D("55.00"), D("110.00"), D("160.00"))
    assert statement(may) == (D("160.00"), D("10.00"), D("11.00"), D("110.00"), D("271.00"))
    assert partner_balance(partner) == D("271.00")


def test_a_late_inv_and_a_backdated_payment_show_once_on_the_next_ci():
    """Tax 10%: flat 100.00 from 1 March. Billed on 1 April: March CI 110.00, April CI 220.00 due.
    On 10 April a 50.00 router dated 15 March is entered (INV dated 15 March, 55.00, issued 10 April)
    and a 110.00 payment dated 25 March is recorded for the March CI: both are dated before the
    April CI but were unknown when it was issued, so they show on the May CI (billed 1 May):
    220.00 - 110.00 + 55.00 + 110.00 = 275.00 = the balance (110 x 3 + 55 - 110). June CI: 275.00 +
    110.00 = 385.00, neither counted again."""
    partner = PartnerFactory(slug="latecomer", tax_rate=D("10"))
    service(partner, "flat", Method.FLAT, "100.00")
    with on("2026-04-01"):
        bill(partner, "2026-04-01")
    with on("2026-04-10"):
        charge(partner, "Router", "1", "50.00", "2026-03-15")
        [late] = bill(partner, "2026-04-10")
        pay(number(partner, "CI", "2026-03-01"), "110.00", "2026-03-25")
    assert (late.kind, late.issue_date, late.total) == ("INV", date(2026, 3, 15), D("55.00"))
    with on("2026-05-01"):
        bill(partner, "2026-05-01")
    with on("2026-06-01"):
        bill(partner, "2026-06-01")

    assert statement(number(partner, "CI", "2026-04-01")) == (D("110.00"), D("0"), D("0"), D("110.00"),
                                                              D("220.00"))
    assert statement(number(partner, "CI", "2026-05-01")) == (D("220.00"), D("110.00"), D("55.00"), D("110.00"),
                                                              D("275.00"))
    assert statement(number(partner, "CI", "2026-06-01")) == (D("275.00"), D("0"), D("0"), D("110.00"),
                                                              D("385.00"))
    assert partner_balance(partner) == D("385.00")


def test_ci_statement_counts_credit_notes_issued_since_the_previous_ci():
    """Tax 10%: flat 100.00 from 1 March. Billed on 1 April: March CI 110.00 (due 110.00); April CI:
    previous 110.00 + 110.00 = 220.00. On 20 April the March CI is credited in full: CN total -110.00
    (-100.00 and tax -10.00), dated 20 April. May CI: previous 220.00, payments and credits 110.00,
    total 110.00: 220.00 - 110.00 + 110.00 = 220.00 = the balance (330.00 issued - 110.00 credited)."""
    partner = PartnerFactory(slug="credited", tax_rate=D("10"))
    service(partner, "flat", Method.FLAT, "100.00")
    with on("2026-04-01"):
        bill(partner, "2026-04-01")
    march, april = number(partner, "CI", "2026-03-01"), number(partner, "CI", "2026-04-01")
    assert statement(april) == (D("110.00"), D("0"), D("0"), D("110.00"), D("220.00"))

    with on("2026-04-20"):
        note = credit_note_issue(invoice=march, actor=ACTOR, reason="service not delivered")
    assert (note.kind, note.number, note.issue_date, note.total) == ("CN", "CN-0001", date(2026, 4, 20), D("-110.00"))
    with on("2026-05-01"):
        bill(partner, "2026-05-01")

    may = number(partner, "CI", "2026-05-01")
    assert statement(may) == (D("220.00"), D("110.00"), D("0"), D("110.00"), D("220.00"))
    assert partner_balance(partner) == D("220.00")


# --- credit notes -------------------------------------------------------------------------------

def test_a_whole_invoice_credit_note_restores_the_balance_exactly_and_voids_the_invoice():
    """Tax 7.5%: flat 40.00 from 1 March, so the March CI is 40.00 + 3.00 = 43.00; balance 43.00.
    Then 3 licences at 33.33 on 10 March: INV 99.99 + 7.5% = 7.49925 -> 7.50 = 107.49; balance 150.49.
    Its credit note negates each line and the tax as issued: -99.99 and -7.50 = -107.49, and the
    balance is 43.00 again, to the cent. The INV is void; the CN is numbered CN-0001, dated today."""
    partner = PartnerFactory(slug="restore", tax_rate=D("7.5"))
    service(partner, "flat", Method.FLAT, "40.00")
    with on("2026-03-01"):
        bill(partner, "2026-03-01")
    before = partner_balance(partner)
    assert before == D("43.00")

    charge(partner, "Licences", "3", "33.33", "2026-03-10")
    with on("2026-03-10"):
        [inv] = bill(partner, "2026-03-10")
    assert (inv.kind, inv.subtotal, inv.tax_amount, inv.total) == ("INV", D("99.99"), D("7.50"), D("107.49"))
    assert partner_balance(partner) == D("150.49")

    with on("2026-03-20"):
        note = credit_note_issue(invoice=inv, actor=ACTOR)

    assert partner_balance(partner) == before
    assert note.credits_id == inv.pk and note.number == "CN-0001" and note.issue_date == date(2026, 3, 20)
    assert sorted((line.line_type, line.amount) for line in note.lines.all()) == [
        ("credit", D("-99.99")), ("tax", D("-7.50"))]
    assert (note.subtotal, note.tax_amount, note.total) == (D("-99.99"), D("-7.50"), D("-107.49"))
    inv.refresh_from_db()
    assert inv.payment_status == PaymentStatus.VOID
    with pytest.raises(BillingError):
        credit_note_issue(invoice=inv, actor=ACTOR)  # every line is credited already
    assert partner_balance(partner) == before


def test_a_credit_note_for_chosen_lines_credits_just_those_with_their_own_tax_and_only_once():
    """Tax 5%, April CI: a 12.30 and a 7.70 taxable flat and a 100.00 non-taxable support:
    tax 5% x 20.00 = 1.00, total 121.00.
    Credit the 12.30 line: -12.30 and tax 5% x -12.30 = -0.615 -> -0.62 (half away from zero): -12.92.
    Credit the support: -100.00 and a 0.00 tax line: -100.00. The balance falls by 112.92 to 8.08.
    Crediting the 12.30 line again, alone or with another, is refused; crediting "the whole invoice" now
    credits what is left, the 7.70 line; being the last line, its credit note takes the tax still
    uncredited (1.00 - 0.62 = 0.38, not its own 0.385 -> 0.39): -7.70 - 0.38 = -8.08, the balance is
    back to exactly 0.00 and the CI is void."""
    partner = PartnerFactory(slug="chosen", tax_rate=D("5"))
    april = {"start_date": date(2026, 4, 1)}
    service(partner, "a", Method.FLAT, "12.30", **april)
    service(partner, "b", Method.FLAT, "7.70", **april)
    service(partner, "support", Method.FLAT, "100.00", taxable=False, **april)
    with on("2026-04-01"):
        [ci] = bill(partner, "2026-04-01")
    assert (ci.tax_amount, ci.total) == (D("1.00"), D("121.00"))
    line = {line.service.code: line for line in ci.lines.exclude(line_type=LineType.TAX).select_related("service")}

    with on("2026-04-10"):
        first = credit_note_issue(invoice=ci, lines=[line["a"]], actor=ACTOR)
        second = credit_note_issue(invoice=ci, lines=[line["support"]], actor=ACTOR)
    assert sorted((x.line_type, x.amount) for x in first.lines.all()) == [("credit", D("-12.30")), ("tax", D("-0.62"))]
    assert first.total == D("-12.92")
    assert sorted((x.line_type, x.amount) for x in second.lines.all()) == [("credit", D("-100.00")), ("tax", D("0.00"))]
    assert second.total == D("-100.00")
    assert partner_balance(partner) == D("8.08")

    with on("2026-04-11"):
        with pytest.raises(BillingError, match=f"a chosen line of {ci.number} is already credited"):
            credit_note_issue(invoice=ci, lines=[line["a"]], actor=ACTOR)
        with pytest.raises(BillingError, match=f"a chosen line is not a charge of {ci.number}"):
            credit_note_issue(invoice=ci, lines=[ci.lines.get(line_type=LineType.TAX)], actor=ACTOR)  # its tax
        with pytest.raises(BillingError, match="already credited"):
            credit_note_issue(invoice=ci, lines=[line["a"], line["b"]], actor=ACTOR)
        assert Invoice.objects.filter(kind=InvoiceKind.CN).count() == 2
        third = credit_note_issue(invoice=ci, actor=ACTOR)  # "the whole invoice": what is left of it, line b
        with pytest.raises(BillingError, match="already credited in full"):
            credit_note_issue(invoice=ci, actor=ACTOR)
    assert [x.key for x in third.lines.filter(line_type=LineType.CREDIT)] == [f"credit:{line['b'].pk}"]
    assert third.total == D("-8.08")
    assert partner_balance(partner) == D("0.00")
    ci.refresh_from_db()
    assert ci.payment_status == PaymentStatus.VOID


def test_credit_notes_only_correct_issued_invoices():
    partner = PartnerFactory(slug="nodraft")
    service(partner, "flat", Method.FLAT, "10.00", start_date=date(2026, 4, 1))
    with on("2026-04-01"):
        [draft] = billing_run(through=date(2026, 4, 1), draft=True, actor=ACTOR)
        with pytest.raises(BillingError):
            credit_note_issue(invoice=draft, actor=ACTOR)
        [ci] = bill(partner, "2026-04-01")
    with on("2026-04-02"):
        note = credit_note_issue(invoice=ci, actor=ACTOR)
    with pytest.raises(BillingError):
        credit_note_issue(invoice=note, actor=ACTOR)
    with pytest.raises(BillingError):
        payment_record(invoice=note, amount=D("1.00"), paid_on=date(2026, 4, 2), actor=ACTOR)


# --- payment status -----------------------------------------------------------------------------------

@pytest.fixture
def april_ci():
    """Flat 100.00 from 1 April, tax 0, terms 30: CI-0001 of 1 April, 100.00, due 1 May."""
    partner = PartnerFactory(slug="status", payment_terms_days=30)
    service(partner, "flat", Method.FLAT, "100.00", start_date=date(2026, 4, 1))
    with on("2026-04-01"):
        [ci] = bill(partner, "2026-04-01")
    assert (ci.number, ci.due_date, ci.total) == ("CI-0001", date(2026, 5, 1), D("100.00"))
    return ci


def test_payment_status_open_then_partially_paid_then_paid(april_ci):
    """Open when issued; 40.00 paid on 10 April: partially paid; 60.00 more on 20 April: paid
    (40 + 60 = 100.00). The daily refresh long after the due date leaves it paid."""
    assert april_ci.payment_status == PaymentStatus.OPEN
    with on("2026-04-10"):
        pay(april_ci, "40.00", "2026-04-10")
    april_ci.refresh_from_db()
    assert april_ci.payment_status == PaymentStatus.PARTIALLY_PAID
    with on("2026-04-20"):
        pay(april_ci, "60.00", "2026-04-20")
    april_ci.refresh_from_db()
    assert april_ci.payment_status == PaymentStatus.PAID
    assert invoice_statuses_refresh(today=date(2026, 9, 1)) == 0
    april_ci.refresh_from_db()
    assert april_ci.payment_status == PaymentStatus.PAID


def test_payment_status_becomes_overdue_the_day_after_the_due_date(april_ci):
    """Due 1 May: still open on 1 May; overdue on 2 May (one change); a 30.00 payment on 10 May
    leaves it overdue (70.00 still owed, late); 70.00 more: paid."""
    assert invoice_statuses_refresh(today=date(2026, 5, 1)) == 0
    april_ci.refresh_from_db()
    assert april_ci.payment_status == PaymentStatus.OPEN
    assert invoice_statuses_refresh(today=date(2026, 5, 2)) == 1
    april_ci.refresh_from_db()
    assert april_ci.payment_status == PaymentStatus.OVERDUE
    assert invoice_statuses_refresh(today=date(2026, 5, 3)) == 0

    with on("2026-05-10"):
        pay(april_ci, "30.00", "2026-05-10")
        april_ci.refresh_from_db()
        assert april_ci.payment_status == PaymentStatus.OVERDUE
        assert invoice_status(april_ci) == PaymentStatus.OVERDUE
        pay(april_ci, "70.00", "2026-05-10", reference="rest")
    april_ci.refresh_from_db()
    assert april_ci.payment_status == PaymentStatus.PAID


def test_payment_status_void_after_a_full_credit_and_it_stays_void(april_ci):
    with on("2026-04-15"):
        note = credit_note_issue(invoice=april_ci, actor=ACTOR)
    april_ci.refresh_from_db()
    assert april_ci.payment_status == PaymentStatus.VOID
    assert note.payment_status == PaymentStatus.PAID  # a credit note is never owed
    assert invoice_statuses_refresh(today=date(2026, 6, 1)) == 0
    april_ci.refresh_from_db()
    assert april_ci.payment_status == PaymentStatus.VOID


def test_payments_are_positive_and_for_issued_invoices(april_ci):
    for amount in ("0", "-5.00"):
        with pytest.raises(BillingError):
            pay(april_ci, amount, "2026-04-10")
    partner = april_ci.partner
    [draft] = billing_run(through=date(2026, 5, 1), partner_slug=partner.slug, draft=True, actor=ACTOR)
    with pytest.raises(BillingError):
        pay(draft, "10.00", "2026-05-02")
    assert not Payment.objects.exists()
    assert not InvoiceLine.objects.filter(invoice__kind=InvoiceKind.CN).exists()


def test_crediting_every_line_separately_credits_exactly_the_invoice_tax(db):
    """The last chosen-lines credit note takes the tax still uncredited, so the credits never exceed the
    invoice's tax by a rounding cent (balance back to exactly zero)."""
    partner = PartnerFactory(tax_rate=Decimal("10"), billing_emails="")
    for code, price in (("a", "6.15"), ("b", "3.85"), ("c", "0.04")):
        service(partner, code, Method.FLAT, price, start_date=date(2026, 4, 1))
    billing_run(through=date(2026, 4, 1), actor=ACTOR)
    invoice = Invoice.objects.get(partner=partner)
    assert invoice.tax_amount == Decimal("1.00")  # 10% of 10.04
    for line in invoice.lines.exclude(line_type=LineType.TAX).order_by("position"):
        credit_note_issue(invoice=invoice, lines=[line], actor=ACTOR)
    assert partner_balance(partner) == Decimal("0.00")

"""Payment validation, one rule (billing-rules 4.8 and billing-rules decision (ac); issue 18, item 2):
invoicing.services.payment_refusals. The payments import reports its refusals on the row, the admin's payment
forms on their fields, and payment_record refuses with the first: the same reasons everywhere."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from djmoney.money import Money
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.actor import Actor
from billing.core.importing import run_import_text
from conftest import examples
from invoicing.admin.payments import PaymentAddForm
from invoicing.models import Invoice, InvoiceKind, InvoiceState, Payment
from invoicing.services import BillingError, billing_run, payment_record, payment_refusals
from partners.models import Method
from partners.tests.factories import PartnerFactory, ServiceFactory

FAST = settings(max_examples=examples(200), deadline=None, database=None)
TODAY = date(2026, 6, 15)


def invoice(**fields) -> Invoice:
    values = {"number": "CI-0003", "kind": InvoiceKind.CI, "state": InvoiceState.ISSUED, "currency": "USD",
              "issue_date": date(2026, 6, 1)}
    return Invoice(**{**values, **fields})


def refusals(inv=None, amount="10.00", paid_on=date(2026, 6, 5)):
    return payment_refusals(invoice=inv if inv is not None else invoice(),
                            amount=Decimal(amount) if amount is not None else None, paid_on=paid_on, today=TODAY)


def test_a_good_payment_has_no_refusal():
    assert refusals() == []
    assert refusals(amount="100000") == []  # more than owed is accepted (decision (ac))
    assert refusals(paid_on=date(2026, 6, 1)) == refusals(paid_on=TODAY) == []


@pytest.mark.parametrize(("inv", "amount", "paid_on", "expected"), [
    (invoice(state=InvoiceState.DRAFT, number="INV-0100"), "-1", date(2027, 1, 1),
     [("invoice_number", "INV-0100 is a draft: payments are recorded against issued invoices")]),
    (invoice(state=InvoiceState.DRAFT, number=None), "10", TODAY,
     [("invoice_number", "this invoice is a draft: payments are recorded against issued invoices")]),
    (invoice(kind=InvoiceKind.CN, number="CN-0001"), "10", TODAY,
     [("invoice_number", "CN-0001 is a credit note: a credit note is not paid")]),
    (invoice(), "0", TODAY, [("amount", "a payment is a positive amount")]),
    (invoice(), "-5.00", TODAY, [("amount", "a payment is a positive amount")]),
    (invoice(), "10.001", TODAY, [("amount", "at most 2 decimal places (USD)")]),
    (invoice(currency="JPY"), "10.5", TODAY, [("amount", "at most 0 decimal places (JPY)")]),
    (invoice(), "10", date(2026, 6, 16), [("paid_on", "2026-06-16 is in the future")]),
    (invoice(), "10", date(2026, 5, 31), [("paid_on", "2026-05-31 is before the issue date of CI-0003 (2026-06-01)")]),
    (invoice(), "10.001", date(2026, 6, 30), [("amount", "at most 2 decimal places (USD)"),
                                             ("paid_on", "2026-06-30 is in the future")]),
])
def test_each_refusal_names_its_column(inv, amount, paid_on, expected):
    assert refusals(inv, amount, paid_on) == expected


def test_what_is_not_known_is_not_checked():
    """A form field that did not parse, or a form without its invoice yet."""
    assert payment_refusals(invoice=None, amount=Decimal("10.005"), paid_on=None, today=TODAY) == []
    assert payment_refusals(invoice=None, amount=Decimal("-1"), paid_on=date(2026, 7, 1), today=TODAY) == [
        ("amount", "a payment is a positive amount"), ("paid_on", "2026-07-01 is in the future")]


@FAST
@given(cents=st.integers(1, 10**12), currency=st.sampled_from(["USD", "EUR", "JPY", "BHD"]),
       offset=st.integers(-30, 30))
def test_a_payment_in_the_currencys_places_within_the_invoices_life_is_accepted(cents, currency, offset):
    inv = invoice(currency=currency)
    places = {"JPY": 0, "BHD": 3}.get(currency, 2)
    paid_on = inv.issue_date + timedelta(days=offset)
    found = payment_refusals(invoice=inv, amount=Decimal(cents).scaleb(-places), paid_on=paid_on, today=TODAY)
    assert found == [] if inv.issue_date <= paid_on <= TODAY else [c for c, _ in found] == ["paid_on"]
    too_fine = Decimal(cents).scaleb(-places) + Decimal(1).scaleb(-places - 1)
    assert ("amount", f"at most {places} decimal places ({currency})") in payment_refusals(
        invoice=inv, amount=too_fine, paid_on=paid_on, today=TODAY)


# --- the import, the admin's form and payment_record say the same ---------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(("amount", "paid_on", "column"), [
    ("10.001", "2026-06-05", "amount"),
    ("10", "2026-06-16", "paid_on"),
    ("10", "2026-05-31", "paid_on"),
    ("-3", "2026-06-05", "amount"),
])
def test_the_import_the_admin_and_the_service_refuse_alike(amount, paid_on, column):
    partner = PartnerFactory(slug="payer")
    ServiceFactory(partner=partner, code="portal", method=Method.FLAT, unit_price=Money(30, "USD"),
                   start_date=date(2026, 6, 1))
    with time_machine.travel(datetime(2026, 6, 15, 12, tzinfo=UTC), tick=True):
        [ci] = billing_run(through=TODAY, partner_slug="payer", actor=Actor(label="test"))
        [(_, reason)] = payment_refusals(invoice=ci, amount=Decimal(amount), paid_on=date.fromisoformat(paid_on),
                                         today=TODAY)
        if not amount.startswith("-"):  # the import's amount column refuses a negative number itself
            summary = run_import_text("payments", f"invoice_number,amount,paid_on\n{ci.number},{amount},{paid_on}\n")
            assert [str(e) for e in summary.errors] == [f"row 2: {column}: {reason}"]
        form = PaymentAddForm({"invoice": ci.pk, "amount": amount, "paid_on": paid_on, "reference": ""})
        if amount != "10.001":  # the admin's amount field stops a third decimal place before the rule
            assert not form.is_valid() and form.errors[column] == [reason]
        with pytest.raises(BillingError, match=f"^{re.escape(reason)}$"):
            payment_record(invoice=ci, amount=Decimal(amount), paid_on=date.fromisoformat(paid_on),
                           actor=Actor(label="test"))
    assert not Payment.objects.exists()

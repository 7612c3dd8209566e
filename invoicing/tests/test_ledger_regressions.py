"""Ledger bugs found by the property tests of invoicing/tests/test_ledger_invariants.py, each pinned by the
smallest history that showed it. Amounts are worked out by hand in the docstrings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from djmoney.money import Money

from billing.core.actor import Actor
from invoicing.models import Invoice, InvoiceKind
from invoicing.selectors import balance_at, invoice_document
from invoicing.services import billing_run, partner_balance
from partners.models import Method, Partner, Service
from partners.tests.factories import PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

D = Decimal
ACTOR = Actor(label="test")


def on(day: str):
    return time_machine.travel(datetime.fromisoformat(day).replace(hour=6, tzinfo=UTC), tick=True)


def flat(partner: Partner, code: str, price: str, start: str) -> Service:
    return ServiceFactory(partner=partner, code=code, method=Method.FLAT, unit_price=Money(D(price), partner.currency),
                          start_date=date.fromisoformat(start))


def bill(partner: Partner, through: str) -> list[Invoice]:
    with on(through):
        return billing_run(through=date.fromisoformat(through), partner_slug=partner.slug, actor=ACTOR)


def ci(partner: Partner, month: str) -> Invoice:
    return Invoice.objects.issued().get(partner=partner, kind=InvoiceKind.CI, month=month)


def test_a_ci_issued_late_for_an_earlier_month_counts_on_the_next_ci_statement():
    """A month that was never invoiced is invoiced by the next run, whatever its date (billing-rules
    4.9), so its CI can be issued after a later month's. Such a CI was left out of every later
    statement: the next CI neither followed it as the previous CI nor counted it, and the amount due
    fell short of the balance by its total for good.

    No tax. Flat 10.00 from 1 February: the February CI (10.00) is issued on 1 February. A flat 5.00
    service is then entered with a start date of 1 January: the run of 1 March issues the January CI
    (dated 1 January, 5.00; nothing before it, so 5.00 due) and the March CI: previous 10.00 (February)
    + 5.00 for the January CI issued since + 20.00 of charges (15.00 for March, and the new service's
    February as a 5.00 true-up: no month of its life is left unbilled, billing-rules 4.12) = 35.00, the
    balance (10 + 5 + 20)."""
    partner = PartnerFactory(slug="latecomer", tax_rate=D("0"))
    flat(partner, "support", "10.00", "2026-02-01")
    bill(partner, "2026-02-01")
    flat(partner, "backup", "5.00", "2026-01-01")
    bill(partner, "2026-03-01")

    january, march = ci(partner, "2026-01"), ci(partner, "2026-03")
    assert (january.total, january.amount_due) == (D("5.00"), D("5.00"))
    assert (march.previous_balance, march.payments_and_credits, march.other_invoices, march.total,
            march.amount_due) == (D("10.00"), D("0"), D("5.00"), D("20.00"), D("35.00"))
    assert march.amount_due == partner_balance(partner) == balance_at(partner, date(2026, 3, 1))
    document = invoice_document(march)
    assert [inv.number for inv in document["other_invoices_list"]] == [january.number]
    assert document["statement_reconciles"]

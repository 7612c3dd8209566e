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


def test_a_month_before_the_latest_ci_is_billed_on_the_next_ci_never_on_one_dated_back():
    """A month without a CI before a month whose CI is issued is closed (billing-rules 4.9, 4.12): what it lacks
    comes on the next CI. Such a month once got its own CI, dated months back and issued after a later month's,
    and that CI was left out of every later statement (the amount due fell short of the balance for good).

    No tax. Flat 10.00 from 1 February: the February CI (10.00) is issued on 1 February. A flat 5.00 service is
    then entered with a start date of 1 January: the run of 1 March issues no January CI. The March CI carries
    15.00 for March and the new service's January and February, 5.00 each, as its own recurring lines (a flat
    service has no true-up: its months never billed are billed late, once): previous 10.00 (February) + 25.00
    of charges = 35.00, the balance."""
    partner = PartnerFactory(slug="latecomer", tax_rate=D("0"))
    flat(partner, "support", "10.00", "2026-02-01")
    bill(partner, "2026-02-01")
    flat(partner, "backup", "5.00", "2026-01-01")
    bill(partner, "2026-03-01")

    assert not Invoice.objects.filter(partner=partner, kind=InvoiceKind.CI, month="2026-01").exists()
    march = ci(partner, "2026-03")
    assert sorted((line.service.code, line.line_type, line.period, line.amount) for line in march.lines.all()) == [
        ("backup", "recurring", "2026-01", D("5.00")), ("backup", "recurring", "2026-02", D("5.00")),
        ("backup", "recurring", "2026-03", D("5.00")), ("support", "recurring", "2026-03", D("10.00"))]
    assert (march.previous_balance, march.payments_and_credits, march.other_invoices, march.total,
            march.amount_due) == (D("10.00"), D("0"), D("0"), D("25.00"), D("35.00"))
    assert march.amount_due == partner_balance(partner) == balance_at(partner, date(2026, 3, 1))
    assert invoice_document(march)["statement_reconciles"]
    assert bill(partner, "2026-03-01") == []  # billed once

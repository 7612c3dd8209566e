"""invoicing.selectors.balance_at: the ledger's balance at the end of a date, and as known at an instant
(billing-rules 4.6). The property tests of invoicing/tests/test_ledger_invariants.py check it against sums of rows over
random histories; this pins the example of test_ledger's late INV and backdated payment."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from djmoney.money import Money

from billing.core.actor import Actor
from invoicing.models import Invoice, InvoiceKind, OneTimeCharge
from invoicing.selectors import balance_at
from invoicing.services import billing_run, credit_note_issue, partner_balance, payment_record
from partners.models import Method
from partners.tests.factories import PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

D = Decimal
ACTOR = Actor(label="test")


def on(day: str):
    return time_machine.travel(datetime.fromisoformat(day).replace(hour=6, tzinfo=UTC), tick=True)


def test_balance_at_a_date_and_as_known_when_a_ci_was_issued():
    """Tax 10%: flat 100.00 from 1 March. Billed on 1 April: March CI 110.00, April CI 110.00 (due 220.00).
    On 10 April a 50.00 router dated 15 March is billed (INV 55.00, dated 15 March) and 110.00 paid on
    25 March is recorded. By date: 0.00 before March; 110.00 on 1 March; 165.00 from 15 March; 55.00
    from 25 March; 165.00 from 1 April, the balance now. As known when the April CI was issued, the
    balance of 31 March was 110.00 (neither the router nor the payment was recorded yet): plus the April
    CI's 110.00, its amount due of 220.00."""
    partner = PartnerFactory(slug="balances", tax_rate=D("10"))
    ServiceFactory(partner=partner, code="flat", method=Method.FLAT, unit_price=Money(D("100.00"), "USD"),
                   start_date=date(2026, 3, 1))
    with on("2026-04-01"):
        billing_run(through=date(2026, 4, 1), partner_slug=partner.slug, actor=ACTOR)
    march, april = (Invoice.objects.issued().get(partner=partner, kind=InvoiceKind.CI, month=m)
                    for m in ("2026-03", "2026-04"))
    with on("2026-04-10"):
        OneTimeCharge.objects.create(partner=partner, description="Router", quantity=D("1"), unit_price=D("50.00"),
                                     date=date(2026, 3, 15))
        billing_run(through=date(2026, 4, 10), partner_slug=partner.slug, actor=ACTOR)
        payment_record(invoice=march, amount=D("110.00"), paid_on=date(2026, 3, 25), actor=ACTOR)

    assert [balance_at(partner, date.fromisoformat(day)) for day in (
        "2026-02-28", "2026-03-01", "2026-03-14", "2026-03-15", "2026-03-25", "2026-03-31", "2026-04-01",
    )] == [D("0"), D("110.00"), D("110.00"), D("165.00"), D("55.00"), D("55.00"), D("165.00")]
    assert balance_at(partner) == partner_balance(partner) == D("165.00")
    assert balance_at(partner, date(2026, 3, 31), known_at=april.issued_at) == D("110.00")
    assert april.amount_due == D("110.00") + april.total == D("220.00")


def test_balance_at_counts_one_partner_only_and_credit_notes_negative():
    """Two partners billed alike; a whole credit of one's March CI (dated the day it is issued, 5 April)
    brings that partner's balance back by 110.00 from that date, and leaves the other's alone."""
    first, second = PartnerFactory(slug="first", tax_rate=D("10")), PartnerFactory(slug="second", tax_rate=D("10"))
    for partner in (first, second):
        ServiceFactory(partner=partner, code="flat", method=Method.FLAT, unit_price=Money(D("100.00"), "USD"),
                       start_date=date(2026, 3, 1))
    with on("2026-04-01"):
        billing_run(through=date(2026, 4, 1), actor=ACTOR)
    with on("2026-04-05"):
        credit_note_issue(invoice=Invoice.objects.issued().get(partner=first, month="2026-03"), actor=ACTOR)

    assert balance_at(first, date(2026, 4, 4)) == balance_at(second, date(2026, 4, 4)) == D("220.00")
    assert balance_at(first, date(2026, 4, 5)) == D("110.00")
    assert balance_at(second, date(2026, 4, 5)) == D("220.00")

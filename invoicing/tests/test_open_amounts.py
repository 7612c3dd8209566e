"""An invoice's own remainder apart from the account's balance (billing-rules 4.6, 4.7): a CI's "amount due" is
the account as it stood at issue; the admin and the portal show what is still open on each invoice, and the
partner's balance now with what of it is overdue."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.core.actor import Actor
from invoicing.models import Invoice
from invoicing.selectors import open_amount, partner_balance, partner_overdue, with_settlement
from invoicing.services import credit_note_issue, payment_record
from partners.models import Partner, Role
from partners.tests.factories import PartnerUserFactory, UserFactory
from tests.examples import replay

pytestmark = pytest.mark.django_db
ACTOR = Actor(label="test")


@pytest.fixture
def billed(data_dir):
    """BrightDesk: CI-0001 (33.00), CI-0002 (121.00, amount due 154.00: CI-0001 unpaid), CI-0003 (211.13)."""
    replay(data_dir / "seat-days-basic")
    return {invoice.number: invoice for invoice in Invoice.objects.all()}


def test_a_paid_ci_has_nothing_open_though_its_statement_said_more(billed):
    ci1, ci2 = billed["CI-0001"], billed["CI-0002"]
    payment_record(invoice=ci2, amount=Decimal("121.00"), paid_on=date(2026, 5, 20), actor=ACTOR)
    payment_record(invoice=ci1, amount=Decimal("10.00"), paid_on=date(2026, 5, 20), actor=ACTOR)
    ci2.refresh_from_db()
    assert ci2.amount_due == Decimal("154.00")  # the account as it stood when CI-0002 was issued
    assert open_amount(ci2) == Decimal("0.00")
    assert open_amount(billed["CI-0001"]) == Decimal("23.00")
    annotated = {i.number: open_amount(i) for i in with_settlement(Invoice.objects.all())}
    assert annotated["CI-0001"] == Decimal("23.00") and annotated["CI-0002"] == Decimal("0.00")
    partner = Partner.objects.get()
    assert partner_balance(partner) == Decimal("23.00") + Decimal("211.13")


def test_a_credited_invoice_and_a_credit_note_have_nothing_open(billed):
    note = credit_note_issue(invoice=billed["CI-0001"], lines=None, actor=ACTOR, reason="test")
    assert open_amount(Invoice.objects.get(number="CI-0001")) == Decimal("0.00")
    assert open_amount(note) is None


def test_overdue_is_the_open_part_of_invoices_past_due(billed):
    partner = Partner.objects.get()
    overdue = Invoice.objects.filter(payment_status="overdue")
    assert partner_overdue(partner) == sum((i.total for i in overdue), Decimal(0))  # nothing paid yet


def test_the_admin_lists_what_is_open_on_each_invoice_and_the_partner_s_balance(billed, admin_client):
    payment_record(invoice=billed["CI-0002"], amount=Decimal("121.00"), paid_on=date(2026, 5, 20), actor=ACTOR)
    page = admin_client.get(reverse("admin:invoicing_invoice_changelist")).content.decode()
    assert "open on it" in page.lower() and "154.00" not in page  # the statement's figure is not a column any more
    partner = Partner.objects.get()
    page = admin_client.get(reverse("admin:partners_partner_change", args=[partner.pk])).content.decode()
    assert "Account now" in page and "owed now" in page and "244.13" in page and "overdue" in page


def test_the_portal_shows_the_balance_and_what_is_open_on_each_invoice(billed, client):
    partner = Partner.objects.get()
    user = UserFactory(username="bd-billing")
    PartnerUserFactory(user=user, partner=partner, role=Role.BILLING)
    client.force_login(user)
    payment_record(invoice=billed["CI-0002"], amount=Decimal("121.00"), paid_on=date(2026, 5, 20), actor=ACTOR)
    page = client.get(reverse("portal:billing")).content.decode()
    assert "owed now" in page and "244.13" in page
    assert "Open on it" in page and "Amount due" not in page


def test_a_credit_note_reads_as_a_credit_not_as_paid(billed, admin_client, client):
    note = credit_note_issue(invoice=billed["CI-0001"], lines=None, actor=ACTOR, reason="test")
    page = admin_client.get(reverse("admin:invoicing_invoice_change", args=[note.pk])).content.decode()
    assert ">credit</span>" in page and ">paid</span>" not in page
    user = UserFactory(username="bd-billing")
    PartnerUserFactory(user=user, partner=Partner.objects.get(), role=Role.BILLING)
    client.force_login(user)
    page = client.get(reverse("portal:billing")).content.decode()
    row = page[page.index(note.number):][:900]
    assert "Credit</span>" in row and "Paid</span>" not in row


def test_the_invoice_lines_list_shows_quantities_prices_and_tax_rates_as_printed(billed, admin_client):
    page = admin_client.get(reverse("admin:invoicing_invoiceline_changelist")).content.decode()
    assert "0000000000" not in page  # quantities to 4 places, not the stored 10
    assert "10% tax" in page  # a tax line's rate, not a unit price of 10.0000

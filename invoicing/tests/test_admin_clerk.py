"""What a new billing clerk meets in the invoicing admin (issue 19, item 8): an invoice's payments said as they are
("credited by CN-0001, nothing paid yet", never "partially paid: 0.00 paid in 0 payment(s)"), tables that say when
they are empty, line types and labels in words, the invoice lines list by customer, and the links from a partner's
page to its invoices, unpaid invoices, payments and lines and from a customer's page to its lines.

Data: tests/data/seat-days-basic replayed (brightdesk, USD: CI-0001 33.00, CI-0002 121.00, CI-0003 211.13)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from billing.core.actor import Actor
from invoicing.models import CompanyProfile, Invoice, InvoiceLine, LineType, PaymentStatus
from invoicing.services import billing_run, credit_note_issue, payment_record
from partners.models import Customer, Method, Partner
from partners.tests.factories import ServiceFactory, UserFactory
from tests.examples import replay

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="test_admin_clerk")


def text_of(html: str) -> str:
    return re.sub(r"\s+([,;.])", r"\1", re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))).strip()


def payment_row(page: str) -> str:
    """The "Payments:" row of an invoice's page, as text."""
    row = re.search(r'<div class="form-row field-payment_summary">(.*?)</div>\s*</div>', page, re.S).group(1)
    return text_of(row)


def result_ids(response) -> set[int]:
    return {obj.pk for obj in response.context["cl"].result_list}


@pytest.fixture
def clerk(client):
    client.force_login(UserFactory(username="clerk", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def billed(data_dir):
    replay(data_dir / "seat-days-basic")
    return {number: Invoice.objects.get(number=number) for number in ("CI-0001", "CI-0002", "CI-0003")}


def invoice_page(clerk, invoice) -> str:
    return clerk.get(reverse("admin:invoicing_invoice_change", args=[invoice.pk])).content.decode()


# --- an invoice's payments ------------------------------------------------------------------------
def test_an_invoice_credited_in_part_says_what_the_credit_took_and_that_nothing_was_paid(clerk, billed):
    invoice = billed["CI-0002"]
    note = credit_note_issue(invoice=invoice, lines=[invoice.lines.get(service__code="portal")], actor=ACTOR,
                             reason="portal waived")
    invoice.refresh_from_db()
    assert invoice.payment_status in (PaymentStatus.PARTIALLY_PAID, PaymentStatus.OVERDUE)
    row = payment_row(invoice_page(clerk, invoice))
    assert f"{-note.total:.2f} USD credited by {note.number}, nothing paid yet;" in row, row
    assert "0 payment" not in row and "0.00 USD paid" not in row and "(s)" not in row


@pytest.mark.parametrize(("amounts", "said"), [
    ([], "nothing paid or credited yet; 211.13 USD open on it"),
    (["10.00"], "10.00 USD paid in 1 payment; 201.13 USD open on it"),
    (["10.00", "5.50"], "15.50 USD paid in 2 payments; 195.63 USD open on it"),
])
def test_the_payments_are_counted_in_words(clerk, billed, amounts, said):
    invoice = billed["CI-0003"]
    for amount in amounts:
        payment_record(invoice=invoice, amount=Decimal(amount), paid_on=date(2026, 6, 5), actor=ACTOR)
    assert payment_row(invoice_page(clerk, invoice)).endswith(said)


def test_an_invoice_without_payments_says_so_under_its_payments_table(clerk, billed):
    page = invoice_page(clerk, billed["CI-0001"])
    assert "No payment recorded against this invoice yet." in page
    payment_record(invoice=billed["CI-0001"], amount=Decimal("33.00"), paid_on=date(2026, 4, 20), actor=ACTOR)
    assert "No payment recorded against this invoice yet." not in invoice_page(clerk, billed["CI-0001"])


def test_the_payment_page_says_when_nothing_was_paid_yet(clerk, billed):
    url = reverse("admin:invoicing_invoice_payment", args=[billed["CI-0001"].pk])
    assert "No payment recorded against it yet." in clerk.get(url).content.decode()


def test_the_credit_lines_page_shows_line_types_in_words(clerk, billed):
    page = clerk.get(reverse("admin:invoicing_invoice_credit_lines", args=[billed["CI-0002"].pk])).content.decode()
    cells = [text_of(cell) for cell in re.findall(r"<td>(.*?)</td>", page, re.S)]
    assert "Recurring" in cells and "Usage" in cells
    assert "recurring" not in cells and "usage" not in cells


# --- the invoice lines list ---------------------------------------------------------------------
@pytest.fixture
def customer_lines(billed):
    """A customer-level service of a long name at brightdesk's Oakridge, billed from June."""
    partner = Partner.objects.get(slug="brightdesk")
    oakridge = Customer.objects.get(partner=partner, slug="oakridge")
    ServiceFactory(partner=partner, customer=oakridge, code="oak-backup", method=Method.FLAT,
                   name="Microsoft 365 backup with unlimited retention (per user)", start_date=date(2026, 6, 1),
                   unit_price=Money("90.00", "USD"))
    billing_run(through=date(2026, 7, 1), actor=ACTOR)
    assert InvoiceLine.objects.filter(customer=oakridge).exists()
    return oakridge


def test_the_lines_list_shows_the_customer_by_name_and_the_service_over_its_code(clerk, customer_lines):
    page = clerk.get(reverse("admin:invoicing_invoiceline_changelist")).content.decode()
    customers = [text_of(c) for c in re.findall(r'<td class="field-customer_shown">(.*?)</td>', page, re.S)]
    assert "Oakridge Dental" in customers and "Oakridge Dental (brightdesk)" not in customers
    assert re.search(r"Microsoft 365 backup with unlimited retention \(per user\)\s*<span class=\"quiet code\">"
                     r"oak-backup</span>", page)


def test_a_customers_page_links_to_its_invoice_lines(clerk, customer_lines):
    oakridge = customer_lines
    page = clerk.get(reverse("admin:partners_customer_change", args=[oakridge.pk])).content.decode()
    link = re.search(r'<a href="([^"]+)">Invoice lines</a>', page).group(1).replace("&amp;", "&")
    response = clerk.get(link)
    assert response.status_code == 200  # (a lookup the list refuses redirects to ?e=1)
    ids = result_ids(response)
    assert ids == set(InvoiceLine.objects.filter(customer=oakridge).values_list("pk", flat=True)) and ids
    assert "Oakridge Dental (brightdesk)" in response.content.decode()  # the customer filter, chosen


def test_a_partners_page_links_to_its_invoices_unpaid_invoices_payments_and_lines(clerk, billed):
    partner = Partner.objects.get(slug="brightdesk")
    payment_record(invoice=billed["CI-0001"], amount=Decimal("33.00"), paid_on=date(2026, 4, 20), actor=ACTOR)
    page = clerk.get(reverse("admin:partners_partner_change", args=[partner.pk])).content.decode()
    links = {text: href.replace("&amp;", "&") for href, text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', page)}

    unpaid = clerk.get(links["unpaid invoices"])
    assert unpaid.status_code == 200
    assert result_ids(unpaid) == {billed["CI-0002"].pk, billed["CI-0003"].pk}  # CI-0001 is paid
    assert result_ids(clerk.get(links["all its invoices"])) == {i.pk for i in billed.values()}
    assert result_ids(clerk.get(links["Invoices"])) == {i.pk for i in billed.values()}
    payments = clerk.get(links["payments"])
    assert [p.invoice.number for p in payments.context["cl"].result_list] == ["CI-0001"]
    lines = clerk.get(links["Invoice lines"])
    assert result_ids(lines) == set(InvoiceLine.objects.filter(invoice__partner=partner).values_list("pk", flat=True))


def test_the_lines_list_is_filtered_by_partner_and_customer(clerk, customer_lines):
    page = clerk.get(reverse("admin:invoicing_invoiceline_changelist")).content.decode()
    assert "By customer" in page  # (and by partner, once there are two partners to choose from)
    ids = result_ids(clerk.get(reverse("admin:invoicing_invoiceline_changelist"),
                                {"customer": customer_lines.pk}))
    assert ids and all(InvoiceLine.objects.get(pk=pk).customer_id == customer_lines.pk for pk in ids)
    assert not InvoiceLine.objects.filter(customer=customer_lines, line_type=LineType.TAX).exists()


# --- labels ---------------------------------------------------------------------------------------
def test_the_company_profile_says_tax_id(clerk, billed):
    profile = CompanyProfile.objects.order_by("pk").first() or CompanyProfile.objects.create(legal_name="Us Ltd")
    page = clerk.get(reverse("admin:invoicing_companyprofile_change", args=[profile.pk])).content.decode()
    assert re.search(r"<label[^>]*>Tax ID:</label>", page)
    assert "Legal name, address and tax ID are required" in page

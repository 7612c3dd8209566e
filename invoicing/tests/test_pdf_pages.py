"""How a CI's pages break (issue 19, item 8): the charges begin on page 1 under the summary when they fit there,
not on page 2 under a half-empty page 1, and the column headings repeat on every page the charges run to. And the
billed-to block says "Tax ID", not "Tax id"."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from decimal import Decimal

import pytest
from djmoney.money import Money

try:
    import weasyprint  # noqa: F401  (needs Pango; a machine without it cannot render PDFs)
except (ImportError, OSError) as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"WeasyPrint cannot load here ({exc}); install Pango to render PDFs", allow_module_level=True)

from billing.core.actor import Actor
from invoicing.models import Invoice, InvoiceKind
from invoicing.pdf import render_invoice_html, render_invoice_pdf
from invoicing.services import billing_run
from partners.models import Method
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (apt-get install poppler-utils)"),
]

ADDRESS_LINES = range(0, 13, 2)  # moves where the summary ends on page 1 (a few millimetres a step)


def page_text(path, page: int) -> str:
    return subprocess.run(["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(path), "-"],
                          capture_output=True, text=True, check=True).stdout


def pages(path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(info.split("Pages:")[1].split()[0])


def partner_with_one_organization(slug: str, address_lines: int, services: int):
    partner = PartnerFactory(slug=slug, name=f"{slug.title()} MSP",
                             billing_address="\n".join(f"Address line {n}" for n in range(address_lines)))
    customer = CustomerFactory(partner=partner, slug=f"{slug}-org", name="Harbourside Hotel")
    for n in range(services):
        ServiceFactory(partner=partner, customer=customer, code=f"{slug}-s{n:02d}", name=f"Managed service {n:02d}",
                       method=Method.FLAT, unit_price=Money(Decimal("10.00"), "USD"), start_date=date(2026, 4, 1))
    return partner


def test_the_charges_begin_on_page_1_when_the_summary_leaves_room(tmp_path):
    """One organization of five lines: its lines were kept together, and the totals with its last line, so the
    whole table and its heading went to page 2 whenever it did not fit entire, leaving a third of page 1 empty."""
    for lines in ADDRESS_LINES:
        partner_with_one_organization(f"p{lines:02d}", lines, services=5)
    billing_run(through=date(2026, 4, 1), actor=Actor(label="test_pdf_pages"))
    for lines in ADDRESS_LINES:
        invoice = Invoice.objects.get(kind=InvoiceKind.CI, partner__slug=f"p{lines:02d}")
        path = tmp_path / f"{invoice.number}.pdf"
        path.write_bytes(render_invoice_pdf(invoice))
        first = page_text(path, 1)
        assert "Managed service 00" in first, (lines, first[-600:])


def test_a_long_organization_breaks_across_pages_with_the_column_headings_repeated(tmp_path):
    partner_with_one_organization("long", 0, services=60)
    billing_run(through=date(2026, 4, 1), actor=Actor(label="test_pdf_pages"))
    invoice = Invoice.objects.get(kind=InvoiceKind.CI)
    path = tmp_path / "long.pdf"
    path.write_bytes(render_invoice_pdf(invoice))
    assert pages(path) >= 2
    assert "Managed service 00" in page_text(path, 1)
    for page in range(2, pages(path) + 1):
        text = page_text(path, page)
        if "Managed service" in text:
            assert "DESCRIPTION" in text and "AMOUNT (USD)" in text, (page, text[:400])


def test_the_billed_to_block_says_tax_id():
    partner = partner_with_one_organization("taxed", 2, services=1)
    partner.tax_id = "GB 123 4567 89"
    partner.save()
    billing_run(through=date(2026, 4, 1), actor=Actor(label="test_pdf_pages"))
    html = render_invoice_html(Invoice.objects.get(kind=InvoiceKind.CI))
    assert "Tax ID GB 123 4567 89" in html and "Tax id" not in html

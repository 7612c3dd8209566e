"""Who issues an invoice and to whom (billing-rules 4.13): the company profile's legal details and the partner's
billing address, tax id and purchase order are printed on every invoice, kept with it when it is issued, and,
where the production settings require them, no invoice is issued without them."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

try:
    import weasyprint  # noqa: F401  (needs Pango)
except (ImportError, OSError) as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"WeasyPrint cannot load here ({exc})", allow_module_level=True)

from billing.core.actor import Actor
from conftest import run_cli
from invoicing.models import CompanyProfile, Invoice
from invoicing.pdf import render_invoice_pdf
from invoicing.services.ledger import credit_note_issue
from partners.models import Partner
from tests.examples import replay

pytestmark = pytest.mark.django_db

PROFILE = {"legal_name": "Northbridge Billing Ltd", "address": "14 Harbour Street\nLeith EH6 6QA\nUnited Kingdom",
           "tax_id": "GB 123 4567 89", "registration": "Company no. SC712345", "email": "billing@northbridge.example",
           "bank_details": "Bank of Leith · IBAN GB33 BUKB 2020 1555 5555 55 · BIC BUKBGB22",
           "remittance": "Quote the invoice number as the payment reference.",
           "invoice_footer": "Northbridge Billing Ltd is registered in Scotland."}


def pdf_text(invoice: Invoice) -> str:
    """The invoice's PDF read back as text, as `pdftotext` gives it (pypdf where poppler is missing)."""
    data = render_invoice_pdf(invoice)
    if shutil.which("pdftotext"):
        out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True)
        return out.stdout.decode()
    import io  # noqa: PLC0415 (the fallback only)

    import pypdf  # noqa: PLC0415

    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def tidewater(data_dir):
    """The per-host example's partner with its legal details, the company profile filled in, then billed:
    CI-0001, INV-0001 (a first month) and CI-0002."""
    folder = data_dir / "per-host-and-licenses"
    replay(folder, upto_billing=False)
    CompanyProfile.objects.create(**PROFILE)
    partner = Partner.objects.get()
    partner.billing_address, partner.tax_id, partner.purchase_order = "Kaiserstraße 12\n60311 Frankfurt", \
        "DE 811 234 567", "PO-2026-044"
    partner.save()
    assert run_cli("run_billing", "--through", "2026-04-01").status == 0
    return partner


@pytest.mark.parametrize("number", ["CI-0001", "INV-0001"])
def test_the_pdf_names_the_issuer_and_the_recipient_with_their_legal_details(tidewater, number):
    text = pdf_text(Invoice.objects.get(number=number))
    for value in ("Northbridge Billing Ltd", "14 Harbour Street", "Leith EH6 6QA", "GB 123 4567 89",
                  "Company no. SC712345", "IBAN GB33 BUKB", "Quote the invoice number",
                  tidewater.name, "Kaiserstraße 12", "60311 Frankfurt", "DE 811 234 567", "PO-2026-044"):
        assert value in text, (number, value)
    assert "MSP Billing" not in text


def test_a_credit_note_is_not_paid_so_it_prints_no_payment_details(tidewater):
    """Payment details belong on what is paid; a credit note keeps the issuer's details and footer only. The
    credit shows on the CI it corrects under payments and credits, not as money received."""
    invoice = Invoice.objects.get(number="CI-0001")
    note = credit_note_issue(invoice=invoice, actor=Actor(label="test"), reason="goodwill")
    text = pdf_text(note)
    assert "Northbridge Billing Ltd" in text and "GB 123 4567 89" in text and "registered in Scotland" in text
    assert "How to pay" not in text.title() and "IBAN" not in text
    assert "How To Pay" in pdf_text(invoice).title()
    ci_text = pdf_text(invoice)
    assert "Received" not in ci_text and "Payments and credits" in ci_text


def test_an_issued_invoice_keeps_the_details_it_was_issued_with(tidewater):
    invoice = Invoice.objects.get(number="CI-0001")
    assert invoice.issuer["legal_name"] == "Northbridge Billing Ltd"
    assert invoice.recipient["tax_id"] == "DE 811 234 567"
    CompanyProfile.objects.update(legal_name="Renamed Holdings plc", tax_id="GB 999")
    tidewater.billing_address = "Neue Mainzer Straße 1"
    tidewater.save()
    text = pdf_text(Invoice.objects.get(number="CI-0001"))
    assert "Northbridge Billing Ltd" in text and "Kaiserstraße 12" in text
    assert "Renamed Holdings" not in text and "Neue Mainzer" not in text


def test_without_the_company_s_legal_details_nothing_is_issued(data_dir, settings):
    settings.INVOICE_LEGAL_DETAILS_REQUIRED = True
    replay(data_dir / "per-host-and-licenses", upto_billing=False)
    Partner.objects.update(billing_address="Kaiserstraße 12\n60311 Frankfurt")
    result = run_cli("run_billing", "--through", "2026-04-01")
    assert result.status == 1
    assert "the company profile has no legal name, address, tax ID" in result.err
    assert not Invoice.objects.exists()
    CompanyProfile.objects.create(**PROFILE)
    assert run_cli("run_billing", "--through", "2026-04-01").status == 0
    assert Invoice.objects.filter(number="CI-0001").exists()


def test_a_partner_without_a_billing_address_is_named_and_not_billed(data_dir, settings):
    settings.INVOICE_LEGAL_DETAILS_REQUIRED = True
    replay(data_dir / "per-host-and-licenses", upto_billing=False)
    CompanyProfile.objects.create(**PROFILE)
    result = run_cli("run_billing", "--through", "2026-04-01")
    assert result.status == 1
    slug = Partner.objects.get().slug
    assert f"partner {slug!r} has no billing address" in result.err
    assert not Invoice.objects.exists()


def test_drafts_need_no_legal_details(data_dir, settings):
    settings.INVOICE_LEGAL_DETAILS_REQUIRED = True
    replay(data_dir / "per-host-and-licenses", upto_billing=False)
    assert run_cli("run_billing", "--through", "2026-04-01", "--draft").status == 0
    draft = Invoice.objects.drafts().order_by("issue_date").first()
    assert "Company profile not filled in" in pdf_text(draft)


def test_the_production_settings_require_the_legal_details():
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.INVOICE_LEGAL_DETAILS_REQUIRED)")
    env = {"DJANGO_SETTINGS_MODULE": "billing.settings.production", "SECRET_KEY": "x" * 60,
           "ALLOWED_HOSTS": "billing.example.com", "CACHE_URL": "locmemcache://", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=".")
    assert out.stdout.strip() == "True", out.stderr[-2000:]

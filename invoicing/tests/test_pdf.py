"""Invoice PDFs (billing-rules 4.6, 8.4): real invoices from the worked examples, rendered by
WeasyPrint and read back with pypdf, so what is asserted is what a partner sees."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from openpyxl import load_workbook

try:
    import weasyprint  # noqa: F401  (needs Pango; a machine without it cannot render PDFs)
except (ImportError, OSError) as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"WeasyPrint cannot load here ({exc}); install Pango to render PDFs", allow_module_level=True)
pypdf = pytest.importorskip("pypdf", reason="pypdf (requirements-dev.txt) reads the PDFs' text")

from billing.core.actor import Actor  # noqa: E402
from conftest import run_cli  # noqa: E402
from invoicing.models import Invoice, InvoiceKind  # noqa: E402
from invoicing.pdf import render_invoice_pdf  # noqa: E402
from invoicing.selectors import invoice_document  # noqa: E402
from invoicing.services import credit_note_issue, invoice_email_send, payment_record  # noqa: E402
from invoicing.templatetags.invoice_format import (  # noqa: E402
    format_money,
    format_quantity,
    format_unit_price,
)
from tests.examples import replay  # noqa: E402

CI_SECTIONS = ["Consolidated invoice summary", "Amount due summary", "Credits and payments", "Charges"]
ACTOR = Actor(label="test_pdf")


def pdf_text(data: bytes) -> str:
    """The text of every page, whitespace collapsed to single spaces."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def pdf_pages(data: bytes) -> int:
    return len(pypdf.PdfReader(io.BytesIO(data)).pages)


def shown(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def render(number: str) -> tuple[Invoice, bytes, str]:
    invoice = Invoice.objects.get(number=number)
    data = render_invoice_pdf(invoice)
    assert data.startswith(b"%PDF")
    return invoice, data, pdf_text(data)


@pytest.fixture
def seat_days(db, data_dir):
    """BrightDesk (USD, tax 10%): CI-0001 (Apr), CI-0002 (May: portal + April seats), CI-0003 (June)."""
    replay(data_dir / "seat-days-basic")


@pytest.fixture
def per_host(db, data_dir):
    """Tidewater (EUR, tax 20%): CI-0001, INV-0001 (first month), CI-0002 with a customer's child."""
    replay(data_dir / "per-host-and-licenses")


# --- formatting -----------------------------------------------------------------------------------
def test_money_is_formatted_with_separators_places_and_symbol_or_code():
    assert format_money(Decimal("1234.5"), "USD") == "USD 1,234.50"
    assert format_money(Decimal("1234.50"), "EUR") == "€1,234.50"
    assert format_money(Decimal("-5"), "GBP") == "-£5.00"
    assert format_money(Decimal("-0.00"), "EUR") == "€0.00"
    assert format_money(Decimal("1234567"), "JPY") == "JPY 1,234,567"
    assert format_money(None, "USD") == ""
    assert format_quantity(Decimal("1.6774193548")) == "1.6774"
    assert format_unit_price(Decimal("15.0000"), "EUR") == "15.00"
    assert format_unit_price(Decimal("0.0125"), "USD") == "0.0125"
    with pytest.raises(TypeError):
        format_money(12.5, "USD")
    with pytest.raises(ValueError):  # an unrounded amount is a bug to surface, not to round away
        format_money(Decimal("1.005"), "USD")


# --- the consolidated invoice ---------------------------------------------------------------------
def test_ci_shows_every_section_in_order_with_its_figures(seat_days):
    invoice, _, text = render("CI-0002")
    assert invoice.kind == InvoiceKind.CI
    positions = [text.find(title.upper()) for title in CI_SECTIONS]  # headings are set in capitals
    assert -1 not in positions, positions
    assert positions == sorted(positions), "sections out of order"

    assert "CI-0002" in text and "BrightDesk MSP" in text and "Company profile not filled in" in text
    assert "Invoice month May 2026" in text
    for child in invoice.children.all():
        assert shown(child.due_date) in text
    assert f"Due date {shown(invoice.due_date)}" in text  # the earliest child due date
    # the statement: previous balance (CI-0001), no payments, new charges, the tax, the amount due
    assert invoice.amount_due == Decimal("154.00")
    for figure in ("USD 33.00", "USD 0.00", "USD 110.00", "USD 11.00", "USD 121.00", "USD 154.00"):
        assert figure in text, figure
    assert re.search(r"Tax 10% 11\.00", text)
    assert "Helpdesk seats 2026-04: 93 seat-days" in text and "4.0000 20.00 80.00" in text
    assert "Partner services" in text
    assert "Page 1 of" in text
    assert invoice_document(invoice)["statement_reconciles"]


def test_ci_puts_partner_services_first_and_dates_each_child(per_host):
    invoice, _, text = render("CI-0002")
    children = list(invoice.children.select_related("customer"))
    assert len(children) == 2
    assert invoice.due_date == min(child.due_date for child in children) == date(2026, 4, 15)
    for child in children:
        assert shown(child.due_date) in text
    # each organization's charges open with its name, due date, terms and subtotal
    charges = text[text.casefold().rindex("charges description"):]
    assert charges.index("Partner services Due 1 May 2026 · Net 30 days 87.00") < charges.index(
        "Harbourside Hotel Due 15 Apr 2026 · Net 14 days 150.00")
    # 54.00 brought forward + INV-0001 (121.97) + 237.00 + 47.40 tax
    assert "€54.00" in text and "€121.97" in text and "INV-0001" in text
    assert re.search(r"Tax 20% 47\.40", text)
    assert "Amount due by 15 Apr 2026 €460.37" in text


def test_ci_lists_the_payments_and_credit_notes_behind_its_statement(db, data_dir):
    """A payment dated before CI-0002 but recorded after it was issued comes on CI-0003 (services'
    statement rule); the listed items add up to the stored figure, to the cent."""
    replay(data_dir / "seat-days-basic", upto_billing=False)
    assert run_cli("run_billing", "--through", "2026-05-01").status == 0
    payment_record(invoice=Invoice.objects.get(number="CI-0001"), amount=Decimal("33.00"),
                   paid_on=date(2026, 4, 15), reference="wire 7731", actor=ACTOR)
    with time_machine.travel(datetime(2026, 5, 25, 12, tzinfo=UTC), tick=False):
        note = credit_note_issue(invoice=Invoice.objects.get(number="CI-0002"), actor=ACTOR)
    assert run_cli("run_billing", "--through", "2026-06-01").status == 0

    invoice, _, text = render("CI-0003")
    assert invoice.payments_and_credits == Decimal("154.00")
    assert "Payment for CI-0001 Recorded after CI-0002 was issued wire 7731 -33.00" in text
    assert f"Credit note {note.number} for CI-0002" in text and "-121.00" in text
    assert "Payments and credits USD -154.00" in text
    assert "USD 211.13" in text  # 154.00 - 154.00 + 191.94 + 19.19
    assert invoice_document(invoice)["statement_reconciles"]


# --- individual invoices and credit notes ---------------------------------------------------------
def test_inv_shows_bill_to_dates_lines_tax_and_total(per_host):
    invoice, data, text = render("INV-0001")
    assert invoice.kind == InvoiceKind.INV
    assert pdf_pages(data) == 1
    assert "INVOICE INV-0001" in text and "Tidewater IT" in text and "Harbourside Hotel" in text
    assert "Issue date 10 Mar 2026" in text and "Due date 24 Mar 2026" in text
    assert "VM hosting first month from 2026-03-10 Mar 2026 10.0000 15.00 101.64" in text
    assert re.search(r"Tax 20% 20\.33", text)
    assert "Total €121.97" in text
    assert "consolidated invoice summary" not in text.casefold()


def test_credit_note_is_titled_and_references_the_credited_invoice(seat_days):
    note = credit_note_issue(invoice=Invoice.objects.get(number="CI-0002"), actor=ACTOR, reason="test")
    _, _, text = render(note.number)
    assert "CREDIT NOTE" in text and note.number in text
    assert "Credits invoice CI-0002" in text
    assert "Credit for CI-0002: Client portal 2026-05" in text and "-30.00" in text
    assert re.search(r"Tax 10% -11\.00", text)
    assert "Total credit USD -121.00" in text
    assert "reduces your account balance by USD 121.00" in text


# --- the command ----------------------------------------------------------------------------------
def test_render_invoice_writes_the_pdf(seat_days, cli, tmp_path):
    target = tmp_path / "ci.pdf"
    result = cli("render_invoice", "CI-0002", "--output", str(target))
    assert result.status == 0, result.err
    assert target.read_bytes().startswith(b"%PDF")
    assert "CI-0002" in pdf_text(target.read_bytes())


def test_render_invoice_unknown_number_fails_with_one_line(db, cli, tmp_path):
    target = tmp_path / "none.pdf"
    result = cli("render_invoice", "CI-9999", "--output", str(target))
    assert result.status == 1
    assert result.err.strip().splitlines() == ["CommandError: unknown invoice number 'CI-9999'"]
    assert not target.exists()


def test_a_ci_over_the_detail_limit_shows_subtotals_and_its_email_carries_the_lines(per_host, settings, mailoutbox):
    """A CI of hundreds of organizations would take minutes to render line by line (docs/performance.md):
    over INVOICE_PDF_DETAIL_MAX_LINES its PDF shows each organization's subtotal, the partner's own
    services in full, and every line travels as a spreadsheet with the email."""
    invoice = Invoice.objects.get(number="CI-0002")
    customer_lines = [line for line in invoice_document(invoice)["charges"] if line.child.customer_id]
    assert customer_lines
    _, _, full = render("CI-0002")
    assert all(line.description in full for line in customer_lines)
    settings.INVOICE_PDF_DETAIL_MAX_LINES = 2
    _, _, text = render("CI-0002")
    assert "charge lines: each organization's charges are its child invoice's subtotal above" in text
    assert not any(line.description in text for line in customer_lines)
    assert "Harbourside Hotel 15 Apr 2026 Net 14 days 150.00" in text  # its child invoice's subtotal stays
    Invoice.objects.filter(pk=invoice.pk).update(emailed_at=None)
    invoice.partner.billing_emails = "billing@tidewater.example"
    invoice.partner.save()
    invoice_email_send(invoice=invoice)
    (name, _, _), (sheet_name, sheet, _) = mailoutbox[-1].attachments
    assert (name, sheet_name) == ("CI-0002.pdf", "CI-0002-lines.xlsx")
    rows = list(load_workbook(io.BytesIO(sheet)).active.iter_rows(values_only=True))
    assert len(rows) - 1 == invoice.lines.count()

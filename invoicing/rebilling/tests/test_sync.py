"""The sync out (issue 20 item 6): what a partner charges its customers per month, as rows (invoicing.rebilling.sync)
and as each tool's import CSV (invoicing.rebilling.sync_formats).

- rows from the issued customer invoices of the month: the seed's 101.64, 150.00 and 375.00, tax lines left out;
- a credit note is its own negative row, in the month of the invoice it corrects;
- rebilling off: the rows priced from our documents equal the lines the run writes for the same world;
- each format's exact header and one row's cells; export_report's customer-charges reports.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from billing.core.actor import Actor
from billing.core.money import quantize_money
from billing.core.periods import Period
from invoicing.choices import InvoiceKind, InvoiceState, LineType
from invoicing.models import Invoice
from invoicing.rebilling.invoices import customer_credit_note_issue, customer_invoices_bill
from invoicing.rebilling.models import CustomerBillingProfile, CustomerInvoice, RebillingProfile
from invoicing.rebilling.sync import ChargeRow, customer_charge_rows
from invoicing.rebilling.sync_formats import (
    GENERIC,
    QUICKBOOKS,
    XERO,
    SyncFormatError,
    quantity_and_rate,
    sync_format,
    write_charges_csv,
)
from partners.models import Customer, Partner
from tests.examples import export, read_rows

pytestmark = pytest.mark.django_db

D = Decimal
DATA = Path(__file__).parent / "data" / "company-a"  # the seed's example (test_customer_invoices)
ACTOR = Actor(label="test")
MARCH, APRIL, MAY = Period(2026, 3), Period(2026, 4), Period(2026, 5)
COMPARED = ("customer", "billing_name", "billing_emails", "item_code", "line_type", "period", "description",
            "quantity", "unit_price", "amount", "currency", "kind", "issue_date", "due_date", "tax_rate", "taxable")


def billed(cli, through: str) -> None:
    with time_machine.travel(datetime.fromisoformat(through).replace(hour=6, tzinfo=UTC), tick=False):
        result = cli("run_billing", "--through", through)
    assert result.status == 0, result.err


def imported(cli, kind: str, path) -> None:
    result = cli("import_csv", kind, str(path))
    assert result.status == 0, result.err


@pytest.fixture
def lakeside(cli, csv_file):
    """The seed's Company A (10 hosts from 10 March at 15.00, 25 from 25 April; our price 10.00) with a billing
    profile taxed at 8.25%, and Company B's support plan resold at 35.00 (its billing profile untaxed)."""
    with time_machine.travel(datetime(2026, 3, 1, 6, tzinfo=UTC), tick=False):
        for kind, name in [("partners", "partners.csv"), ("customers", "customers.csv"),
                           ("services", "services.csv"), ("resale-prices", "resale-prices.csv")]:
            imported(cli, kind, DATA / name)
        imported(cli, "resale-prices", csv_file("support.csv", "partner,customer,service,unit_price,effective_from\n"
                                                               "lakeside,company-b,support,35.00,2026-03-01\n"))
    partner = Partner.objects.get(slug="lakeside")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="LAKE", payment_terms_days=30)
    CustomerBillingProfile.objects.create(
        customer=Customer.objects.get(slug="company-a"), legal_name="Company A Inc.",
        address="9 Hill Street\nSt Paul MN", purchase_order="PO-77", tax_rate=D("8.25"),
        billing_emails="ap@company-a.example, cfo@company-a.example")
    return partner


def the_seed_billed(cli) -> None:
    billed(cli, "2026-03-10")
    billed(cli, "2026-04-01")
    with time_machine.travel(datetime(2026, 4, 20, 6, tzinfo=UTC), tick=False):
        imported(cli, "customers", DATA / "host-limit-april.csv")  # 25 hosts from 25 April
    billed(cli, "2026-05-01")


def cells(row: ChargeRow) -> tuple:
    return tuple(getattr(row, name) for name in COMPARED)


def csv_lines(fmt, rows, **options) -> list[str]:
    stream = io.StringIO()
    write_charges_csv(fmt, rows, stream, options)
    return stream.getvalue().splitlines()


# --- the rows ----------------------------------------------------------------------------------------------------
def test_rows_are_the_issued_customer_invoices_lines_of_the_month_without_tax(cli, lakeside):
    the_seed_billed(cli)
    march = customer_charge_rows(lakeside, MARCH)
    hosts = [row for row in march if row.customer == "company-a"]
    assert len(hosts) == 1  # its invoice has a tax line too (8.25%): not a row
    row = hosts[0]
    assert (row.source, row.invoice_number, row.kind, row.item_code, row.item_name, row.line_type, row.period) == (
        "invoice", "LAKE-0002", "invoice", "hosts", "Meeting hosts", LineType.FIRST_MONTH, "2026-03")
    assert [(r.invoice_number, r.customer) for r in march] == [("LAKE-0001", "company-b"), ("LAKE-0002", "company-a")]
    assert (row.quantity, row.unit_price, row.amount, row.currency, row.tax_rate, row.taxable) == (
        D("10.0000"), D("15.00"), D("101.64"), "USD", D("8.25"), True)
    assert (row.issue_date, row.due_date) == (date(2026, 3, 10), date(2026, 4, 9))
    assert (row.customer_name, row.billing_name, row.billing_emails, row.billing_address, row.purchase_order) == (
        "Company A", "Company A Inc.", ("ap@company-a.example", "cfo@company-a.example"), "9 Hill Street\nSt Paul MN",
        "PO-77")
    assert [(r.customer, r.amount) for r in customer_charge_rows(lakeside, APRIL)] == [
        ("company-a", D("150.00")), ("company-b", D("35.00"))]
    assert [(r.customer, r.quantity, r.amount) for r in customer_charge_rows(lakeside, MAY)] == [
        ("company-a", D("25.0000"), D("375.00")), ("company-b", D("1.0000"), D("35.00"))]
    assert customer_charge_rows(lakeside, Period(2026, 6)) == []


def test_a_credit_note_is_its_own_negative_row_in_the_month_it_corrects(cli, lakeside):
    the_seed_billed(cli)
    invoice = CustomerInvoice.objects.get(number="LAKE-0003")
    with time_machine.travel(datetime(2026, 5, 3, 9, tzinfo=UTC), tick=False):  # issued in May, corrects April
        customer_credit_note_issue(invoice=invoice, actor=ACTOR, reason="hosts never used")
    april = [row for row in customer_charge_rows(lakeside, APRIL) if row.customer == "company-a"]
    assert [(r.invoice_number, r.kind, r.line_type, r.quantity, r.unit_price, r.amount) for r in april] == [
        ("LAKE-0003", "invoice", LineType.RECURRING, D("10.0000"), D("15.00"), D("150.00")),
        ("LAKE-CN-0001", "credit_note", LineType.CREDIT, D("10.0000"), D("15.00"), D("-150.00"))]
    assert sum(r.amount for r in april) == 0  # netted; the credit note's tax (-12.38) is not a row either
    assert [r.invoice_number for r in customer_charge_rows(lakeside, MAY)] == ["LAKE-0005", "LAKE-0006"]


def test_rebilling_off_the_rows_priced_equal_the_lines_the_run_writes(cli, lakeside):
    """The same world billed both ways: rebilling off, the rows are priced from our documents (no number); then
    the run's own step writes the customer invoices for the same documents, and their rows are the same."""
    RebillingProfile.objects.filter(partner=lakeside).update(enabled=False)
    the_seed_billed(cli)
    assert not CustomerInvoice.objects.exists()
    priced = {month: customer_charge_rows(lakeside, month) for month in (MARCH, APRIL, MAY)}
    assert {row.source for rows in priced.values() for row in rows} == {"priced"}
    assert {row.invoice_number for rows in priced.values() for row in rows} == {None}
    assert [(r.customer, r.line_type, r.amount) for r in priced[MARCH]] == [
        ("company-b", LineType.RECURRING, D("35.00")), ("company-a", LineType.FIRST_MONTH, D("101.64"))]

    RebillingProfile.objects.filter(partner=lakeside).update(enabled=True)
    documents = list(Invoice.objects.filter(partner=lakeside, state=InvoiceState.ISSUED,
                                            kind__in=[InvoiceKind.CI, InvoiceKind.INV]).order_by("issue_date", "pk"))
    written = customer_invoices_bill(partner=lakeside, documents=documents, actor=ACTOR)
    assert len(written) == 6
    for month, rows in priced.items():
        invoiced = customer_charge_rows(lakeside, month)
        assert {row.source for row in invoiced} == {"invoice"}
        assert all(row.invoice_number.startswith("LAKE-") for row in invoiced)
        assert sorted(map(cells, invoiced)) == sorted(map(cells, rows)), month
        assert len(rows) == 2


def test_a_month_with_drafts_to_review_shows_no_priced_rows(cli, lakeside):
    """The partner's drafts are its to issue: their charges are never offered as priced rows to bill elsewhere."""
    RebillingProfile.objects.filter(partner=lakeside).update(review_drafts=True)
    billed(cli, "2026-04-01")
    assert CustomerInvoice.objects.filter(month="2026-04", state=InvoiceState.DRAFT).exists()
    assert customer_charge_rows(lakeside, APRIL) == []


# --- the formats ---------------------------------------------------------------------------------------------------
@pytest.fixture
def april_with_a_credit_note(cli, lakeside):
    the_seed_billed(cli)
    with time_machine.travel(datetime(2026, 4, 3, 9, tzinfo=UTC), tick=False):
        customer_credit_note_issue(invoice=CustomerInvoice.objects.get(number="LAKE-0003"), actor=ACTOR)
    return customer_charge_rows(lakeside, APRIL)


def test_the_generic_format(april_with_a_credit_note):
    lines = csv_lines(GENERIC, april_with_a_credit_note)
    assert lines[0] == ("source,partner,customer,customer_name,billing_name,billing_emails,billing_address,"
                        "purchase_order,item_code,item_name,line_type,period,description,quantity,unit_price,amount,"
                        "currency,invoice_number,kind,issue_date,due_date,tax_rate,taxable")
    rows = read_rows("\n".join(lines))
    assert rows[0] == {
        "source": "invoice", "partner": "lakeside", "customer": "company-a", "customer_name": "Company A",
        "billing_name": "Company A Inc.", "billing_emails": "ap@company-a.example, cfo@company-a.example",
        "billing_address": "9 Hill Street\nSt Paul MN", "purchase_order": "PO-77", "item_code": "hosts",
        "item_name": "Meeting hosts", "line_type": "recurring", "period": "2026-04",
        "description": "Meeting hosts 2026-04: 10 hosts (host limit on 2026-04-01)", "quantity": "10.0000",
        "unit_price": "15.00", "amount": "150.00", "currency": "USD", "invoice_number": "LAKE-0003",
        "kind": "invoice", "issue_date": "2026-04-01", "due_date": "2026-05-01", "tax_rate": "8.25",
        "taxable": "true"}
    assert [(r["invoice_number"], r["amount"]) for r in rows] == [
        ("LAKE-0003", "150.00"), ("LAKE-0004", "35.00"), ("LAKE-CN-0001", "-150.00")]


def test_the_xero_format(april_with_a_credit_note):
    lines = csv_lines(XERO, april_with_a_credit_note)
    assert lines[0] == ("*ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,"
                        "POCity,PORegion,POPostalCode,POCountry,*InvoiceNumber,Reference,*InvoiceDate,*DueDate,"
                        "InventoryItemCode,*Description,*Quantity,*UnitAmount,Discount,*AccountCode,*TaxType,"
                        "TrackingName1,TrackingOption1,TrackingName2,TrackingOption2,Currency,BrandingTheme")
    assert lines[1] == ("Company A Inc.,ap@company-a.example,9 Hill Street,St Paul MN,,,,,,,LAKE-0003,PO-77,"
                        "01/04/2026,01/05/2026,hosts,Meeting hosts 2026-04: 10 hosts (host limit on 2026-04-01),10,"
                        "15.00,,200,Tax on Sales,,,,,USD,")
    rows = read_rows("\n".join(lines))
    # Company B has no billing profile: its name, no tax; the credit note credits 10 at -15.00
    assert [(r["*ContactName"], r["*InvoiceNumber"], r["*Quantity"], r["*UnitAmount"], r["*TaxType"])
            for r in rows[1:]] == [("Company B", "LAKE-0004", "1", "35.00", "Tax Exempt"),
                                   ("Company A Inc.", "LAKE-CN-0001", "10", "-15.00", "Tax on Sales")]


def test_the_xero_options(april_with_a_credit_note):
    row = read_rows("\n".join(csv_lines(XERO, april_with_a_credit_note, account_code="4000",
                                        tax_type="Sales Tax {rate}%", date_format="mm/dd/yyyy", item_codes="no")))[0]
    assert (row["*AccountCode"], row["*TaxType"], row["*InvoiceDate"], row["*DueDate"], row["InventoryItemCode"]) \
        == ("4000", "Sales Tax 8.25%", "04/01/2026", "05/01/2026", "")


def test_the_quickbooks_format(april_with_a_credit_note):
    lines = csv_lines(QUICKBOOKS, april_with_a_credit_note)
    assert lines[0] == ("InvoiceNo,Customer,InvoiceDate,DueDate,Item(Product/Service),ItemDescription,ItemQuantity,"
                        "ItemRate,ItemAmount,ItemTaxCode")
    assert lines[1] == ("LAKE-0003,Company A Inc.,04/01/2026,05/01/2026,Meeting hosts,"
                        "Meeting hosts 2026-04: 10 hosts (host limit on 2026-04-01),10,15.00,150.00,TAX")
    assert lines[2] == "LAKE-0004,Company B,04/01/2026,05/01/2026,Support plan,Support plan 2026-04,1,35.00,35.00,NON"
    assert lines[3].startswith("LAKE-CN-0001,Company A Inc.,04/03/2026,04/03/2026,Meeting hosts,")
    assert lines[3].endswith(",10,-15.00,-150.00,TAX")


def test_a_prorated_first_month_is_one_times_its_amount_for_the_importers(cli, lakeside):
    """10 x 15.00 is 150.00, the first month 101.64: both tools would recompute 150.00 from the line's own
    quantity and price, so they get 1 x 101.64 (the description keeps the 10 hosts)."""
    the_seed_billed(cli)
    rows = [row for row in customer_charge_rows(lakeside, MARCH) if row.customer == "company-a"]
    xero = read_rows("\n".join(csv_lines(XERO, rows)))[0]
    assert (xero["*Quantity"], xero["*UnitAmount"]) == ("1", "101.64")
    assert "10 hosts" in xero["*Description"]
    quickbooks = read_rows("\n".join(csv_lines(QUICKBOOKS, rows)))[0]
    assert (quickbooks["ItemQuantity"], quickbooks["ItemRate"], quickbooks["ItemAmount"]) == ("1", "101.64", "101.64")


def _row(**fields) -> ChargeRow:
    base = {"source": "invoice", "partner": "p", "customer": "c", "customer_name": "C", "billing_name": "C",
            "billing_emails": (), "billing_address": "", "purchase_order": "", "item_code": "x", "item_name": "X",
            "line_type": "recurring", "period": "2026-04", "description": "X", "quantity": D("1"),
            "unit_price": D("1"), "amount": D("1.00"), "currency": "USD", "invoice_number": "P-0001",
            "kind": "invoice", "issue_date": date(2026, 4, 1), "due_date": date(2026, 5, 1), "tax_rate": D("0"),
            "taxable": True}
    return ChargeRow(**(base | fields))


@given(quantity=st.decimals(min_value=0, max_value=10**6, places=4),
       price=st.one_of(st.none(), st.decimals(min_value=0, max_value=10**5, places=4)),
       amount=st.decimals(min_value=-(10**9), max_value=10**9, places=2),
       currency=st.sampled_from(["USD", "JPY", "BHD"]))
def test_an_importer_multiplies_back_to_the_line_amount(quantity, price, amount, currency):
    """Whatever the line, quantity x unit amount, rounded once, is its amount: the tools book what was charged."""
    amount = quantize_money(amount, currency)
    row = _row(quantity=quantity, unit_price=price, amount=amount, currency=currency)
    q, rate = quantity_and_rate(row)
    assert quantize_money(q * rate, currency) == amount
    if price is not None and quantize_money(quantity * price, currency) == amount:
        assert (q, rate) == (quantity, price)  # a line that multiplies keeps its own quantity and price


def test_options_are_checked_by_name_and_value():
    assert XERO.resolved({"account_code": None}) == dict(XERO.options)
    with pytest.raises(SyncFormatError, match="tax_code is not an option of the xero format") as caught:
        XERO.resolved({"tax_code": "TAX"})
    assert caught.value.option == "tax_code"
    with pytest.raises(SyncFormatError, match="date_format: one of dd/mm/yyyy, mm/dd/yyyy, not 'yyyy-mm-dd'"):
        QUICKBOOKS.resolved({"date_format": "yyyy-mm-dd"})
    with pytest.raises(SyncFormatError, match="account_code: give 1 to 100 printable characters"):
        XERO.resolved({"account_code": "  "})
    with pytest.raises(SyncFormatError, match="not an option of the generic format \\(its options: none\\)"):
        GENERIC.resolved({"account_code": "200"})
    with pytest.raises(SyncFormatError, match="unknown format 'sage' \\(one of generic, xero, quickbooks\\)"):
        sync_format("sage")


# --- export_report -------------------------------------------------------------------------------------------------
def test_export_report_customer_charges(cli, lakeside):
    the_seed_billed(cli)
    rows = export("customer-charges", "--month", "2026-04", "--partner", "lakeside")
    assert [(r["customer"], r["invoice_number"], r["amount"]) for r in rows] == [
        ("company-a", "LAKE-0003", "150.00"), ("company-b", "LAKE-0004", "35.00")]
    assert export("customer-charges", "--month", "2026-04") == rows  # every partner: only lakeside has charges
    xero = export("customer-charges-xero", "--month", "2026-04", "--partner", "lakeside")
    assert [(r["*InvoiceNumber"], r["*UnitAmount"], r["*InvoiceDate"]) for r in xero] == [
        ("LAKE-0003", "15.00", "01/04/2026"), ("LAKE-0004", "35.00", "01/04/2026")]
    quickbooks = export("customer-charges-quickbooks", "--month", "2026-04", "--partner", "lakeside")
    assert [r["ItemAmount"] for r in quickbooks] == ["150.00", "35.00"]


@pytest.mark.parametrize(("args", "message"), [
    (["customer-charges"], "the customer-charges report needs --month YYYY-MM"),
    (["customer-charges-xero", "--month", "2026-04"],
     "the customer-charges-xero report needs --partner: a Xero sales invoice import file is one partner's books"),
    (["customer-charges", "--period", "2026-04"], "the customer-charges report takes no --period"),
    (["customer-charges", "--month", "2026-13"], "no such month: 2026-13"),
])
def test_export_report_customer_charges_refuses_what_it_cannot_answer(cli, args, message):
    result = cli("export_report", *args)
    assert result.status != 0
    assert message in result.err

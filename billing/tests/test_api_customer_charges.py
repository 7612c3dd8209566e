"""GET /api/reseller/customer-charges (issue 20 item 6, the sync out): a partner's charges to its customers for a
month, as JSON rows or as a tool's import CSV; behind the API key, scoped to the key's partner; a bad month or
format, or an option the format does not take, is a 422 naming it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from billing.core.actor import Actor
from invoicing.rebilling.models import CustomerBillingProfile, RebillingProfile
from partners.api_keys import api_key_create, api_key_revoke
from partners.models import Customer, Partner

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parents[2] / "invoicing" / "rebilling" / "tests" / "data" / "company-a"
URL = "/api/reseller/customer-charges"
STAFF = Actor(label="test")


def _ok(result):
    assert result.status == 0, result.err


@pytest.fixture
def world(cli, csv_file):
    """Lakeside (the seed's Company A at 15.00 a host; rebilling on, so its customers get invoices) and Harbor
    (4 hosts at our 9.00 plus 50%; rebilling off, so its rows are priced), billed through 1 May; a key each."""
    with time_machine.travel(datetime(2026, 3, 1, 6, tzinfo=UTC), tick=False):
        for kind, name in [("partners", "partners.csv"), ("customers", "customers.csv"),
                           ("services", "services.csv"), ("resale-prices", "resale-prices.csv")]:
            _ok(cli("import_csv", kind, str(DATA / name)))
        for kind, text in [
            ("partners", "slug,name,currency,tax_rate,payment_terms_days\nharbor,Harbor IT,USD,0,30\n"),
            ("customers", "partner,slug,name,host_limit\nharbor,dock,Dock Co,4\n"),
            ("services", "partner,customer,code,name,method,unit_price,start_date\n"
                         "harbor,dock,hosts,Hosts,per_host,9.00,2026-03-01\n"),
            ("resale-prices", "partner,customer,service,markup_percent,effective_from\nharbor,,hosts,50,2026-03-01\n"),
        ]:
            _ok(cli("import_csv", kind, str(csv_file(f"{kind}.csv", text))))
    lakeside, harbor = Partner.objects.get(slug="lakeside"), Partner.objects.get(slug="harbor")
    RebillingProfile.objects.create(partner=lakeside, enabled=True, number_prefix="LAKE")
    CustomerBillingProfile.objects.create(customer=Customer.objects.get(slug="company-a"),
                                          legal_name="Company A Inc.", billing_emails="ap@company-a.example")
    for through in ("2026-03-10", "2026-04-01", "2026-05-01"):
        with time_machine.travel(datetime.fromisoformat(through).replace(hour=6, tzinfo=UTC), tick=False):
            _ok(cli("run_billing", "--through", through))
    return {"lakeside": api_key_create(partner=lakeside, actor=STAFF, name="lakeside")[1],
            "harbor": api_key_create(partner=harbor, actor=STAFF, name="harbor")[1], "lakeside_partner": lakeside}


def get(client, key: str | None, **query):
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return client.get(URL, query, headers=headers)


def test_a_key_is_needed(client, world):
    assert get(client, None, month="2026-04").status_code == 401
    assert get(client, "not-a-key", month="2026-04").status_code == 401
    api_key_revoke(api_key=world["lakeside_partner"].api_keys.get(), actor=STAFF)
    assert get(client, world["lakeside"], month="2026-04").status_code == 401


def test_json_rows_of_the_partners_issued_customer_invoices(client, world):
    response = get(client, world["lakeside"], month="2026-04")
    assert response.status_code == 200
    assert response.json() == [{
        "source": "invoice", "customer": "company-a", "customer_name": "Company A", "billing_name": "Company A Inc.",
        "billing_emails": ["ap@company-a.example"], "billing_address": "", "purchase_order": "",
        "item_code": "hosts", "item_name": "Meeting hosts", "line_type": "recurring", "period": "2026-04",
        "description": "Meeting hosts 2026-04: 10 hosts (host limit on 2026-04-01)", "quantity": "10.0000",
        "unit_price": "15.00", "amount": "150.00", "currency": "USD", "invoice_number": "LAKE-0002",
        "kind": "invoice", "issue_date": "2026-04-01", "due_date": "2026-05-01", "tax_rate": "0", "taxable": True}]


def test_each_key_sees_only_its_partners_charges(client, world):
    """Harbor bills in its own tool (rebilling off): its rows are priced, with no number; Lakeside's never show."""
    response = get(client, world["harbor"], month="2026-04")
    assert response.status_code == 200
    rows = response.json()
    # 4 hosts at our 9.00 plus 50%: 13.50 a host, 54.00 a month
    assert [(r["source"], r["customer"], r["invoice_number"], r["quantity"], r["unit_price"], r["amount"])
            for r in rows] == [("priced", "dock", None, "4.0000", "13.50", "54.00")]
    lakeside = get(client, world["lakeside"], month="2026-04").json()
    assert {r["customer"] for r in lakeside} == {"company-a"}
    assert get(client, world["harbor"], month="2026-04", format="generic").content.decode().count("lakeside") == 0


@pytest.mark.parametrize(("fmt", "header", "row"), [
    ("generic",
     "source,partner,customer,customer_name,billing_name,billing_emails,billing_address,purchase_order,item_code,"
     "item_name,line_type,period,description,quantity,unit_price,amount,currency,invoice_number,kind,issue_date,"
     "due_date,tax_rate,taxable",
     "invoice,lakeside,company-a,Company A,Company A Inc.,ap@company-a.example,,,hosts,Meeting hosts,recurring,"
     "2026-04,Meeting hosts 2026-04: 10 hosts (host limit on 2026-04-01),10.0000,15.00,150.00,USD,LAKE-0002,"
     "invoice,2026-04-01,2026-05-01,0,true"),
    ("xero",
     "*ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,POCity,PORegion,"
     "POPostalCode,POCountry,*InvoiceNumber,Reference,*InvoiceDate,*DueDate,InventoryItemCode,*Description,"
     "*Quantity,*UnitAmount,Discount,*AccountCode,*TaxType,TrackingName1,TrackingOption1,TrackingName2,"
     "TrackingOption2,Currency,BrandingTheme",
     "Company A Inc.,ap@company-a.example,,,,,,,,,LAKE-0002,,01/04/2026,01/05/2026,hosts,"
     "Meeting hosts 2026-04: 10 hosts (host limit on 2026-04-01),10,15.00,,200,Tax Exempt,,,,,USD,"),
    ("quickbooks",
     "InvoiceNo,Customer,InvoiceDate,DueDate,Item(Product/Service),ItemDescription,ItemQuantity,ItemRate,"
     "ItemAmount,ItemTaxCode",
     "LAKE-0002,Company A Inc.,04/01/2026,05/01/2026,Meeting hosts,"
     "Meeting hosts 2026-04: 10 hosts (host limit on 2026-04-01),10,15.00,150.00,NON"),
])
def test_each_format_is_a_csv_file_to_download(client, world, fmt, header, row):
    response = get(client, world["lakeside"], month="2026-04", format=fmt)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="customer-charges-lakeside-2026-04-{fmt}.csv"'
    assert response.content.decode().splitlines() == [header, row]


def test_a_formats_options(client, world):
    response = get(client, world["lakeside"], month="2026-04", format="xero", account_code="4000",
                   date_format="mm/dd/yyyy")
    row = next(csv.DictReader(io.StringIO(response.content.decode())))
    assert (row["*AccountCode"], row["*InvoiceDate"]) == ("4000", "04/01/2026")


@pytest.mark.parametrize(("query", "loc", "message"), [
    ({"month": "2026-13"}, "month", "month: no such month: 2026-13"),
    ({"month": "April"}, "month", "month: expected a month as YYYY-MM, got 'April'"),
    ({"month": "2026-04", "format": "quickbooks", "account_code": "200"}, "account_code",
     "account_code is not an option of the quickbooks format (its options: tax_code, exempt_tax_code, date_format)"),
    ({"month": "2026-04", "format": "xero", "date_format": "yyyy-mm-dd"}, "date_format",
     "date_format: one of dd/mm/yyyy, mm/dd/yyyy, not 'yyyy-mm-dd'"),
    ({"month": "2026-04", "account_code": "200"}, "account_code",
     "account_code is an option of a CSV format, not of json"),
])
def test_bad_input_is_422_naming_it(client, world, query, loc, message):
    response = get(client, world["lakeside"], **query)
    assert response.status_code == 422, response.content
    assert response.json() == {"detail": [{"loc": ["query", loc], "msg": message, "type": "value_error"}]}


@pytest.mark.parametrize("query", [{}, {"month": "2026-04", "format": "sage"}])
def test_a_missing_month_or_an_unknown_format_is_422(client, world, query):
    response = get(client, world["lakeside"], **query)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)

"""Review of rebilling (billing-rules 12) as an MSP's bookkeeper: every amount checked by hand to the cent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.core.actor import Actor
from invoicing.rebilling.invoices import customer_credit_note_issue
from invoicing.rebilling.models import (
    CustomerBillingProfile,
    CustomerInvoice,
    RebillingProfile,
)
from invoicing.rebilling.tests.test_customer_invoices import billed, imported
from partners.models import Customer, Partner

pytestmark = pytest.mark.django_db
D = Decimal
ACTOR = Actor(label="review")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def setup(cli, tmp_path, *, currency="USD", prices="lakeside,,hosts,15.00,,,,,,2026-03-01\n", hosts_price="10.00",
          start="2026-03-01", proration="rounded_daily_rate", extra=""):
    with time_machine.travel(datetime(2026, 3, 1, 6, tzinfo=UTC), tick=False):
        assert cli("import_csv", "partners", write(tmp_path, "p.csv",
                   "slug,name,currency,tax_rate,payment_terms_days,billing_emails\n"
                   f"lakeside,Lakeside Networks,{currency},0,30,billing@lakeside.example\n")).status == 0
        imported(cli, "customers", "customers.csv")
        r = cli("import_csv", "services", write(tmp_path, "s.csv",
                "partner,customer,code,name,method,meter,unit_price,overage_price,committed_quantity,overage_enabled,"
                "storage_per_license_gb,tiers,tier_mode,proration,start_date,end_date,rmm_filter,taxable\n"
                f"lakeside,company-a,hosts,Meeting hosts,per_host,,{hosts_price},,,,,,,{proration},{start},,,\n"
                "lakeside,company-b,support,Support plan,flat,,20.00,,,,,,,,2026-03-01,,,\n" + extra))
        assert r.status == 0, r.err + r.out
        r = cli("import_csv", "resale-prices", write(tmp_path, "r.csv",
                "partner,customer,service,unit_price,markup_percent,package_units,package_price,tiers,tier_mode,"
                "effective_from\n" + prices))
        assert r.status == 0, r.err + r.out
    partner = Partner.objects.get(slug="lakeside")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="LAKE", payment_terms_days=14)
    return partner


def amounts(customer="company-a"):
    return [(i.number, i.issue_date, i.subtotal, i.tax_amount, i.total)
            for i in CustomerInvoice.objects.filter(customer__slug=customer).order_by("issue_date", "pk")]


def test_smoke_unit_price_and_due_date(cli, tmp_path):
    setup(cli, tmp_path)
    billed(cli, "2026-03-01")
    billed(cli, "2026-04-01")
    inv = CustomerInvoice.objects.order_by("issue_date")
    print([(i.number, i.issue_date, i.due_date, i.total) for i in inv])
    assert [(i.number, i.due_date, i.total) for i in inv] == [
        ("LAKE-0001", date(2026, 3, 15), D("150.00")), ("LAKE-0002", date(2026, 4, 15), D("150.00"))]


def test_price_changed_mid_month_first_charges_next_month(cli, tmp_path):
    setup(cli, tmp_path, prices="lakeside,,hosts,15.00,,,,,,2026-03-01\nlakeside,,hosts,20.00,,,,,,2026-04-15\n")
    for day in ("2026-03-01", "2026-04-01", "2026-05-01"):
        billed(cli, day)
    assert [a[4] for a in amounts()] == [D("150.00"), D("150.00"), D("200.00")]


def test_jpy_unit_price_rounds_half_away_to_yen(cli, tmp_path):
    # 10 x 1234.55 = 12345.5 -> 12346 JPY
    setup(cli, tmp_path, currency="JPY", hosts_price="1000", prices="lakeside,,hosts,1234.55,,,,,,2026-03-01\n")
    billed(cli, "2026-03-01")
    inv = CustomerInvoice.objects.get()
    assert (inv.currency, inv.subtotal, inv.total) == ("JPY", D("12346"), D("12346"))


def test_jpy_markup(cli, tmp_path):
    # 10 x 1000 x 1.12345 = 11234.5 -> 11235
    setup(cli, tmp_path, currency="JPY", hosts_price="1000", prices="lakeside,,hosts,,12.345,,,,,2026-03-01\n")
    billed(cli, "2026-03-01")
    inv = CustomerInvoice.objects.get()
    line = inv.lines.get()
    assert (line.amount, line.unit_price, line.cost) == (D("11235"), D("1123.4500"), D("10000"))


def test_jpy_tax(cli, tmp_path):
    # 12346 x 8.25% = 1018.545 -> 1019
    setup(cli, tmp_path, currency="JPY", hosts_price="1000", prices="lakeside,,hosts,1234.55,,,,,,2026-03-01\n")
    CustomerBillingProfile.objects.create(customer=Customer.objects.get(slug="company-a"), tax_rate=D("8.25"))
    billed(cli, "2026-03-01")
    inv = CustomerInvoice.objects.get()
    assert (inv.subtotal, inv.tax_amount, inv.total) == (D("12346"), D("1019"), D("13365"))


def test_markup_usd(cli, tmp_path):
    # 10 x 2.99 x 1.125 = 33.6375 -> 33.64, shown 3.3638
    setup(cli, tmp_path, hosts_price="2.99", prices="lakeside,,hosts,,12.5,,,,,2026-03-01\n")
    billed(cli, "2026-03-01")
    line = CustomerInvoice.objects.get().lines.get()
    assert (line.amount, line.unit_price, line.cost) == (D("33.64"), D("3.3638"), D("29.90"))


def test_package_above_and_below(cli, tmp_path):
    # up to 5 for 150.00 then 32.00 each: 10 hosts -> 150 + 5 x 32 = 310.00
    setup(cli, tmp_path, prices="lakeside,,hosts,32.00,,5,150.00,,,2026-03-01\n"
                               "lakeside,,hosts,32.00,,20,150.00,,,2026-04-01\n")
    billed(cli, "2026-03-01")
    billed(cli, "2026-04-01")
    lines = [i.lines.get() for i in CustomerInvoice.objects.order_by("issue_date")]
    assert [(line.amount, line.unit_price) for line in lines] == [(D("310.00"), None), (D("150.00"), None)]
    assert "(package: up to 5 for 150.00, then 32.00 each)" in lines[0].description


def test_graduated_tiers(cli, tmp_path):
    # 5 x 20.00 + 5 x 10.00 = 150.00
    setup(cli, tmp_path, prices='lakeside,,hosts,,,,,"5:20.00;inf:10.00",graduated,2026-03-01\n')
    billed(cli, "2026-03-01")
    line = CustomerInvoice.objects.get().lines.get()
    assert (line.amount, line.unit_price) == (D("150.00"), None)


def test_volume_tiers(cli, tmp_path):
    setup(cli, tmp_path, prices='lakeside,,hosts,,,,,"5:20.00;inf:10.05",volume,2026-03-01\n')
    billed(cli, "2026-03-01")
    line = CustomerInvoice.objects.get().lines.get()
    assert (line.amount, line.unit_price) == (D("100.50"), D("10.05"))


def test_first_month_prorated_at_price_on_start_date(cli, tmp_path):
    # price 15.00 from 10 March (start date), default 12.00 before; 150/31 = 4.84 x 22 days (10..31) ?
    setup(cli, tmp_path, start="2026-03-10", prices="lakeside,,hosts,12.00,,,,,,2026-03-01\n"
                                                   "lakeside,,hosts,15.00,,,,,,2026-03-10\n")
    billed(cli, "2026-03-10")
    assert [a[4] for a in amounts()] == [D("101.64")]


def test_customer_own_price_and_return_to_default(cli, tmp_path):
    setup(cli, tmp_path, prices="lakeside,,hosts,15.00,,,,,,2026-03-01\n"
                               "lakeside,company-a,hosts,13.33,,,,,,2026-03-01\n"
                               "lakeside,company-a,hosts,,,,,,,2026-04-01\n")
    billed(cli, "2026-03-01")
    billed(cli, "2026-04-01")
    assert [a[4] for a in amounts()] == [D("133.30"), D("150.00")]


TWO = "lakeside,company-a,backup,Backup,flat,,20.00,,,,,,,,2026-03-01,,,\n"


def test_partial_then_rest_credit_note_with_tax(cli, tmp_path):
    setup(cli, tmp_path, extra=TWO,
          prices="lakeside,,hosts,15.05,,,,,,2026-03-01\nlakeside,,backup,33.33,,,,,,2026-03-01\n")
    CustomerBillingProfile.objects.create(customer=Customer.objects.get(slug="company-a"), tax_rate=D("8.25"))
    billed(cli, "2026-03-01")
    inv = CustomerInvoice.objects.get()
    # 150.50 + 33.33 = 183.83; tax 15.165975 -> 15.17
    assert (inv.subtotal, inv.tax_amount, inv.total) == (D("183.83"), D("15.17"), D("199.00"))
    host_line = inv.lines.get(service__code="hosts")
    with time_machine.travel(datetime(2026, 3, 5, 9, tzinfo=UTC), tick=False):
        n1 = customer_credit_note_issue(invoice=inv, actor=ACTOR, lines=[host_line])
        n2 = customer_credit_note_issue(invoice=inv, actor=ACTOR)
    # 150.50 x 8.25% = 12.41625 -> 12.42; the rest 15.17 - 12.42 = 2.75
    assert (n1.number, n1.subtotal, n1.tax_amount, n1.total) == (
        "LAKE-CN-0001", D("-150.50"), D("-12.42"), D("-162.92"))
    assert (n2.number, n2.subtotal, n2.tax_amount, n2.total) == (
        "LAKE-CN-0002", D("-33.33"), D("-2.75"), D("-36.08"))
    assert (n1.due_date, n1.issue_date) == (date(2026, 3, 5), date(2026, 3, 5))



def test_return_to_default_in_a_second_file_works(cli, tmp_path):
    setup(cli, tmp_path, prices="lakeside,,hosts,15.00,,,,,,2026-03-01\n"
                               "lakeside,company-a,hosts,13.33,,,,,,2026-03-01\n")
    with time_machine.travel(datetime(2026, 3, 2, 6, tzinfo=UTC), tick=False):
        r = cli("import_csv", "resale-prices", write(tmp_path, "r2.csv",
                "partner,customer,service,unit_price,effective_from\nlakeside,company-a,hosts,,2026-04-01\n"))
    assert r.status == 0, r.err
    billed(cli, "2026-03-01")
    billed(cli, "2026-04-01")
    assert [a[4] for a in amounts()] == [D("133.30"), D("150.00")]

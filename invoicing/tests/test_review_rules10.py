"""Review of terms with effective dates, true-ups, no month left unbilled, 4-decimal prices, back-filled
inventories and RMM organization naming (billing-rules 3.11, 4.11, 4.12, 2, 3.7) and the precise points
(billing-rules 6), driven as a clerk and the nightly jobs do:
`import_csv`, `run_billing`, `export_report`, with late, out-of-order and partial data. Every expected
number below is worked out by hand in the test's docstring."""

from __future__ import annotations

import csv
import io
from decimal import Decimal as D

import pytest

from conftest import run_cli
from tests.clerk import bill, imp, lines

pytestmark = pytest.mark.django_db


# --- the clerk's tools --------------------------------------------------------------------------------------
def pick(rows, *types, month=None):
    return [(r["invoice_number"][:3].rstrip("-"), r["issue_date"], r["service"], r["customer"], r["line_type"],
             r["period"], D(r["quantity"]) if r["quantity"] else None, D(r["amount"]))
            for r in rows if (not types or r["line_type"] in types)
            and (month is None or r["issue_date"].startswith(month))]


def total(rows, line_type=None, period=None, service=None):
    return sum((D(r["amount"]) for r in rows if (line_type is None or r["line_type"] == line_type)
                and (period is None or r["period"] == period) and (service is None or r["service"] == service)),
               D("0"))


PARTNER = """
slug,name,currency,tax_rate,payment_terms_days
acme,Acme MSP,USD,10,30
"""


@pytest.fixture
def acme(tmp_path):
    imp(tmp_path, "partners", PARTNER)
    imp(tmp_path, "customers", """
partner,slug,name,rmm_organization,host_limit
acme,birch,Birch,Birch,10
""")
    return tmp_path


def inventory(tmp_path, as_of, count, org="Birch", group="", start=0):
    rows = "\n".join(f"a{n},PC-{n},{org},{group}" for n in range(start, start + count))
    return imp(tmp_path, "rmm-assets", "agent_id,machine_name,organization,group\n" + rows,
               "--partner", "acme", "--as-of", as_of)


# --- back-filled inventories (billing-rules 3.7, 9.6) --------------------------------------------------------------
def test_backfilled_inventory_between_two_recorded_ones_after_invoicing(acme):
    """per_asset 10.00 from 1 April (30 days), tax 10%. 5 agents as of 1 Apr, 8 as of 20 Apr.
    April CI: 5 x 10 = 50.00. May CI: 8 x 10 = 80.00 and +3 from 20 Apr: 3 x 10 x 11/30 = 11.00.
    Then a missed night, 10 April with 6 agents, is imported: 6 from 10 to 19 April.
    June CI: +1 from 10 Apr = 1 x 10 x 21/30 = 7.00; the 20 Apr change is now +2: 2 x 10 x 11/30 = 7.333.. ->
    7.33, 11.00 posted, so -3.67. April then totals 50 + 11 + 7 - 3.67 = 64.33 = (5x9 + 6x10 + 8x11) x 10/30
    = 193/3 = 64.33. June recurring: 8 x 10 = 80.00. Tax 10% of June's lines: (80 + 7 - 3.67) = 83.33 -> 8.33."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,birch,agents,Agents,per_asset,10.00,2026-04-01
""")
    inventory(tmp, "2026-04-01", 5)
    inventory(tmp, "2026-04-20", 8)
    bill("2026-05-01")
    rows = lines()
    assert pick(rows, "recurring", "proration") == [
        ("CI", "2026-04-01", "agents", "birch", "recurring", "2026-04", D("5"), D("50.00")),
        ("CI", "2026-05-01", "agents", "birch", "recurring", "2026-05", D("8"), D("80.00")),
        ("CI", "2026-05-01", "agents", "birch", "proration", "2026-04", D("3"), D("11.00")),
    ]
    inventory(tmp, "2026-04-10", 6)
    bill("2026-06-01")
    bill("2026-06-01")  # a rerun bills nothing more
    rows = lines()
    june = pick(rows, "recurring", "proration", "tax", month="2026-06")
    assert sorted(june, key=lambda r: (r[4], r[5], r[7])) == sorted([
        ("CI", "2026-06-01", "agents", "birch", "recurring", "2026-06", D("8"), D("80.00")),
        ("CI", "2026-06-01", "agents", "birch", "proration", "2026-04", D("-1"), D("-3.67")),
        ("CI", "2026-06-01", "agents", "birch", "proration", "2026-04", D("1"), D("7.00")),
        ("CI", "2026-06-01", "", "", "tax", "2026-06", None, D("8.33")),
    ], key=lambda r: (r[4], r[5], r[7]))
    assert total(rows, period="2026-04", service="agents") == D("64.33")


def test_prices_dated_in_the_past_and_the_future_through_the_services_import(acme):
    """Seats 20.00/seat-month, hosts 10 x 15.00, fee 30.00, all from 1 April; one seat all April.
    April CI: 30.00 + 150.00 + tax 18.00. May CI: 30 + 150 + seats April 20.00 + tax 20.00.
    Then one import: seats 25.00 from 1 April (dated back), hosts 16.00 from 1 May (dated back into the
    invoiced May), fee 31.00 from 1 September (future). June CI: fee 30.00 (Sept not yet), hosts 10 x 16 =
    160.00, seats May 25.00 (May's terms), true-ups: seats April +5.00 (25 - 20), hosts May +10.00 (160 - 150);
    tax 10% of 230.00 = 23.00; total 253.00. A rerun issues nothing."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,birch,seats,Seats,seat_days,20.00,2026-04-01
acme,birch,hosts,Hosts,per_host,15.00,2026-04-01
acme,birch,fee,Fee,flat,30.00,2026-04-01
""")
    imp(tmp, "seat-events", """
partner,customer,member,action,at
acme,birch,ann,assign,2026-04-01T00:00:00Z
""")
    bill("2026-05-01")
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date,effective_from
acme,birch,seats,Seats,seat_days,25.00,2026-04-01,2026-04-01
acme,birch,hosts,Hosts,per_host,16.00,2026-04-01,2026-05-01
acme,birch,fee,Fee,flat,31.00,2026-04-01,2026-09-01
""")
    out = bill("2026-06-01")
    assert "total 253.00 USD" in out
    assert bill("2026-06-01").strip() == "nothing to bill"
    june = pick(lines(), month="2026-06")
    assert sorted(june, key=str) == sorted([
        ("CI", "2026-06-01", "fee", "birch", "recurring", "2026-06", D("1"), D("30.00")),
        ("CI", "2026-06-01", "hosts", "birch", "recurring", "2026-06", D("10"), D("160.00")),
        ("CI", "2026-06-01", "seats", "birch", "usage", "2026-05", D("1"), D("25.00")),
        ("CI", "2026-06-01", "seats", "birch", "true_up", "2026-04", D("0"), D("5.00")),
        ("CI", "2026-06-01", "hosts", "birch", "true_up", "2026-05", D("0"), D("10.00")),
        ("CI", "2026-06-01", "", "", "tax", "2026-06", None, D("23.00")),
    ], key=str)
    # September: the future price
    bill("2026-09-01")
    september = {r["service"]: D(r["amount"]) for r in lines() if r["issue_date"] == "2026-09-01"
                 and r["line_type"] == "recurring"}
    assert september == {"fee": D("31.00"), "hosts": D("160.00")}


def test_host_limit_dated_mid_month_and_a_price_from_may_in_one_catch_up_run(acme):
    """billing-rules 3.11's acceptance case: 10 hosts at 15.00 from 1 April; host limit 25 from 25 April; price
    20.00 from 1 May. One catch-up run on 2 May: April 10 x 15 = 150.00, May 25 x 20 = 500.00. Dating the
    host limit back to 25 April after April was invoiced changes nothing for April (the 1st's terms)."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,birch,hosts,Hosts,per_host,15.00,2026-04-01
""")
    imp(tmp, "customers", """
partner,slug,name,host_limit,effective_from
acme,birch,Birch,25,2026-04-25
""")
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date,effective_from
acme,birch,hosts,Hosts,per_host,20.00,2026-04-01,2026-05-01
""")
    bill("2026-05-02")
    got = {(r["period"], r["line_type"]): (D(r["quantity"]), D(r["amount"])) for r in lines() if r["service"]}
    assert got == {("2026-04", "recurring"): (D("10"), D("150.00")), ("2026-05", "recurring"): (D("25"), D("500.00"))}
    # the host limit is dated mid-month again, later: April keeps its 1st's terms, no true-up
    imp(tmp, "customers", """
partner,slug,name,host_limit,effective_from
acme,birch,Birch,30,2026-05-20
""")
    bill("2026-06-01")
    june = pick(lines(), month="2026-06")
    assert ("CI", "2026-06-01", "hosts", "birch", "recurring", "2026-06", D("30"), D("600.00")) in june
    assert not [r for r in june if r[4] == "true_up"]


def test_late_usage_true_ups_of_true_ups_negative_and_taxed(acme):
    """Partner-level licenses, volume tiers 10:3.00;inf:2.50, tax 10%. April: birch 6, elm 4 = 10 licenses at
    3.00: 18.00 + 12.00 on the May CI. A late snapshot: elm 5 on 20 April -> 11 at 2.50: birch 15.00 (-3.00),
    elm 12.50 (+0.50) on the June CI (tax 10% of 15 + 12.50 - 3 + 0.50 = 25.00 -> 2.50). The snapshot is then
    corrected to 4: April back to 3.00 (+3.00, -0.50), and May too (elm's 5 carried into May: +3.00, -0.50);
    July CI tax = 10% of (18 + 12 + 3 - 0.5 + 3 - 0.5) = 3.50. Each month then sums to what its data says."""
    tmp = acme
    imp(tmp, "customers", """
partner,slug,name
acme,elm,Elm
""")
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,tiers,storage_per_license_gb,start_date
acme,,lic,Licenses,licenses,0,10:3.00;inf:2.50,50,2026-04-01
""")
    imp(tmp, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
acme,birch,2026-04-01,6,0
acme,elm,2026-04-01,4,0
""")
    bill("2026-05-01")
    imp(tmp, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
acme,elm,2026-04-20,5,0
""")
    bill("2026-06-01")
    bill("2026-06-01")
    imp(tmp, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
acme,elm,2026-04-20,4,0
""")
    bill("2026-07-01")
    bill("2026-07-01")
    rows = lines()
    ups = sorted((r[1], r[3], r[5], r[6], r[7]) for r in pick(rows, "true_up"))
    assert ups == sorted([
        ("2026-06-01", "birch", "2026-04", D("0"), D("-3.00")), ("2026-06-01", "elm", "2026-04", D("1"), D("0.50")),
        ("2026-07-01", "birch", "2026-04", D("0"), D("3.00")), ("2026-07-01", "elm", "2026-04", D("-1"), D("-0.50")),
        ("2026-07-01", "birch", "2026-05", D("0"), D("3.00")), ("2026-07-01", "elm", "2026-05", D("-1"), D("-0.50")),
    ])
    taxes = {r[1]: r[7] for r in pick(rows, "tax")}
    assert taxes == {"2026-05-01": D("3.00"), "2026-06-01": D("2.50"), "2026-07-01": D("3.50")}
    assert total(rows, period="2026-04", service="lic") == D("30.00")
    assert total(rows, period="2026-05", service="lic") == D("30.00")


def test_a_ci_of_negative_true_ups_alone_is_taxed_negative(acme):
    """Peak users 2.00, only in April; 12 users: May CI 24.00 + 2.40. Corrected to 7 before the June run:
    June CI carries the true-up alone, -5 users, -10.00, tax -1.00, total -11.00."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,meter,unit_price,start_date,end_date
acme,birch,users,Users,peak,users,2.00,2026-04-01,2026-04-30
""")
    imp(tmp, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
acme,birch,2026-04-01,12,0
""")
    bill("2026-05-01")
    imp(tmp, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
acme,birch,2026-04-01,7,0
""")
    out = bill("2026-06-01")
    assert "total -11.00 USD" in out
    june = pick(lines(), month="2026-06")
    assert sorted(june, key=str) == sorted([
        ("CI", "2026-06-01", "users", "birch", "true_up", "2026-04", D("-5"), D("-10.00")),
        ("CI", "2026-06-01", "", "", "tax", "2026-06", None, D("-1.00")),
    ], key=str)


def test_tax_rate_and_partner_terms_dated(acme):
    """Tax 10% then 20% from 15 May, payment terms 30 then 10 days from 15 May (partners import, dated).
    A one-time charge of 100.00 on 20 May: tax 20.00, due 30 May. May CI (1 May): 10%, due 31 May.
    June CI: 20%, due 11 June."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,birch,fee,Fee,flat,100.00,2026-05-01
""")
    imp(tmp, "partners", """
slug,name,tax_rate,payment_terms_days,effective_from
acme,Acme MSP,20,10,2026-05-15
""")
    imp(tmp, "one-time-charges", """
partner,customer,description,quantity,unit_price,date
acme,birch,Router,1,100.00,2026-05-20
""")
    bill("2026-06-01")
    rows = lines()
    docs = {(r["issue_date"], r["due_date"]) : D(r["amount"]) for r in rows if r["line_type"] == "tax"}
    assert docs == {("2026-05-01", "2026-05-31"): D("10.00"), ("2026-05-20", "2026-05-30"): D("20.00"),
                    ("2026-06-01", "2026-06-11"): D("20.00")}


def test_prices_have_at_most_four_decimal_places(acme):
    """billing-rules 2: a price with more than 4 places is refused, tiers and one-time charges included;
    4 places are kept exactly: peak 7 users x 0.3333 = 2.3331 -> 2.33; 7 x 0.0015 = 0.0105 -> 0.01."""
    tmp = acme
    for column, value in (("unit_price", "0.12345"), ("overage_price", "1.00001"), ("tiers", "10:0.12345;inf:0.1")):
        header = "partner,customer,code,name,method,meter,unit_price,start_date"
        row = "acme,birch,u,U,peak,users,1.00,2026-04-01"
        if column == "unit_price":
            text = f"{header}\n{row.replace('1.00', value)}"
        else:
            text = f"{header},{column}\n{row},{value}"
        result = imp(tmp, "services", text, ok=False)
        assert result.status == 1 and f"row 2: {column}:" in result.err + result.out, (column, result.err)
    result = imp(tmp, "one-time-charges", """
partner,customer,description,quantity,unit_price,date
acme,birch,Cable,1,0.12345,2026-04-02
""", ok=False)
    assert result.status == 1 and "row 2: unit_price:" in result.err + result.out
    imp(tmp, "services", """
partner,customer,code,name,method,meter,unit_price,start_date
acme,birch,u,U,peak,users,0.3333,2026-04-01
acme,birch,v,V,peak,users,0.0015,2026-04-01
""")
    imp(tmp, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
acme,birch,2026-04-01,3,0
""")
    imp(tmp, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
acme,birch,2026-04-02,7,0
""")
    bill("2026-05-01")
    got = {r["service"]: (r["unit_price"], D(r["amount"])) for r in lines() if r["line_type"] == "usage"}
    assert got == {"u": ("0.3333", D("2.33")), "v": ("0.0015", D("0.01"))}



def test_a_late_seat_purchase_and_a_backfilled_first_of_month_inventory(acme):
    """Seats 20.00, committed 2, from 1 April; one seat all April: billable = minimum 2 -> 40.00 (usage line,
    billing-rules 6.1) on the May CI. A seat purchase made on 20 March is recorded late: April's commitment is 3
    (billing-rules 6.2) -> 60.00: the June CI trues April up by +20.00 (billable seat-months 2 -> 3: quantity +1),
    and May is billed at 3 x 20 = 60.00.
    Agents 10.00 from 1 April: 8 agents as of 20 April; the May CI bills May at 8 (80.00). A missed inventory
    of 1 May with 6 agents is filled in: -2 from 1 May = -2 x 10 x 31/31 = -20.00 on the June CI (a change on
    the 1st the normal line did not use)."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,committed_quantity,start_date
acme,birch,seats,Seats,seat_days,20.00,2,2026-04-01
acme,birch,agents,Agents,per_asset,10.00,,2026-04-01
""")
    imp(tmp, "seat-events", """
partner,customer,member,action,at
acme,birch,ann,assign,2026-04-01T00:00:00Z
""")
    inventory(tmp, "2026-04-20", 8)
    bill("2026-05-01")
    imp(tmp, "seat-purchases", """
partner,service,seats,purchased_at
acme,seats,1,2026-03-20T10:00:00Z
""")
    inventory(tmp, "2026-05-01", 6)
    bill("2026-06-01")
    bill("2026-06-01")
    june = sorted((r[2], r[4], r[5], r[6], r[7]) for r in pick(lines(), month="2026-06") if r[4] != "tax")
    assert june == sorted([
        ("seats", "usage", "2026-05", D("3"), D("60.00")),
        ("seats", "true_up", "2026-04", D("1"), D("20.00")),
        ("agents", "recurring", "2026-06", D("6"), D("60.00")),
        ("agents", "proration", "2026-05", D("-2"), D("-20.00")),
    ])


# --- findings -------------------------------------------------------------------------------------------------


def test_an_undated_host_limit_change_does_not_reprice_an_invoiced_first_month(acme):
    """per_host 15.00 from 16 April, 10 hosts: INV 16 April, 150.00 x 15/30 = 75.00. On 20 April the clerk
    re-imports the customer with 20 hosts, no effective_from: April is invoiced (its first-month INV), so the
    change applies from May: May CI 20 x 15 = 300.00 and no true-up of April (the code trues April up by
    +75.00, as if 20 hosts had been in force on 16 April)."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,birch,hosts,Hosts,per_host,15.00,2026-04-16
""")
    bill("2026-04-20")
    assert pick(lines(), "first_month") == [
        ("INV", "2026-04-16", "hosts", "birch", "first_month", "2026-04", D("10"), D("75.00"))]
    imp(tmp, "customers", """
partner,slug,name,host_limit
acme,birch,Birch,20
""")
    bill("2026-05-01")
    may = [r for r in pick(lines(), month="2026-05") if r[4] != "tax"]
    assert may == [("CI", "2026-05-01", "hosts", "birch", "recurring", "2026-05", D("20"), D("300.00"))]


def test_customer_payment_terms_take_effect_on_their_effective_from(acme):
    """Birch's payment terms set to 45 days from 1 August (customers import, dated). The June CI (issued
    1 June, 30 days then) is due 1 July; the code makes it due 16 July."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,birch,fee,Fee,flat,30.00,2026-06-01
""")
    result = imp(tmp, "customers", """
partner,slug,name,payment_terms_days,effective_from
acme,birch,Birch,45,2026-08-01
""")
    bill("2026-06-01")
    assert {(r["issue_date"], r["due_date"]) for r in lines()} == {("2026-06-01", "2026-07-01")}, result.out


def cmq_case(tmp):
    """cmq 5.00, committed 10, users meter, from 1 April; 12 users. April CI: 10 x 5 = 50.00; May CI: 50.00 and
    April's variable usage 2 x 5 = 10.00. Then the commitment is set to 8 from 1 April and the users
    corrected to 7 (both dated back)."""
    imp(tmp, "services", """
partner,customer,code,name,method,meter,unit_price,committed_quantity,start_date
acme,birch,cmq,Cmq,cmq,users,5.00,10,2026-04-01
""")
    imp(tmp, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
acme,birch,2026-04-01,12,0
""")
    bill("2026-05-01")
    imp(tmp, "services", """
partner,customer,code,name,method,meter,unit_price,committed_quantity,start_date,effective_from
acme,birch,cmq,Cmq,cmq,users,5.00,8,2026-04-01,2026-04-01
""")
    imp(tmp, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
acme,birch,2026-04-01,7,0
""")
    bill("2026-06-01")
    return [r for r in lines() if r["line_type"] == "true_up"]


def test_a_cmq_true_up_quantity_is_the_change_of_its_variable_usage(acme):
    """April's variable usage was max(0, 12 - 10) = 2; now max(0, 7 - 8) = 0: the change is -2 (billing-rules 4.11:
    quantity = the change of the month's billed quantity; billing-rules 4.11 names it 'variable usage')."""
    ups = cmq_case(acme)
    april = [r for r in ups if r["period"] == "2026-04"]
    assert [D(r["quantity"]) for r in april] == [D("-2")]
    assert "invoiced 12" not in april[0]["description"]


def test_only_the_variable_usage_of_cmq_is_trued_up(acme):
    """billing-rules 4.11: April's variable usage 10.00 -> 0.00: one true-up of -10.00 (quantity -2); May's commitment
    (advance, 50.00 as invoiced) gets none. The code nets the commitment in: April -20.00 and May -10.00."""
    ups = cmq_case(acme)
    assert sorted((r["period"], D(r["quantity"]), D(r["amount"])) for r in ups) == [("2026-04", D("-2"), D("-10.00"))]


def test_flat_has_no_true_up(acme):
    """Fee 30.00 from 1 April, April invoiced; the price set to 31.00 from 1 April afterwards. The May CI
    bills May at 31.00 and carries no true-up for April (the code adds +1.00)."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,birch,fee,Fee,flat,30.00,2026-04-01
""")
    bill("2026-04-01")
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date,effective_from
acme,birch,fee,Fee,flat,31.00,2026-04-01,2026-04-01
""")
    bill("2026-05-01")
    may = [r for r in pick(lines(), month="2026-05") if r[4] != "tax"]
    assert may == [("CI", "2026-05-01", "fee", "birch", "recurring", "2026-05", D("1"), D("31.00"))]


def test_a_late_true_up_is_not_put_on_a_back_dated_ci(acme):
    """Peak users 2.00, April only (ends 30 April): May CI 24.00. June to November have nothing to bill (no CI,
    billing-rules 6.4). On 10 November a late snapshot (15 users on 10 April) arrives; the nightly run through
    10 November bills the true-up +3 users, +6.00. The code issues it on a CI dated 1 June 2026 and due
    1 July 2026: five months back-dated and overdue the day it is issued. Expected: a CI dated in November
    (the month the run bills), due 30 days after it."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,meter,unit_price,start_date,end_date
acme,birch,users,Users,peak,users,2.00,2026-04-01,2026-04-30
""")
    imp(tmp, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
acme,birch,2026-04-01,12,0
""")
    for day in ("2026-05-01", "2026-06-01", "2026-07-01", "2026-08-01", "2026-09-01", "2026-10-01", "2026-11-01"):
        bill(day)
    imp(tmp, "tenant-usage", """
partner,customer,date,users_count,storage_bytes
acme,birch,2026-04-10,15,0
""")
    bill("2026-11-10")
    ups = [r for r in lines() if r["line_type"] == "true_up"]
    assert [(r["period"], D(r["quantity"]), D(r["amount"])) for r in ups] == [("2026-04", D("3"), D("6.00"))]
    assert ups[0]["issue_date"] >= "2026-11-01" and ups[0]["due_date"] >= "2026-11-10", (
        ups[0]["issue_date"], ups[0]["due_date"])


def test_units_back_filled_on_a_zero_unit_start_date_are_prorated_on_the_next_ci(acme):
    """per_asset 10.00 from 10 April (30 days), no agent then: no first-month INV. 4 agents as of 15 April: the
    May CI bills +4 from 15 April = 4 x 10 x 16/30 = 21.33 (April counted as billed at 0 from 10 April) and
    May 40.00. Then the missed night of 10 April is filled in: 3 agents. The June CI should carry +3 from
    10 April = 3 x 10 x 21/30 = 21.00 and the 15 April change now +1 = 5.33 (21.33 posted: -16.00); April sums
    to (3 x 5 + 4 x 16) x 10/30 = 26.33. The code issues INV dated 10 April (on 1 June, due 10 May) with a
    first_month line of 21.00 instead of the proration line."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,birch,agents,Agents,per_asset,10.00,2026-04-10
""")
    bill("2026-04-10")
    inventory(tmp, "2026-04-15", 4)
    bill("2026-05-01")
    inventory(tmp, "2026-04-10", 3)
    bill("2026-06-01")
    rows = lines()
    assert total(rows, period="2026-04", service="agents") == D("26.33")  # the money is right either way
    assert not [r for r in rows if r["kind"] == "INV"]
    assert sorted((r[5], r[6], r[7]) for r in pick(rows, "proration", month="2026-06")) == [
        ("2026-04", D("-3"), D("-16.00")), ("2026-04", D("3"), D("21.00"))]


def test_a_seat_days_true_up_quantity_is_the_change_of_billed_seat_months(acme):
    """20.00 a seat-month; April: one seat all month, usage 1.0000 seat-month = 20.00 on the May CI. A second
    seat from 16 April recorded late: April is now 45/30 = 1.5 seat-months, 30.00: the June CI's true-up is
    quantity +0.5000 (the billed quantity went 1.0000 -> 1.5000), amount +10.00. The code shows 15 (seat-days)
    next to lines whose quantities are seat-months."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,birch,seats,Seats,seat_days,20.00,2026-04-01
""")
    imp(tmp, "seat-events", """
partner,customer,member,action,at
acme,birch,ann,assign,2026-04-01T00:00:00Z
""")
    bill("2026-05-01")
    imp(tmp, "seat-events", """
partner,customer,member,action,at
acme,birch,bob,assign,2026-04-16T00:00:00Z
""")
    bill("2026-06-01")
    ups = [(r[5], r[6], r[7]) for r in pick(lines(), "true_up")]
    assert ups == [("2026-04", D("0.5"), D("10.00"))]


def test_a_price_dated_back_into_an_invoiced_advance_month_is_listed_not_trued_up(acme):
    """Agents 10.00 from 1 April, 5 agents: April CI 50.00. The price is set to 12.00 from 1 April afterwards.
    per_asset has no true-up (billing-rules 4.11; its prorations correct units, not prices): the May CI bills May
    at 60.00 and nothing for April, and billing-gaps lists April (billed 50.00, expected 60.00) after every later
    run, for the clerk to bill or credit by hand (billing-rules 7, decision (ar))."""
    tmp = acme
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,birch,agents,Agents,per_asset,10.00,2026-04-01
""")
    inventory(tmp, "2026-03-20", 5)
    bill("2026-04-01")
    imp(tmp, "services", """
partner,customer,code,name,method,unit_price,start_date,effective_from
acme,birch,agents,Agents,per_asset,12.00,2026-04-01,2026-04-01
""")
    bill("2026-05-01")
    bill("2026-06-01")
    assert not [r for r in lines() if r["line_type"] == "true_up"]
    result = run_cli("export_report", "billing-gaps", "--period", "2026-06", "--format", "csv")
    assert result.status == 0
    gaps = [(g["service"], g["period"], g["billed"], g["expected"]) for g in csv.DictReader(io.StringIO(result.out))]
    assert gaps == [("agents", "2026-04", "50.00", "60.00")]

"""Review of per-tenant billing (billing-rules 3.4, 3.6, 3.9, 3.11, 4.11, 6.8-6.11, 9.3, 9.4): licenses driven by
users or storage, volume and graduated tiers, suspended tenants, the tenant-usage and tenant-events imports (the
row-by-row engine everywhere, and on PostgreSQL the set-based COPY path of metering/tenant_staging.py), with late,
out-of-order, duplicated and partial snapshots, a tenant moving between customers and storage in decimal GB.

Driven as a billing clerk does (`import_csv`, `run_billing`, `export_report`; tests/clerk.py). Every expected figure
is worked out by hand in the test's docstring, to the cent. The finding was first a strict xfail that failed on the
code as it was; it is fixed and its test passes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.db import connection, transaction

from billing.core.actor import Actor
from billing.core.importing import open_csv, run_import, run_import_file
from metering.models import UsageSnapshot
from partners.api_keys import api_key_create
from partners.models import Partner
from tests.clerk import bill, imp, lines, report

pytestmark = pytest.mark.django_db

_SKIP_SQLITE = pytest.mark.skipif(connection.vendor != "postgresql",
                                  reason="needs PostgreSQL: the COPY path is PostgreSQL's; SQLite reads row by row")


def ON_POSTGRES(test):
    return pytest.mark.postgres(_SKIP_SQLITE(test))


# --- the clerk's tools --------------------------------------------------------------------------------------------
def partner(tmp, customers=("a", "b", "c"), currency="USD", tax="0"):
    imp(tmp, "partners", f"slug,name,currency,tax_rate,payment_terms_days\nacme,Acme MSP,{currency},{tax},30")
    imp(tmp, "customers", "partner,slug,name\n" + "\n".join(f"acme,{c},{c.upper()} Ltd" for c in customers))


def services(tmp, text):
    imp(tmp, "services", text)


def usage(tmp, text, ok=True):
    return imp(tmp, "tenant-usage", "partner,customer,date,users_count,storage_bytes\n" + text.strip(), ok=ok)


def events(tmp, text, ok=True):
    return imp(tmp, "tenant-events", "partner,customer,action,at\n" + text.strip(), ok=ok)


def got(rows, *types, service=None, period=None):
    """(service, customer, line_type, period, quantity, unit_price, amount) of the chosen lines, sorted."""
    return sorted((r["service"], r["customer"], r["line_type"], r["period"], r["quantity"], r["unit_price"],
                   r["amount"])
                  for r in rows if (not types or r["line_type"] in types)
                  and (service is None or r["service"] == service) and (period is None or r["period"] == period))


def ci(rows, month):
    """The lines of the CI dated the 1st of `month` (YYYY-MM)."""
    return [r for r in rows if r["kind"] == "CI" and r["issue_date"] == f"{month}-01"]


def statement(period, column="licenses"):
    return {r["customer"]: r[column] for r in report("statements", "--period", period)}


LICENSES = "partner,customer,code,name,method,unit_price,tiers,tier_mode,storage_per_license_gb,start_date,end_date"


# --- storage: decimal gigabytes (billing-rules 3.6) ------------------------------------------------------------------
def test_storage_counts_decimal_gigabytes_with_a_fractional_gb_per_license(tmp_path):
    """June 2026 (30 days). Partner-level licenses at 2.00, 2.5 GB per license (2,500,000,000 bytes).
    a: 1 June 3 users, 7,500,000,000 bytes = exactly 3 licenses of storage -> max(3, 3) = 3;
       10 June 3 users, 7,500,000,001 bytes -> ceil(3.0000000004) = 4 -> 4; 20 June 2 users, 0 bytes -> 2. Highest 4.
    b: 1 user, 5 GiB = 5,368,709,120 bytes (a clerk's GiB, still counted in GB: 10^9 bytes) -> 2.147... -> 3.
    c: 0 users, 1 byte -> ceil(0.0000000004) = 1.
    Total 4 + 3 + 1 = 8 at 2.00: a 8.00, b 6.00, c 2.00 on the July CI (period 2026-06). Statements alike."""
    partner(tmp_path)
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,2.00,,,2.5,2026-06-01,")
    usage(tmp_path, """
acme,a,2026-06-01,3,7500000000
acme,a,2026-06-10,3,7500000001
acme,a,2026-06-20,2,0
acme,b,2026-06-01,1,5368709120
acme,c,2026-06-01,0,1
""")
    bill("2026-07-01")
    assert got(lines(), "usage") == [
        ("mail", "a", "usage", "2026-06", "4.0000", "2.00", "8.00"),
        ("mail", "b", "usage", "2026-06", "3.0000", "2.00", "6.00"),
        ("mail", "c", "usage", "2026-06", "1.0000", "2.00", "2.00"),
    ]
    assert statement("2026-06") == {"a": "4", "b": "3", "c": "1"}


# --- tiers (billing-rules 3.9, 6.9, decision (n), decision (o)) ---------------------------------------------
def test_volume_tier_price_with_four_places_rounds_each_customer_line_and_graduated_is_one_line(tmp_path):
    """June 2026. Tiers 2:1.00;inf:0.125 (a 4-place price, billing-rules 2). a, b, c: 1 user each -> 3 licenses.
    Volume: the total 3 is in the second tier, every line at 0.125: 0.125 -> 0.13 each (half away from zero,
    rounded per line), 0.39 in all (not 0.38 from the total). Graduated: one line, 2 x 1.00 + 1 x 0.125 = 2.125 ->
    2.13, no unit price, no customer."""
    partner(tmp_path)
    services(tmp_path, LICENSES + """
acme,,vol,Vol,licenses,9.00,2:1.00;inf:0.125,volume,,2026-06-01,
acme,,grad,Grad,licenses,9.00,2:1.00;inf:0.125,graduated,,2026-06-01,
""")
    usage(tmp_path, """
acme,a,2026-06-01,1,0
acme,b,2026-06-01,1,0
acme,c,2026-06-01,1,0
""")
    bill("2026-07-01")
    assert got(lines(), "usage") == [
        ("grad", "", "usage", "2026-06", "3.0000", "", "2.13"),
        ("vol", "a", "usage", "2026-06", "1.0000", "0.1250", "0.13"),
        ("vol", "b", "usage", "2026-06", "1.0000", "0.1250", "0.13"),
        ("vol", "c", "usage", "2026-06", "1.0000", "0.1250", "0.13"),
    ]


def test_licenses_in_jpy_round_to_whole_yen_per_line(tmp_path):
    """JPY has no minor unit (billing-rules 2). Licenses at 0.5 JPY: a 3 users -> 1.5 -> 2; b 1 user -> 0.5 -> 1
    (half away from zero). Graduated tiers 1:100;inf:0.5 over the total 4: 100 + 3 x 0.5 = 101.5 -> 102."""
    partner(tmp_path, customers=("a", "b"), currency="JPY")
    services(tmp_path, LICENSES + """
acme,,mail,Mail,licenses,0.5,,,,2026-06-01,
acme,,grad,Grad,licenses,9,1:100;inf:0.5,graduated,,2026-06-01,
""")
    usage(tmp_path, """
acme,a,2026-06-01,3,0
acme,b,2026-06-01,1,0
""")
    bill("2026-07-01")
    assert [(s, c, D(q), D(a)) for s, c, _, _, q, _, a in got(lines(), "usage")] == [
        ("grad", "", D(4), D(102)), ("mail", "a", D(3), D(2)), ("mail", "b", D(1), D(1))]


# --- suspended tenants (billing-rules 3.6, 6.8) ----------------------------------------------------------------------
def test_suspensions_whole_days_midnight_edges_and_a_month_suspended_throughout(tmp_path):
    """June 2026, licenses at 1.00 (partner-level), no storage factor.
    a: 5 users from 1 June; suspended 10 June 00:00 and unsuspended 10 June 23:00: not suspended for the whole of
       10 June (unsuspending counts the day), so its 50-user snapshot of 10 June counts: 50 (back to 5 on 11 June).
    b: 7 users; suspended 20 May 10:00, unsuspended 1 July 00:00: whole days 21 May .. 30 June: all June counts 0,
       no June line. 1 July counts (the unsuspension's day): July has 7.
    c: 4 users from 1 June; suspended 15 June 00:00 (open): 15 June on counts 0, but 1-14 June count: 4; a
       snapshot of 20 June (40 users, a suspended day) is ignored in June.
    July CI: a 50.00, c 4.00. Statements: peak_users a 50, b 0, c 4; licenses a 50, b 0, c 4."""
    partner(tmp_path)
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,1.00,,,,2026-05-01,")
    usage(tmp_path, """
acme,a,2026-06-01,5,0
acme,a,2026-06-10,50,0
acme,a,2026-06-11,5,0
acme,b,2026-05-01,7,0
acme,c,2026-06-01,4,0
acme,c,2026-06-20,40,0
""")
    events(tmp_path, """
acme,a,suspend,2026-06-10T00:00:00Z
acme,a,unsuspend,2026-06-10T23:00:00Z
acme,b,suspend,2026-05-20T10:00:00Z
acme,b,unsuspend,2026-07-01T00:00:00Z
acme,c,suspend,2026-06-15T00:00:00Z
""")
    bill("2026-08-01")
    rows = lines()
    assert got(ci(rows, "2026-07"), "usage") == [
        ("mail", "a", "usage", "2026-06", "50.0000", "1.00", "50.00"),
        ("mail", "c", "usage", "2026-06", "4.0000", "1.00", "4.00"),
    ]
    # July: a 5, b 7 (from the 1st, the unsuspension's day), c suspended all July: 0
    assert got(ci(rows, "2026-08"), "usage") == [
        ("mail", "a", "usage", "2026-07", "5.0000", "1.00", "5.00"),
        ("mail", "b", "usage", "2026-07", "7.0000", "1.00", "7.00"),
    ]
    assert statement("2026-06", "peak_users") == {"a": "50", "b": "0", "c": "4"}
    assert statement("2026-06") == {"a": "50", "b": "0", "c": "4"}


# --- late, out-of-order, duplicated and partial snapshots (billing-rules 6.11, 4.11, decision (w)) -----------------
def test_a_file_out_of_order_with_a_date_twice_keeps_its_last_row_and_imports_again_unchanged(tmp_path):
    """Rows out of date order; 20 June twice (9 users, then 2): the later row of the file wins (billing-rules
    decision (w)).
    a: 4 users 1-19 June, 2 from 20 June -> licenses 4 -> 4 x 3.00 = 12.00. The summary: 3 rows, 2 created,
    1 unchanged (the superseded row). The same file again: 3 unchanged."""
    partner(tmp_path)
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,3.00,,,,2026-06-01,")
    text = """
acme,a,2026-06-20,9,0
acme,a,2026-06-01,4,0
acme,a,2026-06-20,2,0
"""
    first = usage(tmp_path, text)
    assert "3 rows: 2 created, 0 updated, 1 unchanged" in first.out
    again = usage(tmp_path, text)
    assert "3 rows: 0 created, 0 updated, 3 unchanged" in again.out
    bill("2026-07-01")
    assert got(lines(), "usage") == [("mail", "a", "usage", "2026-06", "4.0000", "3.00", "12.00")]


def test_a_partial_row_is_refused_naming_its_row_and_column_and_nothing_is_written(tmp_path):
    """storage_bytes is required (import-formats 5.6): a row without it is a row error `row 3: storage_bytes: ...`
    (the header is row 1), and the good row 2 is not written either (all or nothing, billing-rules 8.1, 9.6)."""
    partner(tmp_path)
    result = usage(tmp_path, """
acme,a,2026-06-01,4,0
acme,b,2026-06-01,3,
""", ok=False)
    assert result.status == 1
    assert any(line.startswith("row 3: storage_bytes:") for line in result.err.splitlines()), result.err
    assert not UsageSnapshot.objects.exists()


def test_late_snapshot_after_the_invoice_is_trued_up_and_carries_into_the_next_month(tmp_path):
    """Licenses at 3.00 from 1 June, tax 10%. a: 5 users from 1 June. July CI: June 5 x 3.00 = 15.00 (tax 1.50).
    After it, a late snapshot: a has 7 users on 15 June. August CI: July usage 7 x 3.00 = 21.00 (the 15 June
    snapshot carries forward), and a true_up for June: quantity +2, amount 21.00 - 15.00 = +6.00 (billing-rules
    4.11); tax 10% of 27.00 = 2.70. Running August again changes nothing."""
    partner(tmp_path, tax="10")
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,3.00,,,,2026-06-01,")
    usage(tmp_path, "acme,a,2026-06-01,5,0")
    bill("2026-07-01")
    usage(tmp_path, "acme,a,2026-06-15,7,0")
    bill("2026-08-01")
    bill("2026-08-01")
    august = ci(lines(), "2026-08")
    assert got(august, "usage", "tax") == [
        ("", "", "tax", "2026-08", "", "10.00", "2.70"),
        ("mail", "a", "usage", "2026-07", "7.0000", "3.00", "21.00"),
    ]
    (up,) = got(august, "true_up")
    assert (up[0], up[1], up[3], D(up[4]), D(up[6])) == ("mail", "a", "2026-06", D(2), D("6.00"))


def test_late_suspension_of_a_whole_invoiced_month_gives_a_negative_true_up(tmp_path):
    """Licenses at 3.00 from 1 June. a 5 users, b 4 users. July CI: a 15.00, b 12.00. Later the clerk learns b was
    suspended from 31 May 12:00 to 1 July 00:00 (whole days 1-30 June): b's June is 0 licenses. August CI: true_up
    for b, June, quantity -4, amount -12.00; July usage a 15.00, b 12.00 (1 July counts)."""
    partner(tmp_path)
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,3.00,,,,2026-06-01,")
    usage(tmp_path, """
acme,a,2026-06-01,5,0
acme,b,2026-06-01,4,0
""")
    bill("2026-07-01")
    events(tmp_path, """
acme,b,suspend,2026-05-31T12:00:00Z
acme,b,unsuspend,2026-07-01T00:00:00Z
""")
    bill("2026-08-01")
    august = ci(lines(), "2026-08")
    ups = [(s, c, p, D(q), D(a)) for s, c, _, p, q, _, a in got(august, "true_up")]
    assert ups == [("mail", "b", "2026-06", D(-4), D("-12.00"))]
    assert got(august, "usage") == [
        ("mail", "a", "usage", "2026-07", "5.0000", "3.00", "15.00"),
        ("mail", "b", "usage", "2026-07", "4.0000", "3.00", "12.00"),
    ]
    assert statement("2026-06") == {"a": "5", "b": "0", "c": "0"}


def test_late_usage_crossing_a_volume_tier_reprices_every_tenant_of_the_month(tmp_path):
    """Tiers 10:3.00;inf:2.00 (volume). June: a 6, b 4 -> 10 at 3.00: a 18.00, b 12.00 on the July CI.
    Late: c's first snapshot, 1 user from 1 June (a tenant the July CI had no line for). June is now 11 at 2.00:
    a 12.00 (-6.00, quantity 0), b 8.00 (-4.00, quantity 0), c 2.00 (+2.00, quantity +1). August CI carries those
    three true-ups (sum -8.00) and July usage a 12.00, b 8.00, c 2.00."""
    partner(tmp_path)
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,0,10:3.00;inf:2.00,volume,,2026-06-01,")
    usage(tmp_path, """
acme,a,2026-06-01,6,0
acme,b,2026-06-01,4,0
""")
    bill("2026-07-01")
    usage(tmp_path, "acme,c,2026-06-01,1,0")
    bill("2026-08-01")
    august = ci(lines(), "2026-08")
    ups = [(c, p, D(q), D(a)) for _, c, _, p, q, _, a in got(august, "true_up")]
    assert ups == [("a", "2026-06", D(0), D("-6.00")), ("b", "2026-06", D(0), D("-4.00")),
                   ("c", "2026-06", D(1), D("2.00"))]
    assert got(august, "usage") == [
        ("mail", "a", "usage", "2026-07", "6.0000", "2.00", "12.00"),
        ("mail", "b", "usage", "2026-07", "4.0000", "2.00", "8.00"),
        ("mail", "c", "usage", "2026-07", "1.0000", "2.00", "2.00"),
    ]


# --- a tenant moving between customers ----------------------------------------------------------------------------
def test_a_tenant_moving_between_customers_counts_at_each_for_licenses_but_once_for_peak(tmp_path):
    """The mail tenant of 20 users is reported under customer a until 15 June, then under b (a: 0 users from
    16 June, b: 20 users from 16 June). Licenses are each customer's highest day, summed (billing-rules 3.6):
    a 20 + b 20 = 40 at 1.00 -> a 20.00, b 20.00. A partner-level peak sums customers per date first
    (billing-rules 3.4): 20 every day -> 20 x 1.00 = 20.00. Customer-level licenses of a (ca) and of b (cb):
    20.00 each. Statements: peak_users a 20, b 20."""
    partner(tmp_path, customers=("a", "b"))
    services(tmp_path, LICENSES + """
acme,,lic,Lic,licenses,1.00,,,,2026-06-01,
acme,a,ca,Lic A,licenses,1.00,,,,2026-06-01,
acme,b,cb,Lic B,licenses,1.00,,,,2026-06-01,
""")
    imp(tmp_path, "services", "partner,code,name,method,meter,unit_price,start_date\n"
                              "acme,peak,Peak,peak,users,1.00,2026-06-01")
    usage(tmp_path, """
acme,a,2026-06-01,20,0
acme,a,2026-06-16,0,0
acme,b,2026-06-16,20,0
""")
    bill("2026-07-01")
    assert got(lines(), "usage") == [
        ("ca", "a", "usage", "2026-06", "20.0000", "1.00", "20.00"),
        ("cb", "b", "usage", "2026-06", "20.0000", "1.00", "20.00"),
        ("lic", "a", "usage", "2026-06", "20.0000", "1.00", "20.00"),
        ("lic", "b", "usage", "2026-06", "20.0000", "1.00", "20.00"),
        ("peak", "", "usage", "2026-06", "20.0000", "1.00", "20.00"),
    ]
    assert statement("2026-06", "peak_users") == {"a": "20", "b": "20"}


# --- dated terms (billing-rules 3.11) ------------------------------------------------------------------------------
def test_a_price_change_from_july_bills_junes_usage_at_junes_price(tmp_path):
    """Licenses at 2.00 from 1 June; the price becomes 3.00 from 1 July (services import, effective_from).
    a has 4 users all along. July CI: June's usage at June's terms, 4 x 2.00 = 8.00; August CI: July's at 3.00,
    12.00 (usage in arrears uses the terms on the used month's 1st)."""
    partner(tmp_path)
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,2.00,,,,2026-06-01,")
    usage(tmp_path, "acme,a,2026-06-01,4,0")
    imp(tmp_path, "services", "partner,code,name,method,unit_price,start_date,effective_from\n"
                              "acme,mail,Mail,licenses,3.00,2026-06-01,2026-07-01")
    bill("2026-08-01")
    assert got(lines(), "usage") == [
        ("mail", "a", "usage", "2026-06", "4.0000", "2.00", "8.00"),
        ("mail", "a", "usage", "2026-07", "4.0000", "3.00", "12.00"),
    ]


def test_a_late_snapshot_before_the_first_one_fills_the_days_it_carries_into_and_graduated_is_trued_up(tmp_path):
    """Graduated tiers 5:2.00;inf:1.00, from 1 June. a's first snapshot is 10 June, 6 users: June 1-9 count 0
    (before any snapshot), a = 6; b 2 users from 1 June. July CI: one line of 8 = 5 x 2.00 + 3 x 1.00 = 13.00.
    Late: a snapshot of a dated 20 May, 9 users: it carries into 1-9 June, a = 9, total 11 = 10.00 + 6.00 = 16.00.
    August CI: one true_up of June, quantity +3, +3.00 (one total line: no customer)."""
    partner(tmp_path, customers=("a", "b"))
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,0,5:2.00;inf:1.00,graduated,,2026-06-01,")
    usage(tmp_path, """
acme,a,2026-06-10,6,0
acme,b,2026-06-01,2,0
""")
    bill("2026-07-01")
    assert got(lines(), "usage") == [("mail", "", "usage", "2026-06", "8.0000", "", "13.00")]
    usage(tmp_path, "acme,a,2026-05-20,9,0")
    bill("2026-08-01")
    ups = [(s, c, p, D(q), D(a)) for s, c, _, p, q, _, a in got(ci(lines(), "2026-08"), "true_up")]
    assert ups == [("mail", "", "2026-06", D(3), D("3.00"))]


def test_a_storage_allowance_raised_from_august_leaves_invoiced_june_and_july_alone(tmp_path):
    """Licenses at 1.00, 50 GB per license from 1 June. a: 1 user, 500 GB -> 10 licenses. July CI: June 10.00.
    The contract's storage allowance is raised to 100 GB per license from 1 August (services import with
    effective_from 2026-08-01, billing-rules 3.11: contract terms change from a date). June (invoiced at the
    allowance then in force) and July (before the change) stay at 10 licenses: the August CI carries July
    10 x 1.00 = 10.00 and no true-up. Today the allowance is rewritten for every month: a June true_up of -5
    (-5.00) and July billed at 5 licenses."""
    partner(tmp_path)
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,1.00,,,50,2026-06-01,")
    usage(tmp_path, "acme,a,2026-06-01,1,500000000000")
    bill("2026-07-01")
    imp(tmp_path, "services", "partner,code,name,method,unit_price,storage_per_license_gb,start_date,effective_from\n"
                              "acme,mail,Mail,licenses,1.00,100,2026-06-01,2026-08-01")
    bill("2026-08-01")
    august = ci(lines(), "2026-08")
    assert got(august) == [("mail", "a", "usage", "2026-07", "10.0000", "1.00", "10.00")]


# --- the reseller API's tenant calls against the invoice (billing-rules 3.6, 6.8, 11.3 and decision (at)) ------------
def test_api_suspend_unsuspend_and_snapshots_bill_as_the_rules_say(tmp_path, client):
    """Licenses at 2.00 (partner-level) from 1 June. Through /api/reseller, at the instants given:
    1 June 09:00: a 6 users, b 4 users (snapshots dated 1 June).
    20 June 10:00: b suspended (20 June still counts). 22 June 12:00: b's snapshot of 22 June, 30 users (a suspended
    day: it counts 0 that day but carries forward). Forecast then (the July CI if nothing changed): a 6 x 2.00 =
    12.00, b 4 x 2.00 = 8.00 (b open-suspended to the month's end), total 20.00.
    25 June 08:00: b unsuspended (25 June counts, with the carried 30 users). July CI: a 12.00, b 30 x 2.00 = 60.00."""
    partner(tmp_path, customers=("a", "b"))
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,2.00,,,,2026-06-01,")
    _, key = api_key_create(partner=Partner.objects.get(slug="acme"), actor=Actor(label="test"), name="t")
    auth = {"Authorization": f"Bearer {key}"}

    def post(path, body=None):
        return client.post(f"/api/reseller/tenants/{path}", json.dumps(body) if body else "",
                           content_type="application/json", headers=auth)

    with time_machine.travel(datetime(2026, 6, 1, 9, 0, tzinfo=UTC), tick=False):
        assert post("a/usage", {"date": "2026-06-01", "users_count": 6, "storage_bytes": 0}).status_code == 201
        assert post("b/usage", {"date": "2026-06-01", "users_count": 4, "storage_bytes": 0}).status_code == 201
    with time_machine.travel(datetime(2026, 6, 20, 10, 0, tzinfo=UTC), tick=False):
        assert post("b/suspend").status_code == 200
        assert post("b/suspend").status_code == 409
    with time_machine.travel(datetime(2026, 6, 22, 12, 0, tzinfo=UTC), tick=False):
        assert post("b/usage", {"date": "2026-06-22", "users_count": 30, "storage_bytes": 0}).status_code == 201
        forecast = client.get("/api/reseller/forecast", headers=auth).json()
        assert forecast["month"] == "2026-07"
        assert sorted((x["customer"], x["quantity"], x["amount"]) for x in forecast["lines"]) == [
            ("a", "6.0000", "12.00"), ("b", "4.0000", "8.00")]
        assert forecast["total"] == "20.00"
    with time_machine.travel(datetime(2026, 6, 25, 8, 0, tzinfo=UTC), tick=False):
        assert post("b/unsuspend").status_code == 200
    bill("2026-07-01")
    assert got(lines(), "usage") == [
        ("mail", "a", "usage", "2026-06", "6.0000", "2.00", "12.00"),
        ("mail", "b", "usage", "2026-06", "30.0000", "2.00", "60.00"),
    ]


# --- both import paths: the same tables, the same invoices (PostgreSQL: metering/tenant_staging.py) ----------------
USAGE_FILE = """partner,customer,date,users_count,storage_bytes,messages_count
acme,b,2026-06-20,9,0,
acme,a,2026-06-01,4,120000000000,10
acme,a,2026-06-20,9,0,
acme,a,2026-06-20,2,480000000001,
acme,b,2026-05-20,3,0,
acme,b,2026-06-20,9,0,
acme,c,2026-06-03,5,0,
"""
EVENTS_FILE = """partner,customer,action,at
acme,c,suspend,2026-06-10T18:00:00+02:00
acme,c,unsuspend,2026-06-12T00:30:00+02:00
acme,b,suspend,2026-06-19T23:00:00-01:00
"""


@ON_POSTGRES
def test_the_copy_path_and_the_engine_give_the_same_summaries_and_invoices(tmp_path):
    """Licenses at 2.00, 50 GB a license, from 1 June. Usage out of date order, 20 June of a twice (the later row,
    2 users and 480,000,000,001 bytes, wins: ceil(9.60000000002) = 10), b's snapshot of 20 May carried into June;
    events at offsets: c suspended 10 June 16:00Z to 11 June 22:30Z (no whole day), b from 20 June 00:00Z (the
    -01:00 offset), open. June: a max(4, ceil(2.4)) = 4 then 10 -> 10 (20.00); b 3 (its 9 users of 20 June fall on
    suspended days) -> 6.00; c 5 -> 10.00. Each path imports from the same state (the engine's rolled back)."""
    partner(tmp_path)
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,2.00,,,50,2026-06-01,")
    paths = {"tenant-usage": tmp_path / "usage.csv", "tenant-events": tmp_path / "events.csv"}
    paths["tenant-usage"].write_text(USAGE_FILE)
    paths["tenant-events"].write_text(EVENTS_FILE)
    options = {"actor": Actor(label="review"), "source": "file.csv"}

    def engine(kind):
        with open_csv(paths[kind]) as stream:
            return run_import(kind, stream, **options)

    def copy(kind):
        return run_import_file(kind, paths[kind], **options)

    answers = []
    for way in (engine, copy):
        with transaction.atomic():
            summaries = [way(kind) for kind in paths]
            bill("2026-07-01")
            answers.append(([(s.rows, s.created, s.updated, s.unchanged, s.error_count) for s in summaries],
                             [s.staged for s in summaries], got(lines())))
            transaction.set_rollback(True)
    (engine_counts, engine_staged, engine_lines), (copy_counts, copy_staged, copy_lines) = answers
    assert engine_staged == [False, False] and copy_staged == [True, True]
    assert engine_counts == copy_counts == [(7, 5, 0, 2, 0), (3, 3, 0, 0, 0)]
    assert engine_lines == copy_lines == [
        ("mail", "a", "usage", "2026-06", "10.0000", "2.00", "20.00"),
        ("mail", "b", "usage", "2026-06", "3.0000", "2.00", "6.00"),
        ("mail", "c", "usage", "2026-06", "5.0000", "2.00", "10.00"),
    ]


@ON_POSTGRES
def test_late_usage_and_events_by_the_copy_path_are_trued_up_by_the_logged_fact_changes(tmp_path):
    """On PostgreSQL a run measures again only the months a logged fact change reaches (invoicing.FactChange).
    Licenses at 3.00 from 1 June: a 5, b 4 -> July CI a 15.00, b 12.00. Then, by the COPY path, a late snapshot
    (a 8 users on 25 June) and a late suspension of b over the whole of June (31 May 12:00 to 1 July 00:00).
    August CI: true_ups for June a +3 (+9.00), b -4 (-12.00); July usage a 8 x 3.00 = 24.00, b 12.00."""
    partner(tmp_path)
    services(tmp_path, LICENSES + "\nacme,,mail,Mail,licenses,3.00,,,,2026-06-01,")
    usage(tmp_path, "acme,a,2026-06-01,5,0\nacme,b,2026-06-01,4,0")
    bill("2026-07-01")
    late_usage, late_events = tmp_path / "late-usage.csv", tmp_path / "late-events.csv"
    late_usage.write_text("partner,customer,date,users_count,storage_bytes\nacme,a,2026-06-25,8,0\n")
    late_events.write_text("partner,customer,action,at\nacme,b,suspend,2026-05-31T12:00:00Z\n"
                           "acme,b,unsuspend,2026-07-01T00:00:00Z\n")
    options = {"actor": Actor(label="review"), "source": "late.csv"}
    assert run_import_file("tenant-usage", late_usage, **options).staged
    assert run_import_file("tenant-events", late_events, **options).staged
    bill("2026-08-01")
    august = ci(lines(), "2026-08")
    assert [(c, p, D(q), D(a)) for _, c, _, p, q, _, a in got(august, "true_up")] == [
        ("a", "2026-06", D(3), D("9.00")), ("b", "2026-06", D(-4), D("-12.00"))]
    assert got(august, "usage") == [
        ("mail", "a", "usage", "2026-07", "8.0000", "3.00", "24.00"),
        ("mail", "b", "usage", "2026-07", "4.0000", "3.00", "12.00"),
    ]

"""Review of the core metering and rating (billing-rules 1-3 and 6), driven as a billing
clerk does: `import_csv`, `run_billing`, `export_report`. Every expected number is worked out by hand in the
test's docstring. Findings that fail on today's code are marked xfail(strict=True) with the finding."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core import mail
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import examples, run_cli
from tests.clerk import bill, imp, lines, report

pytestmark = pytest.mark.django_db


# --- the clerk's tools --------------------------------------------------------------------------------------
def got(rows, *types, service=None, period=None):
    """(service, customer, line_type, period, quantity, unit_price, amount) of the chosen lines, sorted."""
    out = [(r["service"], r["customer"], r["line_type"], r["period"], r["quantity"], r["unit_price"], r["amount"])
           for r in rows if (not types or r["line_type"] in types) and (service is None or r["service"] == service)
           and (period is None or r["period"] == period)]
    return sorted(out)


def amounts(rows, service=None, period=None, types=None):
    return sorted(D(r["amount"]) for r in rows if (service is None or r["service"] == service)
                  and (period is None or r["period"] == period) and (types is None or r["line_type"] in types))


def setup(tmp_path, currency="USD", tax="0", customers="c1,c2"):
    imp(tmp_path, "partners", f"""
slug,name,currency,tax_rate,payment_terms_days
acme,Acme MSP,{currency},{tax},30
""")
    body = "\n".join(f"acme,{c},{c.upper()}" for c in customers.split(","))
    imp(tmp_path, "customers", "partner,slug,name\n" + body)


def services(tmp_path, text):
    imp(tmp_path, "services", "partner,customer,code,name,method,unit_price,overage_price,committed_quantity,"
        "overage_enabled,start_date,end_date\n" + text.strip())


def seats(tmp_path, text, ok=True):
    return imp(tmp_path, "seat-events", "partner,customer,member,action,at\n" + text.strip(), ok=ok)


def seat_line(rows, code="seats"):
    return got(rows, "usage", "minimum", "overage", service=code)


# --- seat-days (billing-rules 3.1) -----------------------------------------------------------------------------------
SEAT_HISTORY = """
acme,c1,a,assign,2026-06-01T00:00:00Z
acme,c1,b,assign,2026-06-05T10:00:00Z
acme,c1,b,unassign,2026-06-05T11:00:00Z
acme,c1,c,assign,2026-06-10T00:00:00Z
acme,c1,c,unassign,2026-06-12T00:00:00Z
acme,c1,d,assign,2026-06-15T08:00:00Z
acme,c1,d,unassign,2026-06-15T09:00:00Z
acme,c1,d,assign,2026-06-15T10:00:00Z
acme,c1,d,unassign,2026-06-20T05:00:00Z
acme,c1,e,assign,2026-05-20T00:00:00Z
acme,c1,e,unassign,2026-06-01T00:00:00Z
acme,c2,f,assign,2026-06-30T23:59:59Z
acme,c2,g,assign,2026-06-10T12:00:00+14:00
"""


def test_seat_days_counting_rules_whole_month_and_clipped_services(tmp_path):
    """June 2026 has 30 days; 30.00 a seat-month is 1.00 a seat-day, so each amount is its seat-days.
    c1: a 1-30 open (30); b assigned+removed 5 June (1); c 10 June 00:00 .. 12 June 00:00 (10, 11, 12 = 3);
    d 15 June removed and re-assigned that day, removed 20 June 05:00 (15..20 = 6); e from May, removed at
    00:00 on 1 June (1 June counts: 1). c1 = 41. c2: f assigned 23:59:59 on 30 June (1); g at 12:00+14:00 on
    10 June = 22:00 UTC on 9 June (9..30 = 22). c2 = 23. Partner total 64.
    all: partner-level from 1 June -> 64.00; from2: partner-level from 2 June (1 June left out: a and e) -> 62.00;
    c2seats: c2 only, ends on the last day 30 June -> 23.00; c1short: c1 only, ends 29 June (a's 30th out) -> 40.00.
    May (31 days) also has e from 20 May = 12 seat-days, for the services running in May: none here."""
    setup(tmp_path)
    services(tmp_path, """
acme,,all,All,seat_days,30.00,,,,2026-06-01,
acme,,from2,From2,seat_days,30.00,,,,2026-06-02,
acme,c2,c2seats,C2,seat_days,30.00,,,,2026-06-01,2026-06-30
acme,c1,c1short,C1,seat_days,30.00,,,,2026-06-01,2026-06-29
""")
    seats(tmp_path, SEAT_HISTORY)
    bill("2026-07-01")
    rows = lines()
    assert got(rows, "usage") == [
        ("all", "", "usage", "2026-06", "2.1333", "30.00", "64.00"),
        ("c1short", "c1", "usage", "2026-06", "1.3333", "30.00", "40.00"),
        ("c2seats", "c2", "usage", "2026-06", "0.7667", "30.00", "23.00"),
        ("from2", "", "usage", "2026-06", "2.0667", "30.00", "62.00"),
    ]
    stats = {r["customer"]: (r["seat_days"], r["active_users"]) for r in report("statements", "--period", "2026-06")}
    assert stats == {"c1": ("41", "5"), "c2": ("23", "2")}


def test_minimum_prorated_over_service_days_in_a_leap_february(tmp_path):
    """February 2024 has 29 days. 29.00 a seat-month (1.00 a seat-day), overage 58.00 (2.00 a seat-day),
    2 seats committed, overage allowed, running 10..20 February (11 days, end date inclusive).
    Three members hold seats all February: 3 x 11 = 33 seat-days inside the dates. Minimum = 2 x 11/29 =
    0.7586 -> 22 seat-days x 1.00 = 22.00; overage = 11 seat-days x 2.00 = 22.00; total 44.00.
    The March 2024 CI carries it (arrears), and April's CI nothing (the service ended)."""
    setup(tmp_path)
    services(tmp_path, "acme,,seats,Seats,seat_days,29.00,58.00,2,true,2024-02-10,2024-02-20")
    seats(tmp_path, """
acme,c1,a,assign,2024-02-01T00:00:00Z
acme,c1,b,assign,2024-02-01T00:00:00Z
acme,c2,c,assign,2024-02-01T00:00:00Z
""")
    bill("2024-04-01")
    rows = lines()
    assert got(rows, "usage", "minimum", "overage") == [
        ("seats", "", "minimum", "2024-02", "0.7586", "29.00", "22.00"),
        ("seats", "", "overage", "2024-02", "0.3793", "58.00", "22.00"),
    ]
    assert {r["issue_date"] for r in rows if r["service"] == "seats"} == {"2024-03-01"}


def test_minimum_of_a_service_starting_on_the_2nd_and_the_1st(tmp_path):
    """June 2026 (30 days), 3 seats committed at 10.00, no seats used. From 1 June: minimum 3.0000 -> 30.00.
    From 2 June: 3 x 29/30 = 2.9000 -> 29.00. From 30 June: 3 x 1/30 = 0.1000 -> 1.00. July: all 30.00."""
    setup(tmp_path)
    services(tmp_path, """
acme,,s1,S1,seat_days,10.00,,3,true,2026-06-01,
acme,,s2,S2,seat_days,10.00,,3,true,2026-06-02,
acme,,s30,S30,seat_days,10.00,,3,true,2026-06-30,
""")
    bill("2026-08-01")
    rows = lines()
    assert got(rows, "usage") == [
        ("s1", "", "usage", "2026-06", "3.0000", "10.00", "30.00"),
        ("s1", "", "usage", "2026-07", "3.0000", "10.00", "30.00"),
        ("s2", "", "usage", "2026-06", "2.9000", "10.00", "29.00"),
        ("s2", "", "usage", "2026-07", "3.0000", "10.00", "30.00"),
        ("s30", "", "usage", "2026-06", "0.1000", "10.00", "1.00"),
        ("s30", "", "usage", "2026-07", "3.0000", "10.00", "30.00"),
    ]


def test_seat_purchases_take_effect_at_the_next_utc_month_boundary(tmp_path):
    """Committed 1 from 1 April 2026 at 31.00. Purchases: 1 seat at 23:59:59Z on 30 April (May), 1 seat at
    01:00+02:00 on 1 May = 23:00Z on 30 April (May), 2 seats at 00:00Z on 1 May (June, not May).
    April: 1 x 31.00 = 31.00; May: 3 -> 93.00; June: 5 -> 155.00 (no seats used, so one usage line each)."""
    setup(tmp_path)
    services(tmp_path, "acme,,seats,Seats,seat_days,31.00,,1,true,2026-04-01,")
    imp(tmp_path, "seat-purchases", """
partner,service,seats,purchased_at
acme,seats,1,2026-04-30T23:59:59Z
acme,seats,1,2026-05-01T01:00:00+02:00
acme,seats,2,2026-05-01T00:00:00Z
""")
    bill("2026-07-01")
    assert got(lines(), "usage") == [
        ("seats", "", "usage", "2026-04", "1.0000", "31.00", "31.00"),
        ("seats", "", "usage", "2026-05", "3.0000", "31.00", "93.00"),
        ("seats", "", "usage", "2026-06", "5.0000", "31.00", "155.00"),
    ]
    periods = [(r["period"], r["minimum_seat_months"], r["subtotal"]) for r in report("periods")]
    assert periods == [("2026-04", "1.0000", "31.00"), ("2026-05", "3.0000", "93.00"),
                       ("2026-06", "5.0000", "155.00")]


def test_minimum_and_overage_split_rounds_the_total_once(tmp_path):
    """May 2026 (31 days): committed 1 at 10.00, overage 15.00, overage allowed, the service runs on 31 May only.
    Two members hold seats on 31 May: 2 seat-days, 1 committed. Minimum = 1 x 10.00 / 31 = 0.3226 -> 0.32;
    total = (10.00 + 15.00) / 31 = 0.80645 -> 0.81; the overage line is 0.81 - 0.32 = 0.49 (not round(15/31) =
    0.48). Quantities 1/31 = 0.0323 each."""
    setup(tmp_path)
    services(tmp_path, "acme,,seats,Seats,seat_days,10.00,15.00,1,true,2026-05-31,")
    seats(tmp_path, """
acme,c1,a,assign,2026-05-31T08:00:00Z
acme,c2,b,assign,2026-05-31T09:00:00Z
acme,c2,b,unassign,2026-05-31T10:00:00Z
""")
    bill("2026-06-01")
    assert seat_line(lines()) == [
        ("seats", "", "minimum", "2026-05", "0.0323", "10.00", "0.32"),
        ("seats", "", "overage", "2026-05", "0.0323", "15.00", "0.49"),
    ]
    assert [(r["actual_seat_months"], r["minimum_seat_months"], r["billable_seat_months"], r["subtotal"])
            for r in report("periods")] == [("0.0645", "0.0323", "0.0645", "0.81")]


def test_overage_split_even_when_overage_price_is_the_unit_price_and_no_split_without_commitment(tmp_path):
    """June (30 days) at 30.00 (1.00 a seat-day). "eq": committed 1, no overage price, 2 seats all month:
    minimum 1.0000 x 30.00 = 30.00 + overage 1.0000 x 30.00 = 30.00 (billing-rules 6.1: split even at equal prices).
    "none": no commitment, overage price 99.00 ignored: 60 seat-days = 2.0000 x 30.00 = 60.00, one usage line.
    "zero": committed 0 is no commitment: same one line at 30.00."""
    setup(tmp_path)
    services(tmp_path, """
acme,,eq,Eq,seat_days,30.00,,1,true,2026-06-01,
acme,,none,None,seat_days,30.00,99.00,,,2026-06-01,
acme,,zero,Zero,seat_days,30.00,99.00,0,true,2026-06-01,
""")
    seats(tmp_path, """
acme,c1,a,assign,2026-06-01T00:00:00Z
acme,c2,b,assign,2026-06-01T00:00:00Z
""")
    bill("2026-07-01")
    assert got(lines(), "usage", "minimum", "overage") == [
        ("eq", "", "minimum", "2026-06", "1.0000", "30.00", "30.00"),
        ("eq", "", "overage", "2026-06", "1.0000", "30.00", "30.00"),
        ("none", "", "usage", "2026-06", "2.0000", "30.00", "60.00"),
        ("zero", "", "usage", "2026-06", "2.0000", "30.00", "60.00"),
    ]


# --- seat caps and commitments (billing-rules 3.2) -------------------------------------------------------------------
def test_seat_cap_refuses_the_assign_naming_row_and_column(tmp_path):
    """c1 has a cap of 2. a and b hold seats; c's assign (row 4) is refused; after a leaves (row 5) d's assign
    (row 6) is fine. Nothing is imported. Then a file where a leaves and c joins at the same instant (file
    order: unassign first) is accepted, and c holds a seat."""
    setup(tmp_path)
    imp(tmp_path, "customers", "partner,slug,name,seat_cap\nacme,c1,C1,2")
    services(tmp_path, "acme,,seats,Seats,seat_days,30.00,,,,2026-06-01,")
    result = seats(tmp_path, """
acme,c1,a,assign,2026-06-01T09:00:00Z
acme,c1,b,assign,2026-06-01T10:00:00Z
acme,c1,c,assign,2026-06-02T10:00:00Z
acme,c1,a,unassign,2026-06-03T10:00:00Z
acme,c1,d,assign,2026-06-03T11:00:00Z
""", ok=False)
    assert result.status == 1
    assert "row 4: member: seat cap of 2 reached (2 seats active); raise the cap first" in result.err, result.err
    assert "row 6" not in result.err
    seats(tmp_path, """
acme,c1,a,assign,2026-06-01T09:00:00Z
acme,c1,b,assign,2026-06-01T10:00:00Z
acme,c1,a,unassign,2026-06-03T10:00:00Z
acme,c1,c,assign,2026-06-03T10:00:00Z
""")
    bill("2026-07-01")
    # a: 1..3 June (3), b: 1..30 (30), c: 3..30 (28) = 61 seat-days at 1.00
    assert seat_line(lines()) == [("seats", "", "usage", "2026-06", "2.0333", "30.00", "61.00")]


def test_commitment_without_overage_refuses_until_the_purchase_lands(tmp_path):
    """Partner-level commitment 2 without overage from 1 May. a (c1) and b (c2) hold seats. Seats bought at
    00:00 on 1 June count from 1 July. An assign on 15 June (row 4 of the file) is refused; the same assign on
    1 July 00:00 is accepted."""
    setup(tmp_path)
    services(tmp_path, "acme,,seats,Seats,seat_days,30.00,,2,false,2026-05-01,")
    imp(tmp_path, "seat-purchases", "partner,service,seats,purchased_at\nacme,seats,1,2026-06-01T00:00:00Z")
    result = seats(tmp_path, """
acme,c1,a,assign,2026-05-01T09:00:00Z
acme,c2,b,assign,2026-05-01T10:00:00Z
acme,c1,c,assign,2026-06-15T10:00:00Z
""", ok=False)
    assert result.status == 1
    assert ("row 4: member: commitment of 2 seats on seats reached and overage is disabled; buy seats "
            "(effective next month) first") in result.err, result.err
    seats(tmp_path, """
acme,c1,a,assign,2026-05-01T09:00:00Z
acme,c2,b,assign,2026-05-01T10:00:00Z
acme,c1,c,assign,2026-07-01T00:00:00Z
""")


def test_commitment_with_overage_allows_and_bills_overage(tmp_path):
    """Customer-level commitment 1 with overage for c1 at 30.00, overage 45.00, June (30 days). a holds a seat all
    June, b from 16 June (15 days). Other customers' seats are out of scope and never blocked.
    45 seat-days: minimum 30 x 1.00 = 30.00; overage 15 seat-days x 1.50 = 22.50; total 52.50."""
    setup(tmp_path)
    services(tmp_path, "acme,c1,seats,Seats,seat_days,30.00,45.00,1,true,2026-06-01,")
    seats(tmp_path, """
acme,c1,a,assign,2026-06-01T00:00:00Z
acme,c1,b,assign,2026-06-16T12:00:00Z
acme,c2,x,assign,2026-06-01T00:00:00Z
acme,c2,y,assign,2026-06-01T00:00:00Z
""")
    bill("2026-07-01")
    assert seat_line(lines()) == [
        ("seats", "c1", "minimum", "2026-06", "1.0000", "30.00", "30.00"),
        ("seats", "c1", "overage", "2026-06", "0.5000", "45.00", "22.50"),
    ]


# --- peak and cmq (billing-rules 3.4, 3.5) ---------------------------------------------------------------------------
def usage(tmp_path, text):
    imp(tmp_path, "tenant-usage", "partner,customer,date,users_count,storage_bytes\n" + text.strip())


def tenant_events(tmp_path, text):
    imp(tmp_path, "tenant-events", "partner,customer,action,at\n" + text.strip())


def test_peak_suspended_days_and_carry_forward(tmp_path):
    """April 2026. c2: 4 users from a March snapshot (carried into April). c1: 6 users from 1 April; suspended
    at 17:00 on 11 April, unsuspended at 09:00 on 14 April: 12 and 13 April count 0, the 11th and 14th count.
    A snapshot of 9 on 12 April (a suspended day) carries forward from the 14th.
    Partner-level peak (2.00): daily totals 10 (1-11), 4 (12-13), 13 (14-30) -> 13 x 2.00 = 26.00.
    c1-level peak (3.00): 6, 0, 9 -> 9 x 3.00 = 27.00.
    cmq partner-level: 10 committed at 4.00, overage 5.00: April CI recurring 40.00; May CI recurring 40.00
    and variable (13 - 10) x 5.00 = 15.00. cmq2: committed 13: no variable line."""
    setup(tmp_path)
    imp(tmp_path, "services", """
partner,customer,code,name,method,meter,unit_price,overage_price,committed_quantity,start_date
acme,,peak,Peak,peak,users,2.00,,,2026-04-01
acme,c1,peak1,Peak1,peak,users,3.00,,,2026-04-01
acme,,cmq,Cmq,cmq,users,4.00,5.00,10,2026-04-01
acme,,cmq2,Cmq2,cmq,users,4.00,5.00,13,2026-04-01
""")
    usage(tmp_path, """
acme,c2,2026-03-15,4,0
acme,c1,2026-04-01,6,0
acme,c1,2026-04-12,9,0
""")
    tenant_events(tmp_path, """
acme,c1,suspend,2026-04-11T17:00:00Z
acme,c1,unsuspend,2026-04-14T09:00:00Z
""")
    bill("2026-05-01")
    rows = lines()
    assert got(rows, "usage", "recurring", "variable_usage") == [
        ("cmq", "", "recurring", "2026-04", "10.0000", "4.00", "40.00"),
        ("cmq", "", "recurring", "2026-05", "10.0000", "4.00", "40.00"),
        ("cmq", "", "variable_usage", "2026-04", "3.0000", "5.00", "15.00"),
        ("cmq2", "", "recurring", "2026-04", "13.0000", "4.00", "52.00"),
        ("cmq2", "", "recurring", "2026-05", "13.0000", "4.00", "52.00"),
        ("peak", "", "usage", "2026-04", "13.0000", "2.00", "26.00"),
        ("peak1", "c1", "usage", "2026-04", "9.0000", "3.00", "27.00"),
    ]
    stats = {r["customer"]: r["peak_users"] for r in report("statements", "--period", "2026-04")}
    assert stats == {"c1": "9", "c2": "4"}


def test_peak_suspended_at_midnight_all_day_vs_partly(tmp_path):
    """May 2026. c1 has 10 users from 1 May and 20 from a snapshot of 10 May; it is suspended at 00:00 on 10 May
    and unsuspended at 00:00 on 11 May: 10 May is suspended all day (0), 11 May counts (unsuspended that day) ->
    peak 20. c2 has 20 users on 10 May only (5 before and after); suspended at 00:00:01 on 10 May and unsuspended
    at 23:59 on 10 May: not suspended at 00:00, so the 10th counts -> 20. c3 has 30 users on 20 May only, and
    is suspended at 00:00 on 20 May until 00:00 on 21 May: 0 that day -> peak 3 (the other days).
    Customer-level peak services at 1.00: c1 20.00, c2 20.00, c3 3.00."""
    setup(tmp_path, customers="c1,c2,c3")
    imp(tmp_path, "services", """
partner,customer,code,name,method,meter,unit_price,start_date
acme,c1,p1,P1,peak,users,1.00,2026-05-01
acme,c2,p2,P2,peak,users,1.00,2026-05-01
acme,c3,p3,P3,peak,users,1.00,2026-05-01
""")
    usage(tmp_path, """
acme,c1,2026-05-01,10,0
acme,c1,2026-05-10,20,0
acme,c2,2026-05-01,5,0
acme,c2,2026-05-10,20,0
acme,c2,2026-05-11,5,0
acme,c3,2026-05-01,3,0
acme,c3,2026-05-20,30,0
acme,c3,2026-05-21,3,0
""")
    tenant_events(tmp_path, """
acme,c1,suspend,2026-05-10T00:00:00Z
acme,c1,unsuspend,2026-05-11T00:00:00Z
acme,c2,suspend,2026-05-10T00:00:01Z
acme,c2,unsuspend,2026-05-10T23:59:00Z
acme,c3,suspend,2026-05-20T00:00:00Z
acme,c3,unsuspend,2026-05-21T00:00:00Z
""")
    bill("2026-06-01")
    assert got(lines(), "usage") == [
        ("p1", "c1", "usage", "2026-05", "20.0000", "1.00", "20.00"),
        ("p2", "c2", "usage", "2026-05", "20.0000", "1.00", "20.00"),
        ("p3", "c3", "usage", "2026-05", "3.0000", "1.00", "3.00"),
    ]


# --- licenses (billing-rules 3.6, 3.9, 6.9) ---------------------------------------------------------------------------
def test_licenses_storage_driven_volume_tier_bound_inclusive(tmp_path):
    """June 2026, 50 GB a license, tiers 10:5.00;50:4.00;inf:3.00 (volume).
    c1: 3 users, 100,000,000,000 bytes = exactly 2 licenses of storage -> 3. c2: 2 users, 250,000,000,001 bytes ->
    ceil(5.00000000002) = 6 licenses. c3: 1 user -> 1. Total 3 + 6 + 1 = 10: the first tier, 10 included
    -> 5.00 each: 15.00, 30.00, 5.00. Graduated copy: one total line 10 x 5.00 = 50.00, no unit price.
    c4 is suspended all June (from 00:00 on 1 June) with 40 users: 0, no line."""
    setup(tmp_path, customers="c1,c2,c3,c4")
    imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,tiers,tier_mode,storage_per_license_gb,start_date
acme,,mail,Mail,licenses,9.00,10:5.00;50:4.00;inf:3.00,volume,50,2026-06-01
acme,,grad,Grad,licenses,9.00,10:5.00;50:4.00;inf:3.00,graduated,50,2026-06-01
""")
    usage(tmp_path, """
acme,c1,2026-06-01,3,100000000000
acme,c2,2026-06-01,2,250000000001
acme,c3,2026-06-01,1,0
acme,c4,2026-06-01,40,0
""")
    tenant_events(tmp_path, "acme,c4,suspend,2026-06-01T00:00:00Z")
    bill("2026-07-01")
    assert got(lines(), "usage") == [
        ("grad", "", "usage", "2026-06", "10.0000", "", "50.00"),
        ("mail", "c1", "usage", "2026-06", "3.0000", "5.00", "15.00"),
        ("mail", "c2", "usage", "2026-06", "6.0000", "5.00", "30.00"),
        ("mail", "c3", "usage", "2026-06", "1.0000", "5.00", "5.00"),
    ]
    stats = {r["customer"]: r["licenses"] for r in report("statements", "--period", "2026-06")}
    assert stats == {"c1": "3", "c2": "6", "c3": "1", "c4": "0"}


def test_licenses_one_over_the_bound_and_graduated(tmp_path):
    """Same tiers, total 11 (c1 5 users, c2 6 users): volume 4.00 each -> 20.00 + 24.00; graduated
    10 x 5.00 + 1 x 4.00 = 54.00. A suspension at 17:00 on 3 June stops counting from 4 June; c2's 40 users of
    5 June are ignored; unsuspended at 08:00 on 7 June, c2's 6 users of 7 June count (snapshot carried)."""
    setup(tmp_path)
    imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,tiers,tier_mode,start_date
acme,,mail,Mail,licenses,9.00,10:5.00;50:4.00;inf:3.00,volume,2026-06-01
acme,,grad,Grad,licenses,9.00,10:5.00;50:4.00;inf:3.00,graduated,2026-06-01
""")
    usage(tmp_path, """
acme,c1,2026-06-01,5,0
acme,c2,2026-06-01,6,0
acme,c2,2026-06-05,40,0
acme,c2,2026-06-06,6,0
""")
    tenant_events(tmp_path, """
acme,c2,suspend,2026-06-03T17:00:00Z
acme,c2,unsuspend,2026-06-07T08:00:00Z
""")
    bill("2026-07-01")
    assert got(lines(), "usage") == [
        ("grad", "", "usage", "2026-06", "11.0000", "", "54.00"),
        ("mail", "c1", "usage", "2026-06", "5.0000", "4.00", "20.00"),
        ("mail", "c2", "usage", "2026-06", "6.0000", "4.00", "24.00"),
    ]


# --- per_asset, per_host, flat (billing-rules 3.7, 3.8) ---------------------------------------------------------------
def inventory(tmp_path, as_of, count, org="C1"):
    rows = "\n".join(f"a{n},PC-{n},{org}," for n in range(count))
    return imp(tmp_path, "rmm-assets", "agent_id,machine_name,organization,group\n" + rows,
               "--partner", "acme", "--as-of", as_of)


def test_per_host_rounded_daily_rate_101_64_and_day_fraction(tmp_path):
    """billing-rules 3.8: 10 hosts at 15.00 from 10 March 2026 (31 days), rounded_daily_rate: round(150/31) = 4.84 x 21
    = 101.64 on an INV dated 10 March, then 150.00 on the April CI. day_fraction: 150 x 22/31 = 106.4516 -> 106.45.
    flat 30.00 from 16 April (30 days): day_fraction 30 x 15/30 = 15.00; rounded_daily_rate 1.00 x 14 = 14.00."""
    setup(tmp_path)
    imp(tmp_path, "customers", "partner,slug,name,host_limit\nacme,c1,C1,10\nacme,c2,C2,10")
    imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,proration,start_date
acme,c1,hosting,Hosting,per_host,15.00,rounded_daily_rate,2026-03-10
acme,c2,hosting2,Hosting2,per_host,15.00,day_fraction,2026-03-10
acme,,fee,Fee,flat,30.00,,2026-04-16
acme,,fee2,Fee2,flat,30.00,rounded_daily_rate,2026-04-16
""")
    bill("2026-05-01")
    rows = lines()
    assert sorted((r["kind"], r["issue_date"], *got([r])[0]) for r in rows if r["line_type"] != "tax") == [
        ("CI", "2026-04-01", "hosting", "c1", "recurring", "2026-04", "10.0000", "15.00", "150.00"),
        ("CI", "2026-04-01", "hosting2", "c2", "recurring", "2026-04", "10.0000", "15.00", "150.00"),
        ("CI", "2026-05-01", "fee", "", "recurring", "2026-05", "1.0000", "30.00", "30.00"),
        ("CI", "2026-05-01", "fee2", "", "recurring", "2026-05", "1.0000", "30.00", "30.00"),
        ("CI", "2026-05-01", "hosting", "c1", "recurring", "2026-05", "10.0000", "15.00", "150.00"),
        ("CI", "2026-05-01", "hosting2", "c2", "recurring", "2026-05", "10.0000", "15.00", "150.00"),
        ("INV", "2026-03-10", "hosting", "c1", "first_month", "2026-03", "10.0000", "15.00", "101.64"),
        ("INV", "2026-03-10", "hosting2", "c2", "first_month", "2026-03", "10.0000", "15.00", "106.45"),
        ("INV", "2026-04-16", "fee", "", "first_month", "2026-04", "1.0000", "30.00", "15.00"),
        ("INV", "2026-04-16", "fee2", "", "first_month", "2026-04", "1.0000", "30.00", "14.00"),
    ]


def test_first_month_on_a_leap_day_and_the_2nd(tmp_path):
    """flat 29.00 from 29 February 2024 (29 days), day_fraction: 29 x 1/29 = 1.00 on an INV dated 2024-02-29.
    flat 28.00 from 2 February 2026 (28 days): 28 x 27/28 = 27.00. flat 28.00 from 1 February 2026: no INV,
    28.00 on the February CI."""
    setup(tmp_path)
    imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,,leap,Leap,flat,29.00,2024-02-29
acme,,second,Second,flat,28.00,2026-02-02
acme,,first,First,flat,28.00,2026-02-01
""")
    bill("2026-03-01")
    rows = lines()
    firsts = sorted((r["issue_date"], r["service"], r["amount"]) for r in rows if r["line_type"] == "first_month")
    assert firsts == [("2024-02-29", "leap", "1.00"), ("2026-02-02", "second", "27.00")]
    feb = sorted((r["service"], r["amount"]) for r in rows if r["issue_date"] == "2026-02-01"
                 and r["line_type"] == "recurring")
    assert feb == [("first", "28.00"), ("leap", "29.00")]


def test_per_asset_proration_half_away_from_zero(tmp_path):
    """per_asset at 3.75 an agent from 1 April 2026 (30 days). 2 agents as of 1 April, 1 as of 30 April:
    April CI 2 x 3.75 = 7.50; May CI 1 x 3.75 = 3.75 and a proration -1 x 3.75 x 1/30 = -0.125 -> -0.13 (half
    away from zero, billing-rules 6.12). A second service in reverse (1 -> 2 from 30 April): +0.13."""
    setup(tmp_path)
    imp(tmp_path, "customers", "partner,slug,name,rmm_organization\nacme,c1,C1,C1\nacme,c2,C2,C2")
    imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,start_date
acme,c1,down,Down,per_asset,3.75,2026-04-01
acme,c2,up,Up,per_asset,3.75,2026-04-01
""")
    rows1 = "a0,PC-0,C1,\na1,PC-1,C1,\nb0,PB-0,C2,"
    rows2 = "a0,PC-0,C1,\nb0,PB-0,C2,\nb1,PB-1,C2,"
    for as_of, body in (("2026-04-01", rows1), ("2026-04-30", rows2)):
        imp(tmp_path, "rmm-assets", "agent_id,machine_name,organization,group\n" + body,
            "--partner", "acme", "--as-of", as_of)
    bill("2026-05-01")
    assert got(lines(), "recurring", "proration") == [
        ("down", "c1", "proration", "2026-04", "-1.0000", "3.75", "-0.13"),
        ("down", "c1", "recurring", "2026-04", "2.0000", "3.75", "7.50"),
        ("down", "c1", "recurring", "2026-05", "1.0000", "3.75", "3.75"),
        ("up", "c2", "proration", "2026-04", "1.0000", "3.75", "0.13"),
        ("up", "c2", "recurring", "2026-04", "1.0000", "3.75", "3.75"),
        ("up", "c2", "recurring", "2026-05", "2.0000", "3.75", "7.50"),
    ]


def test_per_asset_first_month_uses_start_date_units_and_later_changes_prorate(tmp_path):
    """per_asset 10.00 from 10 June 2026 (30 days), day_fraction. Inventory: 3 agents as of 1 June, 5 as of
    10 June (the start date: used by the first month, posts nothing), 6 as of 20 June.
    INV 2026-06-10: 5 x 10 x 21/30 = 35.00. July CI: 6 x 10 = 60.00 and +1 from 20 June: 10 x 11/30 = 3.6667
    -> 3.67. rounded_daily_rate copy: round(50/30) = 1.67 x (30 - 10) = 33.40; its proration the same 3.67."""
    setup(tmp_path)
    imp(tmp_path, "customers", "partner,slug,name,rmm_organization\nacme,c1,C1,C1")
    imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,proration,start_date
acme,c1,agents,Agents,per_asset,10.00,day_fraction,2026-06-10
acme,c1,agents2,Agents2,per_asset,10.00,rounded_daily_rate,2026-06-10
""")
    inventory(tmp_path, "2026-06-01", 3)
    inventory(tmp_path, "2026-06-10", 5)
    inventory(tmp_path, "2026-06-20", 6)
    bill("2026-07-01")
    assert got(lines(), "recurring", "proration", "first_month") == [
        ("agents", "c1", "first_month", "2026-06", "5.0000", "10.00", "35.00"),
        ("agents", "c1", "proration", "2026-06", "1.0000", "10.00", "3.67"),
        ("agents", "c1", "recurring", "2026-07", "6.0000", "10.00", "60.00"),
        ("agents2", "c1", "first_month", "2026-06", "5.0000", "10.00", "33.40"),
        ("agents2", "c1", "proration", "2026-06", "1.0000", "10.00", "3.67"),
        ("agents2", "c1", "recurring", "2026-07", "6.0000", "10.00", "60.00"),
    ]


# --- currencies with 0 decimals (billing-rules 2) -------------------------------------------------------------------
def test_jpy_amounts_round_to_whole_yen(tmp_path):
    """JPY has no minor unit. per_host 10 hosts at 1500 from 10 March 2026 (31 days), rounded_daily_rate:
    round(15000/31) = 484 x 21 = 10164. day_fraction copy: 15000 x 22/31 = 10645.16 -> 10645.
    seat_days 3000 a seat-month, committed 1 with overage 4500, c1 from 1 April (30 days): a all April,
    b 1 day: minimum 3000; total (30 x 3000 + 1 x 4500)/30 = 3150 -> overage 150. Then 1 seat-day in May
    (31 days) below the minimum: 3000. Tax 10% on the first INV: 1016.4 -> 1016; INV total 11180."""
    setup(tmp_path, currency="JPY", tax="10")
    imp(tmp_path, "customers", "partner,slug,name,host_limit\nacme,c1,C1,10\nacme,c2,C2,10")
    imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,overage_price,committed_quantity,overage_enabled,proration,start_date
acme,c1,hosting,Hosting,per_host,1500,,,,rounded_daily_rate,2026-03-10
acme,c2,hosting2,Hosting2,per_host,1500,,,,day_fraction,2026-03-10
acme,c1,seats,Seats,seat_days,3000,4500,1,true,,2026-04-01
""")
    seats(tmp_path, """
acme,c1,a,assign,2026-04-01T00:00:00Z
acme,c1,b,assign,2026-04-10T05:00:00Z
acme,c1,b,unassign,2026-04-10T06:00:00Z
acme,c1,a,unassign,2026-04-30T12:00:00Z
acme,c1,c,assign,2026-05-31T12:00:00Z
acme,c1,c,unassign,2026-05-31T13:00:00Z
""")
    out = bill("2026-06-01")
    rows = lines()
    firsts = sorted((r["service"], r["amount"]) for r in rows if r["line_type"] == "first_month")
    assert firsts == [("hosting", "10164"), ("hosting2", "10645")]
    assert seat_line(rows) == [
        ("seats", "c1", "minimum", "2026-04", "1.0000", "3000", "3000"),
        ("seats", "c1", "overage", "2026-04", "0.0333", "4500", "150"),
        ("seats", "c1", "usage", "2026-05", "1.0000", "3000", "3000"),
    ]
    inv1 = next(r for r in rows if r["issue_date"] == "2026-03-10" and r["service"] == "hosting")["invoice_number"]
    tax = [r["amount"] for r in rows if r["invoice_number"] == inv1 and r["line_type"] == "tax"]
    assert tax == ["1016"]
    assert f"{inv1}" in out and "total 11180 JPY" in out, out


# --- utilization alerts (billing-rules 3.2) ------------------------------------------------------------------------
@pytest.fixture
def mails(django_capture_on_commit_callbacks):
    def run(fn, *args, **kwargs):
        before = len(mail.outbox)
        with django_capture_on_commit_callbacks(execute=True):
            result = fn(*args, **kwargs)
        return result, [m.subject for m in mail.outbox[before:]]
    return run


def alert_partner(tmp_path):
    imp(tmp_path, "partners", """
slug,name,currency,tax_rate,payment_terms_days,billing_emails
acme,Acme MSP,USD,0,30,bill@acme.example
""")
    imp(tmp_path, "customers", "partner,slug,name\nacme,c1,C1\nacme,c2,C2")


def members(customer, names, at):
    return "\n".join(f"acme,{customer},{n},assign,{at}" for n in names)


def test_alerts_from_8_to_11_send_both_then_none_again(tmp_path, mails):
    """Commitment 10 with overage from 1 November 2026. 8 seats: 80%, nothing. +3 in one file: 110% -> the 90%
    warning and the overage email. +1 more: nothing new. Down to 5 (below 90%) and back up to 9: one new warning."""
    alert_partner(tmp_path)
    services(tmp_path, "acme,,seats,Seats,seat_days,10.00,,10,true,2026-11-01,")
    _, sent = mails(seats, tmp_path, members("c1", "abcdefgh", "2026-11-02T00:00:00Z"))
    assert sent == []
    _, sent = mails(seats, tmp_path, members("c2", "ijk", "2026-11-03T00:00:00Z"))
    assert sorted("overage" in s.lower() for s in sent) == [False, True], sent
    _, sent = mails(seats, tmp_path, members("c2", "l", "2026-11-04T00:00:00Z"))
    assert sent == []
    down = "\n".join(f"acme,c1,{n},unassign,2026-11-05T00:00:00Z" for n in "abcdefg")
    _, sent = mails(seats, tmp_path, down)
    assert sent == []
    _, sent = mails(seats, tmp_path, members("c1", "mnop", "2026-11-06T00:00:00Z"))  # 5 + 4 = 9 of 10
    assert len(sent) == 1 and "overage" not in sent[0].lower(), sent


def test_commitment_made_only_of_purchases_blocks_and_alerts(tmp_path, mails):
    """billing-rules 6.2: committed seats = committed_quantity (blank: 0) + purchases before the month. A service with
    no committed_quantity but 2 seats bought in October has a commitment of 2 from 1 November; overage disabled:
    the 3rd assign in November is refused; the 2nd (2 of 2 = 100%) sends the 90% warning; and November's
    minimum is 2 seat-months (2 x 30.00 = 60.00 with nothing used)."""
    alert_partner(tmp_path)
    services(tmp_path, "acme,,seats,Seats,seat_days,30.00,,,false,2026-10-01,")
    imp(tmp_path, "seat-purchases", "partner,service,seats,purchased_at\nacme,seats,2,2026-10-15T00:00:00Z")
    result = seats(tmp_path, members("c1", "abc", "2026-11-02T00:00:00Z"), ok=False)
    assert result.status == 1 and "row 4: member: commitment of 2 seats on seats reached" in result.err, result.err
    _, sent = mails(seats, tmp_path, members("c1", "ab", "2026-11-02T00:00:00Z"))
    assert len(sent) == 1, sent



# --- huge quantities and tiny prices --------------------------------------------------------------------------
def test_an_amount_too_large_for_an_invoice_is_refused_with_a_clear_line(tmp_path):
    """A peak of 2,147,483,647 users (the largest users_count the import takes) at 1000.00 (a valid price) is
    2,147,483,647,000.00: 13 digits before the point, above what an invoice holds (12). run_billing must say so
    in one clear line (billing-rules 8: one clear line, exit status 1), issue nothing, and leave the reports
    readable; it must never store an issued invoice it cannot read back."""
    setup(tmp_path)
    imp(tmp_path, "services", """
partner,customer,code,name,method,meter,unit_price,start_date
acme,,peak,Peak,peak,users,1000.00,2026-06-01
""")
    usage(tmp_path, "acme,c1,2026-06-01,2147483647,0")
    try:
        result = run_cli("run_billing", "--through", "2026-07-01")
    except Exception as exc:  # a traceback is the finding
        pytest.fail(f"run_billing crashed: {exc!r}")
    assert result.status == 1
    assert "partner 'acme': the CI of 2026-07: a usage line of 2,147,483,647,000.00 USD is too large for one " \
           "invoice" in result.err, result.err
    assert lines() == []


def test_tiny_price_and_large_seat_counts(tmp_path):
    """seat_days at 0.0001 a seat-month, June (30 days): 1 seat-day is 0.0000033 -> 0.00, a zero line left off
    the CI (decision (ab)); peak at 0.0001 of 2,147,483,647 users = 214748.3647 -> 214748.36.
    per_asset at 0.0001 of 3 agents: 0.0003 -> 0.00, left off."""
    setup(tmp_path)
    imp(tmp_path, "services", """
partner,customer,code,name,method,meter,unit_price,start_date
acme,,seats,Seats,seat_days,,0.0001,2026-06-01
acme,,peak,Peak,peak,users,0.0001,2026-06-01
""")
    seats(tmp_path, "acme,c1,a,assign,2026-06-30T10:00:00Z")
    usage(tmp_path, "acme,c1,2026-06-01,2147483647,0")
    bill("2026-07-01")
    assert got(lines(), "usage") == [("peak", "", "usage", "2026-06", "2147483647.0000", "0.0001", "214748.36")]


# --- properties (hypothesis) ----------------------------------------------------------------------------------
BASE = datetime(2026, 5, 28, tzinfo=UTC)
instant = st.builds(lambda d, h, m: BASE + timedelta(days=d, hours=h, minutes=m),
                    st.integers(0, 38), st.sampled_from([0, 0, 0, 9, 23]), st.sampled_from([0, 0, 59]))
member_history = st.lists(instant, min_size=1, max_size=6, unique=True).map(sorted)
history = st.dictionaries(st.sampled_from([("c1", "ann"), ("c1", "bob"), ("c2", "ann"), ("c2", "cy")]),
                          member_history, min_size=1, max_size=4)


def _events(hist):
    rows = []
    for (customer, member), instants in hist.items():
        for n, at in enumerate(instants):
            rows.append((at, f"acme,{customer},{member},{'assign' if n % 2 == 0 else 'unassign'},"
                             f"{at.strftime('%Y-%m-%dT%H:%M:%SZ')}"))
    return rows


def _expected_june(hist, lo=date(2026, 6, 1), hi=date(2026, 6, 30)):
    covered = set()
    for key, instants in hist.items():
        pairs = [(instants[i], instants[i + 1] if i + 1 < len(instants) else None) for i in range(0, len(instants), 2)]
        for start, end in pairs:
            day, last = start.date(), (end.date() if end else hi)
            while day <= min(last, hi):
                if day >= lo:
                    covered.add((key, day))
                day += timedelta(days=1)
    return covered


@settings(max_examples=examples(20), deadline=None, suppress_health_check=list(HealthCheck))
@given(hist=history, split=st.floats(0, 1), shuffle=st.randoms(use_true_random=False))
def test_seat_days_are_distinct_member_dates_however_the_history_is_split(tmp_path_factory, hist, split, shuffle):
    """billing-rules 3.1: seat-days of June = the distinct (member, date) pairs any seat covers, both ends inclusive,
    open seats to 30 June. Importing the history as one file or as two files cut at any instant, rows in any order,
    bills the same: a partner-level service from 1 June at 30.00 (1.00 a seat-day) bills the seat-days, one from
    2 June to 29 June the seat-days of those dates, and the statements count them all."""
    tmp_path = tmp_path_factory.mktemp("h")
    events = _events(hist)
    cut = BASE + timedelta(days=39 * split)
    first = [row for at, row in events if at < cut]
    second = [row for at, row in events if at >= cut]
    shuffle.shuffle(first)
    shuffle.shuffle(second)
    with transaction.atomic():
        setup(tmp_path)
        services(tmp_path, """
acme,,all,All,seat_days,30.00,,,,2026-06-01,
acme,,mid,Mid,seat_days,30.00,,,,2026-06-02,2026-06-29
""")
        for part in (first, second):
            if part:
                seats(tmp_path, "\n".join(part))
        bill("2026-07-01")
        june = _expected_june(hist)
        mid = {(k, d) for k, d in june if date(2026, 6, 2) <= d <= date(2026, 6, 29)}
        billed = {r["service"]: D(r["amount"]) for r in lines() if r["line_type"] == "usage"
                  and r["period"] == "2026-06"}
        assert billed.get("all", D(0)) == len(june)
        assert billed.get("mid", D(0)) == len(mid)
        stats = {r["customer"]: int(r["seat_days"]) for r in report("statements", "--period", "2026-06")}
        assert stats == {c: len([1 for (cc, _), _ in june if cc == c]) for c in ("c1", "c2")}
        transaction.set_rollback(True)




def test_peak_and_cmq_on_the_assets_meter_with_a_suspended_customer(tmp_path):
    """June 2026. Inventories: as of 1 June 3 agents of C1 and 2 of C2; as of 15 June 5 of C1 and 2 of C2.
    c1 is suspended from 00:00 on 14 June to 12:00 on 20 June: whole days 14..19, C1's agents count 0 then.
    Partner-level peak assets at 1.00: 5 (1-13), 2 (14-19), 7 (20-30) -> 7.00. c1-level: 3, 0, 5 -> 5.00.
    cmq partner-level assets, 4 committed at 2.00, overage 3.00: recurring 8.00 (June, July) and variable
    (7 - 4) x 3.00 = 9.00 on the July CI."""
    setup(tmp_path)
    imp(tmp_path, "customers", "partner,slug,name,rmm_organization\nacme,c1,C1,C1\nacme,c2,C2,C2")
    imp(tmp_path, "services", """
partner,customer,code,name,method,meter,unit_price,overage_price,committed_quantity,start_date
acme,,assets,Assets,peak,assets,1.00,,,2026-06-01
acme,c1,assets1,Assets1,peak,assets,1.00,,,2026-06-01
acme,,cmq,Cmq,cmq,assets,2.00,3.00,4,2026-06-01
""")
    for as_of, c1 in (("2026-06-01", 3), ("2026-06-15", 5)):
        body = "\n".join([*(f"a{n},PC-{n},C1," for n in range(c1)), "b0,PB-0,C2,", "b1,PB-1,C2,"])
        imp(tmp_path, "rmm-assets", "agent_id,machine_name,organization,group\n" + body,
            "--partner", "acme", "--as-of", as_of)
    tenant_events(tmp_path, """
acme,c1,suspend,2026-06-14T00:00:00Z
acme,c1,unsuspend,2026-06-20T12:00:00Z
""")
    bill("2026-07-01")
    assert got(lines(), "usage", "recurring", "variable_usage") == [
        ("assets", "", "usage", "2026-06", "7.0000", "1.00", "7.00"),
        ("assets1", "c1", "usage", "2026-06", "5.0000", "1.00", "5.00"),
        ("cmq", "", "recurring", "2026-06", "4.0000", "2.00", "8.00"),
        ("cmq", "", "recurring", "2026-07", "4.0000", "2.00", "8.00"),
        ("cmq", "", "variable_usage", "2026-06", "3.0000", "3.00", "9.00"),
    ]


def test_peak_and_licenses_count_only_days_inside_the_service_dates(tmp_path):
    """June 2026. c1: 50 users from 1 June, 5 from 11 June (carried). c2: 7 users from a May snapshot.
    peak from 15 June (partner-level): 5 + 7 = 12; peak until 10 June: 57; peak from 11 June ending 30 June
    (the last day): 12. licenses c1-only from 10 June ending 11 June: max(50, 5) = 50 at 1.00 -> 50.00;
    licenses partner-level from 12 June: c1 5, c2 7 -> 5.00 and 7.00."""
    setup(tmp_path)
    imp(tmp_path, "services", """
partner,customer,code,name,method,meter,unit_price,start_date,end_date
acme,,late,Late,peak,users,1.00,2026-06-15,
acme,,early,Early,peak,users,1.00,2026-06-01,2026-06-10
acme,,last,Last,peak,users,1.00,2026-06-11,2026-06-30
acme,c1,lic1,Lic1,licenses,,1.00,2026-06-10,2026-06-11
acme,,lic,Lic,licenses,,1.00,2026-06-12,
""")
    usage(tmp_path, """
acme,c2,2026-05-20,7,0
acme,c1,2026-06-01,50,0
acme,c1,2026-06-11,5,0
""")
    bill("2026-07-01")
    assert got(lines(), "usage") == [
        ("early", "", "usage", "2026-06", "57.0000", "1.00", "57.00"),
        ("last", "", "usage", "2026-06", "12.0000", "1.00", "12.00"),
        ("late", "", "usage", "2026-06", "12.0000", "1.00", "12.00"),
        ("lic", "c1", "usage", "2026-06", "5.0000", "1.00", "5.00"),
        ("lic", "c2", "usage", "2026-06", "7.0000", "1.00", "7.00"),
        ("lic1", "c1", "usage", "2026-06", "50.0000", "1.00", "50.00"),
    ]


def test_year_boundary_purchase_offset_and_seats(tmp_path):
    """seat_days 31.00 (1.00 a seat-day in a 31-day month), committed 1 with overage, from 1 December 2025.
    2 seats bought at 23:30-01:00 on 31 December 2025 = 00:30Z on 1 January 2026: effective 1 February, not
    1 January. a: assigned 20:00-05:00 on 31 December = 01:00Z on 1 January (not December); b: 30 December
    12:00Z to 1 January 00:00Z (30, 31 December and 1 January).
    December: 2 seat-days < minimum 31 -> 31.00. January: a 31 + b 1 = 32 seat-days, minimum 31 (commitment 1):
    minimum 31.00 + overage 1.00. February (28 days): commitment 1 + 2 = 3 seat-months -> 93.00 (a's 28
    seat-days are 1 seat-month, below it)."""
    setup(tmp_path)
    services(tmp_path, "acme,,seats,Seats,seat_days,31.00,,1,true,2025-12-01,")
    imp(tmp_path, "seat-purchases", "partner,service,seats,purchased_at\nacme,seats,2,2025-12-31T23:30:00-01:00")
    seats(tmp_path, """
acme,c1,a,assign,2025-12-31T20:00:00-05:00
acme,c2,b,assign,2025-12-30T12:00:00Z
acme,c2,b,unassign,2026-01-01T00:00:00Z
""")
    bill("2026-03-01")
    assert seat_line(lines()) == [
        ("seats", "", "minimum", "2026-01", "1.0000", "31.00", "31.00"),
        ("seats", "", "overage", "2026-01", "0.0323", "31.00", "1.00"),
        ("seats", "", "usage", "2025-12", "1.0000", "31.00", "31.00"),
        ("seats", "", "usage", "2026-02", "3.0000", "31.00", "93.00"),
    ]
    stats = {r["customer"]: r["seat_days"] for r in report("statements", "--period", "2025-12")}
    assert stats == {"c1": "0", "c2": "2"}



def test_licenses_of_the_largest_storage_the_import_takes(tmp_path):
    """tenant-usage takes storage_bytes up to 9,223,372,036,854,775,807 (import-formats 5.6). At 50 GB a license
    that is ceil(9223372036854775807 / 50,000,000,000) = ceil(184467440.737...) = 184,467,441 licenses; at
    0.0001 a license: 18446.7441 -> 18446.74 on the July CI. The statements say 184467441 too. (On PostgreSQL the
    ceiling once added per - 1 to the storage first: bigint out of range, the partner not billed.)"""
    setup(tmp_path)
    imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,storage_per_license_gb,start_date
acme,,mail,Mail,licenses,0.0001,50,2026-06-01
""")
    usage(tmp_path, "acme,c1,2026-06-01,1,9223372036854775807")
    bill("2026-07-01")
    assert got(lines(), "usage") == [("mail", "c1", "usage", "2026-06", "184467441.0000", "0.0001", "18446.74")]
    stats = {r["customer"]: r["licenses"] for r in report("statements", "--period", "2026-06")}
    assert stats == {"c1": "184467441", "c2": "0"}


def test_alerts_judge_the_scope_and_services_running_today(tmp_path, mails):
    """Customer-level commitment 2 on c1 (overage allowed) from 1 November 2026; a partner-level commitment 1 that
    ended on 30 November 2026; one that starts in 2030. c2 gets 5 seats: out of c1's scope and the other two are
    not running today (7 December 2026): nothing. c1 gets 2 of 2: one warning (100% >= 90%, not above)."""
    alert_partner(tmp_path)
    services(tmp_path, """
acme,c1,seats,Seats,seat_days,10.00,,2,true,2026-11-01,
acme,,old,Old,seat_days,10.00,,1,true,2026-01-01,2026-11-30
acme,,future,Future,seat_days,10.00,,1,true,2030-01-01,
""")
    _, sent = mails(seats, tmp_path, members("c2", "abcde", "2026-12-01T00:00:00Z"))
    assert sent == []
    _, sent = mails(seats, tmp_path, members("c1", "xy", "2026-12-01T00:00:00Z"))
    assert len(sent) == 1 and "overage" not in sent[0].lower(), sent


def test_per_asset_change_on_the_1st_detected_after_the_ci_prorates_the_whole_month(tmp_path):
    """per_asset 10.00 from 1 May 2026. 5 agents as of 1 May. The June CI bills 5 (50.00). Then an inventory
    dated 1 June with 7 agents arrives late: the June normal line did not use it, so the July CI carries a
    proration +2 x 10.00 x 30/30 = 20.00 for June, and July's 7 x 10.00 = 70.00. Then a missed night of 31 May
    (the last day of a 31-day month) with 4 agents: the August CI carries -1 x 10.00 x 1/31 = -0.32258 -> -0.32
    for May; June (7 from its 1st, already billed so) is unchanged."""
    setup(tmp_path)
    imp(tmp_path, "customers", "partner,slug,name,rmm_organization\nacme,c1,C1,C1")
    imp(tmp_path, "services", "partner,customer,code,name,method,unit_price,start_date\n"
        "acme,c1,agents,Agents,per_asset,10.00,2026-05-01")
    inventory(tmp_path, "2026-05-01", 5)
    bill("2026-06-01")
    inventory(tmp_path, "2026-06-01", 7)
    bill("2026-07-01")
    assert got(lines(), "recurring", "proration") == [
        ("agents", "c1", "proration", "2026-06", "2.0000", "10.00", "20.00"),
        ("agents", "c1", "recurring", "2026-05", "5.0000", "10.00", "50.00"),
        ("agents", "c1", "recurring", "2026-06", "5.0000", "10.00", "50.00"),
        ("agents", "c1", "recurring", "2026-07", "7.0000", "10.00", "70.00"),
    ]
    inventory(tmp_path, "2026-05-31", 4)
    bill("2026-08-01")
    assert got([r for r in lines() if r["issue_date"] == "2026-08-01"], "recurring", "proration") == [
        ("agents", "c1", "proration", "2026-05", "-1.0000", "10.00", "-0.32"),
        ("agents", "c1", "recurring", "2026-08", "7.0000", "10.00", "70.00"),
    ]


def test_tiers_on_per_host_and_per_asset_prorations(tmp_path):
    """per_host c1 with 10 hosts, volume tiers 10:5.00;inf:4.00: 10 is inside the first tier (bound inclusive)
    -> 50.00 a month. per_asset c1 graduated 2:10.00;inf:5.00 from 1 June 2026: 2 agents on 1 June -> 20.00;
    4 agents from 16 June: 2 x 10 + 2 x 5 = 30.00, a proration of (30 - 20) x 15/30 = 5.00 on the July CI,
    shown without a unit price (graduated); July 30.00."""
    setup(tmp_path)
    imp(tmp_path, "customers", "partner,slug,name,host_limit,rmm_organization\nacme,c1,C1,10,C1")
    imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,tiers,tier_mode,start_date
acme,c1,hosts,Hosts,per_host,9.00,10:5.00;inf:4.00,volume,2026-06-01
acme,c1,agents,Agents,per_asset,9.00,2:10.00;inf:5.00,graduated,2026-06-01
""")
    inventory(tmp_path, "2026-06-01", 2)
    inventory(tmp_path, "2026-06-16", 4)
    bill("2026-07-01")
    assert got(lines(), "recurring", "proration") == [
        ("agents", "c1", "proration", "2026-06", "2.0000", "", "5.00"),
        ("agents", "c1", "recurring", "2026-06", "2.0000", "", "20.00"),
        ("agents", "c1", "recurring", "2026-07", "4.0000", "", "30.00"),
        ("hosts", "c1", "recurring", "2026-06", "10.0000", "5.00", "50.00"),
        ("hosts", "c1", "recurring", "2026-07", "10.0000", "5.00", "50.00"),
    ]

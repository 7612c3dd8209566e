"""Review of seats end to end (billing-rules 3.1, 3.2, 3.3, 6.1, 6.2, 9.4, 10.3, 10.4, 11.4): seat-days worked
by hand against the billing run's invoices and exports, live enforcement through the HTTP API, the portal, the
admin and the seat-events import, seat purchases effective at the next UTC month, utilization alerts, and the
audit of every seat change."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse

from billing.core.actor import Actor
from partners.api_keys import api_key_create
from partners.models import AuditLog, Role, SeatAssignment, SeatPurchase, UtilizationAlert
from partners.seating import SeatRuleError
from partners.services import alerts_evaluate_all, seat_assign, seat_purchase_create
from partners.tests.factories import (
    CustomerFactory,
    PartnerFactory,
    PartnerUserFactory,
    ServiceFactory,
    UserFactory,
)
from tests.clerk import bill, imp, lines, report

pytestmark = pytest.mark.django_db
STAFF = Actor(label="review")


# --- a clerk's three months, by hand ---------------------------------------------------------------------------
PARTNERS = """
slug,name,currency,tax_rate,payment_terms_days,billing_emails
hfour,H Four MSP,USD,8.25,30,billing@hfour.example
"""
CUSTOMERS = """
partner,slug,name,seat_cap
hfour,alder,Alder Clinic,
hfour,birch,Birch Legal,
"""
SERVICES = """
partner,code,name,method,unit_price,overage_price,committed_quantity,overage_enabled,start_date
hfour,seats,Seats,seat_days,12.00,15.00,3,true,2026-03-10
"""
PURCHASES = """
partner,service,seats,purchased_at
hfour,seats,2,2026-03-31T23:30:00-02:00
hfour,seats,1,2026-05-01T00:00:00Z
"""
EVENTS = """
partner,customer,member,action,at
hfour,alder,ana,assign,2026-03-01T08:00:00Z
hfour,alder,ben,assign,2026-03-20T12:00:00Z
hfour,alder,ben,unassign,2026-03-25T00:00:00Z
hfour,birch,cy,assign,2026-03-31T23:59:59Z
hfour,alder,ben,assign,2026-04-01T00:00:00Z
hfour,alder,ben,unassign,2026-04-10T18:00:00Z
hfour,alder,ben,assign,2026-04-10T19:00:00Z
hfour,birch,dee,assign,2026-04-15T00:00:00+05:00
"""


@pytest.fixture
def clerk_months(tmp_path):
    for kind, text in (("partners", PARTNERS), ("customers", CUSTOMERS), ("services", SERVICES),
                       ("seat-purchases", PURCHASES), ("seat-events", EVENTS)):
        imp(tmp_path, kind, text)
    bill("2026-06-01")
    return lines("--partner", "hfour")


def _seat_lines(rows):
    return sorted((r["invoice_number"], r["issue_date"], r["line_type"], r["period"], r["quantity"], r["unit_price"],
                   r["amount"]) for r in rows if r["service"] == "seats" or r["line_type"] == "tax")


def test_three_months_of_seat_days_by_hand(clerk_months):
    """billing-rules 3.1, 6.1, 6.2, 2 (tax), worked by hand. unit 12.00, overage 15.00, 3 committed, start 10 March.

    March (31 days; the service runs 10..31 = 22 days): ana 10..31 = 22 (her days before the start are not
    billed), ben 20..25 = 6 (removed at 00:00 on the 25th: the 25th counts), cy 31 = 1. 29 seat-days,
    actual 29/31 = 0.9355; minimum 3 x 22/31 = 2.1290; billable = minimum; 66 x 12.00 / 31 = 25.548 -> 25.55,
    one `usage` line, on the CI of 1 April; tax 8.25% of 25.55 = 2.1079 -> 2.11.
    The purchase of 2 seats at 2026-03-31T23:30-02:00 is 1 April 01:30 UTC: effective 1 May, not 1 April.

    April (30): ana 30, ben 30 (the 10th once), cy 30, dee from 2026-04-15T00:00+05:00 = 14 April 19:00 UTC,
    so 14..30 = 17. 107 seat-days, actual 3.5667 > minimum 3: exact (90 x 12 + 17 x 15) / 30 = 44.50;
    `minimum` 3.0000 x 12.00 = 36.00 and `overage` 0.5667 x 15.00 = 8.50. Tax 8.25% of 44.50 = 3.67125 -> 3.67.

    May (31): 4 seats all month = 124 seat-days, actual 4; committed 3 + 2 = 5 (the 1-seat purchase at
    00:00 on 1 May counts from June); one `usage` line 5.0000 x 12.00 = 60.00. Tax 4.95.
    """
    assert _seat_lines(clerk_months) == sorted([
        ("CI-0001", "2026-04-01", "usage", "2026-03", "2.1290", "12.00", "25.55"),
        ("CI-0001", "2026-04-01", "tax", "2026-04", "", "8.25", "2.11"),
        ("CI-0002", "2026-05-01", "minimum", "2026-04", "3.0000", "12.00", "36.00"),
        ("CI-0002", "2026-05-01", "overage", "2026-04", "0.5667", "15.00", "8.50"),
        ("CI-0002", "2026-05-01", "tax", "2026-05", "", "8.25", "3.67"),
        ("CI-0003", "2026-06-01", "usage", "2026-05", "5.0000", "12.00", "60.00"),
        ("CI-0003", "2026-06-01", "tax", "2026-06", "", "8.25", "4.95"),
    ])


def test_periods_and_statements_of_the_three_months(clerk_months):
    """billing-rules 5 and decision (h): the periods report shows what the CIs billed; statements count every date,
    outside the service's dates too (billing-rules 6.10). March statements: alder = ana 31 + ben 6 = 37 seat-days
    (37/31 = 1.1935 seat-months, 2 users), birch = cy 1 (0.0323)."""
    periods = sorted((r["period"], r["actual_seat_months"], r["minimum_seat_months"], r["billable_seat_months"],
                      r["subtotal"], r["invoice_number"]) for r in report("periods", "--partner", "hfour"))
    assert periods == [
        ("2026-03", "0.9355", "2.1290", "2.1290", "25.55", "CI-0001"),
        ("2026-04", "3.5667", "3.0000", "3.5667", "44.50", "CI-0002"),
        ("2026-05", "4.0000", "5.0000", "5.0000", "60.00", "CI-0003"),
    ]
    march = {r["customer"]: (r["seat_days"], r["seat_months"], r["active_users"])
             for r in report("statements", "--period", "2026-03", "--partner", "hfour")}
    assert march == {"alder": ("37", "1.1935", "2"), "birch": ("1", "0.0323", "1")}


def test_late_seats_and_a_late_purchase_are_trued_up_on_the_next_ci(clerk_months, tmp_path):
    """billing-rules 4.11 (true-ups), 3.1, 6.2. After the three CIs above, the clerk learns of:
    - eli at birch from 20 April 00:00 to 21 April 00:00: 2 more April seat-days (20 and 21). April becomes 109
      seat-days: exact (90 x 12 + 19 x 15) / 30 = 45.50, was 44.50: true_up +1.00 for 2026-04, quantity
      109/30 - 107/30 = 0.0667;
    - a purchase of 1 seat at 2026-04-10T10:00Z (effective 1 May): May committed 6, minimum 6 x 12 = 72.00,
      was 60.00: true_up +12.00 for 2026-05, quantity +1.0000 (billable 5 -> 6).
    June (30 days): committed 3 + 2 + 1 + 1 = 7 (the 00:00 1 May seat counts from June); 4 seats all month =
    4.0 actual; usage line 7.0000 x 12.00 = 84.00. The July CI: 1.00 + 12.00 + 84.00 = 97.00, tax 8.25% =
    8.0025 -> 8.00.
    """
    imp(tmp_path, "seat-events", """
partner,customer,member,action,at
hfour,birch,eli,assign,2026-04-20T00:00:00Z
hfour,birch,eli,unassign,2026-04-21T00:00:00Z
""")
    imp(tmp_path, "seat-purchases", """
partner,service,seats,purchased_at
hfour,seats,1,2026-04-10T10:00:00Z
""")
    bill("2026-07-01")
    july = [r for r in lines("--partner", "hfour") if r["issue_date"] == "2026-07-01"]
    assert sorted((r["line_type"], r["period"], r["quantity"], r["amount"]) for r in july) == sorted([
        ("true_up", "2026-04", "0.0667", "1.00"),
        ("true_up", "2026-05", "1.0000", "12.00"),
        ("usage", "2026-06", "7.0000", "84.00"),
        ("tax", "2026-07", "", "8.00"),
    ])


def test_a_late_unassign_is_trued_up_downwards(clerk_months, tmp_path):
    """billing-rules 4.11 (a true-up may be negative), 9.4 (a new event merged into history). After the three
    CIs, dee's seat turns out to have ended at 2026-04-20T12:00Z (it was open since 14 April 19:00 UTC).
    April: dee 14..20 = 7 seat-days instead of 17, so 97: exact (90 x 12 + 7 x 15) / 30 = 39.50, invoiced 44.50:
    true_up -5.00, quantity 97/30 - 107/30 = -0.3333. May: 3 seats x 31 = 93, actual 3 < minimum 5: still 60.00,
    no true-up. June: 3 x 30 = 90, committed 6 (3 + 2 + the 1 bought at 00:00 on 1 May): 6 x 12 = 72.00.
    July CI: -5.00 + 72.00 = 67.00, tax 8.25% = 5.5275 -> 5.53."""
    imp(tmp_path, "seat-events", """
partner,customer,member,action,at
hfour,birch,dee,unassign,2026-04-20T12:00:00Z
""")
    bill("2026-07-01")
    july = [r for r in lines("--partner", "hfour") if r["issue_date"] == "2026-07-01"]
    assert sorted((r["line_type"], r["period"], r["quantity"], r["amount"]) for r in july) == sorted([
        ("true_up", "2026-04", "-0.3333", "-5.00"),
        ("usage", "2026-06", "6.0000", "72.00"),
        ("tax", "2026-07", "", "5.53"),
    ])


def test_customer_level_service_ending_mid_month(tmp_path):
    """billing-rules 3.1 (scope, minimum prorated by the days the service runs, only its dates billed), 4.1 (a CI's
    due date is its earliest child's: the customer's own terms). Customer elm (10-day terms) has its own service:
    9.90, 2 committed, no overage, 1 March .. 12 April. oak's seats are not in its scope.
    March (31): fay 31 + gus 16..31 = 16 -> 47 seat-days, actual 1.5161 < minimum 2: usage 2.0000 x 9.90 = 19.80.
    April (30): the service runs 1..12: minimum 2 x 12/30 = 0.8; fay 12 + gus 1..3 = 3 -> 15, actual 0.5:
    usage 0.8000, 24 x 9.90 / 30 = 7.92. May: the service has ended, nothing. CIs due 10 days after their date."""
    imp(tmp_path, "partners", "slug,name,currency,tax_rate,payment_terms_days\nelmco,Elm Co,USD,0,30")
    imp(tmp_path, "customers", "partner,slug,name,seat_cap,payment_terms_days\nelmco,elm,Elm,3,10\nelmco,oak,Oak,,")
    imp(tmp_path, "services", """
partner,customer,code,name,method,unit_price,committed_quantity,overage_enabled,start_date,end_date
elmco,elm,elm-seats,Elm seats,seat_days,9.90,2,false,2026-03-01,2026-04-12
""")
    imp(tmp_path, "seat-events", """
partner,customer,member,action,at
elmco,elm,fay,assign,2026-03-01T10:00:00Z
elmco,oak,hal,assign,2026-03-05T10:00:00Z
elmco,elm,gus,assign,2026-03-16T00:00:00Z
elmco,elm,gus,unassign,2026-04-03T09:00:00Z
""")
    bill("2026-06-01")
    got = sorted((r["issue_date"], r["due_date"], r["customer"], r["line_type"], r["period"], r["quantity"],
                  r["amount"]) for r in lines("--partner", "elmco"))
    assert got == [
        ("2026-04-01", "2026-04-11", "elm", "usage", "2026-03", "2.0000", "19.80"),
        ("2026-05-01", "2026-05-11", "elm", "usage", "2026-04", "0.8000", "7.92"),
    ]


def test_a_commitment_dated_mid_month_bills_from_the_next_1st_but_admits_seats_the_same_day(tmp_path):
    """billing-rules 3.11 (a commitment change takes effect on any day; usage is billed with the terms in force on
    the used month's 1st), 3.2 and decision (b) (an import checks the commitment in force on each event's date).
    3 committed at 10.00 without overage from 1 April, raised to 5 from 15 April. Four seats on 14 April: the
    fourth is refused; four on 16 April pass (the fourth needs the new 5). April: 4 x 15 = 60 seat-days, actual
    2 < minimum 3 (in force on 1 April): 30.00. May: 4 x 31 = 124, actual 4 < minimum 5: 50.00."""
    imp(tmp_path, "partners", "slug,name,currency\ncomm,Comm MSP,USD")
    imp(tmp_path, "customers", "partner,slug,name\ncomm,kay,Kay")
    imp(tmp_path, "services", """
partner,code,name,method,unit_price,committed_quantity,overage_enabled,start_date
comm,seats,Seats,seat_days,10.00,3,false,2026-04-01
""")
    imp(tmp_path, "services", """
partner,code,name,method,unit_price,committed_quantity,overage_enabled,start_date,effective_from
comm,seats,Seats,seat_days,10.00,5,false,2026-04-01,2026-04-15
""")
    early = imp(tmp_path, "seat-events", """
partner,customer,member,action,at
comm,kay,k1,assign,2026-04-14T10:00:00Z
comm,kay,k2,assign,2026-04-14T10:00:00Z
comm,kay,k3,assign,2026-04-14T10:00:00Z
comm,kay,k4,assign,2026-04-14T10:00:00Z
""", ok=False)
    assert early.status == 1 and "row 5: member: commitment of 3 seats on seats reached" in early.err
    imp(tmp_path, "seat-events", """
partner,customer,member,action,at
comm,kay,k1,assign,2026-04-16T10:00:00Z
comm,kay,k2,assign,2026-04-16T10:00:00Z
comm,kay,k3,assign,2026-04-16T10:00:00Z
comm,kay,k4,assign,2026-04-16T10:00:00Z
""")
    bill("2026-06-01")
    got = sorted((r["issue_date"], r["line_type"], r["period"], r["quantity"], r["amount"])
                 for r in lines("--partner", "comm"))
    assert got == [("2026-05-01", "usage", "2026-04", "3.0000", "30.00"),
                   ("2026-06-01", "usage", "2026-05", "5.0000", "50.00")]


def test_an_import_judges_the_commitment_of_each_events_utc_date(tmp_path):
    """billing-rules 3.2, 6.2, 9.4, decision (b): 2 committed without overage, 1 seat bought on 20 April (in force
    from 1 May). c at 2026-05-01T01:00+02:00 is 30 April 23:00 UTC: April's commitment of 2 is full, refused;
    d at 1 May 00:00 UTC fits May's 3; e on 2 May is the 4th, refused. Each error names its row and column, and
    nothing is written (billing-rules 8.1: all or nothing)."""
    imp(tmp_path, "partners", "slug,name\npi,Pi MSP")
    imp(tmp_path, "customers", "partner,slug,name\npi,x,X")
    imp(tmp_path, "services", "partner,code,name,method,unit_price,committed_quantity,overage_enabled,start_date\n"
                              "pi,seats,Seats,seat_days,20.00,2,false,2026-01-01")
    imp(tmp_path, "seat-purchases", "partner,service,seats,purchased_at\npi,seats,1,2026-04-20T10:00:00Z")
    result = imp(tmp_path, "seat-events", """
partner,customer,member,action,at
pi,x,a,assign,2026-04-02T00:00:00Z
pi,x,b,assign,2026-04-03T00:00:00Z
pi,x,c,assign,2026-05-01T01:00:00+02:00
pi,x,d,assign,2026-05-01T00:00:00Z
pi,x,e,assign,2026-05-02T00:00:00Z
""", ok=False)
    assert result.status == 1
    assert "row 4: member: commitment of 2 seats on seats reached and overage is disabled; buy seats (effective " \
           "next month) first at 2026-04-30T23:00:00Z" in result.err
    assert "row 6: member: commitment of 3 seats on seats reached" in result.err
    assert "row 5" not in result.err
    assert not SeatAssignment.objects.exists()
    assert not AuditLog.objects.filter(action="seat.import").exists()


def test_no_commitment_bills_every_seat_month_at_unit_price_rounded_once_half_up(tmp_path):
    """billing-rules 3.1 (no commitment, blank or 0: every seat-month at unit_price, overage_price unused), 2 and
    6.12 (rounded once, half away from zero). February 2026 has 28 days; one seat given and taken back on 10
    February = 1 seat-day. `blank`: 11.90 x 1/28 = 0.425 exactly -> 0.43 (not 0.42). `zero`: 10.00 x 1/28 =
    0.3571 -> 0.36. Both one `usage` line of quantity 0.0357, never the overage price."""
    imp(tmp_path, "partners", "slug,name\nfeb,Feb MSP")
    imp(tmp_path, "customers", "partner,slug,name\nfeb,c,C")
    imp(tmp_path, "services", """
partner,code,name,method,unit_price,overage_price,committed_quantity,overage_enabled,start_date
feb,blank,Blank,seat_days,11.90,99.00,,false,2026-02-01
feb,zero,Zero,seat_days,10.00,50.00,0,true,2026-02-01
""")
    imp(tmp_path, "seat-events", "partner,customer,member,action,at\nfeb,c,ana,assign,2026-02-10T08:00:00Z\n"
                                 "feb,c,ana,unassign,2026-02-10T17:00:00Z")
    bill("2026-03-01")
    assert sorted((r["service"], r["line_type"], r["period"], r["quantity"], r["unit_price"], r["amount"])
                  for r in lines("--partner", "feb")) == [
        ("blank", "usage", "2026-02", "0.0357", "11.90", "0.43"),
        ("zero", "usage", "2026-02", "0.0357", "10.00", "0.36"),
    ]

# --- live enforcement: API, portal, admin ------------------------------------------------------------------------
NOW = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def shop(frozen):
    """Partner `shop`: customer x (cap 5) with its own commitment of 2 without overage, customer y, and a
    partner-level commitment of 1 with overage; an API key."""
    partner = PartnerFactory(slug="shop")
    x = CustomerFactory(partner=partner, slug="x", name="Xeno", seat_cap=5)
    y = CustomerFactory(partner=partner, slug="y", name="Yarrow")
    ServiceFactory(partner=partner, code="xs", customer=x, committed_quantity=2, overage_enabled=False,
                   start_date=date(2026, 1, 1))
    ServiceFactory(partner=partner, code="all", committed_quantity=1, overage_enabled=True,
                   start_date=date(2026, 1, 1))
    key_obj, key = api_key_create(partner=partner, actor=STAFF, name="psa")
    return {"partner": partner, "x": x, "y": y, "key": key, "prefix": key_obj.prefix}


def _api(client, key):
    headers = {"Authorization": f"Bearer {key}"}

    def post(customer, member, **extra):
        return client.post("/api/partner/seats", json.dumps({"customer": customer, "member": member}),
                           content_type="application/json", headers={**headers, **extra})

    def delete(path):
        return client.delete(f"/api/partner/seats/{path}", headers=headers)

    def get(path):
        return client.get(path, headers=headers)

    return post, delete, get


def test_api_customer_commitment_blocks_its_customer_only_and_every_change_is_audited(client, shop):
    """billing-rules 3.2 (a customer-level commitment counts that customer only), 11.4 (409 with the reason, 204 on
    removal, surrounding spaces ignored), and every seat change audited with who made it (billing-rules 3.2)."""
    post, delete, _ = _api(client, shop["key"])
    assert post("x", "a").status_code == 201
    assert post("x", "b").status_code == 201
    third = post("x", "c")
    assert third.status_code == 409
    assert third.json() == {"detail": "commitment of 2 seats on xs reached and overage is disabled; buy seats "
                                      "(effective next month) first"}
    assert post("y", "  Ana Berg  ").status_code == 201  # y is only under the partner-level one, with overage
    assert delete("y/%20Ana%20Berg%20").status_code == 204
    assert not SeatAssignment.objects.filter(member__name="c").exists()
    label = f"api key {shop['prefix']}"
    entries = list(AuditLog.objects.filter(actor_label=label).order_by("pk").values_list("action", "object_repr"))
    assert entries == [("seat.assign", "a @ x from 2026-05-15 12:00"), ("seat.assign", "b @ x from 2026-05-15 12:00"),
                       ("seat.assign", "Ana Berg @ y from 2026-05-15 12:00"),
                       ("seat.unassign", "Ana Berg @ y from 2026-05-15 12:00")]


def test_api_forecast_projects_open_seats_to_the_months_end(client, shop):
    """billing-rules decision (at), 11.3. On 15 May (31 days): a and b at x from today = 17 days each = 34; one
    seat at y given and taken back today = 1. xs: 34 seat-days, actual 1.0968 < minimum 2: 2 x 20.00 = 40.00.
    all: 35 seat-days, actual 1.1290 > minimum 1: exact 35 x 20 / 31 = 22.5806 -> 22.58, shown as minimum 20.00
    and overage 0.1290 / 2.58."""
    post, delete, get = _api(client, shop["key"])
    post("x", "a"), post("x", "b"), post("y", "z")
    delete("y/z")
    forecast = get("/api/reseller/forecast").json()
    assert sorted((r["service"], r["line_type"], r["period"], r["quantity"], r["amount"])
                  for r in forecast["lines"]) == [
        ("all", "minimum", "2026-05", "1.0000", "20.00"),
        ("all", "overage", "2026-05", "0.1290", "2.58"),
        ("xs", "usage", "2026-05", "2.0000", "40.00"),
    ]
    assert forecast["total"] == "62.58"


def test_api_dashboard_total_does_not_promise_seats_no_service_has(client, shop):
    """billing-rules 11.4: the dashboard gives seats available before the commitment is reached, in total and per
    service. With a and b at x, xs (2 committed, no overage) has 0 available and the partner-level `all` (1
    committed) has 0 available and is in overage; the total adds the commitments (1 + 2 = 3) against the
    partner's 2 seats and shows 1 available and 67% utilization, though the next seat at x is refused and the next
    at y is overage. A clerk reading the total is misled."""
    post, _, get = _api(client, shop["key"])
    post("x", "a"), post("x", "b")
    board = get("/api/partner/dashboard").json()
    assert [s["available"] for s in board["services"]] == [0, 0]
    assert board["available"] == 0


def test_portal_refusal_names_the_rule_and_writes_nothing(frozen):
    """billing-rules 3.2: the cap denies from every entry point with a clear error; the seat given is audited with
    the portal user's name and source."""
    partner = PartnerFactory(slug="pq")
    x = CustomerFactory(partner=partner, slug="x", name="Xeno", seat_cap=1)
    ServiceFactory(partner=partner, code="seats", committed_quantity=5, overage_enabled=False)
    user = UserFactory(username="owner-pq")
    PartnerUserFactory(user=user, partner=partner, role=Role.OWNER)
    client = Client()
    client.force_login(user)
    client.post(reverse("portal:seat_assign", args=[x.pk]), {"member": "ann"})
    page = client.post(reverse("portal:seat_assign", args=[x.pk]), {"member": "bob"}, follow=True)
    assert [str(m) for m in page.context["messages"]][-1:] == [
        "bob was not given a seat: seat cap of 1 reached (1 seats active); raise the cap first."]
    assert list(SeatAssignment.objects.values_list("member__name", "source")) == [("ann", "portal")]
    assert list(AuditLog.objects.filter(action__startswith="seat.").values_list("action", "actor_label")) == [
        ("seat.assign", "owner-pq (portal)")]


def test_admin_refusal_is_a_form_error_and_writes_nothing(frozen):
    """billing-rules 3.2: a commitment without overage denies the admin's "Assign a seat" too, as a form error."""
    partner = PartnerFactory(slug="adm")
    x = CustomerFactory(partner=partner, slug="x")
    ServiceFactory(partner=partner, code="seats", committed_quantity=1, overage_enabled=False)
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(staff)
    assert client.post("/admin/partners/seatassignment/add/", {"customer": x.pk, "member_name": "a"}).status_code == 302
    page = client.post("/admin/partners/seatassignment/add/", {"customer": x.pk, "member_name": "b"})
    assert page.status_code == 200
    assert "commitment of 1 seats on seats reached and overage is disabled" in page.content.decode()
    assert list(SeatAssignment.objects.values_list("member__name", flat=True)) == ["a"]
    assert AuditLog.objects.filter(action="seat.assign").count() == 1


def test_admin_add_seats_refuses_an_impossible_count():
    """billing-rules 3.2 ("Add seats"), 9.2 (whole numbers in range): the seat-purchases import refuses
    `seats: must be at most 2147483647` and the portal offers at most 10,000, but the admin's Add seats form has no
    upper bound, so a slip of the keyboard commits a partner to billions of seats (SQLite) or crashes the page
    (PostgreSQL: DataError, Server Error 500)."""
    partner = PartnerFactory(slug="big")
    service = ServiceFactory(partner=partner, code="seats", committed_quantity=5)
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(staff)
    page = client.post("/admin/partners/seatpurchase/add/", {"service": service.pk, "seats": "3000000000"})
    assert page.status_code == 200  # the form again, with an error on seats
    assert not SeatPurchase.objects.exists()


# --- purchases and alerts over a month boundary -----------------------------------------------------------------
def test_a_purchase_takes_effect_on_the_1st_and_alerts_cross_again(django_capture_on_commit_callbacks):
    """billing-rules 3.2 (Add seats from the next UTC month), 3.3 (one email per crossing; the daily job picks up a
    purchase taking effect on the 1st). 10 committed with overage. 20 May: 9 seats = 90%: one warning. 5 seats
    bought, refused live no seat (overage on). 1 June 00:15: 9 of 15 = 60%, the warning clears, no email. 2 June:
    5 more = 14 of 15 = 93%: a second warning; 2 more = 16 of 15: the overage email. 3 emails in all."""
    partner = PartnerFactory(slug="alrt", billing_emails="ops@alrt.example")
    service = ServiceFactory(partner=partner, code="seats", committed_quantity=10, overage_enabled=True)
    customer = CustomerFactory(partner=partner)
    with time_machine.travel(datetime(2026, 5, 20, 12, tzinfo=UTC), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(9):
                seat_assign(customer=customer, member_name=f"m{n}", actor=STAFF)
        purchase = seat_purchase_create(service=service, seats=5, actor=STAFF)
    assert purchase.effective_date == date(2026, 6, 1)
    assert [m.subject for m in mail.outbox] == ["[Alrt MSP] Service0: seat utilization reached 90%".replace(
        "Service0", service.name)]
    with time_machine.travel(datetime(2026, 6, 1, 0, 15, tzinfo=UTC), tick=False):
        alerts_evaluate_all()
    assert not UtilizationAlert.objects.filter(cleared_at__isnull=True).exists()
    with time_machine.travel(datetime(2026, 6, 2, 9, tzinfo=UTC), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(9, 14):
                seat_assign(customer=customer, member_name=f"m{n}", actor=STAFF)
        assert len(mail.outbox) == 2 and "93%" in mail.outbox[1].subject
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(14, 16):
                seat_assign(customer=customer, member_name=f"m{n}", actor=STAFF)
    assert len(mail.outbox) == 3 and "overage has started" in mail.outbox[2].subject
    assert "16 seats are assigned against a commitment of 15" in mail.outbox[2].body


def test_an_import_from_8_to_11_of_10_sends_both_alerts_and_a_dry_run_sends_none(tmp_path,
                                                                               django_capture_on_commit_callbacks):
    """billing-rules 3.3: going from 8 to 11 seats in one step sends both emails; alerts judge the state now.
    A --dry-run writes nothing and sends nothing (billing-rules 8.1)."""
    imp(tmp_path, "partners", "slug,name,billing_emails\nbulk,Bulk MSP,ops@bulk.example")
    imp(tmp_path, "customers", "partner,slug,name\nbulk,c,C")
    imp(tmp_path, "services", "partner,code,name,method,unit_price,committed_quantity,overage_enabled,start_date\n"
                              "bulk,seats,Seats,seat_days,20.00,10,true,2026-01-01")
    header = "partner,customer,member,action,at\n"
    with django_capture_on_commit_callbacks(execute=True):
        imp(tmp_path, "seat-events", header + "".join(f"bulk,c,m{n},assign,2026-03-0{n + 1}T10:00:00Z\n"
                                                      for n in range(8)))
    assert mail.outbox == []
    three = header + "".join(f"bulk,c,n{n},assign,2026-04-0{n + 1}T10:00:00Z\n" for n in range(3))
    with django_capture_on_commit_callbacks(execute=True):
        imp(tmp_path, "seat-events", three, "--dry-run")
    assert mail.outbox == [] and not UtilizationAlert.objects.exists()
    assert SeatAssignment.objects.count() == 8
    with django_capture_on_commit_callbacks(execute=True):
        imp(tmp_path, "seat-events", three)
    assert sorted(m.subject.split(": ", 1)[1] for m in mail.outbox) == [
        "overage has started", "seat utilization reached 110%"]


def test_a_seat_import_audit_entry_lists_the_seats_it_wrote(tmp_path):
    """billing-rules decision (ax): "An import writes one entry per customer it touched (seat.import): who ran it,
    the file, the counts of assigns and unassigns, and in its details every seat it wrote (member, from, until)
    and every seat already recorded that it ended". The entry holds the counts, the file and `replaced` only;
    the seats written are findable only by the seat rows' source, which the next import that rebuilds a seat
    replaces with its own file name."""
    imp(tmp_path, "partners", "slug,name\naud,Aud MSP")
    imp(tmp_path, "customers", "partner,slug,name\naud,c,C")
    imp(tmp_path, "seat-events", "partner,customer,member,action,at\naud,c,ana,assign,2026-03-01T10:00:00Z\n"
                                 "aud,c,ana,unassign,2026-03-05T10:00:00Z\naud,c,ben,assign,2026-03-02T10:00:00Z")
    entry = AuditLog.objects.get(action="seat.import")
    assert entry.after["assigned"] == 2 and entry.after["unassigned"] == 1
    written = json.dumps(entry.after)
    assert "ana" in written and "ben" in written and "2026-03-05T10:00:00" in written


# --- concurrency (PostgreSQL row locks) ------------------------------------------------------------------------
def _race(jobs):
    """Run each job in its own thread (its own database connection), released together; their outcomes."""
    barrier = threading.Barrier(len(jobs))
    outcomes = [None] * len(jobs)

    def work(i, job):
        try:
            barrier.wait(timeout=30)
            outcomes[i] = job()
        except Exception as exc:  # an outcome to assert on
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_assigns_racing_for_the_last_seat_under_a_cap_do_not_both_win():
    """billing-rules 3.2: N parallel assignments against K free seats admit exactly K; here 2 against the last 1
    of a cap of 3, through the live service, each thread on its own connection."""
    customer = CustomerFactory(seat_cap=3)
    for name in ("a", "b"):
        seat_assign(customer=customer, member_name=name, actor=STAFF)
    outcomes = _race([lambda n=n: seat_assign(customer=customer, member_name=n, actor=STAFF) for n in ("c", "d")])
    won = [o for o in outcomes if isinstance(o, SeatAssignment)]
    lost = [o for o in outcomes if isinstance(o, SeatRuleError)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert str(lost[0]) == "seat cap of 3 reached (3 seats active); raise the cap first"
    assert SeatAssignment.objects.active().filter(customer=customer).count() == 3
    assert AuditLog.objects.filter(action="seat.assign").count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_api_requests_racing_for_the_last_committed_seat_across_customers():
    """billing-rules 3.2 and 11.4: a partner-level commitment of 2 without overage, 1 seat held; two API requests
    for two different customers race for the last one: one 201, one 409 with the reason."""
    partner = PartnerFactory(slug="race")
    CustomerFactory(partner=partner, slug="p"), CustomerFactory(partner=partner, slug="q")
    ServiceFactory(partner=partner, code="seats", committed_quantity=2, overage_enabled=False)
    seat_assign(customer=partner.customers.get(slug="p"), member_name="held", actor=STAFF)
    _, key = api_key_create(partner=partner, actor=STAFF)

    def post(customer):
        return lambda: Client().post("/api/partner/seats", json.dumps({"customer": customer, "member": "new"}),
                                     content_type="application/json", headers={"Authorization": f"Bearer {key}"})

    outcomes = _race([post("p"), post("q")])
    assert sorted(o.status_code for o in outcomes) == [201, 409], outcomes
    assert SeatAssignment.objects.active().filter(partner=partner).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_idempotency_key_sent_twice_at_once_gives_one_seat():
    """billing-rules 11.2 (writes done once: concurrent repeats wait for the first and get its answer again)."""
    partner = PartnerFactory(slug="idem")
    CustomerFactory(partner=partner, slug="p")
    ServiceFactory(partner=partner, code="seats", committed_quantity=5, overage_enabled=False)
    _, key = api_key_create(partner=partner, actor=STAFF)

    def post():
        return Client().post("/api/partner/seats", json.dumps({"customer": "p", "member": "once"}),
                             content_type="application/json",
                             headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "k-1"})

    outcomes = _race([post, post])
    assert [o.status_code for o in outcomes] == [201, 201], outcomes
    assert sorted(o.get("Idempotent-Replayed", "") for o in outcomes) == ["", "true"]
    assert SeatAssignment.objects.filter(partner=partner).count() == 1

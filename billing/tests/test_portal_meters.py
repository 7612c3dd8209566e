"""The portal for every kind of partner (issue 19, item 3): what each partner is billed on, its meters this month
so far (billing/portal/meters.py), the forecast of its next CI (billing-rules decision (at)), and the pages that
follow: the dashboard, Billing and customer pages show the partner's own meters, and the pages of a method it is
not billed on are neither linked nor served.

One partner per billing kind, built with factories, on 20 May 2026 (UTC): seats, peak users, licenses by users,
licenses by storage, RMM agents, hosts, flat fees and a cmq commitment."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from billing.core.actor import Actor
from billing.portal.meters import billed_on, customer_meters, partner_meters
from invoicing.forecast import next_ci_forecast
from invoicing.models import Invoice, InvoiceKind, InvoiceState, LineType
from invoicing.services import billing_run
from metering.models import Suspension, SyncRun, UsageSnapshot
from metering.services import AgentRow, inventory_apply
from partners.models import Meter, Method, Partner, Role, SeatPurchase
from partners.services import service_update
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    PartnerUserFactory,
    SeatAssignmentFactory,
    SeatPurchaseFactory,
    ServiceFactory,
    UserFactory,
)
from tests.examples import replay

pytestmark = pytest.mark.django_db

TODAY = date(2026, 5, 20)
NOW = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
START = date(2026, 4, 1)
GB = 10**9
KINDS = ("seats", "peak", "licenses", "storage", "agents", "hosts", "flat", "cmq")


@pytest.fixture(autouse=True)
def _may_20th():
    with time_machine.travel(NOW, tick=False):
        yield


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def usage(customer, day: date, users: int, storage_gb: int = 0):
    UsageSnapshot.objects.create(customer=customer, date=day, users_count=users, storage_bytes=storage_gb * GB)


def price(amount: str, partner: Partner) -> Money:
    return Money(Decimal(amount), partner.currency)


def build_seats() -> Partner:
    """4 seats committed at 20.00 (overage 25.00): 3 seats since April, 3 more from 5 May; 2 bought on 3 May."""
    partner = PartnerFactory(slug="seaty", tax_rate=Decimal("10"))
    service = ServiceFactory(partner=partner, code="seats", name="Helpdesk seats", committed_quantity=4,
                             overage_enabled=True, overage_price=price("25.00", partner), start_date=START)
    oak = CustomerFactory(partner=partner, slug="oak", name="Oakridge", seat_cap=10)
    for name in ("ana", "ben", "cleo"):
        SeatAssignmentFactory(member=MemberFactory(customer=oak, name=name), assigned_at=at(START))
    for name in ("dev", "eve", "fay"):
        SeatAssignmentFactory(member=MemberFactory(customer=oak, name=name), assigned_at=at(date(2026, 5, 5)))
    SeatPurchaseFactory(service=service, seats=2, purchased_at=at(date(2026, 5, 3)))
    return partner


def build_peak() -> Partner:
    """Peak users at 2.00: Acme 5 users in April, 6 from 1 May, 9 from the 12th; Zenith 4 from May: May's peak
    is 13."""
    partner = PartnerFactory(slug="peaky")
    ServiceFactory(partner=partner, code="backup", name="M365 backup", method=Method.PEAK, meter=Meter.USERS,
                   unit_price=price("2.00", partner), start_date=START)
    acme = CustomerFactory(partner=partner, slug="acme", name="Acme")
    zenith = CustomerFactory(partner=partner, slug="zenith", name="Zenith")
    usage(acme, date(2026, 4, 1), 5)  # April: 5 users, billed on the May CI
    usage(acme, date(2026, 5, 1), 6)
    usage(acme, date(2026, 5, 12), 9)
    usage(zenith, date(2026, 5, 1), 4)
    return partner


def build_licenses() -> Partner:
    """Licenses by users, tiers 10:5.00;50:4.00;inf:3.00: C1 4, C2 10, C3 3 then suspended from 10 May 10:00."""
    partner = PartnerFactory(slug="lici", tax_rate=Decimal("20"), currency="EUR")
    ServiceFactory(partner=partner, code="mail", name="Mail archive", method=Method.LICENSES,
                   unit_price=price("5.00", partner), tiers="10:5.00;50:4.00;inf:3.00", start_date=START)
    for slug, users in (("c1", 4), ("c2", 10), ("c3", 3)):
        customer = CustomerFactory(partner=partner, slug=slug, name=slug.upper())
        usage(customer, date(2026, 4, 1), users)
    Suspension(customer=partner.customers.get(slug="c3"), suspended_at=at(date(2026, 5, 10), 10)).save()
    return partner


def build_storage() -> Partner:
    """Licenses with 50 GB each: 9 users and 480 GB is max(9, ceil(9.6)) = 10, driven by storage."""
    partner = PartnerFactory(slug="stori")
    ServiceFactory(partner=partner, code="archive", name="Archive", method=Method.LICENSES,
                   unit_price=price("3.00", partner), storage_per_license_gb=Decimal("50"), start_date=START)
    mill = CustomerFactory(partner=partner, slug="millbrook", name="Millbrook")
    usage(mill, date(2026, 4, 1), 8, 120)  # April: 8 licenses, billed on the May CI
    usage(mill, date(2026, 5, 1), 9, 480)
    return partner


def build_agents() -> Partner:
    """Per agent at 10.00 for Acme's organization: 5 agents as of 1 April, 8 as of 10 May; a nightly sync."""
    partner = PartnerFactory(slug="agenty")
    acme = CustomerFactory(partner=partner, slug="acme-a", name="Acme Agents", rmm_organization="ACME")
    ServiceFactory(partner=partner, customer=acme, code="endpoints", name="Managed endpoints",
                   method=Method.PER_ASSET, unit_price=price("10.00", partner), start_date=START)
    actor = Actor(label="test")

    def inventory(n):
        return {f"a{i}": AgentRow(f"a{i}", f"PC-{i}", "ACME", "") for i in range(n)}

    inventory_apply(partner=partner, as_of=START, agents=inventory(5), actor=actor, source="april.csv")
    inventory_apply(partner=partner, as_of=date(2026, 5, 10), agents=inventory(8), actor=actor, source="may.csv")
    SyncRun.objects.create(partner=partner, as_of=TODAY, trigger="nightly", status="ok", agents_seen=8,
                           started_at=at(TODAY, 2), finished_at=at(TODAY, 2))
    return partner


def build_hosts() -> Partner:
    partner = PartnerFactory(slug="hosty", tax_rate=Decimal("7.5"))
    harbour = CustomerFactory(partner=partner, slug="harbour", name="Harbourside", host_limit=10)
    ServiceFactory(partner=partner, customer=harbour, code="hosting", name="Video meetings",
                   method=Method.PER_HOST, unit_price=price("15.00", partner), start_date=START)
    return partner


def build_flat() -> Partner:
    partner = PartnerFactory(slug="flatty")
    CustomerFactory(partner=partner, slug="vista", name="Vista")
    ServiceFactory(partner=partner, code="support", name="Support plan", method=Method.FLAT,
                   unit_price=price("45.00", partner), start_date=START)
    return partner


def build_cmq() -> Partner:
    """10 users committed at 4.00, overage 5.00; the peak is 13 (the peak example): 3 above."""
    partner = PartnerFactory(slug="cmqy", tax_rate=Decimal("8"))
    ServiceFactory(partner=partner, code="users", name="Committed users", method=Method.CMQ, meter=Meter.USERS,
                   unit_price=price("4.00", partner), overage_price=price("5.00", partner), committed_quantity=10,
                   start_date=START)
    acme = CustomerFactory(partner=partner, slug="acme-c", name="Acme C")
    usage(acme, date(2026, 5, 1), 9)
    usage(acme, date(2026, 5, 12), 13)
    return partner


BUILDERS = {"seats": build_seats, "peak": build_peak, "licenses": build_licenses, "storage": build_storage,
            "agents": build_agents, "hosts": build_hosts, "flat": build_flat, "cmq": build_cmq}


@pytest.fixture
def partners() -> dict[str, Partner]:
    return {kind: build() for kind, build in BUILDERS.items()}


def login(partner: Partner, role: str = Role.OWNER) -> Client:
    user = UserFactory(username=f"{partner.slug}-{role}")
    PartnerUserFactory(user=user, partner=partner, role=role)
    client = Client()
    client.force_login(user)
    return client


# --- what each partner is billed on ------------------------------------------------------------------------

def test_each_partner_is_billed_on_its_own_methods_in_words(partners):
    sentences = {kind: billed_on(p.pk, TODAY).sentence for kind, p in partners.items()}
    assert sentences == {
        "seats": "Billed monthly on seat-days (in arrears).",
        "peak": "Billed monthly on peak users (in arrears).",
        "licenses": "Billed monthly on licenses per tenant (in arrears).",
        "storage": "Billed monthly on licenses per tenant (in arrears).",
        "agents": "Billed monthly on RMM agents (in advance).",
        "hosts": "Billed monthly on hosts (in advance).",
        "flat": "Billed monthly on flat monthly fees (in advance).",
        "cmq": "Billed monthly on committed users (in advance) and the usage above them (in arrears).",
    }
    for sentence in sentences.values():
        for code in ("seat_days", "per_asset", "per_host", "cmq"):  # codes, never words for a partner
            assert code not in sentence
    assert [kind for kind, p in partners.items() if billed_on(p.pk, TODAY).seats] == ["seats"]


def test_a_service_not_in_force_today_is_not_billed_on(partners):
    ServiceFactory(partner=partners["flat"], code="old-seats", start_date=date(2026, 1, 1),
                   end_date=date(2026, 3, 31))
    ServiceFactory(partner=partners["flat"], code="new-seats", start_date=date(2026, 6, 1))
    assert not billed_on(partners["flat"].pk, TODAY).seats


# --- the meters this month so far --------------------------------------------------------------------------

def test_seat_meters(partners):
    meters = partner_meters(partners["seats"], TODAY)
    (summary, days), = meters.seat_rows
    assert (summary.committed, summary.assigned, summary.overage) == (4, 6, 2)
    assert [p.seats for p in summary.scheduled] == [2]  # bought 3 May: from 1 June
    assert days == 3 * 20 + 3 * 16  # 1-20 May and 5-20 May, both ends counted
    assert meters.peaks == meters.licenses == meters.agents == meters.hosts == meters.flats == []


def test_peak_meters(partners):
    meters = partner_meters(partners["peak"], TODAY)
    assert [(p.service.code, p.peak, p.meter) for p in meters.peaks] == [("backup", 13, "users")]
    assert meters.seats == []
    assert {m.customer.slug: m.peak_users for m in customer_meters(partners["peak"], TODAY)} == {
        "acme": 9, "zenith": 4}


def test_license_meters_by_users_with_tiers_and_a_suspended_tenant(partners):
    meters = partner_meters(partners["licenses"], TODAY)
    (licenses,) = meters.licenses
    rows = {t.customer.slug: (t.licenses, t.users, t.by_storage, t.suspended) for t in licenses.tenants}
    # C3 counts its days up to 10 May (suspended at 10:00 that day: whole days from the 11th)
    assert rows == {"c1": (4, 4, False, False), "c2": (10, 10, False, False), "c3": (3, 3, False, True)}
    assert (licenses.total, licenses.unit_price, licenses.suspended) == (17, Decimal("4.00"), 1)
    cards = {c["key"]: c for c in meters.highlights()}
    assert cards["licenses"]["value"] == 17 and cards["tenants"]["hint"] == "2 active, 1 suspended"
    assert cards["license-price"]["value"] == "€4.00"
    assert "license-price" not in {c["key"] for c in meters.highlights(money=False)}


def test_license_meters_by_storage(partners):
    (licenses,) = partner_meters(partners["storage"], TODAY).licenses
    (tenant,) = licenses.tenants
    assert (tenant.licenses, tenant.users, tenant.by_storage, tenant.storage_gb) == (10, 9, True, Decimal("480.0"))


def test_agent_meters_per_service_with_the_last_sync(partners):
    meters = partner_meters(partners["agents"], TODAY)
    assert [(a.service.code, a.units, a.monthly) for a in meters.agents] == [("endpoints", 8, Decimal("80.00"))]
    assert meters.last_sync.status == "ok" and meters.last_sync.at == at(TODAY, 2)
    assert [(c.slug, n) for c, n in meters.customer_agents] == [("acme-a", 8)]
    assert {m.customer.slug: m.agents for m in customer_meters(partners["agents"], TODAY)} == {"acme-a": 8}


def test_host_flat_and_commitment_meters(partners):
    hosts = partner_meters(partners["hosts"], TODAY).hosts
    assert [(h.service.code, h.host_limit, h.monthly) for h in hosts] == [("hosting", 10, Decimal("150.00"))]
    assert [s.code for s in partner_meters(partners["flat"], TODAY).flats] == ["support"]
    (cmq,) = partner_meters(partners["cmq"], TODAY).commitments
    assert (cmq.committed, cmq.peak, cmq.above, cmq.variable_amount) == (10, 13, 3, Decimal("15.00"))


def test_the_meters_are_read_in_a_fixed_number_of_queries(partners):
    """Set-based: ten more tenants cost no query more (no loop over customers or days)."""
    partner = partners["licenses"]

    def queries():
        with CaptureQueriesContext(connection) as captured:
            partner_meters(partner, TODAY)
            customer_meters(partner, TODAY)
        return len(captured)

    before = queries()
    for i in range(10):
        usage(CustomerFactory(partner=partner, slug=f"more{i}"), date(2026, 5, 2), i)
    assert queries() == before


# --- the forecast of the next CI ---------------------------------------------------------------------------

def test_the_forecast_adds_tax_and_the_commitments(partners):
    seats = next_ci_forecast(partners["seats"], TODAY)
    assert seats.month.first == date(2026, 6, 1)
    # May projected to its end: 3 x 31 + 3 x 27 = 174 seat-days = 5.6129 seat-months over a minimum of 4
    assert {line.line_type for line in seats.lines} == {LineType.MINIMUM, LineType.OVERAGE}
    assert seats.subtotal == Decimal("120.32")  # 4 x 20.00 + 1.612903 x 25.00 = 120.32, rounded once
    assert (seats.tax, seats.total) == (Decimal("12.03"), Decimal("132.35"))
    cmq = next_ci_forecast(partners["cmq"], TODAY)
    assert sorted((line.line_type, line.amount) for line in cmq.lines) == [
        (LineType.RECURRING, Decimal("40.00")), (LineType.VARIABLE_USAGE, Decimal("15.00"))]
    assert cmq.total == Decimal("59.40")  # 55.00 + 8%
    assert not Invoice.objects.exists()  # nothing written


def test_the_forecast_is_what_the_billing_run_then_issues(partners):
    """The strong test: forecasts made on 20 May equal, line for line, the CIs the run issues on 1 June when
    nothing changes meanwhile (open seats stay open, usage and inventories stay as they are)."""
    billing_run(through=TODAY)  # April's and May's CIs: what the per_asset prorations start from
    forecasts = {kind: next_ci_forecast(p, TODAY) for kind, p in partners.items()}
    assert all(f.lines for f in forecasts.values())
    assert any(line.line_type == LineType.PRORATION for line in forecasts["agents"].lines)  # +3 agents from 10 May
    with time_machine.travel(datetime(2026, 6, 1, 3, 0, tzinfo=UTC), tick=False):
        billing_run(through=date(2026, 6, 1))
    for kind, partner in partners.items():
        forecast = forecasts[kind]
        ci = Invoice.objects.get(partner=partner, kind=InvoiceKind.CI, month="2026-06", state=InvoiceState.ISSUED)
        assert (ci.subtotal, ci.tax_amount, ci.total) == (forecast.subtotal, forecast.tax, forecast.total), kind
        issued = sorted((line.line_type, line.service_id, line.customer_id, line.quantity.quantize(Decimal("0.0001")),
                         line.amount)
                        for line in ci.lines.exclude(line_type=LineType.TAX))
        rated = sorted((line.line_type, line.service.pk, line.customer.pk if line.customer else None,
                        line.quantity.quantize(Decimal("0.0001")), line.amount) for line in forecast.lines)
        assert issued == rated, kind


# --- the pages -----------------------------------------------------------------------------------------------

DASHBOARD_MARKS = {
    "seats": ['data-kpi="committed">4<', 'data-kpi="assigned">6<', "Daily assigned seats"],
    "peak": ['data-peak="backup"><strong>13<', 'data-kpi="peak-backup">13<'],
    "licenses": ['data-licenses="c3"><strong>3<', 'data-licenses-total>17<', "suspended"],
    "storage": ['data-licenses="millbrook"><strong>10<', "storage"],
    "agents": ['data-agents="endpoints"><strong>8<', "data-last-sync", "Last sync"],
    "hosts": ['data-hosts="hosting"><strong>10<'],
    "flat": ["Support plan", "Flat monthly fees"],
    "cmq": ['data-cmq-peak>13<', 'data-kpi="committed">10<', "Variable usage so far"],
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_sees_its_meters_on_the_dashboard(partners, kind):
    partner = partners[kind]
    html = login(partner).get(reverse("portal:dashboard")).content.decode()
    for mark in DASHBOARD_MARKS[kind]:
        assert mark in html, (kind, mark)
    assert billed_on(partner.pk, TODAY).sentence in html
    assert "data-forecast-total" in html
    for code in ("seat_days", "per_asset", "per_host", "variable_usage", ">cmq<", " cmq "):
        assert code not in html, (kind, code)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "seats"])
def test_no_seat_wording_for_a_partner_without_seats(partners, kind):
    client = login(partners[kind])
    customer = partners[kind].customers.first()
    for url in (reverse("portal:dashboard"), reverse("portal:billing"), reverse("portal:customers"),
                reverse("portal:customer", args=[customer.pk]), reverse("portal:statements") + "?period=2026-05"):
        html = client.get(url).content.decode()
        assert "seat" not in html.lower(), (kind, url)
        assert reverse("portal:add_seats") not in html


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "seats"])
def test_seat_pages_answer_404_for_a_partner_without_seats(partners, kind):
    client = login(partners[kind])
    customer = partners[kind].customers.first()
    assert client.get(reverse("portal:add_seats")).status_code == 404
    assert client.post(reverse("portal:seat_assign", args=[customer.pk]), {"member": "zed"}).status_code == 404
    assert client.post(reverse("portal:seat_cap", args=[customer.pk]), {"seat_cap": "3"}).status_code == 404
    assert client.post(reverse("portal:seat_remove", args=[customer.pk]), {"member": "zed"}).status_code == 404
    assert not customer.members.exists()


def test_a_seat_partner_keeps_its_seat_pages(partners):
    client = login(partners["seats"])
    html = client.get(reverse("portal:dashboard")).content.decode()
    assert f'href="{reverse("portal:add_seats")}"' in html
    customer = partners["seats"].customers.get()
    page = client.get(reverse("portal:customer", args=[customer.pk])).content.decode()
    assert "Assign a seat" in page and "Seat cap" in page
    assert client.post(reverse("portal:seat_assign", args=[customer.pk]), {"member": "gus"}).status_code == 302


def test_seats_left_without_a_service_can_be_removed_not_assigned(partners):
    partner = partners["flat"]
    customer = partner.customers.get()
    SeatAssignmentFactory(member=MemberFactory(customer=customer, name="old"), assigned_at=at(START))
    client = login(partner)
    page = client.get(reverse("portal:customer", args=[customer.pk])).content.decode()
    assert "Assign a seat" not in page and "Remove" in page
    assert client.post(reverse("portal:seat_assign", args=[customer.pk]), {"member": "new"}).status_code == 404
    assert client.post(reverse("portal:seat_remove", args=[customer.pk]), {"member": "old"}).status_code == 302
    assert not customer.seat_assignments.active().exists()


def test_customer_pages_show_each_kinds_meters(partners):
    licenses = login(partners["licenses"])
    html = licenses.get(reverse("portal:customers")).content.decode()
    assert 'data-licenses="c2">10<' in html and 'data-peak-users="c2">10<' in html and "suspended" in html
    c3 = partners["licenses"].customers.get(slug="c3")
    page = licenses.get(reverse("portal:customer", args=[c3.pk])).content.decode()
    assert 'data-kpi="licenses">3<' in page and "suspended" in page
    agents = login(partners["agents"])
    acme = partners["agents"].customers.get()
    assert 'data-agents="acme-a">8<' in agents.get(reverse("portal:customers")).content.decode()
    page = agents.get(reverse("portal:customer", args=[acme.pk])).content.decode()
    assert 'data-agents="endpoints"><strong>8<' in page and "Managed endpoints" in page
    hosts = login(partners["hosts"])
    harbour = partners["hosts"].customers.get()
    assert 'data-hosts="harbour">10<' in hosts.get(reverse("portal:customers")).content.decode()
    assert 'data-kpi="hosts">10<' in hosts.get(reverse("portal:customer", args=[harbour.pk])).content.decode()


def test_the_billing_page_shows_the_forecast_lines(partners):
    forecast = next_ci_forecast(partners["cmq"], TODAY)
    html = login(partners["cmq"]).get(reverse("portal:billing")).content.decode()
    assert 'id="forecast"' in html and "Variable usage" in html and "Committed users" in html
    assert "USD 59.40" in html and forecast.total == Decimal("59.40")
    assert "not an invoice" in html


def test_a_technician_sees_meters_but_no_money(partners):
    client = login(partners["cmq"], Role.TECHNICIAN)
    html = client.get(reverse("portal:dashboard")).content.decode()
    assert 'data-cmq-peak>13<' in html
    assert "data-forecast-total" not in html and "USD" not in html and "Variable usage so far" not in html


# --- item 8: the portal's own 403, Add seats' price, empty states, periods by name --------------------------

def test_a_refused_page_is_the_portals_styled_403(partners):
    technician = login(partners["seats"], Role.TECHNICIAN)
    got = technician.get(reverse("portal:billing"))
    html = got.content.decode()
    assert got.status_code == 403 and "data-forbidden" in html and "portal/portal.css" in html
    assert "Technician" in html and reverse("portal:dashboard") in html
    staff = Client()
    staff.force_login(UserFactory(username="clerk", is_staff=True))
    got = staff.get(reverse("portal:dashboard"))
    assert got.status_code == 403 and "data-forbidden" in got.content.decode()
    # the admin keeps Django's own 403: a staff user without the permission
    admin_page = staff.get(reverse("admin:partners_partner_changelist"))
    assert admin_page.status_code == 403 and "data-forbidden" not in admin_page.content.decode()


def test_add_seats_shows_the_price_and_the_cost_of_the_purchase(partners):
    client = login(partners["seats"])
    html = client.get(reverse("portal:add_seats")).content.decode()
    assert "From <strong data-cost-effective>1 June 2026</strong>" in html
    assert '<strong data-cost-seats>1</strong>' in html and "<strong data-cost-price>USD 20.00</strong>" in html
    assert '<strong data-cost-amount>USD 20.00</strong> per month' in html
    assert 'data-price="20.0000"' in html and "portal/add_seats.js" in html
    service = partners["seats"].services.get()
    token = html.split('name="once_token" value="')[1].split('"')[0]
    got = client.post(reverse("portal:add_seats"), {"service": service.pk, "seats": "3", "once_token": token})
    assert got.status_code == 302
    page = client.get(got["Location"]).content.decode()
    assert "From 1 June 2026, 3 seats × USD 20.00 = <strong data-cost-amount>USD 60.00</strong> per month" in page
    assert SeatPurchase.objects.filter(service=service, seats=3, effective_date=date(2026, 6, 1)).exists()


def test_add_seats_prices_a_seat_at_the_terms_in_force_when_it_counts(partners):
    """A price change dated for next month's 1st is the price the bought seats cost (billing-rules 3.11)."""
    service = partners["seats"].services.get()
    service_update(service=service, actor=Actor(label="test"), data={"unit_price": price("22.00", partners["seats"])},
                   effective=date(2026, 6, 1))
    html = login(partners["seats"]).get(reverse("portal:add_seats")).content.decode()
    assert "<strong data-cost-price>USD 22.00</strong>" in html


def test_empty_tables_say_so():
    partner = PartnerFactory(slug="empty")
    client = login(partner)
    assert "No customers yet" in client.get(reverse("portal:customers")).content.decode()
    billing = client.get(reverse("portal:billing")).content.decode()
    assert "No invoice has been issued" in billing and "Nothing to charge on the next invoice" in billing
    dashboard = client.get(reverse("portal:dashboard")).content.decode()
    assert "No service is in force on your account today" in dashboard


def test_billing_periods_show_the_service_name(data_dir):
    replay(data_dir / "seat-days-basic")
    client = login(Partner.objects.get(slug="brightdesk"))
    html = client.get(reverse("portal:billing")).content.decode()
    assert "<td class=\"hide-sm\" data-period-service>Helpdesk seats</td>" in html
    assert "data-period-service>seats<" not in html


def test_a_records_partner_reads_its_usage_so_far_in_words():
    """billing-rules 3.13: a records service's meter, this month so far, on the dashboard in words (April's call
    and the inbound minutes are other meters)."""
    from metering.models import CallUsageRecord  # noqa: PLC0415

    partner = PartnerFactory(slug="callsy")
    north = CustomerFactory(partner=partner, slug="north-c", name="North C")
    south = CustomerFactory(partner=partner, slug="south-c", name="South C")
    ServiceFactory(partner=partner, code="calls", name="Outbound calls", method=Method.RECORDS,
                   usage_meter="call_minutes:outbound:*", meter="", unit_price=price("0.02", partner),
                   start_date=START)
    for n, (customer, day, seconds, direction) in enumerate([
            (north, date(2026, 5, 3), 61, "outbound"), (south, date(2026, 5, 4), 60, "outbound"),
            (north, date(2026, 5, 5), 600, "inbound"), (north, date(2026, 4, 30), 120, "outbound")]):
        CallUsageRecord.objects.create(partner=partner, customer=customer, record_id=f"r{n}", started_at=at(day),
                                       duration_seconds=seconds, direction=direction, destination="local")
    assert billed_on(partner.pk, TODAY).sentence == "Billed monthly on minutes from usage records (in arrears)."
    page = login(partner).get(reverse("portal:dashboard")).content.decode()
    assert 'data-kpi="records-calls">3<' in page  # May so far: 2 + 1 outbound minutes
    assert "minutes in May so far (call_minutes:outbound:*)" in page

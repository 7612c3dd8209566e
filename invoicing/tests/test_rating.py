"""invoicing.rating.rate_partner_month: every billing method, with hand-computed numbers (billing-rules 1-3, 6).

Invoice month M: the CI dated M's 1st carries advance lines for M and arrears lines for the usage
period M-1; first months go on an INV dated the start date. Every expected amount is worked out by
hand in the test's docstring; months used: March 2026 (31 days), April (30), May (31), June (30).
Data comes in the way users bring it: the import commands (tenant-usage, tenant-events,
rmm-assets with --partner/--as-of), metering.services.inventory_apply, or history rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.core.actor import Actor
from billing.core.periods import Period
from invoicing.rating import CI, INV, BilledUnits, RatedLine, rate_partner_month
from metering.services import AgentRow, inventory_apply
from metering.tests.factories import SuspensionFactory, UsageSnapshotFactory
from partners.models import Method, Partner, Service
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    ServiceFactory,
)

pytestmark = pytest.mark.django_db

MARCH, APRIL, MAY, JUNE = Period(2026, 3), Period(2026, 4), Period(2026, 5), Period(2026, 6)
D = Decimal


# --- helpers -----------------------------------------------------------------------------------

def service(partner: Partner, code: str, method: str, price: str, **fields) -> Service:
    """A service of the partner; `price` is the unit price in the partner's currency."""
    fields.setdefault("start_date", date(2026, 3, 1))
    if "overage_price" in fields and fields["overage_price"] is not None:
        fields["overage_price"] = Money(D(fields["overage_price"]), partner.currency)
    return ServiceFactory(partner=partner, code=code, name=code.title(), method=method,
                          unit_price=Money(D(price), partner.currency), **fields)


def rate(partner: Partner, month: Period, billed=None) -> list[RatedLine]:
    lines = rate_partner_month(partner=partner, month=month, billed=billed)
    for line in lines:  # billing-rules 2: every line is rounded once to the minor unit
        assert line.amount == line.amount.quantize(D("0.01")), line
        assert line.amount.as_tuple().exponent == -2, line
    return lines


def row(line: RatedLine) -> tuple:
    """What a line says: document, issue date, service, customer, type, period, quantity, unit price, amount."""
    return (line.document, line.issue_date.isoformat(), line.service.code,
            line.customer.slug if line.customer else None, line.line_type, str(line.period),
            line.quantity, line.unit_price, line.amount)


def rows(lines) -> list[tuple]:
    return sorted((row(line) for line in lines), key=lambda r: tuple("" if v is None else str(v) for v in r))


def only(lines, code: str) -> list[tuple]:
    return rows(line for line in lines if line.service.code == code)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def places(spec: dict[str, int]) -> dict[str, AgentRow]:
    """{"ORG/GROUP": n} -> n agents there, with stable ids: lowering n drops the last agents."""
    agents = {}
    for place, count in spec.items():
        org, _, group = place.partition("/")
        for n in range(count):
            agent_id = f"{org}-{group or 'none'}-{n}"
            agents[agent_id] = AgentRow(agent_id=agent_id, machine_name=agent_id.lower(), organization=org,
                                        group=group)
    return agents


def inventory(partner: Partner, as_of: str, spec: dict[str, int]) -> None:
    inventory_apply(partner=partner, as_of=date.fromisoformat(as_of), agents=places(spec), actor=Actor(label="t"))


def import_inventory(cli, csv_file, partner: Partner, as_of: str, spec: dict[str, int]) -> None:
    body = "".join(f"{a.agent_id},{a.machine_name},{a.organization},{a.group}\n" for a in places(spec).values())
    path = csv_file(f"rmm-{as_of}.csv", "agent_id,machine_name,organization,group\n" + body)
    result = cli("import_csv", "rmm-assets", str(path), "--partner", partner.slug, "--as-of", as_of)
    assert result.status == 0, result.err


def import_csv(cli, csv_file, kind: str, text: str) -> None:
    path = csv_file(f"{kind}.csv", text)
    result = cli("import_csv", kind, str(path))
    assert result.status == 0, result.err


# --- per_host (billing-rules 3.8) --------------------------------------------------------------------

def test_per_host_rounded_daily_rate_first_month_then_recurring():
    """10 hosts at 15.00 = 150.00 a month from 10 March, rounded_daily_rate:
    round(150.00 / 31) = 4.84 per day x (31 - 10) = 21 days = 101.64 on an INV dated 2026-03-10
    (rate month 2026-03, nothing on the March CI); 10 x 15.00 = 150.00 recurring on the April CI."""
    partner = PartnerFactory(slug="tidewater")
    harbourside = CustomerFactory(partner=partner, slug="harbourside", host_limit=10)
    service(partner, "hosting", Method.PER_HOST, "15.00", customer=harbourside, proration="rounded_daily_rate",
            start_date=date(2026, 3, 10))

    assert rate(partner, Period(2026, 2)) == []
    march = rate(partner, MARCH)
    assert rows(march) == [
        (INV, "2026-03-10", "hosting", "harbourside", "first_month", "2026-03", D("10"), D("15.00"), D("101.64")),
    ]
    assert march[0].effective_date == date(2026, 3, 10)
    assert rows(rate(partner, APRIL)) == [
        (CI, "2026-04-01", "hosting", "harbourside", "recurring", "2026-04", D("10"), D("15.00"), D("150.00")),
    ]


def test_per_host_day_fraction_first_month_counts_the_start_date():
    """The same start under day_fraction: 150.00 x (31 - 10 + 1 = 22) / 31 = 106.4516... -> 106.45."""
    partner = PartnerFactory(slug="tidewater")
    harbourside = CustomerFactory(partner=partner, slug="harbourside", host_limit=10)
    service(partner, "hosting", Method.PER_HOST, "15.00", customer=harbourside, start_date=date(2026, 3, 10))

    assert rows(rate(partner, MARCH)) == [
        (INV, "2026-03-10", "hosting", "harbourside", "first_month", "2026-03", D("10"), D("15.00"), D("106.45")),
    ]
    assert [line.amount for line in rate(partner, APRIL)] == [D("150.00")]


def test_per_host_limit_change_applies_from_the_next_charge_without_proration(cli, csv_file):
    """Rated for April at 10 hosts (150.00); the customer is re-imported with host_limit 12 in April.
    The May CI charges 12 x 15.00 = 180.00 and nothing else: no proration of April's 2 extra hosts."""
    partner = PartnerFactory(slug="tidewater")
    harbourside = CustomerFactory(partner=partner, slug="harbourside", name="Harbourside", host_limit=10)
    service(partner, "hosting", Method.PER_HOST, "15.00", customer=harbourside, start_date=date(2026, 3, 10))
    assert [line.amount for line in rate(partner, APRIL)] == [D("150.00")]

    import_csv(cli, csv_file, "customers", "partner,slug,name,host_limit\ntidewater,harbourside,Harbourside,12\n")

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "hosting", "harbourside", "recurring", "2026-05", D("12"), D("15.00"), D("180.00")),
    ]


# --- flat (billing-rules 3.8) ------------------------------------------------------------------------

def test_flat_is_a_monthly_recurring_advance_line():
    """45.00 a month from 1 March: 45.00 on the March CI (period 2026-03) and on the April CI (2026-04);
    a partner-level service: no customer on the line."""
    partner = PartnerFactory(slug="tidewater")
    service(partner, "support", Method.FLAT, "45.00")

    assert rows(rate(partner, MARCH)) == [
        (CI, "2026-03-01", "support", None, "recurring", "2026-03", D("1"), D("45.00"), D("45.00")),
    ]
    assert rows(rate(partner, APRIL)) == [
        (CI, "2026-04-01", "support", None, "recurring", "2026-04", D("1"), D("45.00"), D("45.00")),
    ]


def test_flat_first_month_is_prorated_under_both_conventions():
    """45.00 a month from 16 April (30 days).
    day_fraction: 45.00 x (30 - 16 + 1 = 15) / 30 = 22.50;
    rounded_daily_rate: round(45.00 / 30) = 1.50 x (30 - 16 = 14) = 21.00. Both on INVs dated 2026-04-16,
    then 45.00 each on the May CI."""
    partner = PartnerFactory(slug="tidewater")
    service(partner, "df", Method.FLAT, "45.00", start_date=date(2026, 4, 16))
    service(partner, "rdr", Method.FLAT, "45.00", start_date=date(2026, 4, 16), proration="rounded_daily_rate")

    assert rows(rate(partner, APRIL)) == [
        (INV, "2026-04-16", "df", None, "first_month", "2026-04", D("1"), D("45.00"), D("22.50")),
        (INV, "2026-04-16", "rdr", None, "first_month", "2026-04", D("1"), D("45.00"), D("21.00")),
    ]
    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "df", None, "recurring", "2026-05", D("1"), D("45.00"), D("45.00")),
        (CI, "2026-05-01", "rdr", None, "recurring", "2026-05", D("1"), D("45.00"), D("45.00")),
    ]


def test_flat_ended_mid_month_keeps_its_full_month_and_stops():
    """Ending 15 April: the April CI still has the full 45.00 (advance is not refunded), May has nothing."""
    partner = PartnerFactory(slug="tidewater")
    service(partner, "support", Method.FLAT, "45.00", end_date=date(2026, 4, 15))

    assert rows(rate(partner, APRIL)) == [
        (CI, "2026-04-01", "support", None, "recurring", "2026-04", D("1"), D("45.00"), D("45.00")),
    ]
    assert rate(partner, MAY) == []


# --- peak, users meter (billing-rules 3.4, 6.8, 6.11) ---------------------------------------------------

def test_peak_users_customer_level_carries_forward_and_last_snapshot_of_a_date_wins(cli, csv_file):
    """Alpha, April: 12 users on 28 March carry forward to 1-2 April; 3 April has two rows, 20 then 6
    (the last wins: 6); 20 April is imported as 15, then re-imported as 5 (the last wins again).
    Daily: 1-2: 12, 3-19: 6, 20-30: 5 -> peak 12 x 4.00 = 48.00 on the May CI (period 2026-04).
    Beta's 50 users are outside the customer-level service."""
    partner = PartnerFactory(slug="p")
    alpha = CustomerFactory(partner=partner, slug="alpha")
    CustomerFactory(partner=partner, slug="beta")
    service(partner, "users", Method.PEAK, "4.00", meter="users", customer=alpha)
    header = "partner,customer,date,users_count,storage_bytes\n"
    import_csv(cli, csv_file, "tenant-usage", header + (
        "p,alpha,2026-03-28,12,0\n"
        "p,alpha,2026-04-03,20,0\n"
        "p,alpha,2026-04-03,6,0\n"
        "p,alpha,2026-04-20,15,0\n"
        "p,beta,2026-04-01,50,0\n"
    ))
    import_csv(cli, csv_file, "tenant-usage", header + "p,alpha,2026-04-20,5,0\n")

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "users", "alpha", "usage", "2026-04", D("12"), D("4.00"), D("48.00")),
    ]


def test_peak_users_partner_level_sums_customers_per_date_then_takes_the_max():
    """A: 10 users from 1 April, 4 from the 10th; B: 3 from 1 April, 8 from the 15th.
    Daily sums: 1-9: 13, 10-14: 7, 15-30: 12 -> peak 13 (not 10 + 8 = 18) x 2.50 = 32.50."""
    partner = PartnerFactory(slug="p")
    a, b = CustomerFactory(partner=partner, slug="a"), CustomerFactory(partner=partner, slug="b")
    for customer, day, users in ((a, 1, 10), (a, 10, 4), (b, 1, 3), (b, 15, 8)):
        UsageSnapshotFactory(customer=customer, date=date(2026, 4, day), users_count=users)
    service(partner, "users", Method.PEAK, "2.50", meter="users")

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "users", None, "usage", "2026-04", D("13"), D("2.50"), D("32.50")),
    ]


def test_peak_users_suspended_mid_month_counts_zero_on_whole_suspended_days(cli, csv_file):
    """Alpha and Beta are suspended at 17:00 on 14 April and unsuspended at 08:00 on the 19th: 15-18 count 0,
    the 14th and the 19th count; a snapshot taken while suspended carries forward after it (billing-rules 6.8).
    Gamma is suspended all month (0 every day).
    Alpha: 1: 5, 14: 9, 16: 30, 18: 6 -> daily 1-13: 5, 14: 9, 15-18: 0, 19-30: 6 -> peak 9 x 3.00 = 27.00.
    Beta: 1: 5, 16: 30, 19: 11, 20: 2 -> daily 1-14: 5, 15-18: 0, 19: 11, 20-30: 2 -> peak 11 x 3.00 = 33.00.
    Partner-level (A + B + Gamma 0): 1-13: 10, 14: 14, 15-18: 0, 19: 17, 20-30: 8 -> 17 x 1.00 = 17.00."""
    partner = PartnerFactory(slug="p")
    alpha = CustomerFactory(partner=partner, slug="alpha")
    beta = CustomerFactory(partner=partner, slug="beta")
    gamma = CustomerFactory(partner=partner, slug="gamma")
    service(partner, "alpha-users", Method.PEAK, "3.00", meter="users", customer=alpha)
    service(partner, "beta-users", Method.PEAK, "3.00", meter="users", customer=beta)
    service(partner, "gamma-users", Method.PEAK, "3.00", meter="users", customer=gamma)
    service(partner, "all-users", Method.PEAK, "1.00", meter="users")
    import_csv(cli, csv_file, "tenant-usage", "partner,customer,date,users_count,storage_bytes\n" + "".join(
        f"p,{slug},2026-04-{day:02d},{users},0\n"
        for slug, day, users in (("alpha", 1, 5), ("alpha", 14, 9), ("alpha", 16, 30), ("alpha", 18, 6),
                                 ("beta", 1, 5), ("beta", 16, 30), ("beta", 19, 11), ("beta", 20, 2))
    ) + "p,gamma,2026-03-01,40,0\n")
    import_csv(cli, csv_file, "tenant-events", "partner,customer,action,at\n"
               "p,alpha,suspend,2026-04-14T17:00:00Z\np,alpha,unsuspend,2026-04-19T08:00:00Z\n")
    SuspensionFactory(customer=beta, suspended_at=at("2026-04-14T17:00:00Z"), unsuspended_at=at("2026-04-19T08:00:00Z"))
    SuspensionFactory(customer=gamma, suspended_at=at("2026-03-20T10:00:00Z"))

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "all-users", None, "usage", "2026-04", D("17"), D("1.00"), D("17.00")),
        (CI, "2026-05-01", "alpha-users", "alpha", "usage", "2026-04", D("9"), D("3.00"), D("27.00")),
        (CI, "2026-05-01", "beta-users", "beta", "usage", "2026-04", D("11"), D("3.00"), D("33.00")),
    ]


def test_peak_with_tiers_volume_against_graduated():
    """Peak 60 users with tiers 10:5.00;50:4.00;inf:3.00.
    volume: every unit at the tier 60 falls in: 60 x 3.00 = 180.00 (shown price 3.00);
    graduated: 10 x 5.00 + 40 x 4.00 + 10 x 3.00 = 50 + 160 + 30 = 240.00 (no single unit price)."""
    partner = PartnerFactory(slug="p")
    UsageSnapshotFactory(customer=CustomerFactory(partner=partner, slug="a"), date=date(2026, 4, 1), users_count=60)
    tiers = "10:5.00;50:4.00;inf:3.00"
    service(partner, "vol", Method.PEAK, "9.99", meter="users", tiers=tiers)
    service(partner, "grad", Method.PEAK, "9.99", meter="users", tiers=tiers, tier_mode="graduated")

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "grad", None, "usage", "2026-04", D("60"), None, D("240.00")),
        (CI, "2026-05-01", "vol", None, "usage", "2026-04", D("60"), D("3.00"), D("180.00")),
    ]


# --- peak, assets meter (billing-rules 3.4, 6.7) -------------------------------------------------------

def test_peak_assets_filters_org_and_group_and_blank_by_scope(cli, csv_file):
    """Inventories (rmm-assets imports, effective on their as-of date):
    20 March: ACME/Servers 2, ACME/Desktops 3, BETA 4, OTHER 1;
    10 April: ACME/Servers 4, ACME/Desktops 2, BETA 4, OTHER 1;
    20 April: ACME/Servers 4, ACME/Desktops 2, BETA 6, OTHER 1 (OTHER is no customer's organization).
    acme-blank (customer Acme, blank filter = its organization ACME): 1-9: 5, 10-30: 6 -> 6 x 2.00 = 12.00;
    acme-servers (ACME/Servers): 1-9: 2, 10-30: 4 -> 4 x 3.00 = 12.00;
    all (partner-level, blank = every agent, OTHER too): 1-9: 10, 10-19: 11, 20-30: 13 -> 13 x 1.00 = 13.00;
    beta (partner-level, filter BETA): 1-19: 4, 20-30: 6 -> 6 x 0.50 = 3.00."""
    partner = PartnerFactory(slug="p")
    acme = CustomerFactory(partner=partner, slug="acme", rmm_organization="ACME")
    CustomerFactory(partner=partner, slug="beta", rmm_organization="BETA")
    service(partner, "acme-blank", Method.PEAK, "2.00", meter="assets", customer=acme)
    service(partner, "acme-servers", Method.PEAK, "3.00", meter="assets", customer=acme, rmm_filter="ACME/Servers")
    service(partner, "all", Method.PEAK, "1.00", meter="assets")
    service(partner, "beta", Method.PEAK, "0.50", meter="assets", rmm_filter="BETA")
    import_inventory(cli, csv_file, partner, "2026-03-20",
                     {"ACME/Servers": 2, "ACME/Desktops": 3, "BETA": 4, "OTHER": 1})
    import_inventory(cli, csv_file, partner, "2026-04-10",
                     {"ACME/Servers": 4, "ACME/Desktops": 2, "BETA": 4, "OTHER": 1})
    import_inventory(cli, csv_file, partner, "2026-04-20",
                     {"ACME/Servers": 4, "ACME/Desktops": 2, "BETA": 6, "OTHER": 1})

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "acme-blank", "acme", "usage", "2026-04", D("6"), D("2.00"), D("12.00")),
        (CI, "2026-05-01", "acme-servers", "acme", "usage", "2026-04", D("4"), D("3.00"), D("12.00")),
        (CI, "2026-05-01", "all", None, "usage", "2026-04", D("13"), D("1.00"), D("13.00")),
        (CI, "2026-05-01", "beta", None, "usage", "2026-04", D("6"), D("0.50"), D("3.00")),
    ]


def test_peak_assets_partner_level_ignores_a_suspended_customers_agents_on_its_suspended_days(cli, csv_file):
    """Beta (organization BETA) is suspended 17:00 on 14 April until 08:00 on the 25th: whole days 15-24.
    Inventories: 20 March ACME 3, BETA 5; 16 April ACME 3, BETA 9; 24 April ACME 3, BETA 4.
    all (partner-level, every agent): 1-14: 8, 15-24: 3 (BETA's 9 do not count), 25-30: 7 -> 8 x 1.00 = 8.00
    (12 if the suspension were ignored);
    beta-p (partner-level, filter BETA): 1-14: 5, 15-24: 0, 25-30: 4 -> 5 x 2.00 = 10.00;
    beta-c (customer Beta, blank filter): the same 5 x 3.00 = 15.00."""
    partner = PartnerFactory(slug="p")
    CustomerFactory(partner=partner, slug="acme", rmm_organization="ACME")
    beta = CustomerFactory(partner=partner, slug="beta", rmm_organization="BETA")
    service(partner, "all", Method.PEAK, "1.00", meter="assets")
    service(partner, "beta-p", Method.PEAK, "2.00", meter="assets", rmm_filter="BETA")
    service(partner, "beta-c", Method.PEAK, "3.00", meter="assets", customer=beta)
    import_inventory(cli, csv_file, partner, "2026-03-20", {"ACME": 3, "BETA": 5})
    import_inventory(cli, csv_file, partner, "2026-04-16", {"ACME": 3, "BETA": 9})
    import_inventory(cli, csv_file, partner, "2026-04-24", {"ACME": 3, "BETA": 4})
    import_csv(cli, csv_file, "tenant-events", "partner,customer,action,at\n"
               "p,beta,suspend,2026-04-14T17:00:00Z\np,beta,unsuspend,2026-04-25T08:00:00Z\n")

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "all", None, "usage", "2026-04", D("8"), D("1.00"), D("8.00")),
        (CI, "2026-05-01", "beta-c", "beta", "usage", "2026-04", D("5"), D("3.00"), D("15.00")),
        (CI, "2026-05-01", "beta-p", None, "usage", "2026-04", D("5"), D("2.00"), D("10.00")),
    ]


# --- licenses (billing-rules 3.6, 6.9) -----------------------------------------------------------------

def test_licenses_storage_driven_suspended_mid_month_and_all_month(cli, csv_file):
    """Partner-level, 3.00 per license, 50 GB per license, usage period March.
    Harbourside: 4 users, 20 GB -> max(4, ceil(0.4) = 1) = 4 -> 4 x 3.00 = 12.00.
    Millbrook: 1 March 8 users/120 GB -> max(8, 3) = 8; 9 March 9 users/480 GB -> max(9, ceil(9.6) = 10) = 10;
    suspended 17:00 on 14 March to 08:00 on the 19th (15-18 do not count, so 16 March's 30 users are
    ignored); 18 March 9 users/300 GB -> max(9, 6) = 9 from the 19th. Billable 10 -> 30.00.
    Closed: suspended all March (from 20 February to 2 April) -> 0 licenses, no line.
    Each line names its tenant although the service is partner-level."""
    partner = PartnerFactory(slug="tidewater")
    for slug in ("harbourside", "millbrook", "closed"):
        CustomerFactory(partner=partner, slug=slug)
    service(partner, "mail", Method.LICENSES, "3.00", storage_per_license_gb=D("50"))
    import_csv(cli, csv_file, "tenant-usage", "partner,customer,date,users_count,storage_bytes\n"
               "tidewater,millbrook,2026-03-01,8,120000000000\n"
               "tidewater,millbrook,2026-03-09,9,480000000000\n"
               "tidewater,millbrook,2026-03-16,30,490000000000\n"
               "tidewater,millbrook,2026-03-18,9,300000000000\n"
               "tidewater,harbourside,2026-03-01,4,20000000000\n"
               "tidewater,closed,2026-03-01,50,0\n")
    import_csv(cli, csv_file, "tenant-events", "partner,customer,action,at\n"
               "tidewater,millbrook,suspend,2026-03-14T17:00:00Z\n"
               "tidewater,millbrook,unsuspend,2026-03-19T08:00:00Z\n"
               "tidewater,closed,suspend,2026-02-20T10:00:00Z\n"
               "tidewater,closed,unsuspend,2026-04-02T09:00:00Z\n")

    lines = rate(partner, APRIL)
    assert rows(lines) == [
        (CI, "2026-04-01", "mail", "harbourside", "usage", "2026-03", D("4"), D("3.00"), D("12.00")),
        (CI, "2026-04-01", "mail", "millbrook", "usage", "2026-03", D("10"), D("3.00"), D("30.00")),
    ]
    assert {line.service.customer for line in lines} == {None}


def test_licenses_storage_ceiling_is_exact_at_the_boundary():
    """50 GB per license: 500,000,000,000 bytes = exactly 10 licenses; one byte more = 11.
    1.001 GB per license: 3,003,000,000 bytes = exactly 3 (no binary-float drift in the divisor).
    Users 1 each, 2.00 per license: 10 -> 20.00, 11 -> 22.00, 3 -> 6.00."""
    partner = PartnerFactory(slug="p")
    exact, above, odd = (CustomerFactory(partner=partner, slug=s) for s in ("exact", "above", "odd"))
    for customer, stored in ((exact, 500_000_000_000), (above, 500_000_000_001), (odd, 3_003_000_000)):
        UsageSnapshotFactory(customer=customer, date=date(2026, 4, 1), users_count=1, storage_bytes=stored)
    service(partner, "big", Method.LICENSES, "2.00", customer=exact, storage_per_license_gb=D("50"))
    service(partner, "big2", Method.LICENSES, "2.00", customer=above, storage_per_license_gb=D("50"))
    service(partner, "odd", Method.LICENSES, "2.00", customer=odd, storage_per_license_gb=D("1.001"))

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "big", "exact", "usage", "2026-04", D("10"), D("2.00"), D("20.00")),
        (CI, "2026-05-01", "big2", "above", "usage", "2026-04", D("11"), D("2.00"), D("22.00")),
        (CI, "2026-05-01", "odd", "odd", "usage", "2026-04", D("3"), D("2.00"), D("6.00")),
    ]


def test_licenses_volume_tiers_price_each_customer_at_the_total_tier_graduated_is_one_line():
    """Tiers 10:5.00;50:4.00;inf:3.00; A 4 licenses, B 8: total 12.
    volume: the total reaches the 4.00 tier: A 4 x 4.00 = 16.00, B 8 x 4.00 = 32.00 (total 48.00);
    graduated: one line of 12: 10 x 5.00 + 2 x 4.00 = 58.00, no customer, no unit price."""
    partner = PartnerFactory(slug="p")
    a, b = CustomerFactory(partner=partner, slug="a"), CustomerFactory(partner=partner, slug="b")
    UsageSnapshotFactory(customer=a, date=date(2026, 4, 1), users_count=4)
    UsageSnapshotFactory(customer=b, date=date(2026, 4, 1), users_count=8)
    tiers = "10:5.00;50:4.00;inf:3.00"
    service(partner, "vol", Method.LICENSES, "9.99", tiers=tiers)
    service(partner, "grad", Method.LICENSES, "9.99", tiers=tiers, tier_mode="graduated")

    lines = rate(partner, MAY)
    assert rows(lines) == [
        (CI, "2026-05-01", "grad", None, "usage", "2026-04", D("12"), None, D("58.00")),
        (CI, "2026-05-01", "vol", "a", "usage", "2026-04", D("4"), D("4.00"), D("16.00")),
        (CI, "2026-05-01", "vol", "b", "usage", "2026-04", D("8"), D("4.00"), D("32.00")),
    ]
    assert sum(line.amount for line in lines if line.service.code == "vol") == D("48.00")


def test_licenses_tier_bound_is_inclusive():
    """`10:5.00` covers 1-10: A 4 + B 6 = 10 stays at 5.00 (20.00 + 30.00; graduated 10 x 5.00 = 50.00);
    one more license at A (11) moves everyone to 4.00 (5 x 4.00 = 20.00, 6 x 4.00 = 24.00; graduated
    10 x 5.00 + 1 x 4.00 = 54.00)."""
    partner = PartnerFactory(slug="p")
    a, b = CustomerFactory(partner=partner, slug="a"), CustomerFactory(partner=partner, slug="b")
    UsageSnapshotFactory(customer=a, date=date(2026, 4, 1), users_count=4)
    UsageSnapshotFactory(customer=b, date=date(2026, 4, 1), users_count=6)
    UsageSnapshotFactory(customer=a, date=date(2026, 5, 1), users_count=5)
    tiers = "10:5.00;50:4.00;inf:3.00"
    service(partner, "vol", Method.LICENSES, "9.99", tiers=tiers)
    service(partner, "grad", Method.LICENSES, "9.99", tiers=tiers, tier_mode="graduated")

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "grad", None, "usage", "2026-04", D("10"), None, D("50.00")),
        (CI, "2026-05-01", "vol", "a", "usage", "2026-04", D("4"), D("5.00"), D("20.00")),
        (CI, "2026-05-01", "vol", "b", "usage", "2026-04", D("6"), D("5.00"), D("30.00")),
    ]
    assert rows(rate(partner, JUNE)) == [
        (CI, "2026-06-01", "grad", None, "usage", "2026-05", D("11"), None, D("54.00")),
        (CI, "2026-06-01", "vol", "a", "usage", "2026-05", D("5"), D("4.00"), D("20.00")),
        (CI, "2026-06-01", "vol", "b", "usage", "2026-05", D("6"), D("4.00"), D("24.00")),
    ]


# --- cmq (billing-rules 3.5) --------------------------------------------------------------------------

def test_cmq_advance_every_month_and_variable_usage_only_above_the_commitment():
    """Customer-level, users meter, committed 10 at 5.00, overage 7.00, 1 March to 31 May.
    Snapshots: 5 March 14 users; 1 April 8; 10 May 12.
    March CI: 10 x 5.00 = 50.00 (period 2026-03), no variable line (February is before the start).
    April CI: 50.00 (2026-04) + variable for March: peak 14 -> (14 - 10) x 7.00 = 28.00.
    May CI: 50.00 (2026-05); April's peak 8 is under 10: no variable line.
    June CI: no advance (ended 31 May); May: 1-9: 8, 10-31: 12 -> (12 - 10) x 7.00 = 14.00.
    July CI: nothing."""
    partner = PartnerFactory(slug="p")
    acme = CustomerFactory(partner=partner, slug="acme")
    for day, users in ((date(2026, 3, 5), 14), (date(2026, 4, 1), 8), (date(2026, 5, 10), 12)):
        UsageSnapshotFactory(customer=acme, date=day, users_count=users)
    service(partner, "cmq", Method.CMQ, "5.00", meter="users", customer=acme, committed_quantity=10,
            overage_price="7.00", end_date=date(2026, 5, 31))

    assert rows(rate(partner, MARCH)) == [
        (CI, "2026-03-01", "cmq", "acme", "recurring", "2026-03", D("10"), D("5.00"), D("50.00")),
    ]
    assert rows(rate(partner, APRIL)) == [
        (CI, "2026-04-01", "cmq", "acme", "recurring", "2026-04", D("10"), D("5.00"), D("50.00")),
        (CI, "2026-04-01", "cmq", "acme", "variable_usage", "2026-03", D("4"), D("7.00"), D("28.00")),
    ]
    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "cmq", "acme", "recurring", "2026-05", D("10"), D("5.00"), D("50.00")),
    ]
    assert rows(rate(partner, JUNE)) == [
        (CI, "2026-06-01", "cmq", "acme", "variable_usage", "2026-05", D("2"), D("7.00"), D("14.00")),
    ]
    assert rate(partner, Period(2026, 7)) == []


def test_cmq_assets_overage_defaults_to_the_unit_price(cli, csv_file):
    """Partner-level, assets meter, committed 5 at 2.00, no overage price; 7 agents from 20 March.
    May CI: 5 x 2.00 = 10.00 (2026-05) + April variable (7 - 5) x 2.00 = 4.00."""
    partner = PartnerFactory(slug="p")
    service(partner, "cmq", Method.CMQ, "2.00", meter="assets", committed_quantity=5)
    import_inventory(cli, csv_file, partner, "2026-03-20", {"ACME": 4, "BETA/Lab": 3})

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "cmq", None, "recurring", "2026-05", D("5"), D("2.00"), D("10.00")),
        (CI, "2026-05-01", "cmq", None, "variable_usage", "2026-04", D("2"), D("2.00"), D("4.00")),
    ]


# --- per_asset (billing-rules 3.7, 3.8, 6.6, 6.7) --------------------------------------------------------

def per_asset_partner() -> tuple[Partner, Service, Service]:
    """Inventories: 20 Feb ACME 5, BETA 2; 10 April ACME 8; 25 April ACME 6 (BETA stays 2).
    `agents`: customer Acme, filter ACME, 10.00; `all`: partner-level, blank filter (every agent), 1.00.
    Both start 1 March."""
    partner = PartnerFactory(slug="p")
    acme = CustomerFactory(partner=partner, slug="acme", rmm_organization="ACME")
    agents = service(partner, "agents", Method.PER_ASSET, "10.00", customer=acme, rmm_filter="ACME")
    everything = service(partner, "all", Method.PER_ASSET, "1.00")
    inventory(partner, "2026-02-20", {"ACME": 5, "BETA": 2})
    inventory(partner, "2026-04-10", {"ACME": 8, "BETA": 2})
    inventory(partner, "2026-04-25", {"ACME": 6, "BETA": 2})
    return partner, agents, everything


def test_per_asset_normal_line_uses_the_units_on_the_first():
    """March and April CIs: units on the 1st: agents 5 x 10.00 = 50.00, all 7 x 1.00 = 7.00; the April
    changes are not prorated before the month is over (and nothing changed in March)."""
    partner, _, _ = per_asset_partner()

    assert rows(rate(partner, MARCH)) == [
        (CI, "2026-03-01", "agents", "acme", "recurring", "2026-03", D("5"), D("10.00"), D("50.00")),
        (CI, "2026-03-01", "all", None, "recurring", "2026-03", D("7"), D("1.00"), D("7.00")),
    ]
    assert rows(rate(partner, APRIL)) == [
        (CI, "2026-04-01", "agents", "acme", "recurring", "2026-04", D("5"), D("10.00"), D("50.00")),
        (CI, "2026-04-01", "all", None, "recurring", "2026-04", D("7"), D("1.00"), D("7.00")),
    ]


def test_per_asset_increment_and_decrement_post_proration_lines_on_the_next_ci():
    """May CI: normal lines on 1 May: agents 6 x 10.00 = 60.00, all 8 x 1.00 = 8.00.
    April (30 days) prorations, period 2026-04, dated by effect:
    agents +3 on the 10th: 3 x 10.00 x 21/30 = 21.00; -2 on the 25th: -2 x 10.00 x 6/30 = -4.00;
    all    +3 on the 10th: 3 x 1.00 x 21/30 = 2.10;   -2 on the 25th: -2 x 1.00 x 6/30 = -0.40.
    June CI: the normal lines only (May had no change)."""
    partner, _, _ = per_asset_partner()

    may = rate(partner, MAY)
    assert rows(may) == [
        (CI, "2026-05-01", "agents", "acme", "proration", "2026-04", D("-2"), D("10.00"), D("-4.00")),
        (CI, "2026-05-01", "agents", "acme", "proration", "2026-04", D("3"), D("10.00"), D("21.00")),
        (CI, "2026-05-01", "agents", "acme", "recurring", "2026-05", D("6"), D("10.00"), D("60.00")),
        (CI, "2026-05-01", "all", None, "proration", "2026-04", D("-2"), D("1.00"), D("-0.40")),
        (CI, "2026-05-01", "all", None, "proration", "2026-04", D("3"), D("1.00"), D("2.10")),
        (CI, "2026-05-01", "all", None, "recurring", "2026-05", D("8"), D("1.00"), D("8.00")),
    ]
    assert sorted((line.service.code, line.effective_date, line.amount) for line in may
                  if line.line_type == "proration") == [
        ("agents", date(2026, 4, 10), D("21.00")), ("agents", date(2026, 4, 25), D("-4.00")),
        ("all", date(2026, 4, 10), D("2.10")), ("all", date(2026, 4, 25), D("-0.40")),
    ]
    assert rows(rate(partner, JUNE)) == [
        (CI, "2026-06-01", "agents", "acme", "recurring", "2026-06", D("6"), D("10.00"), D("60.00")),
        (CI, "2026-06-01", "all", None, "recurring", "2026-06", D("8"), D("1.00"), D("8.00")),
    ]


def test_per_asset_with_billed_changes_posts_each_change_exactly_once():
    """Told that April was billed at 5 units on 1 April with the +3 of the 10th already posted, the May
    CI only posts the -2 of the 25th (-4.00); told both were posted, only the normal line (60.00)."""
    partner, agents, _ = per_asset_partner()
    partner_only_agents = [line for line in rate(partner, MAY, billed={
        (agents.pk, APRIL): BilledUnits(date(2026, 4, 1), 5, {date(2026, 4, 10): 3}),
    }) if line.service == agents]
    assert rows(partner_only_agents) == [
        (CI, "2026-05-01", "agents", "acme", "proration", "2026-04", D("-2"), D("10.00"), D("-4.00")),
        (CI, "2026-05-01", "agents", "acme", "recurring", "2026-05", D("6"), D("10.00"), D("60.00")),
    ]
    assert only(rate(partner, MAY, billed={
        (agents.pk, APRIL): BilledUnits(date(2026, 4, 1), 5, {date(2026, 4, 10): 3, date(2026, 4, 25): -2}),
    }), "agents") == [
        (CI, "2026-05-01", "agents", "acme", "recurring", "2026-05", D("6"), D("10.00"), D("60.00")),
    ]


def test_per_asset_late_change_in_an_already_billed_month_posts_once():
    """Inventories 20 Feb ACME 5, 10 April ACME 8. The May CI posts 8 x 10.00 = 80.00 and +3 from 10 April
    = 21.00. Then an inventory as of 25 April (ACME 6) arrives late, after the May CI.
    June CI, told what was billed (April: 5 on the 1st + 3 on the 10th; May: 8 on the 1st):
    normal 6 x 10.00 = 60.00; April -2 from the 25th: -2 x 10.00 x 6/30 = -4.00; May's normal line billed 8
    but 6 were in force on 1 May: -2 x 10.00 x 31/31 = -20.00 (effective 1 May).
    Billing June again with those posted: the normal line only."""
    partner = PartnerFactory(slug="p")
    acme = CustomerFactory(partner=partner, slug="acme", rmm_organization="ACME")
    agents = service(partner, "agents", Method.PER_ASSET, "10.00", customer=acme)  # blank: Acme's ACME
    inventory(partner, "2026-02-20", {"ACME": 5, "BETA": 2})
    inventory(partner, "2026-04-10", {"ACME": 8, "BETA": 2})
    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "agents", "acme", "proration", "2026-04", D("3"), D("10.00"), D("21.00")),
        (CI, "2026-05-01", "agents", "acme", "recurring", "2026-05", D("8"), D("10.00"), D("80.00")),
    ]
    inventory(partner, "2026-04-25", {"ACME": 6, "BETA": 2})

    billed = {
        (agents.pk, APRIL): BilledUnits(date(2026, 4, 1), 5, {date(2026, 4, 10): 3}),
        (agents.pk, MAY): BilledUnits(date(2026, 5, 1), 8),
    }
    june = rate(partner, JUNE, billed=billed)
    assert rows(june) == [
        (CI, "2026-06-01", "agents", "acme", "proration", "2026-04", D("-2"), D("10.00"), D("-4.00")),
        (CI, "2026-06-01", "agents", "acme", "proration", "2026-05", D("-2"), D("10.00"), D("-20.00")),
        (CI, "2026-06-01", "agents", "acme", "recurring", "2026-06", D("6"), D("10.00"), D("60.00")),
    ]
    assert sorted(line.effective_date for line in june if line.line_type == "proration") == [
        date(2026, 4, 25), date(2026, 5, 1)]

    billed[(agents.pk, APRIL)].changes[date(2026, 4, 25)] = -2
    billed[(agents.pk, MAY)].changes[date(2026, 5, 1)] = -2
    assert rows(rate(partner, JUNE, billed=billed)) == [
        (CI, "2026-06-01", "agents", "acme", "recurring", "2026-06", D("6"), D("10.00"), D("60.00")),
    ]


def test_per_asset_change_on_the_first_is_used_by_the_normal_line_and_posts_nothing():
    """20 Feb ACME 5; 1 May ACME 9. May CI: 9 x 10.00 = 90.00 and nothing for April (no change);
    June CI: 90.00 only: the 1 May change was in May's normal line."""
    partner = PartnerFactory(slug="p")
    service(partner, "agents", Method.PER_ASSET, "10.00", rmm_filter="ACME")
    inventory(partner, "2026-02-20", {"ACME": 5})
    inventory(partner, "2026-05-01", {"ACME": 9})

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "agents", None, "recurring", "2026-05", D("9"), D("10.00"), D("90.00")),
    ]
    assert rows(rate(partner, JUNE)) == [
        (CI, "2026-06-01", "agents", None, "recurring", "2026-06", D("9"), D("10.00"), D("90.00")),
    ]


def test_per_asset_first_month_uses_the_start_date_units_and_prorates_only_later_changes():
    """20 March ACME 5; 10 April ACME 7; 20 April ACME 9. Two services from 10 April at 10.00.
    April INVs dated 2026-04-10 with the 7 units in force on the start date:
    day_fraction: 7 x 10.00 x 21/30 = 49.00; rounded_daily_rate: round(70.00 / 30) = 2.33 x (30 - 10) = 46.60.
    May CI: 9 x 10.00 = 90.00 each, plus +2 from 20 April: 2 x 10.00 x 11/30 = 7.333... -> 7.33 each;
    the change on the start date itself posts nothing."""
    partner = PartnerFactory(slug="p")
    start = date(2026, 4, 10)
    service(partner, "df", Method.PER_ASSET, "10.00", rmm_filter="ACME", start_date=start)
    service(partner, "rdr", Method.PER_ASSET, "10.00", rmm_filter="ACME", start_date=start,
            proration="rounded_daily_rate")
    inventory(partner, "2026-03-20", {"ACME": 5})
    inventory(partner, "2026-04-10", {"ACME": 7})
    inventory(partner, "2026-04-20", {"ACME": 9})

    april = rate(partner, APRIL)
    assert rows(april) == [
        (INV, "2026-04-10", "df", None, "first_month", "2026-04", D("7"), D("10.00"), D("49.00")),
        (INV, "2026-04-10", "rdr", None, "first_month", "2026-04", D("7"), D("10.00"), D("46.60")),
    ]
    assert {line.effective_date for line in april} == {start}
    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "df", None, "proration", "2026-04", D("2"), D("10.00"), D("7.33")),
        (CI, "2026-05-01", "df", None, "recurring", "2026-05", D("9"), D("10.00"), D("90.00")),
        (CI, "2026-05-01", "rdr", None, "proration", "2026-04", D("2"), D("10.00"), D("7.33")),
        (CI, "2026-05-01", "rdr", None, "recurring", "2026-05", D("9"), D("10.00"), D("90.00")),
    ]


def test_per_asset_negative_proration_rounds_half_away_from_zero():
    """billing-rules 6.12: 2 agents at 0.15 from 20 March, 1 from 6 April: -1 x 0.15 x (30 - 6 + 1 = 25)/30
    = -0.125 exactly -> -0.13. May CI: 1 x 0.15 = 0.15 normal line."""
    partner = PartnerFactory(slug="p")
    service(partner, "agents", Method.PER_ASSET, "0.15", rmm_filter="ACME")
    inventory(partner, "2026-03-20", {"ACME": 2})
    inventory(partner, "2026-04-06", {"ACME": 1})

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "agents", None, "proration", "2026-04", D("-1"), D("0.15"), D("-0.13")),
        (CI, "2026-05-01", "agents", None, "recurring", "2026-05", D("1"), D("0.15"), D("0.15")),
    ]


def test_per_asset_counts_the_inventory_whatever_the_suspensions():
    """billing-rules 3.7: per_asset units are the agents in the inventory in force (the suspension rule of 6.7 is for
    the partner-level assets meter). ACME 4 from 20 March; Acme suspended from 10:00 on 5 April to 08:00 on
    20 April. May CI: 4 x 10.00 = 40.00 for both services and no proration line for April."""
    partner = PartnerFactory(slug="p")
    acme = CustomerFactory(partner=partner, slug="acme", rmm_organization="ACME")
    service(partner, "acme-agents", Method.PER_ASSET, "10.00", customer=acme)
    service(partner, "all-agents", Method.PER_ASSET, "10.00")
    inventory(partner, "2026-03-20", {"ACME": 4})
    SuspensionFactory(customer=acme, suspended_at=at("2026-04-05T10:00:00Z"), unsuspended_at=at("2026-04-20T08:00:00Z"))

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "acme-agents", "acme", "recurring", "2026-05", D("4"), D("10.00"), D("40.00")),
        (CI, "2026-05-01", "all-agents", None, "recurring", "2026-05", D("4"), D("10.00"), D("40.00")),
    ]


# --- seat_days (billing-rules 3.1, 6.1) ----------------------------------------------------------------

def seat_customer(committed: int):
    """Acme, April: 3 members seated since 20 March (3 x 30 = 90 seat-days) and one from 10:00 on 28 April to
    00:00 on 30 April (28, 29, 30 = 3 seat-days, the removal date counts): 93 seat-days = 3.1 seat-months.
    Customer-level seat_days service at 20.00, overage 25.00, committed `committed`."""
    partner = PartnerFactory(slug="p")
    acme = CustomerFactory(partner=partner, slug="acme")
    for _ in range(3):
        SeatAssignmentFactory(member=MemberFactory(customer=acme), assigned_at=at("2026-03-20T09:00:00Z"))
    SeatAssignmentFactory(member=MemberFactory(customer=acme), assigned_at=at("2026-04-28T10:00:00Z"),
                          removed_at=at("2026-04-30T00:00:00Z"))
    service(partner, "seats", Method.SEAT_DAYS, "20.00", customer=acme, committed_quantity=committed,
            overage_price="25.00")
    return partner


def test_seat_days_under_the_minimum_is_one_usage_line():
    """Committed 4: minimum 4 x 30/30 = 4 seat-months above the actual 3.1: one usage line of the billable 4
    x 20.00 = 80.00 on the May CI, period 2026-04."""
    partner = seat_customer(committed=4)

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "seats", "acme", "usage", "2026-04", D("4"), D("20.00"), D("80.00")),
    ]


def test_seat_days_above_the_minimum_is_minimum_plus_overage():
    """Committed 2: minimum 2 seat-months < actual 3.1. Total (60 x 20.00 + 33 x 25.00) / 30 = 2025 / 30
    = 67.50; minimum line 2 x 20.00 = 40.00; overage line 1.1 at 25.00 = 67.50 - 40.00 = 27.50."""
    partner = seat_customer(committed=2)

    assert rows(rate(partner, MAY)) == [
        (CI, "2026-05-01", "seats", "acme", "minimum", "2026-04", D("2"), D("20.00"), D("40.00")),
        (CI, "2026-05-01", "seats", "acme", "overage", "2026-04", D("1.1"), D("25.00"), D("27.50")),
    ]


# --- the attributes every line carries -----------------------------------------------------------

def test_line_attributes_document_dates_periods_customers_and_taxable():
    """One May rating of a partner with an advance flat service (partner-level, not taxable), a per_host
    service of Harbourside, a peak users service of Harbourside, a partner-level licenses service and a
    flat service starting 12 May (31 days, day_fraction: 31.00 x 20/31 = 20.00):
    advance lines are CI / 2026-05-01 / period 2026-05, arrears lines CI / 2026-05-01 / period 2026-04,
    the first month an INV dated its start with period 2026-05; licenses lines name the tenant."""
    partner = PartnerFactory(slug="p")
    harbourside = CustomerFactory(partner=partner, slug="harbourside", host_limit=3)
    millbrook = CustomerFactory(partner=partner, slug="millbrook")
    UsageSnapshotFactory(customer=harbourside, date=date(2026, 4, 2), users_count=7)
    UsageSnapshotFactory(customer=millbrook, date=date(2026, 4, 3), users_count=2)
    service(partner, "support", Method.FLAT, "45.00", taxable=False)
    service(partner, "hosting", Method.PER_HOST, "15.00", customer=harbourside)
    service(partner, "users", Method.PEAK, "4.00", meter="users", customer=harbourside)
    service(partner, "mail", Method.LICENSES, "3.00")
    service(partner, "backup", Method.FLAT, "31.00", start_date=date(2026, 5, 12))

    lines = rate(partner, MAY)
    assert sorted((line.service.code, line.document, line.issue_date, str(line.period),
                   line.customer.slug if line.customer else None, line.line_type, line.amount, line.taxable)
                  for line in lines) == [
        ("backup", INV, date(2026, 5, 12), "2026-05", None, "first_month", D("20.00"), True),
        ("hosting", CI, date(2026, 5, 1), "2026-05", "harbourside", "recurring", D("45.00"), True),
        ("mail", CI, date(2026, 5, 1), "2026-04", "harbourside", "usage", D("21.00"), True),
        ("mail", CI, date(2026, 5, 1), "2026-04", "millbrook", "usage", D("6.00"), True),
        ("support", CI, date(2026, 5, 1), "2026-05", None, "recurring", D("45.00"), False),
        ("users", CI, date(2026, 5, 1), "2026-04", "harbourside", "usage", D("28.00"), True),
    ]
    assert all(line.service.customer is None for line in lines if line.service.code == "mail")

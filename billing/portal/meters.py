"""What a partner is billed on, its meters this month so far, and the forecast of its next CI: the reads behind
the portal's dashboard, Billing and customer pages.

Every meter is read through the metering selectors that rating uses (billing-rules 3.1-3.8), once for the
partner whatever its number of customers or services: no loop over customers, days or members here. The
forecast is the rating engine itself, run on the month ahead as a dry computation (billing-rules decision (at)):
nothing is written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from billing.core.money import money_sum, quantize_money, quantize_quantity
from billing.core.periods import Period
from billing.core.usage_meters import meter_by_customer, meter_unit, readings_by_customer
from billing.portal.selectors import SeatSummary, price_text, seat_summaries
from invoicing.choices import LineType
from invoicing.forecast import Forecast
from invoicing.pricing import cmq_variable_quantity, tiered_amount, volume_unit_price
from invoicing.templatetags.invoice_format import format_money, format_unit_price
from metering.models import InventorySync, Suspension, SyncRun, UsageSnapshot
from metering.selectors import (
    asset_unit_steps,
    licenses_by_service,
    licenses_on_day,
    peak_assets_by_customer,
    peak_assets_by_service,
    peak_users_by_customer,
    peak_users_by_service,
    seat_days_by_service,
)
from metering.usage_records import usage_record_totals
from partners.models import Customer, Meter, Method, Partner, Service
from partners.selectors import active_seat_counts
from partners.terms import TermsBook
from partners.tiers import GRADUATED, parse_tiers

# the order the portal shows the methods in
METHOD_ORDER = (Method.SEAT_DAYS, Method.PEAK, Method.CMQ, Method.LICENSES, Method.RECORDS, Method.PER_ASSET,
                Method.PER_HOST, Method.FLAT)
METER_WORDS = {Meter.USERS: "users", Meter.ASSETS: "RMM agents"}
# what a line of the next CI charges, in words (never its code)
LINE_WORDS = {
    LineType.USAGE: "usage", LineType.MINIMUM: "committed minimum", LineType.OVERAGE: "overage",
    LineType.RECURRING: "monthly charge", LineType.VARIABLE_USAGE: "variable usage",
    LineType.PRORATION: "proration",
}


def method_phrase(service: Service) -> str:
    """How a service bills, in words for a partner: "seat-days (in arrears)", never `seat_days`."""
    meter = METER_WORDS.get(service.meter, "users")
    return {
        Method.SEAT_DAYS: "seat-days (in arrears)",
        Method.PEAK: f"peak {meter} (in arrears)",
        Method.CMQ: f"committed {meter} (in advance) and the usage above them (in arrears)",
        Method.LICENSES: "licenses per tenant (in arrears)",
        Method.RECORDS: f"{meter_unit(service.usage_meter)} from usage records (in arrears)",
        Method.PER_ASSET: "RMM agents (in advance)",
        Method.PER_HOST: "hosts (in advance)",
        Method.FLAT: "flat monthly fees (in advance)",
    }[service.method]


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def services_in_force(partner_id: int, day: date) -> list[Service]:
    """The partner's services running on `day`, in the portal's order (method, partner-level first, code)."""
    services = list(Service.objects.filter(partner_id=partner_id).active_on(day).select_related("customer"))
    services.sort(key=lambda s: (METHOD_ORDER.index(s.method), s.customer_id is not None, s.code))
    return services


@dataclass(frozen=True)
class BilledOn:
    """The services a partner is billed on today, and what follows for its pages."""

    services: list[Service]

    @property
    def methods(self) -> set[str]:
        return {s.method for s in self.services}

    @property
    def seats(self) -> bool:
        """Seats apply (Add seats, the seat chart, the seat forms): a seat_days service is in force."""
        return Method.SEAT_DAYS in self.methods

    def seats_for(self, customer: Customer) -> bool:
        """A seat_days service in force covers the customer (partner-level, or its own)."""
        return any(s.method == Method.SEAT_DAYS and s.customer_id in (None, customer.pk) for s in self.services)

    @property
    def users(self) -> bool:
        """Tenants' users are metered: a users meter (peak, cmq) or licenses."""
        return any(s.meter == Meter.USERS or s.method == Method.LICENSES for s in self.services)

    @property
    def licenses(self) -> bool:
        return Method.LICENSES in self.methods

    @property
    def agents(self) -> bool:
        """RMM agents are metered: per_asset, or a peak or cmq service on the assets meter."""
        return any(s.method == Method.PER_ASSET or s.meter == Meter.ASSETS for s in self.services)

    @property
    def hosts(self) -> bool:
        return Method.PER_HOST in self.methods

    @property
    def sentence(self) -> str:
        """"Billed monthly on seat-days (in arrears) and flat monthly fees (in advance)." in words."""
        phrases: list[str] = []
        for service in self.services:
            phrase = method_phrase(service)
            if phrase not in phrases:
                phrases.append(phrase)
        if not phrases:
            return "No service is in force on your account today."
        return f"Billed monthly on {_joined(phrases)}."


def billed_on(partner_id: int, day: date) -> BilledOn:
    return BilledOn(services_in_force(partner_id, day))


# --- the partner's meters this month so far ------------------------------------------------------------------

@dataclass(frozen=True)
class PeakMeter:
    """A peak service: its highest day this month so far (billing-rules 3.4)."""

    service: Service
    peak: int

    @property
    def meter(self) -> str:
        return METER_WORDS.get(self.service.meter, "")


@dataclass(frozen=True)
class CommitmentMeter:
    """A cmq service: the committed quantity against this month's peak so far (billing-rules 3.5)."""

    service: Service
    committed: int
    peak: int
    currency: str

    @property
    def meter(self) -> str:
        return METER_WORDS.get(self.service.meter, "")

    @property
    def above(self) -> int:
        return cmq_variable_quantity(self.peak, self.committed)

    @property
    def overage_price(self) -> Decimal:
        price = self.service.overage_price or self.service.unit_price
        return price.amount

    @property
    def variable_amount(self) -> Decimal:
        return quantize_money(Decimal(self.above) * self.overage_price, self.currency)

    @property
    def percent(self) -> int:
        return min(100, self.peak * 100 // self.committed) if self.committed else 100


@dataclass(frozen=True)
class TenantLicenses:
    """A tenant under a licenses service: its latest usage and its licenses this month so far (billing-rules
    3.6)."""

    customer: Customer
    licenses: int  # the highest day this month so far
    users: int  # the latest snapshot (0 before any)
    storage_bytes: int
    snapshot_date: date | None
    by_storage: bool  # the latest day's licenses come from storage, not users
    suspended: bool  # suspended now

    @property
    def storage_gb(self) -> Decimal:
        return (Decimal(self.storage_bytes) / Decimal(10**9)).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class LicenseMeter:
    service: Service
    tenants: list[TenantLicenses]

    @property
    def total(self) -> int:
        return sum(t.licenses for t in self.tenants)

    @property
    def graduated(self) -> bool:
        return bool(parse_tiers(self.service.tiers)) and self.service.tier_mode == GRADUATED

    @property
    def unit_price(self) -> Decimal | None:
        """The price every license is at, the tier the total reaches so far; none under graduated tiers."""
        if self.graduated:
            return None
        return volume_unit_price(Decimal(self.total), unit_price=self.service.unit_price.amount,
                                 tiers=parse_tiers(self.service.tiers))

    @property
    def suspended(self) -> int:
        return sum(1 for t in self.tenants if t.suspended)


@dataclass(frozen=True)
class AgentMeter:
    """A per_asset service: the agents its filter takes in the inventory in force today (billing-rules 3.7)."""

    service: Service
    units: int

    currency: str

    @property
    def monthly(self) -> Decimal:
        """The units in force today at the service's price (its tiers), a month."""
        return quantize_money(tiered_amount(Decimal(self.units), unit_price=self.service.unit_price.amount,
                                            tiers=parse_tiers(self.service.tiers), mode=self.service.tier_mode),
                              self.currency)


@dataclass(frozen=True)
class LastSync:
    """The partner's latest RMM sync run, and the latest inventory applied (by a sync or an import)."""

    run: SyncRun | None
    inventory: InventorySync | None

    @property
    def at(self) -> datetime | None:
        if self.run is not None:
            return self.run.finished_at or self.run.started_at
        return self.inventory.synced_at if self.inventory is not None else None

    @property
    def status(self) -> str:
        """ok, failed, held, running or rejected for a sync run; ok for an inventory applied by an import."""
        return self.run.status if self.run is not None else ("ok" if self.inventory is not None else "")

    @property
    def summary(self) -> str:
        if self.run is not None:
            return f"{self.run.get_status_display()}, inventory as of {self.run.as_of:%-d %b %Y}"
        if self.inventory is not None:
            return f"inventory as of {self.inventory.as_of:%-d %b %Y} ({self.inventory.agents} agents)"
        return "no inventory yet"


@dataclass(frozen=True)
class HostMeter:
    """A per_host service: its customer's host limit in force (billing-rules 3.8)."""

    service: Service
    host_limit: int
    currency: str

    @property
    def monthly(self) -> Decimal:
        return quantize_money(tiered_amount(Decimal(self.host_limit), unit_price=self.service.unit_price.amount,
                                            tiers=parse_tiers(self.service.tiers), mode=self.service.tier_mode),
                              self.currency)


@dataclass
class PartnerMeters:
    today: date
    month: Period
    billed: BilledOn
    currency: str
    seats: list[SeatSummary] = field(default_factory=list)
    seat_days: dict[int, int] = field(default_factory=dict)  # service id: seat-days this month so far
    peaks: list[PeakMeter] = field(default_factory=list)
    commitments: list[CommitmentMeter] = field(default_factory=list)
    licenses: list[LicenseMeter] = field(default_factory=list)
    agents: list[AgentMeter] = field(default_factory=list)
    last_sync: LastSync | None = None
    hosts: list[HostMeter] = field(default_factory=list)
    flats: list[Service] = field(default_factory=list)
    records: list[tuple[Service, Decimal]] = field(default_factory=list)  # a records service, its usage so far
    customer_agents: list[tuple[Customer, int]] = field(default_factory=list)  # each RMM organization's agents today

    @property
    def seat_rows(self) -> list[tuple[SeatSummary, int]]:
        return [(s, self.seat_days.get(s.service.pk, 0)) for s in self.seats if s.service is not None]

    @property
    def agent_total(self) -> int:
        return sum(a.units for a in self.agents)

    @property
    def host_total(self) -> int:
        return sum(h.host_limit for h in self.hosts)

    @property
    def flat_total(self) -> Decimal:
        return money_sum(quantize_money(s.unit_price.amount, self.currency) for s in self.flats)

    def highlights(self, *, money: bool = True) -> list[dict]:
        """The dashboard's headline figures of a partner without seats (seat partners keep their seat cards):
        one or more per meter it is billed on, in the order of METHOD_ORDER; without amounts or prices unless
        `money` (a Technician sees no money)."""
        month = f"{self.month.first:%B}"
        cards: list[dict] = []
        for peak in self.peaks:
            cards.append({"key": f"peak-{peak.service.code}", "label": peak.service.name, "value": peak.peak,
                          "hint": f"peak {peak.meter}, highest day of {month} so far"})
        for c in self.commitments:
            cards += [
                {"key": "committed", "label": f"Committed {c.meter}", "value": c.committed,
                 "hint": f"{c.service.name}, billed in advance"},
                {"key": "peak", "label": f"Peak {c.meter} so far", "value": c.peak,
                 "hint": f"highest day of {month} so far", "bar": c.percent,
                 "level": "bad" if c.above else ("warn" if c.percent >= 90 else "")},
                {"key": "variable", "label": "Variable usage so far", "value": format_money(c.variable_amount,
                                                                                            self.currency),
                 "hint": f"{c.above} above the commitment × {format_unit_price(c.overage_price, self.currency)}",
                 "money": True},
            ]
        for m in self.licenses:
            suspended = f", {m.suspended} suspended" if m.suspended else ""
            cards += [{"key": "licenses", "label": "Licenses so far", "value": m.total,
                       "hint": f"{m.service.name}, highest day of each tenant in {month}"},
                      {"key": "tenants", "label": "Tenants", "value": len(m.tenants),
                       "hint": f"{len(m.tenants) - m.suspended} active{suspended}"},
                      {"key": "license-price", "label": "Price a license",
                       "value": "tiered" if m.unit_price is None else price_text(m.unit_price, self.currency),
                       "hint": "the tier the total reaches so far" if m.service.tiers else "a month, in arrears",
                       "money": True}]
        for service, quantity in self.records:
            cards.append({"key": f"records-{service.code}", "label": service.name,
                          "value": f"{quantize_quantity(quantity).normalize():,f}",
                          "hint": f"{meter_unit(service.usage_meter)} in {month} so far ({service.usage_meter})"})
        if self.agents:
            cards.append({"key": "agents", "label": "RMM agents today", "value": self.agent_total,
                          "hint": f"{len(self.agents)} service{'s' if len(self.agents) != 1 else ''} billed per agent"})
        if self.last_sync is not None and self.last_sync.at is not None:
            cards.append({"key": "sync", "label": "Last RMM sync", "value": f"{self.last_sync.at:%-d %b}",
                          "hint": self.last_sync.summary})
        if self.hosts:
            cards.append({"key": "hosts", "label": "Hosts", "value": self.host_total,
                          "hint": f"{len(self.hosts)} customer{'s' if len(self.hosts) != 1 else ''} billed per host"})
        if self.flats:
            cards.append({"key": "flat", "label": "Flat fees a month", "value": format_money(self.flat_total,
                                                                                             self.currency),
                          "hint": f"{len(self.flats)} service{'s' if len(self.flats) != 1 else ''}, in advance",
                          "money": True})
        return [card for card in cards if money or not card.get("money")]


def _terms_on(services: list[Service], customers: list[Customer], day: date) -> tuple[dict, dict]:
    """{service id: the service as it stood on `day`}, {customer id: the customer then} (billing-rules 3.11)."""
    book = TermsBook([*services, *customers])
    return {s.pk: book.on(s, day) for s in services}, {c.pk: book.on(c, day) for c in customers}


def latest_usage(customer_ids) -> dict[int, UsageSnapshot]:
    """{customer id: its latest usage snapshot}, in one query."""
    latest = UsageSnapshot.objects.filter(customer=OuterRef("customer_id")).order_by("-date").values("pk")[:1]
    snapshots = UsageSnapshot.objects.filter(customer_id__in=list(customer_ids), pk=Subquery(latest))
    return {s.customer_id: s for s in snapshots}


def suspended_now(customer_ids) -> set[int]:
    """The customers suspended at this instant."""
    now = timezone.now()
    return set(Suspension.objects.filter(customer_id__in=list(customer_ids), suspended_at__lte=now).filter(
        Q(unsuspended_at__isnull=True) | Q(unsuspended_at__gt=now)).values_list("customer_id", flat=True))


def last_sync(partner_id: int) -> LastSync:
    run = SyncRun.objects.filter(partner_id=partner_id).order_by("-started_at", "-pk").first()
    inventory = InventorySync.objects.filter(partner_id=partner_id).order_by("-as_of", "-synced_at", "-pk").first()
    return LastSync(run, inventory)


def partner_meters(partner: Partner, today: date) -> PartnerMeters:
    """The meters of every service the partner is billed on today, this month (UTC) through today: one read per
    meter (billing-rules 3.1-3.8)."""
    billed = billed_on(partner.pk, today)
    month = Period.of(today)
    meters = PartnerMeters(today=today, month=month, billed=billed, currency=partner.currency)
    services = billed.services
    by_method: dict[str, list[Service]] = defaultdict(list)
    for service in services:
        by_method[service.method].append(service)
    # usage in arrears is priced with the terms in force on its month's 1st, advance charges with today's
    arrears, _ = _terms_on(services, [], month.first)
    now_terms, customers_now = _terms_on(services, [s.customer for s in by_method[Method.PER_HOST] if s.customer],
                                         today)
    first, last = month.first, today
    if billed.seats:
        meters.seats = [s for s in seat_summaries(partner_id=partner.pk, day=today) if s.service is not None]
        days = seat_days_by_service(service_ids=[s.pk for s in by_method[Method.SEAT_DAYS]], first=first, last=last)
        meters.seat_days = {sid: n for (sid, _), n in days.items()}
    peaked = by_method[Method.PEAK] + by_method[Method.CMQ]
    peaks = peak_users_by_service(service_ids=[s.pk for s in peaked if s.meter == Meter.USERS], first=first,
                                  last=last)
    peaks.update(peak_assets_by_service(service_ids=[s.pk for s in peaked if s.meter == Meter.ASSETS], first=first,
                                        last=last))
    meters.peaks = [PeakMeter(arrears[s.pk], peaks.get(s.pk, 0)) for s in by_method[Method.PEAK]]
    meters.commitments = [
        CommitmentMeter(arrears[s.pk], arrears[s.pk].committed_quantity or 0, peaks.get(s.pk, 0), partner.currency)
        for s in by_method[Method.CMQ]
    ]
    if billed.licenses:
        meters.licenses = _license_meters(partner, [arrears[s.pk] for s in by_method[Method.LICENSES]], first, last)
    if by_method[Method.PER_ASSET]:
        steps = asset_unit_steps(service_ids=[s.pk for s in by_method[Method.PER_ASSET]], first=today, last=today)
        meters.agents = [AgentMeter(now_terms[s.pk], steps.get(s.pk, [(today, 0)])[-1][1], partner.currency)
                         for s in by_method[Method.PER_ASSET]]
    if billed.agents:
        meters.last_sync = last_sync(partner.pk)
        counts = peak_assets_by_customer(partner_ids=[partner.pk], first=today, last=today)
        meters.customer_agents = [(c, counts.get(c.pk, 0)) for c in partner.customers.exclude(rmm_organization="")
                                  .order_by("name")]
    meters.hosts = [HostMeter(now_terms[s.pk], customers_now[s.customer_id].host_limit or 0, partner.currency)
                    for s in by_method[Method.PER_HOST] if s.customer_id]
    meters.flats = [now_terms[s.pk] for s in by_method[Method.FLAT]]
    if by_method[Method.RECORDS]:
        readings = readings_by_customer(usage_record_totals([partner.pk], month))
        meters.records = [
            (s, sum(meter_by_customer(readings, s.usage_meter, s.customer_id).values(), Decimal(0)))
            for s in by_method[Method.RECORDS]]
    return meters


def _license_meters(partner: Partner, services: list[Service], first: date, last: date) -> list[LicenseMeter]:
    """Each licenses service with its tenants: licenses this month so far (the metering selector of billing),
    the latest usage and whether each is suspended now."""
    counts = licenses_by_service(service_ids=[s.pk for s in services], first=first, last=last)
    customers = {c.pk: c for c in Customer.objects.filter(partner=partner)}
    latest = latest_usage(customers)
    suspended = suspended_now(customers)
    result = []
    for service in services:
        covered = [service.customer_id] if service.customer_id else list(customers)
        tenants = []
        for cid in covered:
            snapshot = latest.get(cid)
            users = snapshot.users_count if snapshot else 0
            storage = snapshot.storage_bytes if snapshot else 0
            tenants.append(TenantLicenses(
                customer=customers[cid], licenses=counts.get((service.pk, cid), 0), users=users,
                storage_bytes=storage, snapshot_date=snapshot.date if snapshot else None,
                by_storage=licenses_on_day(users, storage, service.storage_per_license_gb) > users,
                suspended=cid in suspended,
            ))
        tenants.sort(key=lambda t: t.customer.name.lower())
        result.append(LicenseMeter(service, tenants))
    return result


# --- a customer's meters ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CustomerMeters:
    """One customer's meters this month so far, as its pages show them."""

    customer: Customer
    seats_apply: bool
    seats: int  # active now
    peak_users: int  # highest day this month so far (0 on whole suspended days)
    licenses: int | None  # under the licenses services covering it, the highest; None when none does
    agents: int  # agents of its RMM organization in the inventory in force today
    host_limit: int | None  # with a per_host service of its own
    suspended: bool
    usage: UsageSnapshot | None
    services: list[Service]

    @property
    def seat_percent(self) -> int | None:
        cap = self.customer.seat_cap
        return min(100, self.seats * 100 // cap) if cap else None


def customer_meters(partner: Partner, today: date, customers: list[Customer] | None = None) -> list[CustomerMeters]:
    """The meters of the partner's customers (all, or those given) this month so far: one read per meter for all
    of them."""
    billed = billed_on(partner.pk, today)
    month = Period.of(today)
    if customers is None:
        customers = list(partner.customers.order_by("name"))
    ids = [c.pk for c in customers]
    seats = active_seat_counts(partner_ids=[partner.pk]).by_customer if billed.seats else {}
    peak_users = peak_users_by_customer(partner_ids=[partner.pk], first=month.first, last=today) if billed.users else {}
    licensing = [s for s in billed.services if s.method == Method.LICENSES]
    licenses: dict[int, int] = {}
    for (_, cid), n in licenses_by_service(service_ids=[s.pk for s in licensing], first=month.first,
                                           last=today).items():
        licenses[cid] = max(n, licenses.get(cid, 0))
    agents = peak_assets_by_customer(partner_ids=[partner.pk], first=today, last=today) if billed.agents else {}
    usage = latest_usage(ids) if billed.users else {}
    suspended = suspended_now(ids)
    book = TermsBook(customers)
    result = []
    for customer in customers:
        own = [s for s in billed.services if s.customer_id in (None, customer.pk)]
        hosted = any(s.method == Method.PER_HOST and s.customer_id == customer.pk for s in own)
        result.append(CustomerMeters(
            customer=customer, seats_apply=billed.seats_for(customer), seats=seats.get(customer.pk, 0),
            peak_users=peak_users.get(customer.pk, 0),
            licenses=licenses.get(customer.pk, 0) if any(s in licensing for s in own) else None,
            agents=agents.get(customer.pk, 0), host_limit=book.on(customer, today).host_limit if hosted else None,
            suspended=customer.pk in suspended, usage=usage.get(customer.pk), services=own,
        ))
    return result


# --- the forecast of the next CI (billing-rules decision (at)): invoicing.forecast -----------------------------

def forecast_rows(forecast: Forecast) -> list[dict]:
    """The forecast's lines with what each charges, in words."""
    return [{"line": line, "what": LINE_WORDS.get(line.line_type, str(line.line_type).replace("_", " "))}
            for line in forecast.lines]

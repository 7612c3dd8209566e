"""A bulk generator of realistic billing data, for benchmarks and load tests (`generate_data`).

Partners come in seven profiles, one per billing method beside the seat-days and flat charges that
every partner has: peak users, licenses (storage-driven, volume tiers), per_asset per customer,
per_host per customer, cmq on RMM assets, peak assets with tiers, licenses with graduated tiers.
Every customer has members with seat histories (on average 2.5 seat intervals each, the
intervals of one member never overlap), the tenant profiles have daily usage snapshots and a few
suspensions, the RMM profiles have agents with moves and removals, some services have seat
purchases and every partner a one-time charge.

Rows are produced by plain Python generators from a seeded random source, so the same options give
the same data. The big tables (members, seats, usage, agents, presences) are written with
PostgreSQL COPY; other databases get `bulk_create` in batches. Nothing is written through the
services: the generator is for measuring, and writes what the services would have written
(derived dates, RMM filter parts), checked by the smoke test against the rating.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils import timezone

from billing.core.bulk import insert_rows
from billing.core.periods import Period
from invoicing.models import OneTimeCharge
from metering.models import AgentPresence, CallUsageRecord, InventorySync, RmmAgent, Suspension, UsageSnapshot
from partners.models import (
    Customer,
    Member,
    Method,
    Partner,
    SeatAssignment,
    SeatPurchase,
    Service,
    TierMode,
)

PROFILES = ("peak_users", "licenses", "per_asset", "per_host", "cmq_assets", "peak_assets", "licenses_graduated")
USAGE_PROFILES = {"peak_users", "licenses", "licenses_graduated"}
RMM_PROFILES = {"per_asset", "cmq_assets", "peak_assets"}
GROUPS = ("Workstations", "Servers")
GB = 10**9
BATCH = 5000  # rows per bulk_create of the small tables
TICK = 10_000  # rows of a big table between two progress reports


@dataclass(frozen=True)
class Spec:
    partners: int
    customers: int
    members: int
    months: int
    seed: int
    first: Period  # the first month of history; the history runs through the last day of the last month
    agents: int  # RMM agents in all, shared by the partners of the RMM profiles
    prefix: str = "gen"
    only: str = ""  # one profile for every partner (default: the seven in turn)

    def kind(self, index: int) -> str:
        return self.only or profile(index)

    @property
    def last_day(self) -> date:
        return self.first.shift(self.months - 1).last

    @property
    def rmm_partners(self) -> list[int]:
        return [p for p in range(self.partners) if self.kind(p) in RMM_PROFILES]


@dataclass
class Counts:
    rows: dict[str, int] = field(default_factory=dict)
    # told (the table being written, the rows written so far in all) as the tables fill: generate_data's progress
    on_progress: Callable[[str, int], None] | None = field(default=None, repr=False, compare=False)

    def add(self, name: str, n: int) -> None:
        self.rows[name] = self.rows.get(name, 0) + n
        if self.on_progress is not None:
            self.on_progress(name, sum(self.rows.values()))

    def ticked(self, name: str, rows: Iterable[tuple]) -> Iterable[tuple]:
        """A big table's rows on their way to insert_rows, told to on_progress every TICK rows (a table of
        millions of rows takes minutes)."""
        return rows if self.on_progress is None else self._ticking(name, rows)

    def _ticking(self, name: str, rows: Iterable[tuple]) -> Iterator[tuple]:
        before = sum(self.rows.values())
        for n, row in enumerate(rows, 1):
            yield row
            if n % TICK == 0:
                self.on_progress(name, before + n)


def profile(index: int) -> str:
    return PROFILES[index % len(PROFILES)]


def at(day: date, seconds: int) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC) + timedelta(seconds=seconds)


# --- writing ---------------------------------------------------------------------------------------

def _next_id(model) -> int:
    return (model.objects.aggregate(m=models.Max("pk"))["m"] or 0) + 1


def _reset_sequences(models_: list) -> None:
    if connection.vendor != "postgresql":
        return

    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), models_):
            cursor.execute(sql)


# --- the generator -------------------------------------------------------------------------------

class Generator:
    def __init__(self, spec: Spec, on_progress: Callable[[str, int], None] | None = None):
        self.spec = spec
        self.counts = Counts(on_progress=on_progress)
        self.now = timezone.now()

    def rng(self, *parts) -> random.Random:
        """A random source of its own for each partner and table: the same data whatever is generated before."""
        return random.Random("/".join(str(p) for p in (self.spec.seed, *parts)))

    @transaction.atomic
    def run(self) -> Counts:
        spec = self.spec
        if spec.last_day >= self.now.date():
            raise ValueError(f"the history must end before today: {spec.first} + {spec.months} months ends "
                             f"{spec.last_day}")
        partners = self._partners()
        customers = self._customers(partners)
        self._services(partners, customers)
        self._members_and_seats(customers)
        self._usage(partners, customers)
        self._rmm(partners, customers)
        self._one_time(partners, customers)
        self._calls(partners, customers)
        _reset_sequences([Member, SeatAssignment, UsageSnapshot, RmmAgent, AgentPresence, CallUsageRecord])
        return self.counts

    def _partners(self) -> list[Partner]:
        spec = self.spec
        taken = set(Partner.objects.filter(slug__startswith=f"{spec.prefix}-").values_list("slug", flat=True))
        rows = []
        for p in range(spec.partners):
            slug = f"{spec.prefix}-p{p:04d}"
            if slug in taken:
                raise ValueError(f"partner {slug} exists already: generate into an empty database or another --prefix")
            rng = self.rng("partner", p)
            currency = "EUR" if p % 5 == 4 else "USD"
            rows.append(Partner(
                slug=slug, name=f"{spec.prefix.upper()} Managed Services {p:04d}", currency=currency,
                tax_rate=Decimal(rng.choice(["0", "8", "8.875", "21"])), payment_terms_days=rng.choice([14, 30, 45]),
                billing_emails=f"billing@{slug}.example",
            ))
        Partner.objects.bulk_create(rows)
        self.counts.add("partners", len(rows))
        return list(Partner.objects.filter(slug__startswith=f"{spec.prefix}-p").order_by("slug"))

    def _customers(self, partners: list[Partner]) -> dict[int, list[Customer]]:
        spec = self.spec
        rows = []
        for p, partner in enumerate(partners):
            rng = self.rng("customers", p)
            for c in range(spec.customers):
                rows.append(Customer(
                    partner=partner, slug=f"c{c:04d}", name=f"Customer {c:04d} of {partner.slug}",
                    seat_cap=spec.members + 20 if c % 10 == 0 else None,
                    host_limit=rng.randint(5, 60) if spec.kind(p) == "per_host" else 0,
                    payment_terms_days=15 if c % 17 == 0 else None, rmm_organization=f"org-{c:04d}",
                ))
        Customer.objects.bulk_create(rows, batch_size=BATCH)
        self.counts.add("customers", len(rows))
        by_partner: dict[int, list[Customer]] = {p.pk: [] for p in partners}
        for customer in Customer.objects.filter(partner__in=partners).order_by("partner_id", "slug"):
            by_partner[customer.partner_id].append(customer)
        return by_partner

    def _services(self, partners, customers) -> None:
        spec = self.spec
        start = spec.first.first
        services: list[Service] = []
        purchases: list[tuple[int, int]] = []  # (index into services, seats)
        for p, partner in enumerate(partners):
            kind, cur = spec.kind(p), partner.currency
            members = spec.customers * spec.members

            def svc(code, name, method, price, customer=None, partner=partner, cur=cur, **extra):
                service = Service(partner=partner, customer=customer, code=code, name=name, method=method,
                                  unit_price=(Decimal(price), cur), start_date=extra.pop("start_date", start),
                                  **extra)
                service.set_rmm_parts()
                services.append(service)

            svc("seats", "Managed workstation seats", Method.SEAT_DAYS, "12.00",
                committed_quantity=max(1, members * 6 // 10), overage_enabled=True,
                overage_price=(Decimal("14.00"), cur))
            if p % 10 == 0:
                purchases.append((len(services) - 1, max(1, members // 20)))
            svc("support", "Partner support plan", Method.FLAT, "450.00")
            if kind == "peak_users":
                svc("email-security", "Email security (peak users)", Method.PEAK, "2.25", meter="users")
            elif kind in ("licenses", "licenses_graduated"):
                graduated = kind == "licenses_graduated"
                svc("m365", "Microsoft 365 backup", Method.LICENSES, "4.00",
                    storage_per_license_gb=None if graduated else Decimal("50"),
                    tiers="25:4.00;100:3.50;inf:3.00",
                    tier_mode=TierMode.GRADUATED if graduated else TierMode.VOLUME)
            elif kind == "per_asset":
                for c, customer in enumerate(customers[partner.pk]):
                    if c % 2:
                        svc(f"servers-{c:04d}", "Managed servers", Method.PER_ASSET, "35.00", customer=customer,
                            rmm_filter=f"{customer.rmm_organization}/Servers")
                    svc(f"endpoints-{c:04d}", "Managed endpoints", Method.PER_ASSET, "6.00", customer=customer)
            elif kind == "per_host":
                # the partner-invoices seed's partner: hosts per customer, and calls from its usage records
                svc("calls", "Outbound calls", Method.RECORDS, "0.02", usage_meter="call_minutes:outbound:*")
                for c, customer in enumerate(customers[partner.pk]):
                    late = c % 9 == 0  # a service starting mid-history: a first-month INV
                    svc(f"meetings-{c:04d}", "Video meetings (per host)", Method.PER_HOST, "15.00",
                        customer=customer, start_date=spec.first.shift(spec.months - 1).first + timedelta(days=9)
                        if late else start)
            elif kind == "cmq_assets":
                agents = self._agents_per_partner()
                svc("rmm-agents", "RMM agents (committed)", Method.CMQ, "2.50", meter="assets",
                    committed_quantity=max(1, agents * 6 // 10), overage_price=(Decimal("3.25"), cur))
            elif kind == "peak_assets":
                svc("monitoring", "Monitoring (peak agents)", Method.PEAK, "3.00", meter="assets",
                    tiers="500:3.00;inf:2.50")
        Service.objects.bulk_create(services, batch_size=BATCH)
        self.counts.add("services", len(services))
        buys = []
        for index, seats in purchases:
            service = services[index]
            purchased = at(spec.first.shift(min(1, spec.months - 1)).first + timedelta(days=14), 10 * 3600)
            buys.append(SeatPurchase(service=service, seats=seats, purchased_at=purchased,
                                     effective_date=Period.of(purchased.date()).next().first, source="generate_data"))
        SeatPurchase.objects.bulk_create(buys)
        self.counts.add("seat purchases", len(buys))

    def _agents_per_partner(self) -> int:
        rmm = len(self.spec.rmm_partners)
        return self.spec.agents // rmm if rmm else 0

    def _members_and_seats(self, customers) -> None:
        spec = self.spec
        member_id = _next_id(Member)
        seat_id = _next_id(SeatAssignment)
        members: list[tuple] = []
        first, last = spec.first.first, spec.last_day
        span = (last - first).days + 1

        def member_rows() -> Iterator[tuple]:
            nonlocal member_id
            for customer_list in customers.values():
                for customer in customer_list:
                    for m in range(spec.members):
                        members.append((member_id, customer.partner_id, customer.pk))
                        yield (member_id, customer.pk, f"user{m:05d}")
                        member_id += 1

        self.counts.add("members", insert_rows(Member, ["id", "customer_id", "name"],
                                               self.counts.ticked("members", member_rows())))

        def seat_rows() -> Iterator[tuple]:
            nonlocal seat_id
            rng = self.rng("seats")
            for mid, partner_id, customer_id in members:
                # 1 to 4 intervals (mean 2.5), in order, never overlapping; the last one may stay open
                intervals = rng.choice((1, 2, 3, 4))
                cuts = sorted(rng.sample(range(span * 2), intervals * 2))
                for n in range(intervals):
                    begin, end = cuts[2 * n], cuts[2 * n + 1]
                    assigned = at(first, begin * 43200 + rng.randrange(43200))
                    removed = at(first, end * 43200 + rng.randrange(43200))
                    if n == intervals - 1 and rng.random() < 0.6:
                        removed = None
                    yield (seat_id, partner_id, customer_id, mid, assigned, removed, assigned.date(),
                           removed.date() if removed else None, "generate_data")
                    seat_id += 1

        self.counts.add("seat intervals", insert_rows(
            SeatAssignment,
            ["id", "partner_id", "customer_id", "member_id", "assigned_at", "removed_at", "start_date", "end_date",
             "source"],
            self.counts.ticked("seat intervals", seat_rows()),
        ))

    def _usage(self, partners, customers) -> None:
        spec = self.spec
        first, last = spec.first.first, spec.last_day
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        snap_id = _next_id(UsageSnapshot)
        suspensions: list[Suspension] = []

        def rows() -> Iterator[tuple]:
            nonlocal snap_id
            for p, partner in enumerate(partners):
                if spec.kind(p) not in USAGE_PROFILES:
                    continue
                rng = self.rng("usage", p)
                for customer in customers[partner.pk]:
                    users = rng.randint(max(1, spec.members // 2), spec.members + 10)
                    storage = users * rng.randint(5, 80) * GB
                    for day in days:
                        users = max(0, users + rng.choice((-1, 0, 0, 0, 1)))
                        storage = max(0, storage + rng.randint(-2, 3) * GB)
                        yield (snap_id, customer.pk, day, users, storage, None, self.now, "generate_data")
                        snap_id += 1
                    if rng.random() < 0.04:
                        begin = at(rng.choice(days), rng.randrange(86400))
                        end = begin + timedelta(days=rng.randint(3, 20)) if rng.random() < 0.5 else None
                        if end is not None and end.date() > last:
                            end = None
                        suspensions.append(Suspension(customer=customer, suspended_at=begin, unsuspended_at=end,
                                                      source="generate_data").set_days())

        self.counts.add("usage snapshots", insert_rows(
            UsageSnapshot,
            ["id", "customer_id", "date", "users_count", "storage_bytes", "messages_count", "recorded_at", "source"],
            self.counts.ticked("usage snapshots", rows()),
        ))
        Suspension.objects.bulk_create(suspensions)
        self.counts.add("suspensions", len(suspensions))

    def _calls(self, partners, customers) -> None:
        """The per_host partners' customers' calls (billing-rules 3.12): a few a working day, outbound and
        inbound, to a few destination classes, billed by the partner's records service."""
        spec = self.spec
        first, last = spec.first.first, spec.last_day
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]

        def rows() -> Iterator[tuple]:
            for p, partner in enumerate(partners):
                if spec.kind(p) != "per_host":
                    continue
                rng = self.rng("calls", p)
                for customer in customers[partner.pk]:
                    for day in days:
                        if day.weekday() >= 5:
                            continue
                        for n in range(rng.randint(0, 4)):
                            yield (partner.pk, customer.pk, f"{customer.slug}-{day:%Y%m%d}-{n}", f"{100 + n}",
                                   at(day, rng.randrange(8 * 3600, 18 * 3600)), rng.randint(0, 900),
                                   rng.choice(("outbound", "outbound", "inbound")),
                                   rng.choice(("local", "national", "mobile", "international")), "generate_data")

        self.counts.add("call usage records", insert_rows(
            CallUsageRecord, ["partner_id", "customer_id", "record_id", "user", "started_at", "duration_seconds",
                              "direction", "destination", "source"],
            self.counts.ticked("call usage records", rows())))

    def _rmm(self, partners, customers) -> None:
        spec = self.spec
        per_partner = self._agents_per_partner()
        if not per_partner:
            return
        first, last = spec.first.first, spec.last_day
        span = (last - first).days + 1
        agent_id = _next_id(RmmAgent)
        presence_id = _next_id(AgentPresence)
        agents: list[tuple] = []
        presences: list[tuple] = []
        syncs = []
        for p, partner in enumerate(partners):
            if spec.kind(p) not in RMM_PROFILES:
                continue
            rng = self.rng("rmm", p)
            orgs = [c.rmm_organization for c in customers[partner.pk]]
            for n in range(per_partner):
                group = GROUPS[1] if rng.random() < 0.2 else GROUPS[0]
                server = group == "Servers"
                agents.append((agent_id, partner.pk, f"agent-{n:06d}", f"{'SRV' if server else 'WS'}-{n:06d}",
                               "Windows Server 2022" if server else "Windows 11", at(last, 3600)))
                org = orgs[n % len(orgs)]
                begin = first if rng.random() < 0.8 else first + timedelta(days=rng.randrange(span))
                roll = rng.random()
                if roll < 0.08 and begin < last:  # moved to another group once
                    moved = begin + timedelta(days=rng.randint(1, (last - begin).days))
                    presences.append((presence_id, agent_id, partner.pk, org, group, begin, moved - timedelta(days=1)))
                    presences.append((presence_id + 1, agent_id, partner.pk, org, GROUPS[group == GROUPS[0]], moved,
                                      None))
                    presence_id += 2
                else:
                    removed = None
                    if roll > 0.95 and begin < last:
                        removed = begin + timedelta(days=rng.randint(0, (last - begin).days - 1))
                    presences.append((presence_id, agent_id, partner.pk, org, group, begin, removed))
                    presence_id += 1
                agent_id += 1
            syncs.append(InventorySync(partner=partner, as_of=last, agents=per_partner, source="generate_data"))
        self.counts.add("rmm agents", insert_rows(
            RmmAgent, ["id", "partner_id", "agent_id", "machine_name", "os", "last_seen"],
            self.counts.ticked("rmm agents", agents)))
        self.counts.add("agent presences", insert_rows(
            AgentPresence, ["id", "agent_id", "partner_id", "organization", "group", "present_from", "present_until"],
            self.counts.ticked("agent presences", presences)))
        InventorySync.objects.bulk_create(syncs)

    def _one_time(self, partners, customers) -> None:
        spec = self.spec
        charges = []
        for p, partner in enumerate(partners):
            rng = self.rng("one-time", p)
            customer = customers[partner.pk][rng.randrange(spec.customers)] if spec.customers else None
            charges.append(OneTimeCharge(
                partner=partner, customer=customer, description="Firewall installation (on site)",
                quantity=Decimal(rng.randint(1, 4)), unit_price=Decimal("125.00"),
                date=spec.last_day - timedelta(days=rng.randrange(20)), source="generate_data",
            ))
        OneTimeCharge.objects.bulk_create(charges)
        self.counts.add("one-time charges", len(charges))


def generate(spec: Spec, on_progress: Callable[[str, int], None] | None = None) -> Counts:
    """Generate the data of `spec`; `on_progress(table, rows written so far)` as it goes, if given."""
    return Generator(spec, on_progress=on_progress).run()

"""Random worlds for the ledger property tests (invoicing/tests/test_ledger_invariants.py): partners, customers
and services of every billing method, written as the import files a clerk would load, and the clock
the histories run on.

A world is drawn once per example; the history (seats, usage, inventories, one-time charges, billing
runs, payments, credit notes) is then played by the state machine through the real services.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import time_machine
from django.utils import timezone
from hypothesis import strategies as st

START = date(2026, 1, 1)  # the first day of every history
LAST_START = date(2026, 3, 20)  # services of the initial world start by then
END = date(2026, 7, 10)  # no history goes past this day

# prices and rates whose products land on half cents and odd fractions: rounding once per line and
# once per invoice then differ from rounding anything else
PRICES = ["0.00", "0.05", "0.015", "1.00", "9.99", "12.34", "33.33", "45.00", "100.00"]
TAX_RATES = ["0", "10", "7.5", "8.875", "8.875", "19.6"]
MEMBERS = ["ana", "bob", "cy", "dee"]
TIERS = ["2:10.00;5:8.00;inf:6.50", "1:3.33;inf:1.11"]


@dataclass(frozen=True)
class PartnerSpec:
    slug: str
    currency: str
    tax_rate: str
    terms: int


@dataclass(frozen=True)
class CustomerSpec:
    partner: str
    slug: str
    seat_cap: int | None
    host_limit: int
    terms: int | None
    rmm_organization: str


@dataclass(frozen=True)
class ServiceSpec:
    partner: str
    customer: int | None  # which of the partner's customers (by slug order); None: partner-level
    code: str
    method: str
    unit_price: str
    start: date
    end: date | None = None
    meter: str = ""
    overage_price: str | None = None
    committed: int | None = None
    overage_enabled: bool = False
    storage_gb: str | None = None
    tiers: str = ""
    tier_mode: str = ""
    proration: str = ""
    taxable: bool = True


@dataclass(frozen=True)
class World:
    partners: tuple[PartnerSpec, ...]
    customers: tuple[CustomerSpec, ...]
    services: tuple[ServiceSpec, ...]

    def customer_slugs(self) -> dict[str, list[str]]:
        return {p.slug: sorted(c.slug for c in self.customers if c.partner == p.slug) for p in self.partners}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def partners_csv(partners) -> str:
    rows = [f"{p.slug},{p.slug.title()} MSP,{p.currency},{p.tax_rate},{p.terms}\n" for p in partners]
    return "slug,name,currency,tax_rate,payment_terms_days\n" + "".join(rows)


def customers_csv(customers) -> str:
    rows = [
        ",".join(_cell(v) for v in (c.partner, c.slug, c.slug.title(), c.seat_cap, c.host_limit, c.terms,
                                    c.rmm_organization)) + "\n"
        for c in customers
    ]
    return "partner,slug,name,seat_cap,host_limit,payment_terms_days,rmm_organization\n" + "".join(rows)


SERVICE_COLUMNS = ("partner,customer,code,name,method,meter,unit_price,overage_price,committed_quantity,"
                   "overage_enabled,storage_per_license_gb,tiers,tier_mode,proration,start_date,end_date,taxable\n")


def services_csv(services, customers: dict[str, list[str]]) -> str:
    """`customers`: each partner's customer slugs, in the order the specs number them."""
    rows = [
        ",".join(_cell(v) for v in (
            s.partner, customers[s.partner][s.customer % len(customers[s.partner])] if s.customer is not None
            else None, s.code, s.code.title(), s.method, s.meter, s.unit_price, s.overage_price,
            s.committed, s.overage_enabled, s.storage_gb, s.tiers, s.tier_mode, s.proration, s.start, s.end,
            s.taxable,
        )) + "\n"
        for s in services
    ]
    return SERVICE_COLUMNS + "".join(rows)


@st.composite
def service_specs(draw, *, partner: str, code: str, earliest: date, latest: date, currency: str = "USD"):
    """One valid service of a random billing method (the rules of partners.models.service_rule_errors)."""
    method = draw(st.sampled_from(["flat", "per_host", "seat_days", "peak", "cmq", "licenses", "per_asset"]))
    if method == "per_host":
        customer = draw(st.integers(0, 2))
    else:
        customer = draw(st.none() | st.integers(0, 2))
    start = earliest + timedelta(days=draw(st.integers(0, (latest - earliest).days)))
    if method == "cmq" or draw(st.booleans()):
        start = start.replace(day=1)  # most contracts start on a 1st; cmq must
    end = None
    if draw(st.integers(0, 3)) == 0:
        end = start + timedelta(days=draw(st.integers(5, 120)))
    price = draw(st.sampled_from(PRICES))
    if currency == "JPY":
        price = str(int(Decimal(price) * 100))  # whole yen
    fields: dict = {}
    if method == "seat_days":
        fields["committed"] = draw(st.none() | st.integers(0, 3))
        fields["overage_enabled"] = draw(st.booleans())
        fields["overage_price"] = draw(st.none() | st.sampled_from(["0.07", "25.00"]))
    elif method in ("peak", "cmq"):
        fields["meter"] = draw(st.sampled_from(["users", "assets"]))
        if method == "cmq":
            fields["committed"] = draw(st.integers(1, 4))
            fields["overage_price"] = draw(st.none() | st.sampled_from(["0.07", "25.00"]))
    elif method == "licenses":
        fields["storage_gb"] = draw(st.none() | st.just("50"))
    elif method in ("flat", "per_asset"):
        fields["proration"] = draw(st.sampled_from(["", "day_fraction", "rounded_daily_rate"]))
    if method in ("peak", "licenses", "per_asset", "per_host") and draw(st.integers(0, 3)) == 0:
        fields["tiers"] = draw(st.sampled_from(TIERS))
        fields["tier_mode"] = draw(st.sampled_from(["volume", "graduated"]))
    if method == "per_host":
        fields["proration"] = draw(st.sampled_from(["", "day_fraction", "rounded_daily_rate"]))
    return ServiceSpec(partner=partner, customer=customer, code=code, method=method, unit_price=price,
                       start=start, end=end, taxable=draw(st.booleans()), **fields)


@st.composite
def worlds(draw, *, max_partners: int = 2):
    """One or two partners, each with one to three customers and one to five services."""
    partners, customers, services = [], [], []
    for p in range(draw(st.integers(1, max_partners))):
        slug = f"msp{p}"
        currency = draw(st.sampled_from(["USD", "USD", "EUR", "JPY"]))
        partners.append(PartnerSpec(slug, currency, draw(st.sampled_from(TAX_RATES)),
                                    draw(st.sampled_from([0, 14, 30]))))
        for c in range(draw(st.integers(1, 3))):
            spec = CustomerSpec(
                partner=slug, slug=f"c{p}{c}", seat_cap=draw(st.none() | st.integers(1, 3)),
                host_limit=draw(st.integers(0, 4)), terms=draw(st.none() | st.sampled_from([7, 45])),
                rmm_organization=f"org{p}{c}",
            )
            customers.append(spec)
        for s in range(draw(st.integers(1, 5))):
            services.append(draw(service_specs(partner=slug, code=f"s{p}{s}", earliest=START, latest=LAST_START,
                                               currency=currency)))
    return World(tuple(partners), tuple(customers), tuple(services))


class Clock:
    """The history's calendar: today's date, and instants that only go forward.

    Every action runs at 06:00 UTC of `today` or, for later actions on the same day, just after the
    previous action ended: what was recorded before a CI was issued is always seen as such, as the
    ledger's "recorded after the CI" rule (billing-rules 4.6) needs.
    """

    def __init__(self, today: date = START):
        self.today = today
        self.last = datetime.combine(today, time(0), UTC)

    @contextmanager
    def moment(self):
        at = max(datetime.combine(self.today, time(6), UTC), self.last + timedelta(milliseconds=1))
        with time_machine.travel(at, tick=True):
            try:
                yield
            finally:
                self.last = timezone.now()


# --- the steps of a history -------------------------------------------------------------------------
# Partners, customers, services and invoices are named by number (`p`, `c`, `pick`), taken modulo how
# many there are when the step is played: any list of steps is a valid history, and it shrinks well.
@dataclass(frozen=True)
class Idle:
    """Nothing happens (a failing history shrinks to these where its steps do not matter)."""


@dataclass(frozen=True)
class Advance:
    days: int
    daily_job: bool  # the 03:00 billing job runs on the new day (it may have been down)


@dataclass(frozen=True)
class NextFirst:
    daily_job: bool


@dataclass(frozen=True)
class Bill:
    p: int


@dataclass(frozen=True)
class BillTwice:
    p: int
    back: int = 0  # the second run goes through this many days before today


@dataclass(frozen=True)
class DraftThenIssue:
    p: int


@dataclass(frozen=True)
class Draft:
    p: int  # a draft run: drafts wait, and the next run throws them away


@dataclass(frozen=True)
class IssueDrafts:
    p: int  # the partner's drafts issued one by one in date order, however old they are


@dataclass(frozen=True)
class RateTwice:
    p: int
    month: int


@dataclass(frozen=True)
class Assign:
    p: int
    c: int
    member: str


@dataclass(frozen=True)
class Unassign:
    p: int
    c: int
    member: str


@dataclass(frozen=True)
class BuySeats:
    p: int
    s: int
    seats: int


@dataclass(frozen=True)
class Usage:
    p: int
    c: int
    back: int  # days before today
    users: int
    storage_gb: int


@dataclass(frozen=True)
class SuspendOrUnsuspend:
    p: int
    c: int


@dataclass(frozen=True)
class Inventory:
    p: int
    counts: tuple[int, ...]  # agents per customer organization, the last in an unknown one


@dataclass(frozen=True)
class Charge:
    p: int
    c: int | None
    quantity: str
    price: str
    taxable: bool
    back: int


@dataclass(frozen=True)
class AddService:
    p: int
    service: ServiceSpec  # its start date is moved back to today when it falls later


@dataclass(frozen=True)
class Pay:
    p: int
    pick: int
    how: str  # full, part, over
    units: int
    back: int
    imported: bool = False  # a payments file rather than the admin's form


@dataclass(frozen=True)
class CreditWhole:
    p: int
    pick: int


@dataclass(frozen=True)
class CreditLines:
    p: int
    pick: int
    mask: int


@dataclass(frozen=True)
class BalanceOn:
    p: int
    day: date


PICK = st.integers(0, 1000)
SMALL = st.integers(0, 5)


def _weighted(*pairs):
    """One step, drawn with the given weights (the kind first, so that shrinking goes to earlier kinds)."""
    kinds = [n for n, (_, weight) in enumerate(pairs) for _ in range(weight)]

    @st.composite
    def step(draw):
        return draw(pairs[draw(st.sampled_from(kinds))][0])
    return step()


STEPS = _weighted(
    (st.just(Idle()), 1),
    (st.builds(Advance, days=st.integers(1, 20), daily_job=st.sampled_from([True, True, False])), 5),
    (st.builds(NextFirst, daily_job=st.sampled_from([True, True, False])), 3),
    (st.builds(Bill, p=SMALL), 2),
    (st.builds(BillTwice, p=SMALL, back=st.sampled_from([0, 0, 1, 31])), 2),
    (st.builds(DraftThenIssue, p=SMALL), 1),
    (st.builds(Draft, p=SMALL), 1),
    (st.builds(IssueDrafts, p=SMALL), 1),
    (st.builds(RateTwice, p=SMALL, month=st.integers(0, 20)), 1),
    (st.builds(Assign, p=SMALL, c=SMALL, member=st.sampled_from(MEMBERS)), 3),
    (st.builds(Unassign, p=SMALL, c=SMALL, member=st.sampled_from(MEMBERS)), 1),
    (st.builds(BuySeats, p=SMALL, s=SMALL, seats=st.integers(1, 2)), 1),
    (st.builds(Usage, p=SMALL, c=SMALL, back=st.integers(0, 45), users=st.integers(0, 9),
               storage_gb=st.sampled_from([0, 30, 170])), 2),
    (st.builds(SuspendOrUnsuspend, p=SMALL, c=SMALL), 1),
    (st.builds(Inventory, p=SMALL, counts=st.tuples(*[st.integers(0, 3)] * 4)), 1),
    (st.builds(Charge, p=SMALL, c=st.none() | SMALL, quantity=st.sampled_from(["1", "2", "0.5"]),
               price=st.sampled_from(PRICES), taxable=st.booleans(), back=st.integers(0, 70)), 2),
    (st.builds(AddService, p=SMALL, service=service_specs(partner="", code="", earliest=START - timedelta(days=31),
                                                           latest=END)), 1),
    (st.builds(Pay, p=SMALL, pick=PICK, how=st.sampled_from(["full", "part", "over"]), units=st.integers(1, 10**6),
               back=st.integers(0, 45), imported=st.booleans()), 5),
    (st.builds(CreditWhole, p=SMALL, pick=PICK), 1),
    (st.builds(CreditLines, p=SMALL, pick=PICK, mask=st.integers(1, 2**8 - 1)), 2),
    (st.builds(BalanceOn, p=SMALL, day=st.dates(START - timedelta(days=60), END + timedelta(days=30))), 1),
)


def histories(*, min_steps: int = 12, max_steps: int = 36):
    return st.lists(STEPS, min_size=min_steps, max_size=max_steps)

"""Rating: the priced lines a partner owes for an invoice month (billing-rules 3, 4, 6).

For invoice month M the consolidated invoice carries advance charges for M
and arrears for the usage period M-1; services starting after a 1st get a
first-month line on an individual invoice dated their start date; per_asset
services post proration lines for unit changes in months already billed.

Rating reads the database in a fixed number of set-based queries whatever
the number of customers (one per meter, not one per service or customer),
and it only has to be told what was already billed of per_asset services
(`billed`); by default the previous month is taken as billed at the units
in force on its 1st (or on the start date, for a first month).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from billing.core.aside import Aside
from billing.core.money import ZERO, quantize_money
from billing.core.periods import Period
from billing.core.usage_meters import meter_by_customer, meter_unit, readings_by_customer
from invoicing.choices import InvoiceKind, LineType
from invoicing.pricing import (
    BilledUnits,
    cmq_variable_quantity,
    first_month_amount,
    proration_amount,
    tiered_amount,
    volume_unit_price,
)
from invoicing.selectors import seat_period
from metering.selectors import (
    asset_unit_steps,
    licenses_by_service,
    peak_assets_by_service,
    peak_users_by_service,
    seat_days_by_service,
)
from metering.usage_records import usage_record_totals
from partners.choices import ADVANCE_METHODS
from partners.models import Customer, Meter, Method, Partner, SeatPurchase, Service
from partners.terms import TermsBook, copied
from partners.tiers import GRADUATED, parse_tiers

CI, INV = InvoiceKind.CI, InvoiceKind.INV
ADVANCE = ADVANCE_METHODS
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class RatedLine:
    document: str  # CI or INV
    issue_date: date
    service: Service
    customer: Customer | None  # the customer the line is about (a tenant of a licenses breakdown too)
    line_type: str
    period: Period
    quantity: Decimal
    unit_price: Decimal | None
    amount: Decimal
    description: str
    taxable: bool
    effective_date: date | None = None  # per_asset proration and first months
    details: dict = field(default_factory=dict, compare=False)  # facts the amount was computed from
    posting: int | None = field(default=None, compare=False)  # proration: the n-th posting of its date

    @property
    def key(self) -> str:
        """What makes a charge unique: billing twice must find it already billed."""
        parts = [self.line_type, str(self.service.pk), str(self.period)]
        if self.customer is not None and self.service.customer_id is None:
            parts.append(str(self.customer.pk))
        if self.effective_date:
            parts.append(self.effective_date.isoformat())
        return ":".join(parts)


def _price(service: Service) -> Decimal:
    return service.unit_price.amount


def _overage(service: Service) -> Decimal:
    return service.overage_price.amount if service.overage_price is not None else service.unit_price.amount


def _monthly(service: Service, quantity) -> Decimal:
    """The exact monthly amount of `quantity` units of a service (tiers when it has them)."""
    return tiered_amount(Decimal(quantity), unit_price=_price(service), tiers=parse_tiers(service.tiers),
                         mode=service.tier_mode)


def _shown_price(service: Service, quantity) -> Decimal | None:
    """The unit price a line shows: the tier price reached under volume tiers, none when graduated."""
    tiers = parse_tiers(service.tiers)
    if tiers and service.tier_mode == GRADUATED:
        return None
    return volume_unit_price(Decimal(quantity), unit_price=_price(service), tiers=tiers)


def _counted(quantity, plural: str) -> str:
    """"3 minutes", "1 minute": the unit's word for the quantity."""
    return plural.removesuffix("s") if quantity == 1 else plural


def _active_on(service: Service, day: date) -> bool:
    return service.start_date <= day and (service.end_date is None or day <= service.end_date)


def _overlaps(service: Service, period: Period) -> bool:
    return service.start_date <= period.last and (service.end_date is None or service.end_date >= period.first)


class _Steps(list):
    """A service's units as (day, units) steps, with the days kept apart for bisecting."""

    def __init__(self, steps=()):
        super().__init__(steps)
        self.days = [d for d, _ in self]


def _units_on(steps: _Steps, day: date) -> int:
    index = bisect_right(steps.days, day) - 1
    return steps[index][1] if index >= 0 else 0


class Readings:
    """The meters of an invoice month, read once for the services of any number of partners: one
    query per meter whatever the number of partners, services or customers."""

    def __init__(self, services: list[Service], month: Period, billed_by_partner: dict[int, dict | None], *,
                 aside: bool = False):
        """`aside`: the meters other than seat-days are read in a second connection meanwhile
        (billing.aside: only when everything they read is committed)."""
        usage = month.previous()
        per_asset = [s for s in services if s.method == Method.PER_ASSET]
        anchors = [b.anchor for billed in billed_by_partner.values() for b in (billed or {}).values()]
        active = [s for s in services if _overlaps(s, usage)]
        seat_services = [s for s in active if s.method == Method.SEAT_DAYS and not s.meter]
        licensing = [s for s in active if s.method == Method.LICENSES]
        recording = [s for s in active if s.method == Method.RECORDS]
        # the terms of each service (and each per_host customer's host limit) over time (billing-rules 3.11)
        self.book = TermsBook([*services, *(s.customer for s in services
                                            if s.method == Method.PER_HOST and s.customer_id)])
        storage = {s.pk: self.book.on(s, usage.first).storage_per_license_gb for s in licensing}

        def other_meters():
            peaks = peak_users_by_service(
                service_ids=[s.pk for s in active if s.meter == Meter.USERS], first=usage.first, last=usage.last)
            peaks.update(peak_assets_by_service(
                service_ids=[s.pk for s in active if s.meter == Meter.ASSETS], first=usage.first, last=usage.last))
            steps = asset_unit_steps(service_ids=[s.pk for s in per_asset], first=min([usage.first, *anchors]),
                                     last=month.last)
            licenses = licenses_by_service(service_ids=[s.pk for s in licensing], first=usage.first,
                                           last=usage.last, storage_gb=storage) if licensing else {}
            return peaks, steps, licenses

        with Aside(aside) as beside:
            others = beside.submit(other_meters)
            self.seats = seat_days_by_service(service_ids=[s.pk for s in seat_services], first=usage.first,
                                              last=usage.last)
            self.purchases = defaultdict(list)
            for sid, effective, count in SeatPurchase.objects.filter(service__in=seat_services).values_list(
                "service_id", "effective_date", "seats"
            ):
                self.purchases[sid].append((effective, count))
            per_customer = licensing + recording
            customers = Customer.objects.filter(partner_id__in={s.partner_id for s in per_customer}).defer(
                "created_at", "updated_at")
            self.customers = {c.pk: c for c in customers} if per_customer else {}
            # usage records (billing-rules 3.13): every meter of the partners' customers in the month, one GROUP BY
            self.records = readings_by_customer(
                usage_record_totals({s.partner_id for s in recording}, usage)) if recording else {}
            self.peaks, steps, self.licenses = others()
        self.steps = {sid: _Steps(values) for sid, values in steps.items()}

    def at(self, service: Service, day: date) -> Service:
        """The service as it stood on `day`: its terms then, and its customer's host limit then."""
        dated = self.book.on(service, day)
        if service.method == Method.PER_HOST and service.customer_id:
            customer = self.book.on(service.customer, day)
            if customer is not service.customer:
                dated = copied(dated) if dated is service else dated
                dated.customer = customer
        return dated


def partner_services(partners: list[Partner]) -> dict[int, list[Service]]:
    """{partner id: its services by code}, in one query; each service's partner is the one given."""
    services: dict[int, list[Service]] = {p.pk: [] for p in partners}
    owners = {p.pk: p for p in partners}
    stamps = ("created_at", "updated_at", "customer__created_at", "customer__updated_at")  # never read here
    for service in (Service.objects.filter(partner_id__in=list(owners)).select_related("customer").defer(*stamps)
                    .order_by("partner_id", "code")):
        service.partner = owners[service.partner_id]
        services[service.partner_id].append(service)
    return services


class _Rater:
    def __init__(self, partner: Partner, month: Period, billed, services: list[Service], readings: Readings):
        self.partner, self.month, self.usage = partner, month, month.previous()
        self.currency = partner.currency
        self.services = services
        self.readings = readings
        self.lines: list[RatedLine] = []
        self.steps = readings.steps
        per_asset = [s for s in self.services if s.method == Method.PER_ASSET]
        self.billed = billed if billed is not None else self._assumed_billed(per_asset)

    def _assumed_billed(self, per_asset) -> dict[tuple[int, Period], BilledUnits]:
        """Without invoices: the usage period's normal (or first-month) line was billed at the units
        in force on its anchor, with no change posted yet."""
        assumed = {}
        for service in per_asset:
            if _overlaps(service, self.usage):
                anchor = max(service.start_date, self.usage.first)
                assumed[(service.pk, self.usage)] = BilledUnits(anchor, _units_on(self.steps[service.pk], anchor))
        return assumed

    def add(self, service, *, line_type, period, quantity, unit_price, amount, description, customer=None,
            document=CI, issue_date=None, effective_date=None, details=None, posting=None):
        if amount == ZERO and quantity == 0:
            return
        self.lines.append(RatedLine(
            document=document, issue_date=issue_date or self.month.first, service=service,
            customer=customer if customer is not None else service.customer, line_type=line_type, period=period,
            quantity=Decimal(quantity), unit_price=unit_price, amount=amount, description=description,
            taxable=service.taxable, effective_date=effective_date, details=details or {}, posting=posting,
        ))

    # --- the CI: advance for M ---------------------------------------------------------------
    def advance(self):
        month = self.month
        for service in self.services:
            if service.method not in (*ADVANCE, Method.CMQ) or not _active_on(service, month.first):
                continue
            service = self.readings.at(service, month.first)  # the terms in force on the month's 1st
            if service.method == Method.CMQ:
                quantity = service.committed_quantity or 0
                amount = quantize_money(Decimal(quantity) * _price(service), self.currency)
                self.add(service, line_type=LineType.RECURRING, period=month, quantity=quantity,
                         unit_price=_price(service), amount=amount,
                         description=f"{service.name} {month}: committed {quantity}")
                continue
            quantity = self._advance_quantity(service, month.first)
            self.add(service, line_type=LineType.RECURRING, period=month, quantity=quantity,
                     unit_price=_shown_price(service, quantity),
                     amount=quantize_money(_monthly(service, quantity), self.currency),
                     description=f"{service.name} {month}")

    def _advance_quantity(self, service: Service, day: date) -> int:
        if service.method == Method.FLAT:
            return 1
        if service.method == Method.PER_HOST:
            return service.customer.host_limit if service.customer_id else 0
        return _units_on(self.steps[service.pk], day)

    # --- the INVs: first months starting in M --------------------------------------------------
    def first_months(self):
        for service in self.services:
            start = service.start_date
            if service.method not in ADVANCE or not self.month.contains(start) or start.day == 1:
                continue
            service = self.readings.at(service, start)  # the terms in force on its start date
            quantity = self._advance_quantity(service, start)
            amount = first_month_amount(_monthly(service, quantity), start=start, convention=service.proration,
                                        currency=self.currency)
            self.add(service, line_type=LineType.FIRST_MONTH, period=self.month, quantity=quantity,
                     unit_price=_shown_price(service, quantity), amount=amount, document=INV, issue_date=start,
                     effective_date=start, description=f"{service.name} first month from {start}")

    # --- the CI: arrears for M-1 ---------------------------------------------------------------
    def arrears(self):
        usage, readings = self.usage, self.readings
        # usage in arrears is billed with the terms in force on the usage month's 1st (billing-rules 3.11)
        active = [readings.at(s, usage.first) for s in self.services if _overlaps(s, usage)]
        for service in active:
            if service.method == Method.SEAT_DAYS and not service.meter:
                self._seat_lines(seat_period(service, usage, seat_days=readings.seats.get((service.pk, usage.first), 0),
                                             purchases=readings.purchases[service.pk]))
        peaks = readings.peaks
        for service in active:
            if service.method == Method.PEAK:
                quantity = peaks.get(service.pk, 0)
                self.add(service, line_type=LineType.USAGE, period=usage, quantity=quantity,
                         unit_price=_shown_price(service, quantity),
                         amount=quantize_money(_monthly(service, quantity), self.currency),
                         description=f"{service.name} {usage}: peak {service.get_meter_display().lower()}")
            elif service.method == Method.CMQ:
                committed = service.committed_quantity or 0
                quantity = cmq_variable_quantity(peaks.get(service.pk, 0), committed)
                self.add(service, line_type=LineType.VARIABLE_USAGE, period=usage, quantity=quantity,
                         unit_price=_overage(service),
                         amount=quantize_money(Decimal(quantity) * _overage(service), self.currency),
                         description=f"{service.name} {usage}: Variable Monthly Usage "
                                     f"(peak {peaks.get(service.pk, 0)}, committed {committed})")
        licensing = [s for s in active if s.method == Method.LICENSES]
        if licensing:
            ids = {s.pk for s in licensing}
            self._license_lines(licensing, {key: n for key, n in readings.licenses.items() if key[0] in ids})
        recording = [s for s in active if s.method == Method.RECORDS]
        if recording:
            self._record_lines(recording)

    def _seat_lines(self, item):
        service, usage = item.service, item.period
        for line in item.price.lines:
            if line.line_type == LineType.MINIMUM:
                description = f"{service.name} {usage}: committed minimum"
            elif line.line_type == LineType.OVERAGE:
                description = (f"{service.name} {usage}: overage ({item.seat_days} seat-days, actual "
                               f"{item.price.actual:.4f}, minimum {item.price.minimum:.4f})")
            else:
                description = (f"{service.name} {usage}: {item.seat_days} seat-days, actual "
                               f"{item.price.actual:.4f}, minimum {item.price.minimum:.4f}")
            self.add(service, line_type=line.line_type, period=usage, quantity=line.quantity,
                     unit_price=line.unit_price, amount=line.amount, description=description, details={
                         "seat_days": item.seat_days, "committed": item.committed,
                         "actual": str(item.price.actual), "minimum": str(item.price.minimum),
                         "billable": str(item.price.billable), "subtotal": str(item.price.subtotal),
                     })

    def _record_lines(self, services):
        """A records service's meter per customer (billing-rules 3.13): each customer's reading of the usage
        month (its own customer only, for a customer-level service), customers with none left out; priced as
        licenses are, at the tier price the partner's total reaches."""
        counts = {(service.pk, customer_id): quantity for service in services
                  for customer_id, quantity in meter_by_customer(self.readings.records, service.usage_meter,
                                                                 service.customer_id).items()}
        self._license_lines(services, counts, unit=lambda s: meter_unit(s.usage_meter))

    def _license_lines(self, services, licenses, unit=lambda service: "licenses"):
        """Per customer at the tier price the total reaches; one total line under graduated tiers
        (billing-rules 6.9). `unit`: what the quantity counts, as the description says it."""
        per_service = defaultdict(list)
        for (sid, cid), count in licenses.items():
            per_service[sid].append((cid, count))
        customers = self.readings.customers
        for service in services:
            counts = sorted(per_service[service.pk], key=lambda item: customers[item[0]].slug)
            total = sum(count for _, count in counts)
            usage = self.usage
            if parse_tiers(service.tiers) and service.tier_mode == GRADUATED:
                self.add(service, line_type=LineType.USAGE, period=usage, quantity=total, unit_price=None,
                         amount=quantize_money(_monthly(service, total), self.currency),
                         description=f"{service.name} {usage}: {total} {_counted(total, unit(service))}")
                continue
            price = _shown_price(service, total)
            for cid, count in counts:
                customer = customers[cid]
                self.add(service, line_type=LineType.USAGE, period=usage, quantity=count, unit_price=price,
                         amount=quantize_money(Decimal(count) * price, self.currency), customer=customer,
                         description=f"{service.name} {usage}: {count} {_counted(count, unit(service))}, "
                                     f"{customer.name}")

    # --- per_asset prorations of billed months ----------------------------------------------------
    def prorations(self):
        """Bring each billed month up to the units known now (billing-rules 3.7, 6.6): one line per
        effective date where the billed and the current units differ, each change once."""
        services = {s.pk: s for s in self.services}
        for (sid, period), billed in sorted(self.billed.items(), key=lambda item: (item[0][1], item[0][0])):
            service = services.get(sid)
            if service is None or period >= self.month:
                continue
            service = self.readings.at(service, max(period.first, service.start_date))  # the month's terms
            steps = self.steps.get(sid, _Steps())
            last = min(period.last, service.end_date) if service.end_date else period.last
            days = sorted({billed.anchor, *(d for d, _ in steps if billed.anchor < d <= last),
                           *(d for d in billed.changes if billed.anchor < d <= last)})
            for day in days:
                now, was = _units_on(steps, day), billed.units_on(day)
                if day == billed.anchor:
                    now_before = was_before = was  # the anchor's line billed `was`
                    since = billed.units  # what the anchor's own line billed
                else:
                    now_before, was_before = _units_on(steps, day - ONE_DAY), billed.units_on(day - ONE_DAY)
                    since = now_before
                delta = (now - now_before) - (was - was_before)
                # what the change of this date comes to now, as if posted at once, less what its earlier postings
                # charged: however the runs are split, the postings of a date add up to that one rounded amount
                # (billing-rules 4.12), and a tier level moved by another date's change is settled too
                if day in billed.changes and day not in billed.amounts:  # postings known by units only
                    monthly = (_monthly(service, now) - _monthly(service, now_before)) - (
                        _monthly(service, was) - _monthly(service, was_before))
                    amount = proration_amount(ZERO, monthly, effective=day, currency=self.currency)
                else:
                    monthly = _monthly(service, now) - _monthly(service, since)
                    owed = proration_amount(ZERO, monthly, effective=day, currency=self.currency)
                    amount = owed - billed.amounts.get(day, ZERO)
                if delta == 0 and amount == ZERO:
                    continue
                self.add(service, line_type=LineType.PRORATION, period=period, quantity=delta,
                         unit_price=_shown_price(service, now), amount=amount,
                         effective_date=day, description=f"{service.name} {period}: {delta:+d} units from {day}",
                         posting=billed.postings.get(day, 0) + 1)


def rate_partner_month(*, partner: Partner, month: Period,
                       billed: dict[tuple[int, Period], BilledUnits] | None = None) -> list[RatedLine]:
    """The lines due for invoice month M: the CI's advance (M) and arrears (M-1) lines, per_asset
    prorations of billed months, and the first-month INV lines of services starting in M."""
    return rate_partners_month(partners=[partner], month=month, billed={partner.pk: billed})[partner.pk]


def rate_partners_month(*, partners: list[Partner], month: Period,
                        billed: dict[int, dict[tuple[int, Period], BilledUnits] | None],
                        aside: bool = False, methods=None) -> dict[int, list[RatedLine]]:
    """`rate_partner_month` for many partners at once: their meters are read together (`Readings`, with
    `aside` as it says), then each partner's lines are priced from its share. {partner id: lines}.
    `methods`: rate only the services of these methods (a month measured again for true-ups reads no
    per_asset inventory)."""
    services = partner_services(partners)
    if methods is not None:
        services = {pk: [s for s in group if s.method in methods] for pk, group in services.items()}
    readings = Readings([s for p in partners for s in services[p.pk]], month, billed, aside=aside)
    rated = {}
    for partner in partners:
        rater = _Rater(partner, month, billed.get(partner.pk), services[partner.pk], readings)
        rater.advance()
        rater.arrears()
        rater.prorations()
        rater.first_months()
        rated[partner.pk] = rater.lines
    return rated

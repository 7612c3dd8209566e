"""What a partner's customers are charged for, read from the partner's own issued documents (billing-rules 12.6):
the same quantities our rating measured, per customer.

A line of ours about one customer (a customer-level service, a license breakdown) is that customer's quantity.
A line of a partner-level service is split per customer by its meter's per-customer reading, where the meter
has one (`CUSTOMER_METERS`): seat-days, peak users, peak RMM assets, licenses. A partner-level service whose meter
has none (flat, cmq, per_asset without a customer), or whose reading another partner-level service of the same
meter shares, is billed to the partner as a whole: it is listed as not rebilled, never guessed.

A new meter plugs in with `register_customer_meter(method, meter)`: a reader (service, period) -> {customer id:
quantity}, one set-based query for every customer of the partner.

Which of our lines are passed on (`REBILLED_TYPES`): the month's advance charges (`recurring`), its usage in
arrears (`usage`; a seat_days commitment's `minimum` and `overage` lines become one quantity, the seat-months
used), a cmq's `variable_usage`, and first months (`first_month`). Not passed on: tax (the customer has its own
rate), per_asset `proration`, `true_up` corrections, and one-time charges (no resale price prices them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from billing.core.money import allocate
from billing.core.periods import Period
from billing.core.usage_meters import meter_by_customer, readings_by_customer
from invoicing.choices import InvoiceKind, LineType
from invoicing.models import Invoice, InvoiceLine
from invoicing.rebilling.models import ResaleItem
from metering.selectors import (
    licenses_by_service,
    peak_assets_by_customer,
    peak_users_by_customer,
    seat_days_by_customer,
)
from metering.usage_records import usage_record_totals
from partners.models import Meter, Method, Service

REBILLED_TYPES = (LineType.RECURRING, LineType.USAGE, LineType.MINIMUM, LineType.OVERAGE, LineType.VARIABLE_USAGE,
                  LineType.FIRST_MONTH)
SEAT_DAYS_TYPES = (LineType.USAGE, LineType.MINIMUM, LineType.OVERAGE)  # one quantity: the seat-months used

CustomerMeter = Callable[[Service, Period], dict[int, Decimal]]
CUSTOMER_METERS: dict[tuple[str, str], CustomerMeter] = {}


def register_customer_meter(method: str, meter: str = "") -> Callable[[CustomerMeter], CustomerMeter]:
    """Register the per-customer reading of a partner-level service's meter (a decorator)."""

    def register(reader: CustomerMeter) -> CustomerMeter:
        CUSTOMER_METERS[(str(method), str(meter or ""))] = reader
        return reader

    return register


@register_customer_meter(Method.SEAT_DAYS)
def seat_months_by_customer(service: Service, period: Period) -> dict[int, Decimal]:
    """Seat-months used per customer (seat-days / days in the month), as our seat_days usage line counts them."""
    days = Decimal(period.days)
    readings = seat_days_by_customer(partner_ids=[service.partner_id], first=period.first, last=period.last)
    return {cid: Decimal(n) / days for cid, (n, _users) in readings.items() if cid is not None}


@register_customer_meter(Method.PEAK, Meter.USERS)
def peak_users(service: Service, period: Period) -> dict[int, Decimal]:
    readings = peak_users_by_customer(partner_ids=[service.partner_id], first=period.first, last=period.last)
    return {cid: Decimal(n) for cid, n in readings.items()}


@register_customer_meter(Method.PEAK, Meter.ASSETS)
def peak_assets(service: Service, period: Period) -> dict[int, Decimal]:
    readings = peak_assets_by_customer(partner_ids=[service.partner_id], first=period.first, last=period.last)
    return {cid: Decimal(n) for cid, n in readings.items()}


@register_customer_meter(Method.LICENSES)
def licenses(service: Service, period: Period) -> dict[int, Decimal]:
    """Licenses per tenant: our lines have them per customer already, but for a graduated schedule (one total)."""
    readings = licenses_by_service(service_ids=[service.pk], first=period.first, last=period.last)
    return {cid: Decimal(n) for (_sid, cid), n in readings.items()}


@register_customer_meter(Method.RECORDS)
def usage_records(service: Service, period: Period) -> dict[int, Decimal]:
    """A records service's meter per customer: our lines have it per customer already, but for a graduated
    schedule (one total)."""
    return meter_by_customer(readings_by_customer(usage_record_totals([service.partner_id], period)),
                             service.usage_meter)


@dataclass
class Charge:
    """A quantity a customer is to be charged for, priced by the customer's resale price
    (invoicing.rebilling.invoices): of one of our services, from a line of the partner's document `source`, or
    of one of the partner's own items read from a usage-record meter (billed with the CI `source`)."""

    source: Invoice
    customer_id: int
    service: Service | None
    line_type: str
    period: Period
    quantity: Decimal
    our_unit_price: Decimal | None  # our unit price for a markup
    start: date | None = None  # a first month: the service's start date
    details: dict = field(default_factory=dict)
    item: ResaleItem | None = None
    cost: Decimal | None = None  # what we charged the partner for this quantity (None: an own item)

    @property
    def target(self) -> tuple[str, int]:
        """What prices it: ("service", id) or ("item", id)."""
        return ("service", self.service.pk) if self.service is not None else ("item", self.item.pk)

    @property
    def key(self) -> tuple:
        return (self.source.pk, self.customer_id, *self.target, self.line_type, str(self.period))


@dataclass(frozen=True)
class NotSplit:
    """A charge of a partner-level service whose meter has no quantity per customer."""

    source: Invoice
    service: Service
    line_type: str
    period: Period
    quantity: Decimal | None


def metered_item_charges(partner, documents: list[Invoice]) -> list[Charge]:
    """The partner's own items that name a usage-record meter (billing-rules 12.11), per customer: each CI's
    month before (the usage it bills in arrears), summed by the meter's pattern from `usage_record_totals`.
    Customers with nothing recorded have no charge."""
    items = [item for item in ResaleItem.objects.filter(partner=partner).exclude(meter="").order_by("code")]
    charges: list[Charge] = []
    for source in documents:
        if source.kind != InvoiceKind.CI or not source.month or not items:
            continue
        period = Period.parse(source.month).previous()
        readings = readings_by_customer(usage_record_totals([partner.pk], period))
        quantities = {item.pk: meter_by_customer(readings, item.meter) for item in items}
        for customer_id in sorted(readings):
            for item in items:
                quantity = quantities[item.pk].get(customer_id)
                if quantity:
                    charges.append(Charge(source=source, customer_id=customer_id, service=None, item=item,
                                          line_type=LineType.USAGE, period=period, quantity=quantity,
                                          our_unit_price=None, details={"meter": item.meter}))
    return charges


def customer_charges(documents: list[Invoice]) -> tuple[list[Charge], list[NotSplit]]:
    """The charges of the partner's issued `documents` per customer, and the partner-level ones that cannot be
    split; in the documents' order, then their lines'."""
    by_pk = {doc.pk: doc for doc in documents}
    lines = (InvoiceLine.objects.filter(invoice_id__in=list(by_pk), line_type__in=REBILLED_TYPES)
             .select_related("service").order_by("invoice_id", "position", "pk"))
    lines = list(lines)
    # two partner-level services of one meter would both read every customer's whole reading: neither is split
    sharing: dict[tuple, set[int]] = {}
    for line in lines:
        if line.customer_id is None:
            sharing.setdefault((line.invoice_id, line.service.method, line.service.meter or ""), set()).add(
                line.service_id)
    charges: dict[tuple, Charge] = {}
    not_split: list[NotSplit] = []
    for line in lines:
        service, source = line.service, by_pk[line.invoice_id]
        period = Period.parse(line.period)
        seat_days = service.method == Method.SEAT_DAYS and line.line_type in SEAT_DAYS_TYPES
        line_type = LineType.USAGE if seat_days else line.line_type
        our_price = line.unit_price if line.unit_price is not None else service.unit_price.amount
        if line.customer_id is not None:
            quantity = Decimal(line.details["actual"]) if seat_days and "actual" in line.details else line.quantity
            quantities = {line.customer_id: quantity}
        else:
            meter = (service.method, service.meter or "")
            reader = CUSTOMER_METERS.get(meter)
            if reader is None or line.line_type == LineType.FIRST_MONTH or len(sharing[(source.pk, *meter)]) > 1:
                not_split.append(NotSplit(source, service, line.line_type, period, line.quantity))
                continue
            quantities = reader(service, period)
        # our cost of it: the line's amount, or a partner-level line's share by the customer's quantity, the
        # shares adding up to the line to the cent (billing-rules 12.12)
        costs = ({line.customer_id: line.amount} if line.customer_id is not None
                 else allocate(line.amount, quantities, source.currency))
        for customer_id, quantity in sorted(quantities.items()):
            cost = costs[customer_id]
            charge = Charge(source=source, customer_id=customer_id, service=service, line_type=line_type,
                            period=period, quantity=quantity, our_unit_price=our_price, start=line.effective_date
                            if line.line_type == LineType.FIRST_MONTH else None, cost=cost)
            if service.method == Method.PER_HOST:  # the seed: the host limit at the charge is kept and shown
                charge.details = {"host_limit": int(quantity),
                                  "host_limit_on": str(charge.start or source.issue_date)}
            kept = charges.setdefault(charge.key, charge)  # a seat_days minimum and overage: one charge
            if kept is not charge:
                kept.cost += cost
    return list(charges.values()), not_split

"""Reads for invoicing: seat_days periods priced from metering."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from django.utils import timezone

from billing.periods import Period, periods_between
from invoicing.pricing import SeatDaysPrice, price_seat_days
from metering.selectors import seat_days_by_service
from partners.models import Method, SeatPurchase, Service


@dataclass(frozen=True)
class SeatPeriod:
    service: Service
    period: Period
    seat_days: int
    committed: int
    price: SeatDaysPrice


def last_complete_period(today: date | None = None) -> Period:
    today = today or timezone.now().date()
    return Period.of(today).previous()


def seat_periods(*, services, first: Period | None = None, last: Period | None = None) -> list[SeatPeriod]:
    """Each seat_days service priced for each of its months in first..last (two queries in all)."""
    services = [s for s in services if s.method == Method.SEAT_DAYS]
    purchases = defaultdict(list)
    for service_id, effective, seats in SeatPurchase.objects.filter(service__in=services).values_list(
        "service_id", "effective_date", "seats"
    ):
        purchases[service_id].append((effective, seats))
    last = last or last_complete_period()
    spans = {}
    for service in services:
        start = max(first or Period.of(service.start_date), Period.of(service.start_date))
        stop = min(last, Period.of(service.end_date)) if service.end_date else last
        if start <= stop:
            spans[service.pk] = (start, stop)
    if not spans:
        return []
    counted = seat_days_by_service(
        service_ids=list(spans), first=min(s for s, _ in spans.values()).first,
        last=max(e for _, e in spans.values()).last,
    )
    result = []
    for service in services:
        if service.pk not in spans:
            continue
        for period in periods_between(*spans[service.pk]):
            result.append(seat_period(service, period, seat_days=counted.get((service.pk, period.first), 0),
                                      purchases=purchases[service.pk]))
    return result


def seat_period(service: Service, period: Period, *, seat_days: int, purchases) -> SeatPeriod:
    """One seat_days service priced for one usage period (RULES 3.1, 9.1-9.2)."""
    committed = (service.committed_quantity or 0) + sum(
        seats for effective, seats in purchases if effective <= period.first
    )
    price = price_seat_days(
        seat_days=seat_days, days_in_month=period.days,
        service_days=period.days_within(service.start_date, service.end_date),
        committed=committed, unit_price=service.unit_price.amount,
        overage_price=service.overage_price.amount if service.overage_price is not None else None,
        currency=service.partner.currency,
    )
    return SeatPeriod(service, period, seat_days, committed, price)


def invoice_document(invoice) -> dict:
    """Everything an invoice page or PDF shows, read in a few queries."""
    from invoicing.models import InvoiceKind, LineType

    lines = list(invoice.lines.select_related("service", "customer", "child__customer").order_by("position", "pk"))
    children = list(invoice.children.select_related("customer").order_by("customer__name"))
    titles = {InvoiceKind.CI: "Consolidated invoice", InvoiceKind.INV: "Invoice", InvoiceKind.CN: "Credit note"}
    return {
        "invoice": invoice,
        "partner": invoice.partner,
        "title": titles[invoice.kind],
        "lines": lines,
        "charges": [line for line in lines if line.line_type != LineType.TAX],
        "taxes": [line for line in lines if line.line_type == LineType.TAX],
        "children": [
            {"child": child, "lines": [line for line in lines if line.child_id == child.pk]} for child in children
        ],
        "payments": list(invoice.payments.order_by("paid_on")),
    }

"""Reads behind the portal pages, all scoped to one partner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone

from billing.core.money import currency_places, quantize_money
from billing.core.periods import next_month_start
from invoicing.templatetags.invoice_format import SYMBOLS, format_unit_price
from metering.models import Day
from partners.models import Method, SeatAssignment, SeatPurchase, Service
from partners.seating import committed_seats_on, utilization, utilization_percent
from partners.selectors import active_seat_counts, committed_seats
from partners.terms import TermsBook

_DAILY_SEATS = """
    SELECT d.day, COUNT(DISTINCT a.member_id)
    FROM {days} d
    LEFT JOIN {seats} a ON a.partner_id = %s
        AND a.start_date <= d.day AND (a.end_date IS NULL OR a.end_date >= d.day)
    WHERE d.day >= %s AND d.day <= %s
    GROUP BY d.day
    ORDER BY d.day
"""


def daily_assigned_seats(*, partner_id: int, first: date, last: date) -> list[tuple[date, int]]:
    """(day, members holding a seat on that UTC day) for every day of first..last, zeros included:
    one set-based query over the seat assignments and the calendar (billing-rules 3.1 counting)."""
    sql = _DAILY_SEATS.format(days=Day._meta.db_table, seats=SeatAssignment._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [partner_id, first, last])
        rows = cursor.fetchall()
    return [(d if isinstance(d, date) else date.fromisoformat(str(d)), int(n)) for d, n in rows]


@dataclass(frozen=True)
class SeatSummary:
    service: Service | None
    committed: int
    assigned: int
    available: int
    utilization: int | None  # a whole percent (utilization_percent, billing-rules decision (as))
    overage: int
    scheduled: list  # SeatPurchase not yet in force

    @property
    def utilization_bar(self) -> int:
        return 0 if self.utilization is None else min(100, self.utilization)

    @property
    def utilization_level(self) -> str:
        """The bar's colour, judged on the exact ratio as the alerts are (billing-rules 3.3): `bad` once the
        commitment is used up, `warn` from the warning threshold, else blank."""
        ratio = utilization(self.assigned, self.committed)
        if ratio is None:
            return ""
        if ratio >= 1:
            return "bad"
        return "warn" if ratio * 100 >= settings.UTILIZATION_WARNING_PERCENT else ""


def seat_services(partner_id: int, day: date):
    return Service.objects.filter(partner_id=partner_id, method=Method.SEAT_DAYS).active_on(day).order_by(
        "customer_id", "code")


def price_text(value: Decimal, currency: str) -> str:
    """A unit price with its currency: "USD 24.00", "€3.50", "USD 0.1234" (the places it has, up to 4)."""
    return SYMBOLS.get(currency.upper(), f"{currency.upper()} ") + format_unit_price(value, currency)


@dataclass(frozen=True)
class SeatOffer:
    """Seats bought now on a seat_days service: they count from `effective`, the next UTC month boundary, each at
    the unit price in force then, for whole months (billing-rules 3.1, 3.2, 3.11): no first month to prorate."""

    service: Service
    effective: date
    unit_price: Decimal
    currency: str

    def cost(self, seats: int) -> Decimal:
        """What `seats` more add to the committed minimum, a month."""
        return quantize_money(Decimal(seats) * self.unit_price, self.currency)

    @property
    def price_text(self) -> str:
        """The unit price with its currency, as the cost line shows it: "USD 24.00", "€18.00"."""
        return price_text(self.unit_price, self.currency)

    @property
    def script_data(self) -> dict:
        """What the Add seats page's script needs to show the cost as the count changes."""
        return {"price": str(self.unit_price), "places": currency_places(self.currency),
                "prefix": SYMBOLS.get(self.currency.upper(), f"{self.currency.upper()} "),
                "shown": self.price_text,
                "effective": f"{self.effective.day} {self.effective:%B %Y}"}


def seat_offers(services: list[Service], *, now: datetime | None = None, effective: date | None = None,
                ) -> list[SeatOffer]:
    """The price of a seat bought now (or effective on `effective`) on each service, from the terms in force on
    the day the seats start counting (one query)."""
    effective = effective or next_month_start(now or timezone.now())
    book = TermsBook(services)
    return [SeatOffer(s, effective, book.on(s, effective).unit_price.amount, s.unit_price.currency.code)
            for s in services]


def seat_summaries(*, partner_id: int, day: date) -> list[SeatSummary]:
    """Committed, assigned and available seats and utilization for each seat_days service in force,
    the partner-level ones first."""
    counts = active_seat_counts(partner_ids=[partner_id])
    services = list(seat_services(partner_id, day).select_related("customer"))
    services.sort(key=lambda s: (s.customer_id is not None, s.code))
    pending = list(SeatPurchase.objects.filter(service__in=services, effective_date__gt=day)
                   .order_by("effective_date"))
    in_force = committed_seats(services, day)
    summaries = []
    for service in services:
        assigned = counts.in_scope(service)
        committed = in_force[service.pk]
        summaries.append(SeatSummary(
            service=service, committed=committed, assigned=assigned,
            available=max(committed - assigned, 0), utilization=utilization_percent(assigned, committed),
            overage=max(assigned - committed, 0) if committed else 0,
            scheduled=[p for p in pending if p.service_id == service.pk],
        ))
    if not summaries:
        assigned = counts.by_partner.get(partner_id, 0)
        summaries.append(SeatSummary(None, 0, assigned, 0, None, 0, []))
    return summaries


def chart_window(today: date) -> tuple[date, date]:
    """The last three months: the 92 days through today."""
    return today - timedelta(days=91), today


def commitment_by_day(service: Service | None, days: list[date]) -> list[int]:
    """The service's committed seats in force on each day (`committed_seats_on`, with the commitment of its
    terms then: billing-rules 3.1, 3.11); 0 outside its dates."""
    if service is None:
        return [0 for _ in days]
    purchases = list(service.seat_purchases.order_by("effective_date").values_list("effective_date", "seats"))
    book = TermsBook([service])
    result = []
    for day in days:
        if day < service.start_date or (service.end_date and day > service.end_date):
            result.append(0)
            continue
        result.append(committed_seats_on(day, committed_quantity=book.on(service, day).committed_quantity,
                                         purchases=purchases))
    return result


def seat_chart(*, partner_id: int, service: Service | None, today: date, width: int = 720, height: int = 220):
    """Geometry for an inline SVG: daily assigned seats (area) against the commitment (step line)."""
    first, last = chart_window(today)
    series = daily_assigned_seats(partner_id=partner_id, first=first, last=last)
    days = [d for d, _ in series]
    assigned = [n for _, n in series]
    committed = commitment_by_day(service, days)
    top = max([*assigned, *committed, 1])
    top = top + max(1, top // 8)
    left, right, upper, lower = 36, 10, 12, 26
    plot_w, plot_h = width - left - right, height - upper - lower
    count = max(len(days), 1)  # each day is a step of equal width

    def x(i):
        return round(left + plot_w * i / count, 1)

    def y(v):
        return round(upper + plot_h * (1 - v / top), 1)

    def stepped(values):
        points = []
        for i, v in enumerate(values):
            points.append(f"{x(i)},{y(v)}")
            points.append(f"{x(i + 1)},{y(v)}")
        return " ".join(points)

    line = stepped(assigned)
    area = f"{x(0)},{y(0)} {line} {x(len(days))},{y(0)}" if days else ""
    steps = stepped(committed)
    ticks = []
    step = max(1, top // 4)
    for v in range(0, top + 1, step):
        ticks.append({"y": y(v), "label": v})
    months = [{"x": x(i), "label": d.strftime("%b %Y")} for i, d in enumerate(days) if d.day == 1]
    return {
        "width": width, "height": height, "left": left, "right": width - right, "bottom": y(0), "top": upper,
        "area": area, "line": line, "commitment": steps, "ticks": ticks, "months": months,
        "first": first, "last": last, "peak": max(assigned, default=0), "today": assigned[-1] if assigned else 0,
        "has_commitment": any(committed),
    }

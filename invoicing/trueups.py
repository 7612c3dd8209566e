"""True-ups (billing-rules 4.11): a month already invoiced, measured again from all the data known now.

Where a service's amount for a month (per customer where its lines are per customer) differs from what its
issued lines charged (earlier true-ups included), the next CI carries one `true_up` line: its period the
corrected month, its quantity the change in the month's billed quantity, its amount the difference.
per_asset services keep their proration lines instead; flat services and the commitment of cmq have none: their
advance lines are billed once, and a month that none billed (a service entered late) is billed on the next CI
with its own lines (`LATE_TYPES`, billing-rules 4.12).

`billing_gaps` is the invariant behind it all (billing-rules 4.12): after a run, every service's every month
is billed at what the rules give from the data known then.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from django.db.models import Q

from billing.core.money import ZERO
from billing.core.periods import Period
from invoicing.choices import LineType
from invoicing.models import InvoiceLine, InvoiceState
from invoicing.rating import CI, RatedLine, rate_partners_month
from invoicing.selectors import first_months
from partners.models import Customer, Method, Partner, Service

# the lines of each method a true-up corrects (billing-rules 4.11): usage billed in arrears, cmq's variable usage,
# and per_host's advance (its host limit or price dated back)
TRUE_UP_TYPES = {
    Method.SEAT_DAYS: frozenset({LineType.USAGE, LineType.MINIMUM, LineType.OVERAGE}),
    Method.PEAK: frozenset({LineType.USAGE}),
    Method.LICENSES: frozenset({LineType.USAGE}),
    Method.RECORDS: frozenset({LineType.USAGE}),  # records sent late
    Method.CMQ: frozenset({LineType.VARIABLE_USAGE}),
    Method.PER_HOST: frozenset({LineType.RECURRING, LineType.FIRST_MONTH}),
}
# advance lines never trued up, billed late when a month has none issued (a service entered with a past start)
LATE_TYPES = {
    Method.CMQ: frozenset({LineType.RECURRING}),
    Method.FLAT: frozenset({LineType.RECURRING, LineType.FIRST_MONTH}),
}
MEASURED_METHODS = frozenset(TRUE_UP_TYPES) | frozenset(LATE_TYPES)  # what a run rates again for months invoiced
MEASURE = {Method.SEAT_DAYS: "seat-months", Method.PEAK: "peak", Method.LICENSES: "licenses", Method.RECORDS: "usage",
           Method.CMQ: "variable usage", Method.PER_HOST: "host limit"}
LATE = "late"  # the last part of a late group's key


@dataclass
class Measure:
    """What a service's lines of one month say: the amount and the month's billed quantity (billable seat-months,
    peak, licenses, variable usage or host limit), and for seat_days its seat-days (the description's words)."""

    amount: Decimal = ZERO
    quantity: Decimal = ZERO
    seat_days: Decimal = ZERO


def group_key(service_id: int, service_customer_id: int | None, customer_id: int | None, period: str) -> tuple:
    """A service's month, per customer where the service's lines are per customer (a partner-level licenses
    service's tenants)."""
    return (service_id, period, customer_id if service_customer_id is None else None)


def corrected(method: str, line_type: str) -> bool:
    return line_type in TRUE_UP_TYPES.get(method, ())


def late(method: str, line_type: str) -> bool:
    return line_type in LATE_TYPES.get(method, ())


def measured_now(lines: list[RatedLine], groups: dict | None = None) -> dict[tuple, tuple[Measure, list[RatedLine]]]:
    """The lines rated now for months already invoiced, as {group: (measure, its lines)}, added to `groups`
    (a month's lines may come from two ratings: a cmq month's commitment from its own, its usage from the
    next month's). A late group's key ends with LATE."""
    groups = {} if groups is None else groups
    for line in lines:
        service = line.service
        trued = corrected(service.method, line.line_type)
        if not trued and not late(service.method, line.line_type):
            continue
        key = group_key(service.pk, service.customer_id, line.customer.pk if line.customer else None,
                        str(line.period)) + (() if trued else (LATE,))
        measure, kept = groups.setdefault(key, (Measure(), []))
        kept.append(line)
        measure.amount += line.amount
        measure.quantity += Decimal(line.quantity or 0)  # a seat_days month's minimum and overage: its billable
        if service.method == Method.SEAT_DAYS:  # every line of the month carries the month's seat-days
            measure.seat_days = Decimal(line.details.get("seat_days", 0))
    return groups


def measured_issued(*, partner_ids: list[int], since: Period, before: Period,
                    extra_ids=()) -> dict[int, dict[tuple, Measure]]:
    """What the partners' issued documents (and `extra_ids`, documents of this run) charged per group, for
    periods from `since` to before `before`: their original lines and their true-ups."""

    documents = Q(invoice__state=InvoiceState.ISSUED)
    if extra_ids:
        documents |= Q(invoice_id__in=list(extra_ids))
    rows = (InvoiceLine.objects.filter(documents, invoice__partner_id__in=partner_ids, period__lt=str(before),
                                       period__gte=str(since),
                                       service__method__in=list(MEASURED_METHODS))
            .values_list("invoice__partner_id", "service_id", "service__customer_id", "service__method",
                         "customer_id", "period", "line_type", "quantity", "amount", "details"))
    issued: dict[int, dict[tuple, Measure]] = {pk: {} for pk in partner_ids}
    seat_days_seen: set[tuple] = set()
    for partner_id, sid, service_customer, method, customer, period, line_type, quantity, amount, details in rows:
        trued = line_type == LineType.TRUE_UP or corrected(method, line_type)
        if not trued and not late(method, line_type):
            continue
        key = group_key(sid, service_customer, customer, period) + (() if trued else (LATE,))
        measure = issued[partner_id].setdefault(key, Measure())
        measure.amount += amount
        measure.quantity += Decimal(quantity or 0)
        if line_type == LineType.TRUE_UP and method == Method.SEAT_DAYS:
            if "seat_days_change" in (details or {}):
                measure.seat_days += Decimal(details["seat_days_change"])
            else:  # a true-up issued before its quantity was in seat-months: its quantity was the seat-days
                measure.quantity += Decimal(quantity or 0) / Period.parse(period).days - Decimal(quantity or 0)
                measure.seat_days += Decimal(quantity or 0)
        elif method == Method.SEAT_DAYS and key not in seat_days_seen:  # once: each of its lines carries them
            seat_days_seen.add(key)
            measure.seat_days += Decimal((details or {}).get("seat_days", 0))
    return issued


def true_up_lines(*, month: Period, since: Period, now: dict[tuple, tuple[Measure, list[RatedLine]]],
                  issued: dict[tuple, Measure]) -> list[RatedLine]:
    """The CI of `month`'s true-up lines for the months from `since`: one per group whose amount now differs from
    what was charged. A group charged but measured at nothing now (its usage deleted) is trued up to zero. A late
    group (flat, cmq's commitment) that no issued line billed is billed with its own lines."""

    lines = []
    keys = {k for k in (*now, *issued) if str(since) <= k[1] < str(month)}
    missing = {k[0] for k in keys if k not in now}
    services = Service.objects.select_related("customer").in_bulk(missing) if missing else {}
    for key in sorted(keys, key=lambda k: (k[1], k[0], k[2] or 0, k[3:])):
        if key[3:] == (LATE,):
            if key not in issued and key in now:  # billed once: only a month none of its lines billed
                lines += [replace(line, document=CI, issue_date=month.first) for line in now[key][1]
                          if line.amount != ZERO]
            continue
        measure, rated = now.get(key, (Measure(), []))
        line = rated[0] if rated else None
        was = issued.get(key, Measure())
        difference = measure.amount - was.amount
        if difference == ZERO:
            continue
        sid, period, customer_id = key
        service = line.service if line is not None else services[sid]
        customer = line.customer if line is not None else None
        if customer is None and customer_id is not None:  # a tenant measured at nothing now

            customer = Customer.objects.filter(pk=customer_id).first()
        change = measure.quantity - was.quantity
        days = measure.seat_days - was.seat_days
        lines.append(RatedLine(
            document=CI, issue_date=month.first, service=service,
            customer=customer if customer is not None else service.customer, line_type=LineType.TRUE_UP,
            period=Period.parse(period), quantity=change, unit_price=None, amount=difference,
            description=_description(service, Period.parse(period), change, days, measure, was),
            taxable=service.taxable,
            details={"measured": str(measure.quantity), "invoiced": str(was.quantity),
                     "amount_measured": str(measure.amount), "amount_invoiced": str(was.amount),
                     **({"seat_days_change": str(days)} if service.method == Method.SEAT_DAYS else {})}))
    return lines


def _n(value: Decimal) -> str:
    """A quantity as a clerk writes it: 10, 2.5 (not 10.0000000000)."""
    return format(Decimal(value).normalize(), "f")


def _description(service, period: Period, change: Decimal, days: Decimal, now: Measure, was: Measure) -> str:
    month = period.first.strftime("%B %Y")
    what = MEASURE[service.method]
    if service.method == Method.SEAT_DAYS and days:
        told = f"{_n(abs(days))} seat-days {'recorded' if days > 0 else 'removed'} after the invoice"
    elif change:
        told = f"{what} {_n(now.quantity)}, invoiced {_n(was.quantity)}"
    else:
        told = f"terms changed after the invoice ({what} {_n(now.quantity)})"
    return f"{service.name}: true-up for {month}: {told}"


# --- the invariant ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gap:
    partner: str
    service: str
    period: str
    customer: str
    billed: Decimal
    expected: Decimal


BILLED_TYPES = (LineType.USAGE, LineType.MINIMUM, LineType.OVERAGE, LineType.RECURRING, LineType.VARIABLE_USAGE,
                LineType.PRORATION, LineType.FIRST_MONTH, LineType.TRUE_UP)


def billing_gaps(*, partner_ids: list[int], before: Period) -> list[Gap]:
    """Every service's months before `before` (each partner's months since its first service) whose issued
    lines do not add up to what the rules give from all the data known now: right after a run through
    `before`'s 1st, none (billing-rules 4.12). A month is expected at its rated lines (advance, first month,
    arrears), with a per_asset month's changes prorated from its anchor as one line per date; it is billed at
    every issued line of its period (original lines, prorations, true-ups), credit notes apart. Reads one
    rating per month, like a billing run."""

    partners = list(Partner.objects.filter(pk__in=partner_ids).order_by("slug"))
    firsts = first_months([p.pk for p in partners])
    expected: dict[tuple, Decimal] = {}
    names: dict[tuple, tuple[str, str, str]] = {}
    if firsts:
        month = min(firsts.values())
        while month <= before:
            due = [p for p in partners if p.pk in firsts and firsts[p.pk] <= month]
            rated = rate_partners_month(partners=due, month=month, billed={p.pk: None for p in due})
            for partner in due:
                for line in rated[partner.pk]:
                    period = str(line.period)
                    if period >= str(before) or line.line_type not in BILLED_TYPES:
                        continue
                    service = line.service
                    key = group_key(service.pk, service.customer_id, line.customer.pk if line.customer else None,
                                    period)
                    expected[key] = expected.get(key, ZERO) + line.amount
                    names[key] = (partner.slug, service.code, line.customer.slug if line.customer else "")
            month = month.next()
    billed: dict[tuple, Decimal] = {}
    rows = (InvoiceLine.objects.filter(invoice__partner_id__in=partner_ids, invoice__state=InvoiceState.ISSUED,
                                       service__isnull=False, line_type__in=BILLED_TYPES, period__lt=str(before))
            .values_list("invoice__partner__slug", "service_id", "service__code", "service__customer_id",
                         "customer_id", "customer__slug", "period", "amount"))
    for slug, sid, code, service_customer, customer_id, customer_slug, period, amount in rows:
        key = group_key(sid, service_customer, customer_id, period)
        billed[key] = billed.get(key, ZERO) + amount
        names.setdefault(key, (slug, code, customer_slug or ""))
    return [Gap(*names[key][:2], key[1], names[key][2], billed.get(key, ZERO), expected.get(key, ZERO))
            for key in sorted(set(expected) | set(billed), key=lambda k: (names[k], k[1]))
            if billed.get(key, ZERO) != expected.get(key, ZERO)]

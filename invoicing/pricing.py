"""Pricing: pure calculation on Decimals, rounded once per line through billing.money (no Django)."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from billing.core.money import ZERO, quantize_money, tax_on
from invoicing.choices import LineType
from partners.choices import Proration
from partners.tiers import GRADUATED, VOLUME, Tier

DAY_FRACTION = Proration.DAY_FRACTION
ROUNDED_DAILY_RATE = Proration.ROUNDED_DAILY_RATE


@dataclass(frozen=True)
class PricedLine:
    line_type: str  # usage, minimum, overage, ...
    quantity: Decimal  # exact; shown to 4 places
    unit_price: Decimal
    amount: Decimal  # rounded once


@dataclass(frozen=True)
class SeatDaysPrice:
    actual: Decimal  # seat-months used
    minimum: Decimal  # committed seat-months, prorated
    billable: Decimal
    lines: tuple[PricedLine, ...]

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


def price_seat_days(*, seat_days: int, days_in_month: int, service_days: int, committed: int,
                    unit_price: Decimal, overage_price: Decimal | None, currency: str) -> SeatDaysPrice:
    """One seat_days period (billing-rules 3.1, 6.1).

    minimum = committed x service days / days in month; billable = max(actual, minimum).
    The amount is rounded once from the exact value. Above a non-zero minimum
    it shows as a `minimum` line and an `overage` line whose amount is the
    rounded total less the rounded minimum line; otherwise one `usage` line.
    With no commitment every seat-month is at unit_price.
    """
    if days_in_month <= 0 or not 0 <= service_days <= days_in_month:
        raise ValueError("service days must lie within the month")
    if seat_days < 0 or committed < 0:
        raise ValueError("seat-days and commitments are never negative")
    days = Decimal(days_in_month)
    committed_days = committed * service_days  # the seat-days the commitment covers
    actual = Decimal(seat_days) / days
    minimum = Decimal(committed_days) / days
    billable = max(actual, minimum)
    # Each amount is an exact numerator (whole seat-days x price) divided once by the days: dividing
    # first would round seat-days / days to 28 digits and can land a hair below a half cent
    # (1 seat-day of 28 at 11.90 is exactly 0.425, so 0.43, not 0.42).
    if committed_days > 0 and seat_days > committed_days:
        over_price = unit_price if overage_price is None else overage_price
        total = quantize_money(
            (committed_days * unit_price + (seat_days - committed_days) * over_price) / days, currency
        )
        minimum_amount = quantize_money(committed_days * unit_price / days, currency)
        lines = (
            PricedLine(LineType.MINIMUM, minimum, unit_price, minimum_amount),
            PricedLine(LineType.OVERAGE, actual - minimum, over_price, total - minimum_amount),
        )
    else:
        amount = quantize_money(max(seat_days, committed_days) * unit_price / days, currency)
        lines = (PricedLine(LineType.USAGE, billable, unit_price, amount),)
    return SeatDaysPrice(actual=actual, minimum=minimum, billable=billable, lines=lines)


# --- tiers, proration and the advance/arrears amounts of billing-rules 3.4-3.9 --------------------------


def volume_unit_price(total: Decimal, *, unit_price: Decimal, tiers: Sequence[Tier] = ()) -> Decimal:
    """The price of the tier the total falls in (an `UP_TO` bound is inclusive, billing-rules 6.9)."""
    if not tiers:
        return unit_price
    for tier in tiers:
        if tier.up_to is None or total <= tier.up_to:
            return tier.price
    raise ValueError("a tier schedule ends with inf")


def tiered_amount(quantity: Decimal, *, unit_price: Decimal, tiers: Sequence[Tier] = (),
                  mode: str = VOLUME) -> Decimal:
    """The exact monthly amount of a quantity: unit_price each, or per the tiers (billing-rules 3.9).

    volume: every unit at the price of the tier the total falls in;
    graduated: each tier's units at that tier's price.
    """
    if quantity < 0:
        raise ValueError("quantities are never negative")
    if not tiers:
        return quantity * unit_price
    if mode == VOLUME:
        return quantity * volume_unit_price(quantity, unit_price=unit_price, tiers=tiers)
    if mode != GRADUATED:
        raise ValueError(f"unknown tier mode {mode!r}")
    amount, floor = ZERO, Decimal(0)
    for tier in tiers:
        ceiling = quantity if tier.up_to is None else min(quantity, Decimal(tier.up_to))
        if ceiling > floor:
            amount += (ceiling - floor) * tier.price
            floor = ceiling
        if tier.up_to is not None and quantity <= tier.up_to:
            break
    return amount


def first_month_amount(monthly: Decimal, *, start: date, convention: str, currency: str) -> Decimal:
    """The rest of the start date's month, rounded once (billing-rules 3.8, 6.13).

    day_fraction: monthly x (days from the start date through month end, inclusive) / days;
    rounded_daily_rate: round(monthly / days, minor unit) x (days - start day), so a start
    on the 10th of a 31-day month charges 21 days (150.00 -> 4.84 x 21 = 101.64).
    """
    days = Decimal(calendar.monthrange(start.year, start.month)[1])
    if convention == DAY_FRACTION:
        return quantize_money(monthly * (days - start.day + 1) / days, currency)
    if convention == ROUNDED_DAILY_RATE:
        return quantize_money(quantize_money(monthly / days, currency) * (days - start.day), currency)
    raise ValueError(f"unknown proration {convention!r}")


def credit_note_tax(*, credited_taxable: Decimal, rate_percent: Decimal, currency: str, invoice_tax: Decimal,
                    earlier_credited_tax: Decimal, last: bool) -> Decimal:
    """The tax of a credit note (billing-rules 4.5, 12.7), negative: on the credited taxable amount (itself
    negative), rounded once; the credit note that credits an invoice's last lines takes the tax still uncredited
    instead, so an invoice's credit notes always give back exactly its tax (`earlier_credited_tax`: the earlier
    credit notes' tax, negative). Ours and the partners' customer credit notes both."""
    if last:
        return -invoice_tax - earlier_credited_tax
    return tax_on(credited_taxable, rate_percent, currency)


def proration_amount(monthly_before: Decimal, monthly_after: Decimal, *, effective: date, currency: str) -> Decimal:
    """A per_asset change on `effective`: the monthly difference for the days from it through the
    end of its month, inclusive (billing-rules 3.7), rounded once; negative for a decrement."""
    days = Decimal(calendar.monthrange(effective.year, effective.month)[1])
    remaining = days - effective.day + 1
    return quantize_money((monthly_after - monthly_before) * remaining / days, currency)


def cmq_variable_quantity(peak: int, committed: int) -> int:
    """Variable Monthly Usage: the peak above the committed quantity (billing-rules 3.5)."""
    return max(0, peak - committed)


@dataclass
class BilledUnits:
    """What was billed of a per_asset service for one month: the units of its normal (or
    first-month) line on `anchor`, and the unit changes already posted by effective date."""

    anchor: date
    units: int
    changes: dict[date, int] = field(default_factory=dict)
    postings: dict[date, int] = field(default_factory=dict)  # proration lines already posted per date
    amounts: dict[date, Decimal] = field(default_factory=dict)  # what those lines charged per date

    def units_on(self, day: date) -> int:
        return self.units + sum(delta for effective, delta in self.changes.items() if effective <= day)

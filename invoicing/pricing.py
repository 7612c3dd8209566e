"""Pricing: pure calculation on Decimals, rounded once per line through billing.money (no Django)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing.money import ZERO, quantize_money


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
    """One seat_days period (RULES 3.1, 9.1).

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
            PricedLine("minimum", minimum, unit_price, minimum_amount),
            PricedLine("overage", actual - minimum, over_price, total - minimum_amount),
        )
    else:
        amount = quantize_money(max(seat_days, committed_days) * unit_price / days, currency)
        lines = (PricedLine("usage", billable, unit_price, amount),)
    return SeatDaysPrice(actual=actual, minimum=minimum, billable=billable, lines=lines)

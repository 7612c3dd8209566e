"""Money: the one place that rounds (billing-rules 2).

Amounts are computed exactly with Decimal and rounded once per line, half
away from zero (ROUND_HALF_UP on Decimal: -0.125 -> -0.13), to the minor unit
of the currency. The minor unit comes from py-moneyed's ISO 4217 table
(USD/EUR/GBP: 2 places, JPY: 0, BHD: 3). No Django import here.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import moneyed

ROUNDING = ROUND_HALF_UP
ZERO = Decimal("0")
HUNDRED = Decimal(100)
QUANTITY_PLACES = 4  # quantities are shown to 4 places (seat-months)


class MoneyError(ValueError):
    """A value that cannot be used as money."""


def currency_places(currency: str) -> int:
    """Number of decimal places of the currency's minor unit."""
    try:
        sub_unit = moneyed.get_currency(currency.upper()).sub_unit
    except moneyed.CurrencyDoesNotExist as exc:
        raise MoneyError(f"unknown currency {currency!r}") from exc
    places = 0
    while sub_unit > 1:
        sub_unit //= 10
        places += 1
    return places


def currency_quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-currency_places(currency))


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    """Round an exact amount once, half away from zero, to the currency's minor unit."""
    if not isinstance(amount, Decimal):
        raise MoneyError(f"money must be Decimal, not {type(amount).__name__}")
    rounded = amount.quantize(currency_quantum(currency), rounding=ROUNDING)
    # -0.004 rounds to zero: a line or an export shows 0.00, never -0.00
    return rounded.copy_abs() if rounded.is_zero() else rounded


def tax_on(taxable: Decimal, rate_percent: Decimal, currency: str) -> Decimal:
    """The tax on a taxable amount (billing-rules 2, 4.3): `rate_percent` percent of it, computed exactly and
    rounded once, half away from zero, to the currency's minor unit. The one place tax is computed: an
    invoice's tax line on the sum of its taxable lines, a credit note's tax on the lines it credits, and the
    "fits on one invoice" check of a one-time charge (admin and import) all come here.

    Example (billing-rules 4.3): 191.94 at 10% is 19.194 -> 19.19; 101.64 at 20% is 20.328 -> 20.33; a
    credit of -0.05 at 10% is -0.005 -> -0.01."""
    return quantize_money(taxable * rate_percent / HUNDRED, currency)


def quantize_quantity(quantity: Decimal) -> Decimal:
    """A quantity as shown on a line or an export (4 places). Amounts never use this."""
    return quantity.quantize(Decimal(1).scaleb(-QUANTITY_PLACES), rounding=ROUNDING)


DECIMAL_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)  # what a file's decimal cell may hold


def parse_decimal(text: str) -> Decimal:
    """Parse a decimal from a file cell: ASCII digits, an optional sign and point (and exponent); no floats, no NaN,
    none of the other forms Decimal() takes (1_234.50 with Python's digit groups, other scripts' digits)."""
    cleaned = text.strip()
    if not DECIMAL_TEXT.fullmatch(cleaned):
        raise MoneyError(f"not a number: {text!r}")
    try:
        value = Decimal(cleaned)
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"not a number: {text!r}") from exc
    if not value.is_finite():
        raise MoneyError(f"not a number: {text!r}")
    return value


def money_sum(amounts) -> Decimal:
    """Totals are sums of already-rounded lines; start from an exact zero."""
    return sum(amounts, ZERO)


def allocate(amount: Decimal, weights: dict, currency: str) -> dict:
    """Split a rounded `amount` by `weights` (key -> a quantity at or above zero) into amounts of the currency's
    minor unit that add up to it exactly: each key gets its share rounded down, and the minor units left go one
    each to the largest remainders (the first key, in sorted order, on a tie). A credit (a negative amount) is
    split as its opposite. All weights zero: every share is zero, so nothing adds up to a non-zero amount.

    Example: 3.23 over three equal quantities is 1.08, 1.08 and 1.07, never 3 x 1.08 = 3.24 (billing-rules
    12.12: the shares of one of our lines add up to that line)."""
    whole = sum(weights.values(), ZERO)
    if not whole:
        return {key: ZERO for key in weights}
    quantum = currency_quantum(currency)
    units = int((abs(amount) / quantum).to_integral_value())
    exact = {key: Decimal(units) * weight / whole for key, weight in weights.items()}
    shares = {key: int(value) for key, value in exact.items()}  # rounded down: every share is >= 0
    left = units - sum(shares.values())
    for key in sorted(weights, key=lambda k: (-(exact[k] - shares[k]), k))[:left]:
        shares[key] += 1
    sign = -1 if amount < 0 else 1
    return {key: quantize_money(sign * share * quantum, currency) for key, share in shares.items()}

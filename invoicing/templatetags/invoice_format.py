"""Formatting for invoice documents: money in the currency's places, quantities to 4 places.

Values are Decimals (or ints, or decimal strings); a float is refused, never rounded (billing-rules 2).
Amounts on an issued invoice are already rounded once per line, so formatting only pads them to
the currency's places; it never changes a figure. Rounding would hide a bug, so an amount with
more places than its currency allows is an error here, not a silent round.
"""

from __future__ import annotations

import calendar
from decimal import Decimal, InvalidOperation

from django import template

from billing.core.money import QUANTITY_PLACES, currency_places, quantize_quantity

register = template.Library()

# Only symbols that name one currency; "$" could be any dollar, so USD, CAD, AUD... show their code.
SYMBOLS = {"EUR": "€", "GBP": "£"}
MINUS = "-"  # ASCII: what a partner's tools (and text extraction) read as a minus sign


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        raise TypeError("money and quantities are Decimal, never float")
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def _grouped(value: Decimal, places: int) -> str:
    """Digits with thousands separators and exactly `places` decimals, without a sign."""
    quantum = Decimal(1).scaleb(-places)
    padded = value.copy_abs().quantize(quantum)
    if padded != value.copy_abs():
        raise ValueError(f"{value} has more than {places} decimal places")
    return f"{padded:,.{places}f}"


def format_amount(value, currency: str) -> str:
    """1234.5 in USD -> "1,234.50" (no currency); "" for None. A zero is never negative."""
    number = _decimal(value)
    if number is None:
        return ""
    digits = _grouped(number, currency_places(currency))
    return f"{MINUS}{digits}" if number < 0 and not number.is_zero() else digits


def format_money(value, currency: str) -> str:
    """1234.5 USD -> "USD 1,234.50"; EUR -> "€1,234.50"; -5 EUR -> "-€5.00"; "" for None."""
    number = _decimal(value)
    if number is None:
        return ""
    currency = (currency or "").upper()
    digits = _grouped(number, currency_places(currency))
    negative = number < 0 and not number.is_zero()
    symbol = SYMBOLS.get(currency)
    if symbol:
        return f"{MINUS if negative else ''}{symbol}{digits}"
    return f"{currency} {MINUS if negative else ''}{digits}"


def format_quantity(value) -> str:
    """A quantity to 4 places with thousands separators: 1.6774193548 -> "1.6774"; "" for None."""
    number = _decimal(value)
    if number is None:
        return ""
    shown = quantize_quantity(number)
    digits = f"{shown.copy_abs():,.{QUANTITY_PLACES}f}"
    return f"{MINUS}{digits}" if shown < 0 and not shown.is_zero() else digits


def format_unit_price(value, currency: str) -> str:
    """A unit price: the currency's places, more (up to 4, as stored) when the price has them."""
    number = _decimal(value)
    if number is None:
        return ""
    places = currency_places(currency)
    exponent = -number.normalize().as_tuple().exponent if not number.is_zero() else 0
    shown_places = min(max(places, exponent), QUANTITY_PLACES)
    digits = f"{number.copy_abs().quantize(Decimal(1).scaleb(-shown_places)):,.{shown_places}f}"
    return f"{MINUS}{digits}" if number < 0 and not number.is_zero() else digits


def format_period(value, style: str = "short") -> str:
    """"2026-04" -> "Apr 2026" (short) or "April 2026" (long); anything else is shown as it is."""
    text = str(value or "")
    try:
        year, month = (int(part) for part in text.split("-"))
        names = calendar.month_name if style == "long" else calendar.month_abbr
        return f"{names[month]} {year:04d}"
    except (ValueError, IndexError):
        return text


@register.filter
def money(value, currency):
    """{{ invoice.total|money:invoice.currency }} -> "USD 1,234.50" or "€1,234.50"."""
    return format_money(value, currency)


@register.filter
def amount(value, currency):
    """{{ line.amount|amount:invoice.currency }} -> "1,234.50": a table cell under a currency header."""
    return format_amount(value, currency)


@register.filter
def negated_money(value, currency):
    """What reduces the balance, shown with its minus: 50 -> "-€50.00" (0 stays "€0.00")."""
    number = _decimal(value)
    return "" if number is None else format_money(-number, currency)


@register.filter
def quantity(value):
    return format_quantity(value)


@register.filter
def unit_price(value, currency):
    return format_unit_price(value, currency)


@register.filter
def period(value, style="short"):
    return format_period(value, style)

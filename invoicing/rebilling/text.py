"""Prices in words, as the portal's price list and the admin show them: "USD 12.00 per user", "our price + 25%",
"USD 150.00 for up to 10 users, then USD 12.00 each", "tiers 10:5.00;inf:4.00 (graduated)"."""

from __future__ import annotations

from decimal import Decimal

from invoicing.rebilling.choices import ResaleMode
from invoicing.templatetags.invoice_format import SYMBOLS, format_unit_price
from partners.choices import Method

# what one unit of each of our methods is, as a price list reads it ("per seat-month")
METHOD_UNITS = {
    Method.SEAT_DAYS: "seat-month", Method.PEAK: "user", Method.CMQ: "unit", Method.LICENSES: "license",
    Method.PER_ASSET: "agent", Method.PER_HOST: "host", Method.FLAT: "month", Method.RECORDS: "unit",
}


def money_text(value: Decimal, currency: str) -> str:
    """A price with its currency: "USD 24.00", "€3.50", "USD 0.1234" (the places it has, up to 4)."""
    return SYMBOLS.get(currency.upper(), f"{currency.upper()} ") + format_unit_price(value, currency)


def percent_text(value: Decimal) -> str:
    return f"{value.normalize():f}%"


def price_text(price, currency: str, unit: str = "unit") -> str:
    """A resale price (a ResalePrice row) in words."""
    mode = price.mode
    if mode == ResaleMode.UNIT:
        return f"{money_text(price.unit_price, currency)} per {unit}"
    if mode == ResaleMode.MARKUP:
        return f"our price + {percent_text(price.markup_percent)}"
    if mode == ResaleMode.PACKAGE:
        units = f"{price.package_units} {unit}{'' if price.package_units == 1 else 's'}"
        return (f"{money_text(price.package_price, currency)} for up to {units}, then "
                f"{money_text(price.unit_price, currency)} each")
    if mode == ResaleMode.TIERS:
        return f"tiers {price.tiers} ({price.tier_mode})"
    return "the default list's price"


def unit_of(price) -> str:
    """What one unit of a price's service or item is: "seat-month", "license", an item's own unit."""
    if price.service_id:
        return METHOD_UNITS.get(price.service.method, "unit")
    return price.item.unit or "unit"

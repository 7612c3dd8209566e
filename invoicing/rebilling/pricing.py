"""Resale pricing: what a partner charges its own customer for a quantity (billing-rules 12.2). Pure: Decimals in,
Decimals out, no model and no database; rounded once per line by billing.core.money.

A resale price is a `ResaleTerms`: one of four modes, with the fields that mode uses.

- `unit`: `unit_price` per unit.
- `markup`: our unit price (what the partner pays us for one unit, as our own line for the same month shows it)
  plus `markup_percent` percent of it.
- `package`: `package_price` for up to `package_units` units (zero units included), then `unit_price` for each
  unit above them ("up to 10 users for 150.00, then 12.00 each").
- `tiers`: a tier schedule in the services' own text (`10:5.00;50:4.00;inf:3.00`, partners.tiers), `volume` or
  `graduated`, priced exactly as our own tiers are (invoicing.pricing.tiered_amount, billing-rules 3.9).

`resale_amount` is the one function the customer invoices call; `exact_amount` is its unrounded value (for a
total that sums exact parts before rounding once); `shown_unit_price` is what a line shows as its unit price;
`margin_per_unit` is what the portal's price list shows. `terms_errors` holds the rules of each mode's fields,
the one place the portal's form, the import and the service check them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from billing.core.money import HUNDRED, ROUNDING, ZERO, quantize_money
from invoicing.pricing import tiered_amount, volume_unit_price
from invoicing.rebilling.choices import ResaleMode
from partners.choices import TierMode
from partners.tiers import GRADUATED, PRICE_PLACES, PRICE_WHOLE_DIGITS, VOLUME, Tier, TierError, parse_tiers

UNIT = ResaleMode.UNIT
MARKUP = ResaleMode.MARKUP
PACKAGE = ResaleMode.PACKAGE
TIERS = ResaleMode.TIERS
DEFAULT = ResaleMode.DEFAULT
# the largest markup: 9,999.999% (the column's 7 digits, 3 of them places)
MARKUP_MAX = Decimal("9999.999")
MARKUP_PLACES = 3
# columns of each mode, the fields of ResalePrice (and of the resale-prices import) that mode uses
MODE_FIELDS: dict[str, tuple[str, ...]] = {
    UNIT: ("unit_price",),
    MARKUP: ("markup_percent",),
    PACKAGE: ("package_units", "package_price", "unit_price"),
    TIERS: ("tiers",),
    DEFAULT: (),
}
PRICE_QUANTUM = Decimal(1).scaleb(-PRICE_PLACES)
AMOUNT_FIELDS = ("unit_price", "markup_percent", "package_units", "package_price", "tiers")


class ResalePricingError(ValueError):
    """A price that cannot price this quantity (a markup without our price, a `default` row, a negative
    quantity)."""


@dataclass(frozen=True)
class ResaleTerms:
    mode: str
    unit_price: Decimal | None = None
    markup_percent: Decimal | None = None
    package_units: int | None = None
    package_price: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    tier_mode: str = VOLUME

    @classmethod
    def of(cls, *, mode: str, unit_price=None, markup_percent=None, package_units=None, package_price=None,
           tiers: str = "", tier_mode: str = VOLUME) -> ResaleTerms:
        """From a price's fields as stored (tiers as text; TierError when the text is not a schedule)."""
        return cls(mode=mode, unit_price=unit_price, markup_percent=markup_percent, package_units=package_units,
                   package_price=package_price, tiers=parse_tiers(tiers) if mode == TIERS else (),
                   tier_mode=tier_mode or VOLUME)


def exact_amount(terms: ResaleTerms, quantity: Decimal, *, our_unit_price: Decimal | None = None) -> Decimal:
    """The exact amount of `quantity` units (billing-rules 12.2), before rounding.

    `our_unit_price` is needed by a markup only: the unit price of our own line for the same service and month
    (under volume tiers, the price of the tier our total reached)."""
    if quantity < 0:
        raise ResalePricingError("quantities are never negative")
    mode = terms.mode
    if mode == UNIT:
        return quantity * terms.unit_price
    if mode == MARKUP:
        if our_unit_price is None:
            raise ResalePricingError("a markup needs our unit price")
        # one division, last: quantity x our price x (100 + m) / 100 stays exact for any quantity
        return quantity * our_unit_price * (HUNDRED + terms.markup_percent) / HUNDRED
    if mode == PACKAGE:
        above = max(quantity - terms.package_units, ZERO)
        return terms.package_price + above * terms.unit_price
    if mode == TIERS:
        return tiered_amount(quantity, unit_price=ZERO, tiers=terms.tiers, mode=terms.tier_mode)
    raise ResalePricingError(f"a {mode!r} price charges nothing itself: read the default list's price")


def resale_amount(terms: ResaleTerms, quantity: Decimal, *, currency: str,
                  our_unit_price: Decimal | None = None) -> Decimal:
    """The amount of a customer's line: `exact_amount`, rounded once to the currency's minor unit, half away
    from zero (billing-rules 2, 12.2)."""
    return quantize_money(exact_amount(terms, quantity, our_unit_price=our_unit_price), currency)


def package_words(terms: ResaleTerms, currency: str) -> str:
    """A package as its invoice line names it, since the line shows no unit price (billing-rules 12.2):
    "up to 5 for 150.00, then 30.00 each" (or "..., nothing more above" when units above are free)."""
    def shown(value: Decimal) -> Decimal:  # at the currency's places when that loses nothing (30.0000 -> 30.00)
        short = quantize_money(value, currency)
        return short if short == value else quantize_price(value)

    text = f"up to {terms.package_units} for {shown(terms.package_price)}"
    if terms.unit_price:
        return f"{text}, then {shown(terms.unit_price)} each"
    return f"{text}, nothing more above"


def shown_unit_price(terms: ResaleTerms, quantity: Decimal, *,
                     our_unit_price: Decimal | None = None) -> Decimal | None:
    """The unit price a line shows, to at most 4 places (billing-rules 2); None where no one price applies to
    every unit (a package, graduated tiers: the line shows its amount only, as decision (n) for our own lines).
    The amount is never computed from it."""
    mode = terms.mode
    if mode == UNIT:
        return terms.unit_price
    if mode == MARKUP:
        if our_unit_price is None:
            raise ResalePricingError("a markup needs our unit price")
        return quantize_price(our_unit_price * (HUNDRED + terms.markup_percent) / HUNDRED)
    if mode == TIERS and terms.tier_mode == VOLUME:
        return volume_unit_price(quantity, unit_price=ZERO, tiers=terms.tiers)
    return None


def margin_per_unit(terms: ResaleTerms, our_unit_price: Decimal | None) -> Decimal | None:
    """What one unit earns the partner over our price, where one unit has one price on both sides: a unit price
    or a markup, against our plain unit price (None: a package, tiers, or our price is not one number)."""
    if our_unit_price is None:
        return None
    if terms.mode == UNIT:
        return terms.unit_price - our_unit_price
    if terms.mode == MARKUP:
        return quantize_price(our_unit_price * terms.markup_percent / HUNDRED)
    return None


def quantize_price(value: Decimal) -> Decimal:
    """A price to 4 places, half away from zero: only ever shown (an amount is computed exactly, then rounded)."""
    return value.quantize(PRICE_QUANTUM, rounding=ROUNDING)


# --- the rules of a price's fields ---------------------------------------------------------------------------
def mode_of(values: Mapping) -> str | None:
    """The mode a row of the resale-prices import asks for, from the columns it fills (the file has no mode
    column): tiers, a markup, a package (package_units or package_price), a unit price, or none of them (a
    customer's row then returns to the default list). None when it fills the columns of two modes."""
    given = {name for name in AMOUNT_FIELDS if values.get(name) not in (None, "")}
    modes = set()
    if "tiers" in given:
        modes.add(TIERS)
    if "markup_percent" in given:
        modes.add(MARKUP)
    if given & {"package_units", "package_price"}:
        modes.add(PACKAGE)
    elif "unit_price" in given:
        modes.add(UNIT)
    if len(modes) > 1:
        return None
    return modes.pop() if modes else DEFAULT


def terms_errors(values: Mapping, *, mode: str, for_customer: bool, for_service: bool) -> dict[str, str]:
    """The errors of a price's fields by field (the import's column): what `mode` needs, and nothing it does
    not use. `values` holds unit_price, markup_percent, package_units, package_price (numbers or None), tiers
    (text) and tier_mode. `for_customer`: a customer's override (else the default list); `for_service`: it prices
    one of our services (else the partner's own item)."""
    errors: dict[str, str] = {}
    if mode not in ResaleMode.values:
        return {"mode": f"unknown mode {mode!r} (one of {', '.join(ResaleMode.values)})"}
    needed = MODE_FIELDS[mode]
    for name in AMOUNT_FIELDS:
        value = values.get(name)
        given = value not in (None, "")
        if name in needed and not given:
            errors[name] = _NEEDED[(mode, name)]
        elif given and name not in needed:
            errors[name] = f"not used by {_MODE_WORDS[mode]}: leave it blank"
    if mode == MARKUP and not for_service:
        errors["markup_percent"] = "a markup is on our price: your own items have none (give a unit_price)"
    if mode == DEFAULT and not for_customer:
        errors["unit_price"] = ("give a price: unit_price, markup_percent, package_units with package_price, or "
                                "tiers")
    for name in ("unit_price", "package_price"):
        if name not in errors and values.get(name) is not None:
            reason = _price_error(values[name])
            if reason:
                errors[name] = reason
    markup = values.get("markup_percent")
    if "markup_percent" not in errors and markup is not None:
        if markup < 0:
            errors["markup_percent"] = "must not be negative"
        elif markup > MARKUP_MAX:
            errors["markup_percent"] = f"at most {MARKUP_MAX}%"
        elif markup != markup.quantize(Decimal(1).scaleb(-MARKUP_PLACES)):
            errors["markup_percent"] = f"at most {MARKUP_PLACES} decimal places"
    units = values.get("package_units")
    if "package_units" not in errors and units is not None and units < 1:
        errors["package_units"] = "must be at least 1"
    if mode == TIERS and "tiers" not in errors:
        try:
            parse_tiers(values["tiers"])
        except TierError as exc:
            errors["tiers"] = str(exc)
    tier_mode = values.get("tier_mode") or VOLUME
    if tier_mode not in TierMode.values:
        errors["tier_mode"] = f"unknown tier mode {tier_mode!r} (one of {', '.join(TierMode.values)})"
    elif mode != TIERS and tier_mode == GRADUATED:
        errors["tier_mode"] = f"not used by {_MODE_WORDS[mode]}: leave it blank"
    return errors


def _price_error(value: Decimal) -> str | None:
    """A price's own bounds (billing-rules 2: zero or more, at most 4 places, decision (aq))."""
    if value < 0:
        return "must not be negative"
    if value and value.adjusted() >= PRICE_WHOLE_DIGITS:
        return f"too large: at most {PRICE_WHOLE_DIGITS} digits before the decimal point"
    if value != value.quantize(PRICE_QUANTUM):
        return f"at most {PRICE_PLACES} decimal places"
    return None


_MODE_WORDS = {UNIT: "a unit price", MARKUP: "a markup", PACKAGE: "a package", TIERS: "tiers",
               DEFAULT: "a return to the default list"}
_NEEDED = {
    (UNIT, "unit_price"): "is required: the price of one unit",
    (MARKUP, "markup_percent"): "is required: the percentage added to our price",
    (PACKAGE, "package_units"): "is required: how many units the package covers",
    (PACKAGE, "package_price"): "is required: the price of the package",
    (PACKAGE, "unit_price"): "is required: the price of each unit above the package (0 for none)",
    (TIERS, "tiers"): "is required: UP_TO:PRICE;...;inf:PRICE",
}

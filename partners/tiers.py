"""Tier schedules `UP_TO:PRICE;...;inf:PRICE` (billing-rules 3.9). Pure: no Django."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from partners.choices import TierMode

VOLUME = TierMode.VOLUME
GRADUATED = TierMode.GRADUATED
# the most digits before the point of a tier price, as of a unit price (PRICE_MAX_DIGITS - PRICE_DECIMAL_PLACES):
# 1E+999999999 is a finite Decimal that would overflow the first invoice it is priced on
PRICE_WHOLE_DIGITS = 10
# the most places after the point, as of a unit price (PRICE_DECIMAL_PLACES): a line stores its unit price
# with 4 places, so a tier price with more would be charged at a price the invoice cannot show
PRICE_PLACES = 4


class TierError(ValueError):
    pass


@dataclass(frozen=True)
class Tier:
    up_to: int | None  # inclusive upper bound; None is "inf"
    price: Decimal


def parse_tiers(text: str) -> tuple[Tier, ...]:
    """Parse and check a tier schedule: ascending bounds, ending with inf."""
    text = (text or "").strip()
    if not text:
        return ()
    tiers: list[Tier] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        bound, sep, price_text = part.partition(":")
        if not sep:
            raise TierError(f"tier {part!r} is not UP_TO:PRICE")
        try:
            price = Decimal(price_text.strip())
        except InvalidOperation as exc:
            raise TierError(f"tier {part!r}: price is not a number") from exc
        if not price.is_finite() or price < 0:
            raise TierError(f"tier {part!r}: price must be zero or more")
        if price.as_tuple().exponent < -PRICE_PLACES and price != price.quantize(Decimal(1).scaleb(-PRICE_PLACES)):
            raise TierError(f"tier {part!r}: price has more than {PRICE_PLACES} decimal places")
        if price and price.adjusted() >= PRICE_WHOLE_DIGITS:
            raise TierError(f"tier {part!r}: price too large: at most {PRICE_WHOLE_DIGITS} digits before the point")
        bound = bound.strip().lower()
        if bound == "inf":
            up_to = None
        else:
            if not (bound.isascii() and bound.isdigit()) or int(bound) <= 0:  # "²".isdigit(), int("²") fails
                raise TierError(f"tier {part!r}: UP_TO must be a whole number above 0 or inf")
            up_to = int(bound)
        if tiers and (tiers[-1].up_to is None or (up_to is not None and up_to <= tiers[-1].up_to)):
            raise TierError("tier bounds must be ascending, with inf last")
        tiers.append(Tier(up_to, price))
    if not tiers or tiers[-1].up_to is not None:
        raise TierError("the last tier must be inf:PRICE")
    return tuple(tiers)

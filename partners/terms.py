"""Terms with effective dates (billing-rules 3.11): the history of a partner's tax rate and payment terms,
a customer's host limit and a service's prices, tiers and commitment.

The object's own fields are its latest terms. What was in force before a change is kept as closed
versions, each `valid_until` a day (inclusive): the terms on day D are those of the first version
ending on or after D, or the object's own fields when none does. An object never changed has no
version, and is billed with its fields on every day (as before terms had dates).

`pieces_changed` is the rule, pure; `terms_change_record` writes it; `TermsBook` reads the versions
of many objects at once and gives an object as it stood on a day.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from djmoney.money import Money

from partners.models import TermsVersion

# the fields of each kind that are terms, in the order they are shown
TERM_FIELDS = {
    "partner": ("tax_rate", "payment_terms_days"),
    "customer": ("host_limit", "payment_terms_days"),
    "service": ("unit_price", "overage_price", "tiers", "tier_mode", "committed_quantity", "storage_per_license_gb"),
}
# terms that price a month: a change takes effect on a month's 1st (the others on any day); the storage a license
# holds counts a month's licenses as a price does
PRICE_TERMS = frozenset({"unit_price", "overage_price", "tiers", "tier_mode", "storage_per_license_gb"})
MONEY_TERMS = frozenset({"unit_price", "overage_price"})
LABELS = {"tax_rate": "tax rate", "payment_terms_days": "payment terms (days)", "host_limit": "host limit",
          "unit_price": "unit price", "overage_price": "overage price", "tiers": "tiers", "tier_mode": "tier mode",
          "committed_quantity": "committed quantity", "storage_per_license_gb": "storage per license (GB)"}
ONE_DAY = timedelta(days=1)
PRICE_PLACES = Decimal("0.0001")


def shown(name: str, value) -> str:
    """A term's value as a clerk reads it: a price with 2 places unless it has more."""
    if name in MONEY_TERMS and value not in (None, ""):
        amount, cents = Decimal(value), Decimal(value).quantize(Decimal("0.01"))
        return str(cents if amount == cents else amount.normalize())
    return "" if value is None else str(value)


class TermsDateError(ValueError):
    """An effective date a change cannot take (a price change on another day than a 1st)."""


def kind_of(obj) -> str:
    return type(obj)._meta.model_name


def values_of(obj) -> dict:
    """An object's terms as stored in a version: money as its amount's text, decimals as text."""
    values = {}
    for name in TERM_FIELDS[kind_of(obj)]:
        value = getattr(obj, name)
        if isinstance(value, Money):
            value = str(value.amount.quantize(PRICE_PLACES))  # as the field stores it, whatever was typed
        elif isinstance(value, Decimal):
            value = str(value)
        values[name] = value
    return values


def values_put(obj, values: dict) -> None:
    """Set an object's term fields from a version's values (money in the object's currency)."""
    for name, value in values.items():
        if name in MONEY_TERMS:
            currency = getattr(obj, f"{name}_currency", None) or obj.unit_price.currency
            value = Money(Decimal(value), currency) if value is not None else None
        elif name in ("tax_rate", "storage_per_license_gb") and value is not None:
            value = Decimal(value)
        setattr(obj, name, value)


def changed_terms(before: dict, after: dict) -> dict:
    """{field: new value} of the terms that differ (values as values_of gives them; decimals compared as numbers)."""
    def same(a, b):
        if a is None or b is None:
            return a is b
        if isinstance(a, str) and isinstance(b, str):
            try:
                return Decimal(a) == Decimal(b)
            except ArithmeticError:
                return a == b
        return a == b
    return {name: value for name, value in after.items() if not same(before.get(name), value)}


# --- the rule ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    until: date | None  # inclusive; None: from here on (the object's own fields)
    values: dict


def pieces_changed(pieces: list[Piece], *, effective: date, changes: dict) -> list[Piece]:
    """The terms over time after `changes` take effect on `effective`: before it nothing changes, from it
    on every piece has the changed fields' new values (a later change of another field is kept).
    `pieces` end with the open piece (until None); touching pieces with the same values are joined."""
    out: list[Piece] = []
    for piece in pieces:
        if piece.until is not None and piece.until < effective:
            out.append(piece)
            continue
        starts = out[-1].until + ONE_DAY if out else date.min
        if starts < effective:  # the piece holds effective: split it the day before
            out.append(Piece(effective - ONE_DAY, piece.values))
        out.append(Piece(piece.until, {**piece.values, **changes}))
    joined: list[Piece] = []
    for piece in out:
        if joined and joined[-1].values == piece.values:
            joined[-1] = Piece(piece.until, piece.values)
        else:
            joined.append(piece)
    return joined


def value_on(pieces: list[Piece], day: date) -> dict:
    """The values in force on `day` (the first piece ending on or after it)."""
    for piece in pieces:
        if piece.until is None or day <= piece.until:
            return piece.values
    return pieces[-1].values


def check_effective(fields, effective: date) -> None:
    """A price change takes effect on a month's 1st (billing-rules 3.11)."""
    prices = sorted(LABELS[f] for f in fields if f in PRICE_TERMS)
    if prices and effective.day != 1:
        raise TermsDateError(f"a change of {', '.join(prices)} takes effect on a month's 1st, "
                             f"not {effective.isoformat()}")


def default_effective(fields, today: date) -> date:
    """When a change made by hand (admin, API, shell) takes effect without a date: the day it is made (UTC);
    a price change on the next month's 1st, or today if today is a 1st (billing-rules 3.11)."""
    if any(f in PRICE_TERMS for f in fields) and today.day != 1:
        return date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return today


# --- an object as it stood ------------------------------------------------------------------------------
class TermsBook:
    """The term versions of many objects, read in one query per kind; `on(obj, day)` gives the object
    as it stood on `day` (a copy with the terms then in force; the object itself when it never changed)."""

    def __init__(self, objects=()):
        self.pieces: dict[tuple[str, int], list[Piece]] = {}
        by_kind: dict[str, set[int]] = {}
        for obj in objects:
            by_kind.setdefault(kind_of(obj), set()).add(obj.pk)
        for kind, ids in by_kind.items():
            rows = (TermsVersion.objects.filter(object_type=kind, object_id__in=ids)
                    .order_by("object_id", "valid_until").values_list("object_id", "valid_until", "values"))
            for object_id, until, values in rows:
                self.pieces.setdefault((kind, object_id), []).append(Piece(until, values))

    def on(self, obj, day: date):
        pieces = self.pieces.get((kind_of(obj), obj.pk))
        if not pieces or day > pieces[-1].until:
            return obj
        dated = copied(obj)
        values_put(dated, value_on(pieces, day))
        return dated


def copied(obj):
    """A copy of a model instance whose related objects can be replaced without touching the original's."""
    dated = copy.copy(obj)
    dated._state = copy.copy(obj._state)
    dated._state.fields_cache = dict(obj._state.fields_cache)
    return dated

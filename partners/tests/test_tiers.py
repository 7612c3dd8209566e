"""partners.tiers.parse_tiers: `UP_TO:PRICE;...;inf:PRICE` schedules (billing-rules 3.9, 6.9). Pure: no database."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from partners.tiers import Tier, TierError, parse_tiers

FAST = settings(max_examples=examples(150), deadline=None, database=None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10:5.00;inf:4.00", (Tier(10, Decimal("5.00")), Tier(None, Decimal("4.00")))),
        ("inf:3", (Tier(None, Decimal("3")),)),
        ("10:5.00;50:4.50;inf:4", (Tier(10, Decimal("5.00")), Tier(50, Decimal("4.50")), Tier(None, Decimal("4")))),
        (" 10 : 5.00 ; INF : 4.00 ", (Tier(10, Decimal("5.00")), Tier(None, Decimal("4.00")))),
        ("10:5.00;inf:4.00;", (Tier(10, Decimal("5.00")), Tier(None, Decimal("4.00")))),
        ("1:0;inf:0", (Tier(1, Decimal("0")), Tier(None, Decimal("0")))),
        ("10:5.1234;inf:4", (Tier(10, Decimal("5.1234")), Tier(None, Decimal("4")))),
        ("inf:5.12340", (Tier(None, Decimal("5.12340")),)),  # a trailing zero is no fifth place
    ],
)
def test_parse_tiers_reads_good_schedules(text, expected):
    """Ascending inclusive UP_TO bounds ending with inf; prices exact Decimals (billing-rules 3.9, 6.9)."""
    tiers = parse_tiers(text)
    assert tiers == expected
    assert [str(t.price) for t in tiers] == [str(t.price) for t in expected]


@pytest.mark.parametrize("text", ["", "   ", None])
def test_blank_tiers_mean_no_schedule(text):
    """A blank tiers column leaves unit_price in charge (billing-rules 3)."""
    assert parse_tiers(text) == ()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10:5.00", "last tier must be inf"),
        ("10:5.00;20:4.00", "last tier must be inf"),
        (";", "last tier must be inf"),
        ("10:5;5:4;inf:3", "ascending"),
        ("10:5;10:4;inf:3", "ascending"),
        ("inf:3;10:2", "ascending"),
        ("inf:3;inf:4", "ascending"),
        ("0:5;inf:3", "UP_TO must be a whole number"),
        ("-5:5;inf:3", "UP_TO must be a whole number"),
        ("1.5:5;inf:3", "UP_TO must be a whole number"),
        ("ten:5;inf:3", "UP_TO must be a whole number"),
        (":5;inf:3", "UP_TO must be a whole number"),
        ("²:5;inf:3", "UP_TO must be a whole number"),
        ("10;inf:3", "is not UP_TO:PRICE"),
        ("inf", "is not UP_TO:PRICE"),
        ("10:abc;inf:3", "price is not a number"),
        ("10:;inf:3", "price is not a number"),
        ("10:5:3;inf:3", "price is not a number"),
        ("10:5,00;inf:3", "price is not a number"),
        ("10:-1;inf:3", "price must be zero or more"),
        ("10:NaN;inf:3", "price must be zero or more"),
        ("10:5;inf:Infinity", "price must be zero or more"),
        ("inf:5.12345", "more than 4 decimal places"),  # the unit price takes 4: a line shows what it charges
        ("10:0.00001;inf:3", "more than 4 decimal places"),
    ],
)
def test_parse_tiers_refuses_bad_schedules(text, reason):
    """Every malformed schedule is a TierError (a row error on import), never another exception
    (billing-rules 3.9, 9.6)."""
    with pytest.raises(TierError, match=reason):
        parse_tiers(text)


bounds = st.lists(st.integers(1, 10_000), min_size=0, max_size=6, unique=True).map(sorted)
tier_prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("10000"), places=4, allow_nan=False,
                          allow_infinity=False)


@FAST
@given(bounds, st.data())
def test_written_schedules_read_back(ups, data):
    """Any ascending schedule written as UP_TO:PRICE;...;inf:PRICE reads back tier for tier (billing-rules 3.9)."""
    prices = data.draw(st.lists(tier_prices, min_size=len(ups) + 1, max_size=len(ups) + 1))
    text = ";".join(f"{up}:{price}" for up, price in zip(ups, prices, strict=False)) + f";inf:{prices[-1]}"
    tiers = parse_tiers(text)
    assert [t.up_to for t in tiers] == [*ups, None]
    assert [t.price for t in tiers] == prices


@FAST
@given(st.lists(st.integers(1, 1000), min_size=2, max_size=5))
def test_non_ascending_bounds_are_refused(ups):
    """Bounds must strictly increase (billing-rules 3.9)."""
    text = ";".join(f"{up}:1" for up in ups) + ";inf:1"
    if all(a < b for a, b in pairwise(ups)):
        assert [t.up_to for t in parse_tiers(text)] == [*ups, None]
    else:
        with pytest.raises(TierError, match="ascending"):
            parse_tiers(text)

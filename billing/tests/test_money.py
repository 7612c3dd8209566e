"""billing.money: the one module that rounds (billing-rules 2, 6.12). Pure: no database."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.money import (
    MoneyError,
    allocate,
    currency_places,
    currency_quantum,
    money_sum,
    parse_decimal,
    quantize_money,
    quantize_quantity,
)
from conftest import examples

FAST = settings(max_examples=examples(200), deadline=None, database=None)
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "BHD"]

amounts = st.decimals(min_value=Decimal("-1000000000"), max_value=Decimal("1000000000"), places=6,
                      allow_nan=False, allow_infinity=False)
currencies = st.sampled_from(CURRENCIES)


def half_away_from_zero(value: Decimal, places: int) -> Decimal:
    """Independent reference: exact rational arithmetic, ties away from zero."""
    scaled = abs(Fraction(value)) * 10**places
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(-whole if value < 0 else whole).scaleb(-places)


# --- examples ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0.125", "0.13"),
        ("-0.125", "-0.13"),
        ("0.124999", "0.12"),
        ("-0.124999", "-0.12"),
        ("2.675", "2.68"),
        ("-2.675", "-2.68"),
        ("0.005", "0.01"),
        ("-0.005", "-0.01"),
        ("161.9355", "161.94"),
        ("10", "10.00"),
        ("0", "0.00"),
    ],
)
def test_quantize_money_rounds_half_away_from_zero_to_cents(amount, expected):
    """Half-up is half away from zero, to 2 places for USD (billing-rules 2, 6.12)."""
    result = quantize_money(Decimal(amount), "USD")
    assert result == Decimal(expected)
    assert str(result) == expected


def test_minus_0_125_rounds_to_minus_0_13():
    """The decided example: -0.125 rounds to -0.13, not -0.12 (billing-rules 6.12)."""
    assert str(quantize_money(Decimal("-0.125"), "USD")) == "-0.13"
    assert str(quantize_money(Decimal("-0.125"), "EUR")) == "-0.13"


def test_tiny_negative_amount_rounds_to_plain_zero():
    """A line that rounds to nothing shows 0.00, never -0.00 (billing-rules 2)."""
    assert str(quantize_money(Decimal("-0.004"), "USD")) == "0.00"
    assert str(quantize_money(Decimal("-0.4"), "JPY")) == "0"


@pytest.mark.parametrize(
    ("currency", "places"),
    [("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("BHD", 3), ("KWD", 3), ("usd", 2), ("jpy", 0)],
)
def test_currency_places_follow_iso_4217(currency, places):
    """The minor unit comes from ISO 4217 (billing-rules 2)."""
    assert currency_places(currency) == places
    assert currency_quantum(currency) == Decimal(1).scaleb(-places)


def test_jpy_has_no_minor_unit():
    """JPY amounts are whole yen, rounded half away from zero (billing-rules 2)."""
    assert str(quantize_money(Decimal("1234.5"), "JPY")) == "1235"
    assert str(quantize_money(Decimal("-1234.5"), "JPY")) == "-1235"
    assert str(quantize_money(Decimal("1234.49"), "JPY")) == "1234"


def test_bhd_rounds_to_three_places():
    """BHD has 3 decimal places (billing-rules 2)."""
    assert str(quantize_money(Decimal("1.2345"), "BHD")) == "1.235"
    assert str(quantize_money(Decimal("-1.2345"), "BHD")) == "-1.235"
    assert str(quantize_money(Decimal("7"), "BHD")) == "7.000"


def test_unknown_currency_is_refused():
    """One ISO 4217 currency per partner: an unknown code is an error, not a guess (billing-rules 2)."""
    with pytest.raises(MoneyError, match="unknown currency"):
        currency_places("ZZZ")
    with pytest.raises(MoneyError):
        quantize_money(Decimal("1.00"), "ZZZ")


@pytest.mark.parametrize("value", [0.125, 1.0, 10, "0.125", None])
def test_quantize_money_refuses_non_decimals(value):
    """Decimal only: no float anywhere in money (billing-rules 2)."""
    with pytest.raises(MoneyError, match="must be Decimal"):
        quantize_money(value, "USD")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12.50", "12.50"), (" -3 ", "-3"), ("+.5", "0.5"), ("0", "0"), ("1e5", "1E+5"), ("1e-05", "0.00001")],
)
def test_parse_decimal_reads_exact_values(text, expected):
    """File cells become exact Decimals; a spreadsheet float's repr (1e-05) still reads exactly (billing-rules 2)."""
    value = parse_decimal(text)
    assert isinstance(value, Decimal)
    assert value == Decimal(expected)
    assert str(value) == str(Decimal(expected))


@pytest.mark.parametrize("text", ["", "  ", "abc", "1,5", "12.5.1", "0x10", "NaN", "nan", "sNaN", "Infinity", "-inf"])
def test_parse_decimal_refuses_non_numbers(text):
    """Bad numbers are row errors, never NaN or infinity (billing-rules 2, 9.2)."""
    with pytest.raises(MoneyError, match="not a number"):
        parse_decimal(text)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        (Decimal(93) / Decimal(30), "3.1000"),
        (Decimal(238) / Decimal(31), "7.6774"),
        (Decimal("0.00005"), "0.0001"),
        (Decimal("-0.00005"), "-0.0001"),
        (Decimal("4"), "4.0000"),
    ],
)
def test_quantize_quantity_shows_four_places(quantity, expected):
    """Quantities (seat-months) are shown to 4 places, half away from zero (billing-rules 2)."""
    assert str(quantize_quantity(quantity)) == expected


def test_money_sum_adds_rounded_lines_exactly():
    """Totals are sums of rounded lines, starting from an exact Decimal zero (billing-rules 2)."""
    assert money_sum([Decimal("120.00"), Decimal("41.94")]) == Decimal("161.94")
    empty = money_sum([])
    assert isinstance(empty, Decimal)
    assert empty == 0


# --- properties --------------------------------------------------------------------------------

@FAST
@given(amounts, currencies)
def test_rounding_matches_exact_half_away_from_zero(amount, currency):
    """quantize_money equals exact rational rounding, ties away from zero (billing-rules 2, 6.12)."""
    assert quantize_money(amount, currency) == half_away_from_zero(amount, currency_places(currency))


@FAST
@given(amounts, currencies)
def test_rounding_is_idempotent_and_lands_on_the_minor_unit(amount, currency):
    """Rounded once means rounding again changes nothing (billing-rules 2)."""
    once = quantize_money(amount, currency)
    assert quantize_money(once, currency) == once
    assert once.as_tuple().exponent == -currency_places(currency)


@FAST
@given(amounts, currencies)
def test_rounding_error_is_at_most_half_a_minor_unit(amount, currency):
    """Error below half a minor unit; exactly half only on a tie, which goes away from zero (billing-rules 6.12)."""
    half = currency_quantum(currency) / 2
    rounded = quantize_money(amount, currency)
    error = abs(rounded - amount)
    assert error <= half
    if error == half:
        assert abs(rounded) > abs(amount)


@FAST
@given(amounts, currencies)
def test_rounding_is_symmetric_for_negatives(amount, currency):
    """Half away from zero is symmetric: quantize(-x) == -quantize(x) (billing-rules 6.12)."""
    assert quantize_money(-amount, currency) == -quantize_money(amount, currency)


@FAST
@given(amounts, amounts, currencies)
def test_rounding_is_monotone(a, b, currency):
    """A larger exact amount never rounds to a smaller line (billing-rules 2)."""
    low, high = min(a, b), max(a, b)
    assert quantize_money(low, currency) <= quantize_money(high, currency)


@FAST
@given(st.floats(allow_nan=True, allow_infinity=True), currencies)
def test_floats_are_always_refused(value, currency):
    """No float anywhere in money (billing-rules 2)."""
    with pytest.raises(MoneyError):
        quantize_money(value, currency)


@FAST
@given(amounts)
def test_parse_decimal_reads_its_own_text_back(amount):
    """A Decimal written to a file reads back exactly (billing-rules 2)."""
    assert parse_decimal(str(amount)) == amount


def test_allocate_gives_the_cents_left_to_the_largest_remainders():
    """3.23 over three equal quantities is 1.08, 1.08 and 1.07 (billing-rules 12.12): the shares add up to the
    line; a credit splits as its opposite; JPY in whole yen; nothing to split by gives zeros."""
    assert allocate(Decimal("3.23"), {1: Decimal(1), 2: Decimal(1), 3: Decimal(1)}, "USD") == {
        1: Decimal("1.08"), 2: Decimal("1.08"), 3: Decimal("1.07")}
    assert allocate(Decimal("-3.23"), {1: Decimal(1), 2: Decimal(1), 3: Decimal(1)}, "USD") == {
        1: Decimal("-1.08"), 2: Decimal("-1.08"), 3: Decimal("-1.07")}
    assert allocate(Decimal("100"), {7: Decimal("0.3333"), 9: Decimal("0.6667")}, "JPY") == {
        7: Decimal("33"), 9: Decimal("67")}
    assert allocate(Decimal("5.00"), {1: Decimal(0), 2: Decimal(0)}, "USD") == {1: Decimal("0.00"),
                                                                                 2: Decimal("0.00")}


@FAST
@given(amounts, currencies, st.lists(st.decimals(min_value=0, max_value=10_000, places=4), min_size=1,
                                     max_size=12))
def test_allocate_adds_up_and_each_share_is_within_a_minor_unit(amount, currency, quantities):
    """The shares of a rounded line add up to it exactly, each within one minor unit of its exact share
    (billing-rules 12.12)."""
    line = quantize_money(amount, currency)
    weights = dict(enumerate(quantities))
    shares = allocate(line, weights, currency)
    whole = sum(quantities, Decimal(0))
    if not whole:
        assert set(shares.values()) == {0}
        return
    assert sum(shares.values(), Decimal(0)) == line
    for key, weight in weights.items():
        assert abs(shares[key] - line * weight / whole) < currency_quantum(currency)

"""invoicing.pricing.price_seat_days: one seat_days period (billing-rules 2, 3.1, 6.1). Pure: no database.

Every expected number below is computed by hand in the test's comment.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.money import quantize_quantity
from conftest import examples
from invoicing.pricing import price_seat_days

FAST = settings(max_examples=examples(300), deadline=None, database=None)


def price(*, seat_days, days_in_month=30, service_days=None, committed=0, unit_price="20.00", overage_price=None,
          currency="USD"):
    return price_seat_days(
        seat_days=seat_days, days_in_month=days_in_month,
        service_days=days_in_month if service_days is None else service_days,
        committed=committed, unit_price=Decimal(unit_price),
        overage_price=None if overage_price is None else Decimal(overage_price), currency=currency,
    )


def lines_of(result):
    return [(line.line_type, line.quantity, line.unit_price, line.amount) for line in result.lines]


# --- the worked example ------------------------------------------------------------------------

def test_seat_example_april_under_commitment_bills_the_minimum():
    """93 seat-days in 30-day April = 3.1 seat-months, committed 4: one usage line of 4 x 20.00 = 80.00
    (billing-rules 3.1, 6.1)."""
    result = price(seat_days=93, committed=4, overage_price="25.00")
    assert result.actual == Decimal("3.1")
    assert result.minimum == Decimal(4)
    assert result.billable == Decimal(4)
    assert lines_of(result) == [("usage", Decimal(4), Decimal("20.00"), Decimal("80.00"))]
    assert result.subtotal == Decimal("80.00")


def test_seat_example_may_minimum_and_overage_lines():
    """238 seat-days / 31 = 7.6774 seat-months, committed 6 at 20.00, overage 25.00:
    minimum 6 x 20 = 120.00; overage (238/31 - 6) x 25 = 1300/31 = 41.9354..; the total 161.9355 is
    rounded once to 161.94 and the overage line is 161.94 - 120.00 = 41.94 (billing-rules 3.1, 6.1)."""
    result = price(seat_days=238, days_in_month=31, committed=6, overage_price="25.00")
    assert quantize_quantity(result.actual) == Decimal("7.6774")
    assert result.minimum == Decimal(6)
    assert result.billable == result.actual
    minimum_line, overage_line = result.lines
    assert (minimum_line.line_type, minimum_line.quantity, minimum_line.unit_price, minimum_line.amount) == (
        "minimum", Decimal(6), Decimal("20.00"), Decimal("120.00"))
    assert overage_line.line_type == "overage"
    assert quantize_quantity(overage_line.quantity) == Decimal("1.6774")
    assert overage_line.unit_price == Decimal("25.00")
    assert overage_line.amount == Decimal("41.94")
    assert result.subtotal == Decimal("161.94")


def test_overage_line_is_total_less_rounded_minimum():
    """Rounded once per period: committed 1 for 15 of 30 days at 20.01 -> minimum 0.5 x 20.01 = 10.005 -> 10.01;
    20 seat-days -> overage 1/6 x 20.01 = 3.335 (3.34 alone); exact total 13.34, so the overage line is
    13.34 - 10.01 = 3.33 (billing-rules 6.1)."""
    result = price(seat_days=20, service_days=15, committed=1, unit_price="20.01")
    assert [line.amount for line in result.lines] == [Decimal("10.01"), Decimal("3.33")]
    assert result.subtotal == Decimal("13.34")


def test_amount_is_computed_exactly_before_rounding():
    """1 seat-day in a 28-day month at 11.90 is exactly 0.425, so 0.43: dividing seat-days by days first
    would give 0.0357142857.. x 11.90 = 0.42499.. and round to 0.42 (billing-rules 2)."""
    assert price(seat_days=1, days_in_month=28, unit_price="11.90").subtotal == Decimal("0.43")
    # 1 seat-day of 30 at 0.15 is exactly 0.005 -> 0.01
    assert price(seat_days=1, days_in_month=30, unit_price="0.15").subtotal == Decimal("0.01")
    # above a minimum: committed 1 in 28 days, 29 seat-days, overage 0.14 -> 10.00 + 0.005 = 10.005 -> 10.01
    result = price(seat_days=29, days_in_month=28, committed=1, unit_price="10.00", overage_price="0.14")
    assert result.subtotal == Decimal("10.01")
    assert result.lines[1].amount == Decimal("0.01")


# --- one test per rule -------------------------------------------------------------------------

def test_partial_month_minimum():
    """A service starting 16 April covers 15 of 30 days: committed 4 -> minimum 4 x 15/30 = 2 seat-months
    = 40.00; 30 seat-days (1 seat-month) bill the minimum (billing-rules 3.1)."""
    result = price(seat_days=30, service_days=15, committed=4)
    assert result.minimum == Decimal(2)
    assert lines_of(result) == [("usage", Decimal(2), Decimal("20.00"), Decimal("40.00"))]


def test_partial_month_minimum_with_overage():
    """Same partial month, 90 seat-days = 3 seat-months > 2: minimum 40.00 + overage 1 x 20.00
    (billing-rules 3.1, 6.1)."""
    result = price(seat_days=90, service_days=15, committed=4)
    assert lines_of(result) == [
        ("minimum", Decimal(2), Decimal("20.00"), Decimal("40.00")),
        ("overage", Decimal(1), Decimal("20.00"), Decimal("20.00")),
    ]


def test_overage_price_defaults_to_unit_price_and_still_shows_two_lines():
    """Committed 2, 90 seat-days of 30 = 3 seat-months, no overage price: minimum 2 x 20 = 40.00 and
    overage 1 x 20 = 20.00, i.e. billable x unit_price = 60.00, still two lines (billing-rules 3.1, 6.1)."""
    result = price(seat_days=90, committed=2)
    assert lines_of(result) == [
        ("minimum", Decimal(2), Decimal("20.00"), Decimal("40.00")),
        ("overage", Decimal(1), Decimal("20.00"), Decimal("20.00")),
    ]
    assert result.subtotal == Decimal("60.00") == result.billable * Decimal("20.00")


def test_overage_price_applies_above_the_minimum():
    """Committed 2, 3 seat-months, overage 25.00: 40.00 + 25.00 = 65.00 (billing-rules 3.1, 6.1)."""
    result = price(seat_days=90, committed=2, overage_price="25.00")
    assert lines_of(result) == [
        ("minimum", Decimal(2), Decimal("20.00"), Decimal("40.00")),
        ("overage", Decimal(1), Decimal("25.00"), Decimal("25.00")),
    ]
    assert result.subtotal == Decimal("65.00")


def test_usage_equal_to_the_minimum_is_one_usage_line():
    """Only usage that exceeds the minimum splits: 60 seat-days of 30 = committed 2 -> one usage line 40.00
    (billing-rules 6.1)."""
    result = price(seat_days=60, committed=2, overage_price="25.00")
    assert lines_of(result) == [("usage", Decimal(2), Decimal("20.00"), Decimal("40.00"))]


def test_no_commitment():
    """No commitment: every seat-month at unit_price, even with an overage price: 45/30 = 1.5 x 20 = 30.00
    (billing-rules 3.1)."""
    result = price(seat_days=45, committed=0, overage_price="25.00")
    assert result.minimum == 0
    assert lines_of(result) == [("usage", Decimal("1.5"), Decimal("20.00"), Decimal("30.00"))]


def test_no_commitment_and_no_usage_is_zero():
    """Nothing used, nothing committed: one usage line of 0 at 0.00 (billing-rules 3.1, 6.1)."""
    assert lines_of(price(seat_days=0)) == [("usage", Decimal(0), Decimal("20.00"), Decimal("0.00"))]


def test_commitment_outside_the_service_days_is_no_minimum():
    """A commitment over 0 service days is a zero minimum, so usage is at unit_price (billing-rules 3.1)."""
    result = price(seat_days=30, service_days=0, committed=5, overage_price="25.00")
    assert result.minimum == 0
    assert lines_of(result) == [("usage", Decimal(1), Decimal("20.00"), Decimal("20.00"))]


def test_amounts_round_to_the_partner_currency():
    """JPY has no minor unit: 1 seat-day of 31 at 1000 = 32.258.. -> 32 (billing-rules 2)."""
    result = price(seat_days=1, days_in_month=31, unit_price="1000", currency="JPY")
    assert str(result.subtotal) == "32"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seat_days": -1},
        {"seat_days": 1, "committed": -1},
        {"seat_days": 1, "service_days": 31},
        {"seat_days": 1, "service_days": -1},
        {"seat_days": 1, "days_in_month": 0, "service_days": 0},
    ],
)
def test_impossible_inputs_are_refused(kwargs):
    """Seat-days and commitments are never negative; service days lie within the month (billing-rules 3.1)."""
    with pytest.raises(ValueError):
        price(**kwargs)


# --- properties --------------------------------------------------------------------------------

# Whole-cent prices make exact half-cent totals (ties) common; 4-place prices cover the stored precision.
prices = st.one_of(
    st.integers(0, 100_000).map(lambda cents: Decimal(cents).scaleb(-2)),
    st.decimals(min_value=Decimal("0"), max_value=Decimal("1000"), places=4, allow_nan=False, allow_infinity=False),
)


@st.composite
def periods(draw):
    days = draw(st.sampled_from([28, 29, 30, 31]))
    return {
        "days_in_month": days,
        "service_days": draw(st.integers(0, days)),
        "committed": draw(st.integers(0, 25)),
        "seat_days": draw(st.integers(0, days * 40)),
        "unit_price": draw(prices),
        "overage_price": draw(st.none() | prices),
    }


def exact_half_up(value: Fraction) -> Decimal:
    cents = value * 100
    whole = cents.numerator // cents.denominator
    if cents - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(whole).scaleb(-2)


def priced(case, **changes):
    case = {**case, **changes}
    return price_seat_days(currency="USD", **case)


@FAST
@given(periods())
def test_subtotal_is_the_exact_amount_rounded_once(case):
    """subtotal == round(minimum x unit + max(0, actual - minimum) x overage), computed in exact fractions
    (overage = unit_price without commitment or overage price) (billing-rules 2, 3.1, 6.1)."""
    days = case["days_in_month"]
    actual = Fraction(case["seat_days"], days)
    minimum = Fraction(case["committed"] * case["service_days"], days)
    unit = Fraction(case["unit_price"])
    overage = unit if case["overage_price"] is None or minimum == 0 else Fraction(case["overage_price"])
    exact = minimum * unit + max(Fraction(0), actual - minimum) * overage
    if minimum == 0:
        exact = actual * unit
    assert priced(case).subtotal == exact_half_up(exact)


@FAST
@given(periods())
def test_subtotal_is_the_sum_of_rounded_lines(case):
    """Lines are rounded to the minor unit and the subtotal is their sum (billing-rules 2, 6.1)."""
    result = priced(case)
    assert all(line.amount.as_tuple().exponent == -2 for line in result.lines)
    assert result.subtotal == sum((line.amount for line in result.lines), Decimal(0))


@FAST
@given(periods())
def test_amounts_and_quantities_are_never_negative(case):
    """No seat_days line is ever a credit (billing-rules 3.1)."""
    result = priced(case)
    assert all(line.amount >= 0 and line.quantity >= 0 for line in result.lines)
    assert result.subtotal >= 0


@FAST
@given(periods(), st.integers(1, 200))
def test_subtotal_is_monotone_in_seat_days(case, more):
    """Using more seats never costs less (billing-rules 3.1)."""
    assert priced(case, seat_days=case["seat_days"] + more).subtotal >= priced(case).subtotal


@FAST
@given(periods())
def test_line_shape_follows_the_minimum(case):
    """Above a non-zero minimum: minimum + overage lines, the minimum line = round(minimum x unit);
    otherwise one usage line whose quantity is the billable seat-months (billing-rules 6.1)."""
    result = priced(case)
    days = case["days_in_month"]
    minimum = Fraction(case["committed"] * case["service_days"], days)
    actual = Fraction(case["seat_days"], days)
    assert result.billable == max(result.actual, result.minimum)
    if minimum > 0 and actual > minimum:
        assert [line.line_type for line in result.lines] == ["minimum", "overage"]
        assert result.lines[0].amount == exact_half_up(minimum * Fraction(case["unit_price"]))
        assert result.lines[0].unit_price == case["unit_price"]
        expected_overage = case["unit_price"] if case["overage_price"] is None else case["overage_price"]
        assert result.lines[1].unit_price == expected_overage
    else:
        assert [line.line_type for line in result.lines] == ["usage"]
        assert result.lines[0].quantity == result.billable
        assert result.lines[0].unit_price == case["unit_price"]


@st.composite
def half_cent_ties(draw):
    """(days, seat_days, unit_price, k) with seat_days x unit_price / days == k + 0.5 cents exactly.

    seat_days x n = m x 50 x days for a 4-place price n / 10000 and an odd m = 2k + 1.
    """
    days = draw(st.sampled_from([28, 29, 30, 31]))
    odd = draw(st.integers(0, 5000)) * 2 + 1
    total = odd * 50 * days
    divisors = [d for d in range(1, days * 40 + 1) if total % d == 0]
    seat_days = draw(st.sampled_from(divisors))
    return days, seat_days, Decimal(total // seat_days).scaleb(-4), odd // 2


@FAST
@given(half_cent_ties())
def test_exact_half_cent_totals_round_up(tie):
    """An amount of exactly k.5 cents is k+1 cents however seat-days / days divides (billing-rules 2, 6.12)."""
    days, seat_days, unit_price, k = tie
    result = price_seat_days(seat_days=seat_days, days_in_month=days, service_days=days, committed=0,
                             unit_price=unit_price, overage_price=None, currency="USD")
    assert result.subtotal == Decimal(k + 1).scaleb(-2)

"""invoicing.pricing beyond seat_days: tiers, first months, per_asset prorations, cmq (billing-rules 2, 3.4-3.9,
6.9, 6.12, 6.13). Pure: no database.

The tier tests check the implementation against a brute force that prices one unit at a time straight
from billing-rules 3.9, 6.9 (an `UP_TO` bound is inclusive). Every Decimal is built from a string or an integer.
"""

from __future__ import annotations

import calendar
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.money import quantize_money
from conftest import examples
from invoicing.pricing import (
    DAY_FRACTION,
    ROUNDED_DAILY_RATE,
    cmq_variable_quantity,
    first_month_amount,
    proration_amount,
    tiered_amount,
    volume_unit_price,
)
from partners.tiers import GRADUATED, VOLUME, Tier, parse_tiers

FAST = settings(max_examples=examples(300), deadline=None, database=None)
CENT = Decimal("0.01")


def cents(n: int) -> Decimal:
    """A price of n cents, written as a string (never a float)."""
    sign = "-" if n < 0 else ""
    return Decimal(f"{sign}{abs(n) // 100}.{abs(n) % 100:02d}")


prices = st.one_of(
    st.integers(0, 100_000).map(cents),
    st.decimals(min_value=Decimal("0"), max_value=Decimal("1000"), places=4, allow_nan=False,
                allow_infinity=False),
)
signed_prices = st.integers(-100_000, 100_000).map(cents)
quantities = st.integers(0, 300).map(Decimal)
days = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))
modes = st.sampled_from([VOLUME, GRADUATED])


@st.composite
def tier_schedules(draw) -> tuple[Tier, ...]:
    """Ascending whole bounds, then inf; prices in any order (usually falling, sometimes not)."""
    bounds = sorted(draw(st.sets(st.integers(1, 120), max_size=5)))
    tier_prices = draw(st.lists(prices, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    return tuple(Tier(bound, price) for bound, price in zip([*bounds, None], tier_prices, strict=True))


def tier_of(unit: int, tiers) -> Tier:
    """The tier containing a unit, read straight from the rule: the first whose bound is at least it."""
    return next(t for t in tiers if t.up_to is None or unit <= t.up_to)


def brute_force(quantity: int, tiers, mode: str) -> Decimal:
    if mode == GRADUATED:  # each unit u = 1..q at the price of the tier containing u
        return sum((tier_of(u, tiers).price for u in range(1, quantity + 1)), Decimal("0"))
    # volume: every unit at the price of the tier containing the total
    return quantity * tier_of(quantity, tiers).price if quantity else Decimal("0")


def month_days(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


# --- tiers (billing-rules 3.9, 6.9) ----------------------------------------------------------------------------------
@FAST
@given(quantities, prices, tier_schedules(), modes)
def test_tiered_amount_matches_unit_by_unit_brute_force(quantity, unit_price, tiers, mode):
    """billing-rules 3.9, 6.9: graduated = the sum over units 1..q of the price of each unit's tier; volume =
    q x the price of the tier containing q; bounds inclusive. unit_price is unused when tiers are given."""
    assert tiered_amount(quantity, unit_price=unit_price, tiers=tiers, mode=mode) == brute_force(
        int(quantity), tiers, mode)


@FAST
@given(quantities, prices, tier_schedules())
def test_volume_unit_price_is_the_price_of_the_tier_holding_the_total(quantity, unit_price, tiers):
    if quantity:
        assert volume_unit_price(quantity, unit_price=unit_price, tiers=tiers) == tier_of(int(quantity), tiers).price
    assert volume_unit_price(quantity, unit_price=unit_price) == unit_price


@FAST
@given(quantities, prices, tier_schedules(), modes)
def test_tiered_amounts_are_never_negative(quantity, unit_price, tiers, mode):
    assert tiered_amount(quantity, unit_price=unit_price, tiers=tiers, mode=mode) >= 0
    assert tiered_amount(quantity, unit_price=unit_price) >= 0


@FAST
@given(quantities, st.integers(1, 50), prices, tier_schedules())
def test_graduated_and_untiered_amounts_are_monotone_in_quantity(quantity, more, unit_price, tiers):
    """More units never cost less, with graduated tiers or none (each tier's price applies only to its own
    units, so adding units only adds non-negative terms)."""
    larger = quantity + more
    assert tiered_amount(larger, unit_price=unit_price, tiers=tiers, mode=GRADUATED) >= tiered_amount(
        quantity, unit_price=unit_price, tiers=tiers, mode=GRADUATED)
    assert tiered_amount(larger, unit_price=unit_price) >= tiered_amount(quantity, unit_price=unit_price)


@FAST
@given(quantities, st.integers(1, 50), tier_schedules())
def test_volume_amount_is_monotone_when_tier_prices_do_not_fall(quantity, more, tiers):
    """Volume pricing with non-decreasing tier prices never charges less for more units."""
    rising = tuple(Tier(t.up_to, p) for t, p in zip(tiers, sorted(t.price for t in tiers), strict=True))
    assert tiered_amount(quantity + more, unit_price=CENT, tiers=rising, mode=VOLUME) >= tiered_amount(
        quantity, unit_price=CENT, tiers=rising, mode=VOLUME)


def test_volume_tiers_charge_every_unit_at_the_tier_the_total_reaches():
    """billing-rules 3.9, 6.9 taken literally: with falling prices volume pricing has a cliff at each bound, so it is
    not monotone (10 units at 5.00 = 50.00, 11 units at 1.00 = 11.00). Graduated has no cliff."""
    tiers = parse_tiers("10:5.00;inf:1.00")
    amount = {q: tiered_amount(Decimal(q), unit_price=Decimal("9.99"), tiers=tiers, mode=VOLUME) for q in (10, 11)}
    assert amount == {10: Decimal("50.00"), 11: Decimal("11.00")}
    graduated = {q: tiered_amount(Decimal(q), unit_price=Decimal("9.99"), tiers=tiers, mode=GRADUATED)
                 for q in (10, 11)}
    assert graduated == {10: Decimal("50.00"), 11: Decimal("51.00")}


@pytest.mark.parametrize(("quantity", "volume", "graduated"), [
    # 10:3.00;25:2.50;inf:2.00
    (0, "0", "0"),
    (1, "3.00", "3.00"),
    (10, "30.00", "30.00"),       # the bound is inclusive: unit 10 is still in the first tier
    (11, "27.50", "32.50"),       # volume 11 x 2.50; graduated 30.00 + 2.50
    (25, "62.50", "67.50"),       # 30.00 + 15 x 2.50
    (26, "52.00", "69.50"),       # volume 26 x 2.00; graduated 67.50 + 2.00
    (100, "200.00", "217.50"),    # 67.50 + 75 x 2.00
])
def test_tier_examples(quantity, volume, graduated):
    """billing-rules 3.9, 6.9 worked by hand."""
    tiers = parse_tiers("10:3.00;25:2.50;inf:2.00")
    assert tiered_amount(Decimal(quantity), unit_price=Decimal("9"), tiers=tiers) == Decimal(volume)  # volume default
    assert tiered_amount(Decimal(quantity), unit_price=Decimal("9"), tiers=tiers, mode=GRADUATED) == Decimal(graduated)


def test_tiered_amount_refuses_negative_quantities_and_unknown_modes():
    tiers = parse_tiers("10:3;inf:2")
    with pytest.raises(ValueError):
        tiered_amount(Decimal("-1"), unit_price=Decimal("1"))
    with pytest.raises(ValueError):
        tiered_amount(Decimal("5"), unit_price=Decimal("1"), tiers=tiers, mode="stairstep")


# --- first months (billing-rules 3.8, 6.13) ---------------------------------------------------------------------------
def test_first_month_example_from_10_march():
    """billing-rules 3.8: 10 hosts at 15.00 from 10 March (31 days). rounded_daily_rate: round(150.00 / 31, 2) = 4.84,
    x (31 - 10) = 21 days = 101.64. day_fraction: 150.00 x 22 / 31 (the 10th through the 31st) = 106.4516..
    -> 106.45."""
    monthly = 10 * Decimal("15.00")
    start = date(2026, 3, 10)
    assert first_month_amount(monthly, start=start, convention=ROUNDED_DAILY_RATE, currency="USD") == Decimal("101.64")
    assert first_month_amount(monthly, start=start, convention=DAY_FRACTION, currency="USD") == Decimal("106.45")


@FAST
@given(prices, days)
def test_day_fraction_from_the_1st_is_the_whole_month_rounded(monthly, day):
    """billing-rules 3.8: day_fraction counts the start date, so a start on the 1st charges the monthly amount."""
    start = day.replace(day=1)
    assert first_month_amount(monthly, start=start, convention=DAY_FRACTION, currency="USD") == quantize_money(
        monthly, "USD")


@FAST
@given(prices, days, st.sampled_from([DAY_FRACTION, ROUNDED_DAILY_RATE]))
def test_first_month_amounts_are_never_negative_and_rounded_to_the_cent(monthly, start, convention):
    amount = first_month_amount(monthly, start=start, convention=convention, currency="USD")
    assert amount >= 0
    assert amount == amount.quantize(CENT)


@FAST
@given(prices, days)
def test_first_month_conventions_match_their_formulas(monthly, start):
    """billing-rules 3.8, 6.13: day_fraction includes the start date and rounds once; rounded_daily_rate rounds the
    daily rate first and charges the days after the start date."""
    n = month_days(start)
    exact = monthly * (n - start.day + 1) / n
    assert first_month_amount(monthly, start=start, convention=DAY_FRACTION, currency="USD") == exact.quantize(
        CENT, rounding=ROUND_HALF_UP)
    rate = (monthly / n).quantize(CENT, rounding=ROUND_HALF_UP)
    assert first_month_amount(monthly, start=start, convention=ROUNDED_DAILY_RATE, currency="USD") == rate * (
        n - start.day)
    # day_fraction never charges more than the whole month
    assert first_month_amount(monthly, start=start, convention=DAY_FRACTION, currency="USD") <= quantize_money(
        monthly, "USD")


def test_first_month_rounds_to_the_currency_minor_unit():
    """billing-rules 2: JPY has no minor unit. 1000 a month from 10 March: 1000 x 22 / 31 = 709.67.. -> 710;
    round(1000 / 31) = 32 x 21 = 672."""
    start = date(2026, 3, 10)
    assert first_month_amount(Decimal("1000"), start=start, convention=DAY_FRACTION, currency="JPY") == Decimal("710")
    assert first_month_amount(Decimal("1000"), start=start, convention=ROUNDED_DAILY_RATE,
                              currency="JPY") == Decimal("672")


def test_first_month_refuses_an_unknown_convention():
    with pytest.raises(ValueError):
        first_month_amount(Decimal("10"), start=date(2026, 3, 10), convention="monthly", currency="USD")


# --- per_asset prorations (billing-rules 3.7, 6.6, 6.12) --------------------------------------------------------------
@FAST
@given(prices, prices, days)
def test_proration_sign_follows_the_change(before, after, effective):
    """billing-rules 3.7: increments and decrements alike: the amount has the sign of the change (or is 0.00)."""
    amount = proration_amount(before, after, effective=effective, currency="USD")
    if after > before:
        assert amount >= 0
    elif after < before:
        assert amount <= 0
    else:
        assert amount == 0
    assert amount == amount.quantize(CENT)
    assert str(amount) != "-0.00"


@FAST
@given(signed_prices, signed_prices, days)
def test_proration_is_symmetric_half_away_from_zero(before, after, effective):
    """billing-rules 6.12: rounding half away from zero makes undoing a change cost exactly minus the change."""
    assert proration_amount(after, before, effective=effective, currency="USD") == -proration_amount(
        before, after, effective=effective, currency="USD")


@FAST
@given(prices, prices, days)
def test_proration_matches_its_formula(before, after, effective):
    """billing-rules 3.7: (new - old) x (days from d through month end, inclusive) / days in month, rounded once."""
    n = month_days(effective)
    exact = (after - before) * (n - effective.day + 1) / n
    amount = proration_amount(before, after, effective=effective, currency="USD")
    assert amount == exact.quantize(CENT, rounding=ROUND_HALF_UP)


@FAST
@given(prices, prices, days)
def test_proration_on_the_1st_is_the_whole_monthly_difference(before, after, day):
    """billing-rules 3.7: a change effective on a month's 1st covers every day of it."""
    first = day.replace(day=1)
    assert proration_amount(before, after, effective=first, currency="USD") == quantize_money(after - before, "USD")


@pytest.mark.parametrize(("before", "after", "expected"), [
    ("1.00", "0.75", "-0.13"),   # -0.25 x 15 / 30 = -0.125 exactly: half away from zero
    ("0.75", "1.00", "0.13"),    # +0.125 -> 0.13
    ("7.00", "7.00", "0.00"),
    ("21.00", "14.00", "-3.50"),  # one agent of 7.00 less for 15 of 30 days
])
def test_proration_half_cent_examples(before, after, expected):
    """billing-rules 6.12: a change effective 16 April (15 of 30 days) that gives exactly -0.125 rounds to -0.13."""
    amount = proration_amount(Decimal(before), Decimal(after), effective=date(2026, 4, 16), currency="USD")
    assert amount == Decimal(expected)
    assert str(amount) == expected


# --- cmq (billing-rules 3.5) ------------------------------------------------------------------------------------------
@FAST
@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_cmq_variable_quantity_is_the_peak_above_the_commitment(peak, committed):
    """billing-rules 3.5: max(0, peak - committed): never negative, never more than the peak."""
    quantity = cmq_variable_quantity(peak, committed)
    assert 0 <= quantity <= peak
    assert quantity == (peak - committed if peak > committed else 0)


@pytest.mark.parametrize(("peak", "committed", "expected"), [(0, 10, 0), (10, 10, 0), (11, 10, 1), (25, 0, 25)])
def test_cmq_examples(peak, committed, expected):
    assert cmq_variable_quantity(peak, committed) == expected

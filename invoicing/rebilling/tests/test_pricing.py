"""Resale pricing (billing-rules 12.2), pure: worked examples, then properties of every mode against a plain
reference (a sum over units) under Hypothesis. No database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from billing.core.money import quantize_money
from conftest import examples
from invoicing.pricing import tiered_amount
from invoicing.rebilling.pricing import (
    DEFAULT,
    MARKUP,
    PACKAGE,
    TIERS,
    UNIT,
    ResalePricingError,
    ResaleTerms,
    exact_amount,
    margin_per_unit,
    mode_of,
    package_words,
    resale_amount,
    shown_unit_price,
    terms_errors,
)
from partners.tiers import GRADUATED, VOLUME, parse_tiers

D = Decimal


def unit(price):
    return ResaleTerms(mode=UNIT, unit_price=D(price))


def markup(percent):
    return ResaleTerms(mode=MARKUP, markup_percent=D(percent))


def package(units, price, each):
    return ResaleTerms(mode=PACKAGE, package_units=units, package_price=D(price), unit_price=D(each))


def tiers(text, mode=VOLUME):
    return ResaleTerms.of(mode=TIERS, tiers=text, tier_mode=mode)


# --- worked examples (docs/rebilling.md, billing-rules 12.2) ---------------------------------------------------
@pytest.mark.parametrize(("quantity", "amount"), [
    ("0", "150.00"), ("4.5", "150.00"), ("5", "150.00"), ("6.25", "190.00"), ("8", "246.00"), ("13", "406.00"),
])
def test_a_flat_package_of_five_for_150_then_32_each(quantity, amount):
    assert resale_amount(package(5, "150.00", "32.00"), D(quantity), currency="USD") == D(amount)


def test_up_to_ten_users_for_150_then_12_each_as_the_rules_say():
    terms = package(10, "150.00", "12.00")
    assert resale_amount(terms, D(8), currency="USD") == D("150.00")
    assert resale_amount(terms, D(13), currency="USD") == D("186.00")
    assert shown_unit_price(terms, D(13)) is None  # no one price for every unit


def test_a_package_line_names_the_package_since_it_shows_no_unit_price():
    assert package_words(package(10, "150", "12.0000"), "USD") == "up to 10 for 150.00, then 12.00 each"
    assert package_words(package(5, "150.00", "0"), "USD") == "up to 5 for 150.00, nothing more above"
    assert package_words(package(5, "99.5", "1.2345"), "EUR") == "up to 5 for 99.50, then 1.2345 each"


def test_a_markup_of_twenty_percent_on_the_retainer():
    assert resale_amount(markup("20"), D(1), currency="USD", our_unit_price=D("450.00")) == D("540.00")
    assert margin_per_unit(markup("20"), D("450.00")) == D("90.0000")


def test_a_markup_is_rounded_once_from_the_exact_amount():
    """7 x 2.99 x 1.125 = 23.54625 -> 23.55; the line shows 3.3638 a license, and 7 x 3.3638 = 23.5466 would
    round the same here but is never used."""
    terms = markup("12.5")
    assert exact_amount(terms, D(7), our_unit_price=D("2.99")) == D("23.54625")
    assert resale_amount(terms, D(7), currency="USD", our_unit_price=D("2.99")) == D("23.55")
    assert shown_unit_price(terms, D(7), our_unit_price=D("2.99")) == D("3.3638")


def test_a_markup_needs_our_price():
    with pytest.raises(ResalePricingError):
        resale_amount(markup("10"), D(1), currency="USD")


def test_a_unit_price_per_seat_month_and_its_margin():
    assert resale_amount(unit("35.00"), D("4.5"), currency="USD") == D("157.50")
    assert resale_amount(unit("35.00"), D("7.6774"), currency="USD") == D("268.71")  # 268.709
    assert margin_per_unit(unit("35.00"), D("24.00")) == D("11.00")
    assert margin_per_unit(unit("35.00"), None) is None  # tiers of ours, or an own item
    assert margin_per_unit(package(5, "150", "32"), D("24")) is None


def test_tiers_price_as_our_own_tiers():
    """billing-rules 3.9: 12 units of 10:5.00;50:4.00;inf:3.00 cost 48.00 by volume, 58.00 graduated."""
    assert resale_amount(tiers("10:5.00;50:4.00;inf:3.00"), D(12), currency="USD") == D("48.00")
    assert resale_amount(tiers("10:5.00;50:4.00;inf:3.00", GRADUATED), D(12), currency="USD") == D("58.00")
    assert shown_unit_price(tiers("10:5.00;50:4.00;inf:3.00"), D(12)) == D("4.00")
    assert shown_unit_price(tiers("10:5.00;50:4.00;inf:3.00", GRADUATED), D(12)) is None


def test_the_currencys_minor_unit_is_the_rounding():
    assert resale_amount(unit("0.3333"), D(10), currency="JPY") == D("3")
    assert resale_amount(unit("0.1235"), D(1), currency="BHD") == D("0.124")


def test_a_default_row_and_a_negative_quantity_price_nothing():
    with pytest.raises(ResalePricingError):
        resale_amount(ResaleTerms(mode=DEFAULT), D(1), currency="USD")
    with pytest.raises(ResalePricingError):
        resale_amount(unit("1"), D(-1), currency="USD")


# --- the rules of the fields -----------------------------------------------------------------------------------
def fields(**given):
    return {"unit_price": None, "markup_percent": None, "package_units": None, "package_price": None, "tiers": "",
            "tier_mode": VOLUME, **given}


@pytest.mark.parametrize(("given", "mode"), [
    ({"unit_price": D(1)}, UNIT),
    ({"package_units": 5, "package_price": D(1), "unit_price": D(2)}, PACKAGE),
    ({"package_units": 5}, PACKAGE),  # then package_price and unit_price are required
    ({"markup_percent": D(10)}, MARKUP),
    ({"tiers": "inf:1"}, TIERS),
    ({}, DEFAULT),
    ({"unit_price": D(1), "markup_percent": D(10)}, None),
    ({"tiers": "inf:1", "package_price": D(1)}, None),
])
def test_the_mode_of_an_import_row_is_the_columns_it_fills(given, mode):
    assert mode_of(fields(**given)) == mode


@pytest.mark.parametrize(("mode", "given", "for_customer", "for_service", "errors"), [
    (UNIT, {"unit_price": D("1.5")}, False, True, {}),
    (UNIT, {}, False, True, {"unit_price": "is required: the price of one unit"}),
    (UNIT, {"unit_price": D(1), "tiers": "inf:1"}, False, True, {"tiers": "not used by a unit price: leave it blank"}),
    (UNIT, {"unit_price": D("1.00001")}, False, True, {"unit_price": "at most 4 decimal places"}),
    (UNIT, {"unit_price": D("-1")}, False, True, {"unit_price": "must not be negative"}),
    (UNIT, {"unit_price": D("1E+10")}, False, True,
     {"unit_price": "too large: at most 10 digits before the decimal point"}),
    (UNIT, {"unit_price": D(1), "tier_mode": GRADUATED}, False, True,
     {"tier_mode": "not used by a unit price: leave it blank"}),
    (MARKUP, {"markup_percent": D("12.5")}, False, True, {}),
    (MARKUP, {"markup_percent": D("12.5")}, False, False,
     {"markup_percent": "a markup is on our price: your own items have none (give a unit_price)"}),
    (MARKUP, {"markup_percent": D("12.3456")}, False, True, {"markup_percent": "at most 3 decimal places"}),
    (MARKUP, {"markup_percent": D("10000")}, False, True, {"markup_percent": "at most 9999.999%"}),
    (PACKAGE, {"package_units": 10, "package_price": D(150), "unit_price": D(0)}, False, True, {}),
    (PACKAGE, {"package_units": 0, "package_price": D(150), "unit_price": D(0)}, False, True,
     {"package_units": "must be at least 1"}),
    (PACKAGE, {"package_units": 10}, False, True,
     {"package_price": "is required: the price of the package",
      "unit_price": "is required: the price of each unit above the package (0 for none)"}),
    (TIERS, {"tiers": "10:5;inf:4", "tier_mode": GRADUATED}, True, False, {}),
    (TIERS, {"tiers": "10:5;5:4"}, False, True, {"tiers": "tier bounds must be ascending, with inf last"}),
    (DEFAULT, {}, True, True, {}),
    (DEFAULT, {}, False, True,
     {"unit_price": "give a price: unit_price, markup_percent, package_units with package_price, or tiers"}),
])
def test_each_mode_needs_its_fields_and_no_other(mode, given, for_customer, for_service, errors):
    assert terms_errors(fields(**given), mode=mode, for_customer=for_customer, for_service=for_service) == errors


# --- properties ----------------------------------------------------------------------------------------------
prices = st.decimals(min_value=0, max_value=10_000, places=4, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=0, max_value=100_000, places=4, allow_nan=False, allow_infinity=False)
whole = st.integers(min_value=0, max_value=300)
percents = st.decimals(min_value=0, max_value=500, places=3, allow_nan=False, allow_infinity=False)
currencies = st.sampled_from(["USD", "EUR", "JPY", "BHD"])


@st.composite
def schedules(draw):
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=200), max_size=4)))
    parts = [f"{b}:{draw(prices)}" for b in bounds] + [f"inf:{draw(prices)}"]
    return ";".join(parts)


def reference(terms: ResaleTerms, units: int, our: Decimal | None = None) -> Decimal:
    """The amount of a whole number of units, unit by unit: what each unit costs, added up (exact)."""
    total = D(0)
    for n in range(1, units + 1):
        if terms.mode == UNIT:
            total += terms.unit_price
        elif terms.mode == MARKUP:
            total += our + our * terms.markup_percent / 100
        elif terms.mode == PACKAGE:
            total += terms.unit_price if n > terms.package_units else 0
        elif terms.tier_mode == GRADUATED:
            total += next(t.price for t in terms.tiers if t.up_to is None or n <= t.up_to)
    if terms.mode == PACKAGE:
        total += terms.package_price
    if terms.mode == TIERS and terms.tier_mode == VOLUME and units:
        total = units * next(t.price for t in terms.tiers if t.up_to is None or units <= t.up_to)
    return total


@hsettings(max_examples=examples(200))
@given(price=prices, units=whole, currency=currencies)
def test_a_unit_price_is_every_unit_at_that_price(price, units, currency):
    assert resale_amount(unit(price), D(units), currency=currency) == quantize_money(
        reference(unit(price), units), currency)


@hsettings(max_examples=examples(200))
@given(percent=percents, our=prices, units=whole, currency=currencies)
def test_a_markup_is_every_unit_at_our_price_plus_the_percentage(percent, our, units, currency):
    terms = markup(percent)
    amount = resale_amount(terms, D(units), currency=currency, our_unit_price=our)
    assert amount == quantize_money(reference(terms, units, our), currency)
    assert amount >= quantize_money(D(units) * our, currency)  # never below our own price


@hsettings(max_examples=examples(200))
@given(size=st.integers(min_value=1, max_value=100), fixed=prices, each=prices, units=whole, currency=currencies)
def test_a_package_is_its_price_then_each_unit_above(size, fixed, each, units, currency):
    terms = package(size, fixed, each)
    amount = resale_amount(terms, D(units), currency=currency)
    assert amount == quantize_money(reference(terms, units), currency)
    if units <= size:
        assert amount == quantize_money(fixed, currency)


@hsettings(max_examples=examples(200))
@given(text=schedules(), mode=st.sampled_from([VOLUME, GRADUATED]), units=whole, currency=currencies)
def test_tiers_are_each_unit_at_its_tier_or_all_at_the_tier_reached(text, mode, units, currency):
    terms = tiers(text, mode)
    amount = resale_amount(terms, D(units), currency=currency)
    assert amount == quantize_money(reference(terms, units), currency)
    # the same as our own tiers price the same schedule (invoicing.pricing, billing-rules 3.9)
    assert amount == quantize_money(tiered_amount(D(units), unit_price=D(0), tiers=parse_tiers(text), mode=mode),
                                    currency)


@hsettings(max_examples=examples(200))
@given(data=st.data(), quantity=quantities, more=quantities, currency=currencies)
def test_an_amount_is_rounded_once_and_never_falls_as_the_quantity_grows(data, quantity, more, currency):
    """Every mode but volume tiers (where a higher tier can cost less in all) charges at least as much for more
    units; the amount is the exact amount rounded once to the currency's places."""
    terms = data.draw(st.one_of(
        prices.map(unit), percents.map(markup),
        st.builds(package, st.integers(min_value=1, max_value=1000), prices, prices),
        schedules().map(lambda text: tiers(text, GRADUATED)),
    ))
    our = data.draw(prices)
    low = resale_amount(terms, quantity, currency=currency, our_unit_price=our)
    high = resale_amount(terms, quantity + more, currency=currency, our_unit_price=our)
    assert low <= high
    exact = exact_amount(terms, quantity, our_unit_price=our)
    assert low == quantize_money(exact, currency)
    assert abs(low - exact) <= D("0.5") * D(1).scaleb(-{"JPY": 0, "BHD": 3}.get(currency, 2))

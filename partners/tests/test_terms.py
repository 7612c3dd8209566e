"""Terms with effective dates, the pure rule (billing-rules 3.11): partners.terms.pieces_changed."""

from datetime import date
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partners.terms import (
    Piece,
    TermsDateError,
    check_effective,
    default_effective,
    pieces_changed,
    value_on,
)

START = {"host_limit": 10, "unit_price": "15.00"}


def test_a_change_holds_from_its_date_and_what_was_before_stays():
    pieces = pieces_changed([Piece(None, START)], effective=date(2026, 4, 25), changes={"host_limit": 25})
    assert pieces == [Piece(date(2026, 4, 24), START), Piece(None, {**START, "host_limit": 25})]
    assert value_on(pieces, date(2026, 4, 1))["host_limit"] == 10
    assert value_on(pieces, date(2026, 4, 25))["host_limit"] == 25


def test_a_back_dated_change_keeps_a_later_change_of_another_field():
    pieces = pieces_changed([Piece(None, START)], effective=date(2026, 6, 1), changes={"unit_price": "12.00"})
    pieces = pieces_changed(pieces, effective=date(2026, 5, 10), changes={"host_limit": 30})
    assert value_on(pieces, date(2026, 5, 9)) == START
    assert value_on(pieces, date(2026, 5, 10)) == {"host_limit": 30, "unit_price": "15.00"}
    assert value_on(pieces, date(2026, 6, 1)) == {"host_limit": 30, "unit_price": "12.00"}


def test_a_change_from_the_start_leaves_no_version():
    assert pieces_changed([Piece(None, START)], effective=date.min, changes={"host_limit": 3}) == [
        Piece(None, {**START, "host_limit": 3})]


def test_a_change_back_to_what_was_joins_the_pieces():
    pieces = pieces_changed([Piece(None, START)], effective=date(2026, 4, 25), changes={"host_limit": 25})
    assert pieces_changed(pieces, effective=date(2026, 4, 25), changes={"host_limit": 10}) == [Piece(None, START)]


def test_a_price_change_takes_effect_on_a_first():
    check_effective({"host_limit": 3}, date(2026, 4, 25))
    check_effective({"unit_price": "1"}, date(2026, 5, 1))
    with pytest.raises(TermsDateError, match="unit price takes effect on a month's 1st, not 2026-04-25"):
        check_effective({"unit_price": "1"}, date(2026, 4, 25))


@pytest.mark.parametrize(("fields", "today", "expected"), [
    ({"host_limit"}, date(2026, 4, 25), date(2026, 4, 25)),
    ({"unit_price"}, date(2026, 4, 25), date(2026, 5, 1)),
    ({"unit_price"}, date(2026, 12, 7), date(2027, 1, 1)),
    ({"tiers", "host_limit"}, date(2026, 4, 1), date(2026, 4, 1)),
])
def test_a_change_made_by_hand_takes_effect_the_day_it_is_made_and_a_price_the_next_first(fields, today, expected):
    assert default_effective(fields, today) == expected


days = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))
changes = st.lists(st.tuples(st.one_of(st.just(date.min), days),
                             st.dictionaries(st.sampled_from(["host_limit", "unit_price"]), st.integers(0, 4),
                                             min_size=1)), max_size=8)


@given(changes, days)
def test_the_terms_on_any_day_are_those_of_the_last_change_made_that_covers_it(history, day):
    """Each change sets its fields from its date on, over what earlier changes said; the days before stay."""
    pieces = [Piece(None, {"host_limit": 0, "unit_price": 0})]
    for effective, change in history:
        pieces = pieces_changed(pieces, effective=effective, changes=change)
    expected = {"host_limit": 0, "unit_price": 0}
    for effective, change in history:
        if effective <= day:
            expected.update(change)
    assert value_on(pieces, day) == expected
    # pieces go forward, end with the open one, and two touching pieces never say the same
    assert pieces[-1].until is None and all(a.until < b.until for a, b in pairwise(pieces[:-1]))
    assert all(a.values != b.values for a, b in pairwise(pieces))

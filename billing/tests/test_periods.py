"""billing.periods: UTC months, dates and instants (billing-rules 1, 3.1, 6.2). Pure: no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.periods import (
    Period,
    PeriodError,
    days_inclusive,
    format_instant,
    next_month_start,
    parse_date,
    parse_instant,
    periods_between,
    utc_date,
)
from conftest import examples

FAST = settings(max_examples=examples(200), deadline=None, database=None)

periods = st.builds(Period, st.integers(1900, 2200), st.integers(1, 12))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
aware_instants = st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2150, 12, 31), timezones=offsets)


# --- Period ------------------------------------------------------------------------------------

def test_period_parse_and_name():
    """A period is named YYYY-MM (billing-rules 1)."""
    april = Period.parse("2026-04")
    assert april == Period(2026, 4)
    assert str(april) == "2026-04"
    assert Period.parse(" 2026-12 ") == Period(2026, 12)
    assert str(Period(987, 1)) == "0987-01"


@pytest.mark.parametrize("text", ["2026-4", "2026-13", "2026-00", "26-04", "2026/04", "", "2026-04-01", "0000-01",
                                  "April 2026"])
def test_period_parse_refuses_other_shapes(text):
    """Only YYYY-MM with a real month is a period (billing-rules 1)."""
    with pytest.raises(PeriodError):
        Period.parse(text)


@pytest.mark.parametrize(
    ("year", "month", "days"),
    [(2026, 1, 31), (2026, 2, 28), (2024, 2, 29), (2000, 2, 29), (1900, 2, 28), (2100, 2, 28), (2026, 4, 30),
     (2026, 5, 31), (2026, 12, 31)],
)
def test_period_days_know_leap_years(year, month, days):
    """Days in a month, leap years included (every proration divides by it) (billing-rules 1, 3.1)."""
    period = Period(year, month)
    assert period.days == days
    assert period.last == date(year, month, days)
    assert len(list(period.dates())) == days


def test_period_bounds_are_utc_instants():
    """A period runs from the 1st at 00:00 UTC to the next 1st, exclusive (billing-rules 1)."""
    december = Period(2026, 12)
    assert december.first == date(2026, 12, 1)
    assert december.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert december.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert december.start.utcoffset() == timedelta(0)


def test_period_next_and_previous_cross_years():
    """December is followed by January of the next year (billing-rules 1)."""
    assert Period(2026, 12).next() == Period(2027, 1)
    assert Period(2027, 1).previous() == Period(2026, 12)
    assert Period(2026, 4).next() == Period(2026, 5)
    assert Period(2026, 5).previous() == Period(2026, 4)


def test_period_order_and_membership():
    """Periods sort by time and know their dates (billing-rules 1)."""
    assert Period(2026, 4) < Period(2026, 5) < Period(2027, 1)
    assert Period.of(date(2026, 4, 30)) == Period(2026, 4)
    assert Period(2026, 4).contains(date(2026, 4, 30))
    assert not Period(2026, 4).contains(date(2026, 5, 1))
    assert not Period(2026, 4).contains(date(2026, 3, 31))


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (None, None, 30),
        (date(2026, 4, 16), None, 15),
        (None, date(2026, 4, 10), 10),
        (date(2026, 4, 10), date(2026, 4, 20), 11),
        (date(2026, 4, 10), date(2026, 4, 10), 1),
        (date(2026, 3, 15), date(2026, 5, 15), 30),
        (date(2026, 5, 1), None, 0),
        (None, date(2026, 3, 31), 0),
        (date(2026, 4, 20), date(2026, 4, 10), 0),
    ],
)
def test_days_within_counts_service_days_inclusive(start, end, days):
    """Days of the month inside an inclusive start..end: the minimum's proration (billing-rules 3.1)."""
    assert Period(2026, 4).days_within(start, end) == days


def test_days_inclusive():
    """Both ends count; an empty range is 0, never negative (billing-rules 3.1)."""
    assert days_inclusive(date(2026, 4, 1), date(2026, 4, 1)) == 1
    assert days_inclusive(date(2026, 4, 1), date(2026, 4, 30)) == 30
    assert days_inclusive(date(2026, 2, 1), date(2026, 3, 1)) == 29
    assert days_inclusive(date(2026, 4, 2), date(2026, 4, 1)) == 0


def test_periods_between_is_inclusive():
    """Every month from first through last (billing-rules 1)."""
    assert list(periods_between(Period(2025, 11), Period(2026, 2))) == [
        Period(2025, 11), Period(2025, 12), Period(2026, 1), Period(2026, 2),
    ]
    assert list(periods_between(Period(2026, 4), Period(2026, 4))) == [Period(2026, 4)]
    assert list(periods_between(Period(2026, 5), Period(2026, 4))) == []


# --- dates and instants ------------------------------------------------------------------------

def test_parse_date_reads_utc_dates():
    """Dates in files are YYYY-MM-DD (billing-rules 1)."""
    assert parse_date("2026-04-30") == date(2026, 4, 30)
    assert parse_date(" 2024-02-29 ") == date(2024, 2, 29)


@pytest.mark.parametrize("text", ["2026-02-29", "2026-4-1", "01/04/2026", "2026-04-31", "2026-04-01T00:00:00Z",
                                  "20260401", ""])
def test_parse_date_refuses_other_shapes(text):
    """A bad date is a row error (billing-rules 1, 9.2)."""
    with pytest.raises(PeriodError):
        parse_date(text)


@pytest.mark.parametrize("text", ["2026-05-01T00:00:00", "2026-05-01 09:00", "2026-05-01", "2026-05-01T09:00:00.5"])
def test_parse_instant_refuses_naive_instants(text):
    """An instant without Z or an offset is a row error, never guessed (billing-rules 1)."""
    with pytest.raises(PeriodError, match="no time zone"):
        parse_instant(text)


@pytest.mark.parametrize("text", ["yesterday", "2026-05-01T25:00:00Z", "2026-13-01T00:00:00Z", ""])
def test_parse_instant_refuses_garbage(text):
    """Unreadable instants are row errors (billing-rules 1)."""
    with pytest.raises(PeriodError):
        parse_instant(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-01T00:00:00Z", datetime(2026, 5, 1, 0, 0, tzinfo=UTC)),
        ("2026-05-01T00:00:00z", datetime(2026, 5, 1, 0, 0, tzinfo=UTC)),
        ("2026-04-30T23:30:00-02:00", datetime(2026, 5, 1, 1, 30, tzinfo=UTC)),
        ("2026-05-01T01:30:00+02:00", datetime(2026, 4, 30, 23, 30, tzinfo=UTC)),
        ("2026-05-01T09:15:00+00:00", datetime(2026, 5, 1, 9, 15, tzinfo=UTC)),
    ],
)
def test_parse_instant_accepts_z_and_offsets_and_returns_utc(text, expected):
    """Instants are ISO 8601 with Z or an offset, stored in UTC (billing-rules 1)."""
    value = parse_instant(text)
    assert value == expected
    assert value.tzinfo == UTC
    assert value.utcoffset() == timedelta(0)


def test_offset_instant_falls_on_its_utc_date():
    """2026-04-30T23:30-02:00 is 1 May in UTC: dates are UTC dates (billing-rules 1, 3.1)."""
    assert utc_date(parse_instant("2026-04-30T23:30:00-02:00")) == date(2026, 5, 1)
    assert utc_date(parse_instant("2026-05-01T01:30:00+02:00")) == date(2026, 4, 30)


def test_utc_date_refuses_naive_datetimes():
    """Every instant carries a time zone (billing-rules 1)."""
    with pytest.raises(PeriodError):
        utc_date(datetime(2026, 5, 1, 12, 0))


@pytest.mark.parametrize(
    ("instant", "effective"),
    [
        ("2026-05-01T00:00:00Z", date(2026, 6, 1)),
        ("2026-04-30T23:59:59Z", date(2026, 5, 1)),
        ("2026-04-20T16:00:00Z", date(2026, 5, 1)),
        ("2026-12-15T10:00:00Z", date(2027, 1, 1)),
        ("2026-04-30T23:30:00-02:00", date(2026, 6, 1)),
        ("2026-05-01T01:00:00+02:00", date(2026, 5, 1)),
    ],
)
def test_next_month_start(instant, effective):
    """A seat purchase takes effect at the next UTC month boundary; one at 00:00 on a 1st counts
    from the following month (billing-rules 3.1, 3.2, 6.2)."""
    assert next_month_start(parse_instant(instant)) == effective


def test_next_month_start_refuses_naive_instants():
    """A purchase instant must carry a time zone (billing-rules 1)."""
    with pytest.raises(PeriodError):
        next_month_start(datetime(2026, 5, 1))


# --- properties --------------------------------------------------------------------------------

@FAST
@given(periods)
def test_next_and_previous_round_trip(period):
    """Stepping a month forward then back returns the same period (billing-rules 1)."""
    assert period.next().previous() == period
    assert period.previous().next() == period
    assert period < period.next()
    assert period.next().first == period.last + timedelta(days=1)
    assert Period.parse(str(period)) == period


@FAST
@given(periods)
def test_period_days_match_its_utc_span(period):
    """A period's days are the whole days between its bounds (billing-rules 1)."""
    assert period.days == (period.end - period.start).days == len(list(period.dates()))
    assert period.days_within(None, None) == period.days


@FAST
@given(st.integers(1901, 2199))
def test_days_of_a_year_sum_to_365_or_366(year):
    """The months of a year add up to the year's days (billing-rules 1)."""
    expected = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    assert sum(Period(year, month).days for month in range(1, 13)) == expected
    assert expected in (365, 366)


@FAST
@given(periods, st.integers(0, 40))
def test_periods_between_counts_months(first, extra):
    """periods_between yields consecutive months, both ends included (billing-rules 1)."""
    last = first
    for _ in range(extra):
        last = last.next()
    months = list(periods_between(first, last))
    assert len(months) == extra + 1
    assert months[0] == first
    assert months[-1] == last
    assert all(a.next() == b for a, b in pairwise(months))


@FAST
@given(aware_instants)
def test_next_month_start_is_the_first_after_the_utc_month(instant):
    """Effective date = the 1st of the month after the instant's UTC month (billing-rules 3.1, 6.2)."""
    day = instant.astimezone(UTC).date()
    effective = next_month_start(instant)
    assert effective.day == 1
    assert effective > day
    assert (effective - day).days <= 31
    assert Period.of(effective) == Period.of(day).next()


@FAST
@given(aware_instants)
def test_parse_instant_round_trips_any_offset(instant):
    """An ISO 8601 instant with an offset reads back as the same moment, in UTC (billing-rules 1)."""
    parsed = parse_instant(instant.isoformat())
    assert parsed == instant
    assert parsed.utcoffset() == timedelta(0)
    assert utc_date(parsed) == instant.astimezone(UTC).date()


@FAST
@given(aware_instants)
def test_parse_instant_refuses_the_same_instant_without_offset(instant):
    """The naive form of any instant is refused (billing-rules 1)."""
    with pytest.raises(PeriodError):
        parse_instant(instant.replace(tzinfo=None).isoformat())


@FAST
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets))
def test_an_instant_written_by_format_instant_reads_back_to_the_second(instant):
    """Messages and files write an instant as YYYY-MM-DDTHH:MM:SSZ, the year on four digits (year 1 is 0001), and
    parse_instant reads it back as the same instant to the second."""
    text = format_instant(instant)
    assert len(text) == 20 and text.endswith("Z")
    assert parse_instant(text) == instant.astimezone(UTC).replace(microsecond=0)

"""Periods: UTC calendar months and date ranges (billing-rules 1). No Django import here."""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """A period, date or instant that cannot be read."""


@dataclass(frozen=True, order=True)
class Period:
    """A UTC calendar month, named YYYY-MM: from the 1st at 00:00 UTC to the next 1st."""

    year: int
    month: int

    def __post_init__(self):
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9999:
            raise PeriodError(f"no such month: {self.year:04d}-{self.month:02d}")
        object.__setattr__(self, "_name", f"{self.year:04d}-{self.month:02d}")  # str() is asked very often

    @classmethod
    def parse(cls, text: str) -> Period:
        return _parse_period(cls, text)

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return self._name

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last(self) -> date:
        return date(self.year, self.month, self.days)

    @property
    def start(self) -> datetime:
        """The first instant of the period (UTC)."""
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period (UTC), exclusive."""
        return self.next().start

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Period:
        if self.month == 1:
            return Period(self.year - 1, 12)
        return Period(self.year, self.month - 1)

    def shift(self, months: int) -> Period:
        """The month `months` later (earlier when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Period(index // 12, index % 12 + 1)

    def contains(self, day: date) -> bool:
        return self.first <= day <= self.last

    def dates(self):
        day = self.first
        while day <= self.last:
            yield day
            day += timedelta(days=1)

    def days_within(self, start: date | None, end: date | None) -> int:
        """Days of this month inside the inclusive range start..end (None: unbounded)."""
        return days_inclusive(
            max(self.first, start) if start else self.first,
            min(self.last, end) if end else self.last,
        )


def days_inclusive(start: date, end: date) -> int:
    """Number of dates from start through end, both inclusive; 0 for an empty range."""
    return max(0, (end - start).days + 1)


def periods_between(first: Period, last: Period):
    """Every period from first through last, inclusive."""
    period = first
    while period <= last:
        yield period
        period = period.next()


def parse_date(text: str) -> date:
    """A UTC date written YYYY-MM-DD."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            raise ValueError
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise PeriodError(f"expected a date as YYYY-MM-DD, got {text!r}") from exc


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with Z or an offset, returned in UTC. A naive instant is refused."""
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError as exc:
        raise PeriodError(f"expected an ISO 8601 instant with Z or an offset, got {text!r}") from exc
    if value.tzinfo is None or value.utcoffset() is None:
        raise PeriodError(f"instant {text!r} has no time zone: add Z or an offset such as +02:00")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is in the year 10000 in UTC
        raise PeriodError(f"instant {text!r} is out of range (years 0001 to 9999 in UTC)") from None


def format_instant(instant: datetime) -> str:
    """An instant as files and messages write it: UTC to the second, with Z (what parse_instant reads)."""
    return instant.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"  # the year on 4 digits


def utc_date(instant: datetime) -> date:
    """The UTC date of an aware instant."""
    if instant.tzinfo is None:
        raise PeriodError("naive datetime: every instant must carry a time zone")
    return instant.astimezone(UTC).date()


def next_month_start(instant: datetime) -> date:
    """The next UTC month boundary strictly after the instant's date's month.

    A seat purchase takes effect at the first 1st after the month it was made
    in: even one made at 00:00 on a 1st counts from the following month.
    """
    return Period.of(utc_date(instant)).next().first


def whole_days_between(start: datetime, end: datetime | None) -> tuple[date, date | None]:
    """The UTC dates wholly inside [start, end): from the first midnight at or after start,
    through the day before end's date (None: open-ended). The range may be empty (first > last):
    a state that begins mid-day counts from the next day, one that ends any time on a day
    leaves that day out."""
    first = utc_date(start)
    if start.astimezone(UTC).time() != datetime.min.time():
        first += timedelta(days=1)
    last = utc_date(end) - timedelta(days=1) if end is not None else None
    return first, last


@functools.lru_cache(maxsize=4096)
def _parse_period(cls, text: str) -> Period:
    """Period.parse, remembered: a billing run reads the same few month names thousands of times."""
    match = _PERIOD_RE.match(text.strip())
    if not match:
        raise PeriodError(f"expected a month as YYYY-MM, got {text!r}")
    return cls(int(match.group(1)), int(match.group(2)))

"""Pure reference quantities (no Django): the obvious day-by-day definitions that the set-based
SQL in selectors must agree with (tests compare them on random histories)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta


def seat_days_reference(assignments: Iterable[tuple[object, date, date | None]], first: date, last: date) -> int:
    """Seat-days of (member, start date, end date or None) assignments within first..last (billing-rules 3.1).

    An assignment covers every date from its start through its end, both
    inclusive; an open one covers every date up to `last`; a member covered
    twice on a date counts that date once.
    """
    covered: set[tuple[object, date]] = set()
    for member, start, end in assignments:
        day = max(start, first)
        stop = min(end, last) if end is not None else last
        while day <= stop:
            covered.add((member, day))
            day += timedelta(days=1)
    return len(covered)

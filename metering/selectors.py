"""Seat-day metering as set-based SQL (RULES 3.1): one query per scope and range, never a loop
over members or days. Runs unchanged on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

from django.db import connection

from metering.models import Day
from partners.models import SeatAssignment

_COVERED = """
    SELECT DISTINCT a.customer_id, a.member_id, d.day, d.month
    FROM {seats} a
    JOIN {days} d ON d.day >= a.start_date AND (a.end_date IS NULL OR d.day <= a.end_date)
    WHERE d.day >= %s AND d.day <= %s
      AND a.start_date <= %s AND (a.end_date IS NULL OR a.end_date >= %s)
      AND {scope}
"""


def _covered_sql(*, first: date, last: date, partner_ids, customer_id: int | None):
    ids = list(partner_ids)
    scope = "a.partner_id IN ({})".format(", ".join(["%s"] * len(ids)))
    params: list = [first, last, last, first, *ids]
    if customer_id is not None:
        scope += " AND a.customer_id = %s"
        params.append(customer_id)
    sql = _COVERED.format(seats=SeatAssignment._meta.db_table, days=Day._meta.db_table, scope=scope)
    return sql, params


def seat_days_by_customer(*, partner_ids, first: date, last: date) -> dict[int, tuple[int, int]]:
    """{customer id: (seat-days, active users)} over first..last, whatever the services say."""
    if not partner_ids:
        return {}
    covered, params = _covered_sql(first=first, last=last, partner_ids=partner_ids, customer_id=None)
    sql = f"SELECT customer_id, COUNT(*), COUNT(DISTINCT member_id) FROM ({covered}) c GROUP BY customer_id"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {customer_id: (days, users) for customer_id, days, users in cursor.fetchall()}


def seat_days_by_month(*, partner_id: int, customer_id: int | None, first: date, last: date) -> dict[date, int]:
    """{first of month: seat-days} over first..last for a partner, or one customer of it."""
    covered, params = _covered_sql(first=first, last=last, partner_ids=[partner_id], customer_id=customer_id)
    sql = f"SELECT month, COUNT(*) FROM ({covered}) c GROUP BY month"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {_as_date(month): days for month, days in cursor.fetchall()}


def seat_days(*, partner_id: int, customer_id: int | None, first: date, last: date) -> int:
    return sum(seat_days_by_month(partner_id=partner_id, customer_id=customer_id, first=first, last=last).values())


def _as_date(value) -> date:
    # SQLite hands raw column values back as text
    return value if isinstance(value, date) else date.fromisoformat(str(value))

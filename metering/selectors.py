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


# --- usage meters (RULES 3.3-3.6, 9.7-9.8) -------------------------------------------------------
# The SQL below is written once for SQLite and PostgreSQL: a calendar join instead of generated
# series, CASE instead of GREATEST, integer division for ceilings, correlated sub-selects for
# "the last snapshot on or before the day".


def _tables():
    from metering.models import AgentPresence, Suspension, UsageSnapshot
    from partners.models import Customer, Service

    q = connection.ops.quote_name
    return {
        "days": Day._meta.db_table, "snap": UsageSnapshot._meta.db_table, "susp": Suspension._meta.db_table,
        "pres": AgentPresence._meta.db_table, "cust": Customer._meta.db_table, "svc": Service._meta.db_table,
        "grp": q("group"),
    }


def _placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))


# a customer (alias c) suspended for the whole day d.day
_SUSPENDED = """EXISTS (SELECT 1 FROM {susp} sp WHERE sp.customer_id = {cust_id}
    AND sp.first_full_day <= d.day AND (sp.last_full_day IS NULL OR sp.last_full_day >= d.day))"""

# services (alias s) x the customers they cover (alias c) x the days of the range inside the service (alias d)
_SCOPE = """FROM {svc} s
    JOIN {cust} c ON c.partner_id = s.partner_id AND (s.customer_id IS NULL OR s.customer_id = c.id)
    JOIN {days} d ON d.day >= %s AND d.day <= %s
        AND d.day >= s.start_date AND (s.end_date IS NULL OR d.day <= s.end_date)
    LEFT JOIN {snap} u ON u.customer_id = c.id AND u.date = (
        SELECT MAX(u2.date) FROM {snap} u2 WHERE u2.customer_id = c.id AND u2.date <= d.day)
    WHERE s.id IN ({ids})"""


def _run(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def peak_users_by_service(*, service_ids, first: date, last: date) -> dict[int, int]:
    """Highest daily users_count in first..last (inside each service's dates), summed over the
    customers a service covers per day before the max; a customer suspended for the whole day counts 0."""
    ids = list(service_ids)
    if not ids:
        return {}
    t = _tables()
    suspended = _SUSPENDED.format(cust_id="c.id", **t)
    value = f"CASE WHEN {suspended} THEN 0 ELSE COALESCE(u.users_count, 0) END"
    scope = _SCOPE.format(ids=_placeholders(ids), **t)
    sql = f"""SELECT sid, MAX(total) FROM (
        SELECT s.id AS sid, d.day AS day, SUM({value}) AS total {scope} GROUP BY s.id, d.day
    ) t GROUP BY sid"""
    return {sid: int(peak or 0) for sid, peak in _run(sql, [first, last, *ids])}


def licenses_by_service(*, service_ids, first: date, last: date) -> dict[tuple[int, int], int]:
    """{(service, customer): billable licenses} (RULES 3.5): per day not suspended for the whole
    day, max(users, ceil(storage / (GB per license x 10^9))); the customer's highest day counts."""
    ids = list(service_ids)
    if not ids:
        return {}
    t = _tables()
    suspended = _SUSPENDED.format(cust_id="c.id", **t)
    # ROUND before the cast: SQLite multiplies the decimal as a binary float (1.001 x 10^9 is
    # 1000999999.99...), and a truncated divisor would overcount at exact multiples (RULES 2, 3.5)
    per = "CAST(ROUND(s.storage_per_license_gb * 1000000000) AS BIGINT)"
    users, storage = "COALESCE(u.users_count, 0)", "COALESCE(u.storage_bytes, 0)"
    by_storage = f"(({storage} + {per} - 1) / {per})"
    value = f"""CASE WHEN {suspended} THEN 0
        WHEN s.storage_per_license_gb IS NULL OR {by_storage} <= {users} THEN {users}
        ELSE {by_storage} END"""
    scope = _SCOPE.format(ids=_placeholders(ids), **t)
    sql = f"SELECT s.id, c.id, MAX({value}) {scope} GROUP BY s.id, c.id"
    return {(sid, cid): int(n or 0) for sid, cid, n in _run(sql, [first, last, *ids])}


def peak_users_by_customer(*, partner_ids, first: date, last: date) -> dict[int, int]:
    """Statements (RULES 9.10): each customer's highest daily users_count, 0 on suspended days."""
    ids = list(partner_ids)
    if not ids:
        return {}
    t = _tables()
    suspended = _SUSPENDED.format(cust_id="c.id", **t)
    sql = f"""SELECT c.id, MAX(CASE WHEN {suspended} THEN 0 ELSE COALESCE(u.users_count, 0) END)
        FROM {t['cust']} c JOIN {t['days']} d ON d.day >= %s AND d.day <= %s
        LEFT JOIN {t['snap']} u ON u.customer_id = c.id AND u.date = (
            SELECT MAX(u2.date) FROM {t['snap']} u2 WHERE u2.customer_id = c.id AND u2.date <= d.day)
        WHERE c.partner_id IN ({_placeholders(ids)}) GROUP BY c.id"""
    return {cid: int(n or 0) for cid, n in _run(sql, [first, last, *ids])}


def _units_sql(ids, t, first: date, last: date) -> tuple[str, list]:
    """(service, day, units): agents in force on the day matching the service's filter (RULES 3.6, 9.7).

    Suspensions only zero the `assets` meter (peak, cmq): per_asset units are the inventory in force
    whatever the tenant's state (RULES 3.6).

    Agents are first counted per (partner, organization, group, day), with whether the organization's
    tenant is suspended for the whole day; services then add up the counts their filter matches. A
    service never looks at single agents, so the cost grows with agents x days once, not again per
    service."""
    grp = t["grp"]
    services = _placeholders(ids)
    counts = f"""SELECT k.partner_id, k.organization, k.grp, k.day, k.n, EXISTS (
            SELECT 1 FROM {t['cust']} c2 JOIN {t['susp']} sp ON sp.customer_id = c2.id
            WHERE c2.partner_id = k.partner_id AND c2.rmm_organization <> ''
                AND c2.rmm_organization = k.organization
                AND sp.first_full_day <= k.day AND (sp.last_full_day IS NULL OR sp.last_full_day >= k.day)
        ) AS suspended
        FROM (
            SELECT p.partner_id, p.organization, p.{grp} AS grp, d.day AS day, COUNT(*) AS n
            FROM {t['pres']} p
            JOIN {t['days']} d ON d.day >= %s AND d.day <= %s
                AND p.present_from <= d.day AND (p.present_until IS NULL OR p.present_until >= d.day)
            WHERE p.partner_id IN (SELECT partner_id FROM {t['svc']} WHERE id IN ({services}))
            GROUP BY p.partner_id, p.organization, p.{grp}, d.day
        ) k"""
    sql = f"""SELECT s.id AS sid, d.day AS day, COALESCE(SUM(k.n), 0) AS units
        FROM {t['svc']} s
        JOIN {t['days']} d ON d.day >= %s AND d.day <= %s
        LEFT JOIN {t['cust']} sc ON sc.id = s.customer_id
        LEFT JOIN ({counts}) k ON k.partner_id = s.partner_id AND k.day = d.day
            AND (
                (s.rmm_org <> '' AND k.organization = s.rmm_org AND (s.rmm_group = '' OR k.grp = s.rmm_group))
                OR (s.rmm_org = '' AND s.customer_id IS NOT NULL AND sc.rmm_organization <> ''
                    AND k.organization = sc.rmm_organization)
                OR (s.rmm_org = '' AND s.customer_id IS NULL)
            )
            AND NOT (s.meter = 'assets' AND k.suspended)
            AND NOT (s.meter = 'assets' AND s.customer_id IS NOT NULL
                     AND {_SUSPENDED.format(cust_id='s.customer_id', **t)})
        WHERE s.id IN ({services})
        GROUP BY s.id, d.day"""
    return sql, [first, last, first, last, *ids, *ids]  # in the order of the text: d, then k


def peak_assets_by_service(*, service_ids, first: date, last: date) -> dict[int, int]:
    """Highest daily count of matching agents in first..last, inside each service's dates."""
    ids = list(service_ids)
    if not ids:
        return {}
    t = _tables()
    units, params = _units_sql(ids, t, first, last)
    sql = f"""SELECT units.sid, MAX(units.units) FROM ({units}) units
        JOIN {t['svc']} s ON s.id = units.sid
        WHERE units.day >= s.start_date AND (s.end_date IS NULL OR units.day <= s.end_date)
        GROUP BY units.sid"""
    return {sid: int(n or 0) for sid, n in _run(sql, params)}


def asset_unit_steps(*, service_ids, first: date, last: date) -> dict[int, list[tuple[date, int]]]:
    """Each service's units as a step function over first..last: (first, units) then one
    (day, units) per day the units change. Changes are found in SQL (a window over the days)."""
    ids = list(service_ids)
    if not ids:
        return {}
    t = _tables()
    units, params = _units_sql(ids, t, first, last)
    sql = f"""SELECT sid, day, units FROM (
        SELECT sid, day, units, LAG(units) OVER (PARTITION BY sid ORDER BY day) AS before
        FROM ({units}) units
    ) steps WHERE before IS NULL OR before <> units ORDER BY sid, day"""
    steps: dict[int, list[tuple[date, int]]] = {sid: [] for sid in ids}
    for sid, day, units in _run(sql, params):
        steps[sid].append((_as_date(day), int(units)))
    return steps


def peak_assets_by_customer(*, partner_ids, first: date, last: date) -> dict[int, int]:
    """Statements (RULES 9.10): highest daily agent count of each customer's RMM organization."""
    ids = list(partner_ids)
    if not ids:
        return {}
    t = _tables()
    sql = f"""SELECT cid, MAX(n) FROM (
        SELECT c.id AS cid, d.day AS day, COUNT(p.id) AS n
        FROM {t['cust']} c JOIN {t['days']} d ON d.day >= %s AND d.day <= %s
        LEFT JOIN {t['pres']} p ON p.partner_id = c.partner_id AND c.rmm_organization <> ''
            AND p.organization = c.rmm_organization
            AND p.present_from <= d.day AND (p.present_until IS NULL OR p.present_until >= d.day)
        WHERE c.partner_id IN ({_placeholders(ids)})
        GROUP BY c.id, d.day
    ) t GROUP BY cid"""
    return {cid: int(n or 0) for cid, n in _run(sql, [first, last, *ids])}


def seat_days_by_service(*, service_ids, first: date, last: date) -> dict[tuple[int, date], int]:
    """{(service id, first of month): seat-days} over first..last, inside each service's dates and
    scope (the partner's customers, or its one customer): one query for any number of services."""
    ids = list(service_ids)
    if not ids:
        return {}
    t = _tables()
    seats = SeatAssignment._meta.db_table
    sql = f"""SELECT sid, month, COUNT(*) FROM (
        SELECT DISTINCT s.id AS sid, a.member_id, d.day, d.month
        FROM {t['svc']} s
        JOIN {seats} a ON a.partner_id = s.partner_id AND (s.customer_id IS NULL OR a.customer_id = s.customer_id)
        JOIN {t['days']} d ON d.day >= a.start_date AND (a.end_date IS NULL OR d.day <= a.end_date)
            AND d.day >= s.start_date AND (s.end_date IS NULL OR d.day <= s.end_date)
        WHERE d.day >= %s AND d.day <= %s AND a.start_date <= %s AND (a.end_date IS NULL OR a.end_date >= %s)
            AND s.id IN ({_placeholders(ids)})
    ) covered GROUP BY sid, month"""
    return {(sid, _as_date(month)): days for sid, month, days in _run(sql, [first, last, last, first, *ids])}

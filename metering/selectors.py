"""Seat-day metering as set-based SQL (RULES 3.1): one query per scope and range, never a loop
over members or days. Runs unchanged on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

from django.db import connection

from billing.periods import Period
from metering.models import Day
from partners.models import SeatAssignment

# Seat-days are a union of date intervals per member (RULES 3.1: a member counts once a day, however
# many seats touched it). Instead of expanding every seat into its days, each seat is clipped to the
# range (and month, and service), seats of a member are ordered by start, and each one counts only
# the days after the latest end before it: the length of the union, in one pass of a window
# function over the seats. Dates become day numbers so that the arithmetic is the same on SQLite
# and PostgreSQL.
EPOCH = date(2000, 1, 1)


def _day_number(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"({column} - DATE '2000-01-01')"
    return f"CAST(julianday({column}) - julianday('2000-01-01') AS INTEGER)"


def _bound(function: str, *terms: str) -> str:
    """GREATEST/LEAST on PostgreSQL, the scalar MAX/MIN on SQLite (no argument is ever NULL here)."""
    name = {"max": "GREATEST", "min": "LEAST"}[function] if connection.vendor == "postgresql" else function.upper()
    return f"{name}({', '.join(terms)})"


def _months_sql(first: date, last: date, *, by_month: bool) -> tuple[str, list]:
    """A derived table of the months of first..last (or the whole range as one), clipped to it:
    (mfirst: the 1st of the month, dlo/dhi: its clipped dates, lo/hi: the same as day numbers)."""
    spans = []
    if by_month:
        month = Period.of(first)
        while month.first <= last:
            spans.append((month.first, max(first, month.first), min(last, month.last)))
            month = month.next()
    else:
        spans.append((Period.of(first).first, first, last))
    rows, params = [], []
    for mfirst, lo, hi in spans:
        rows.append("SELECT %s AS mfirst, %s AS dlo, %s AS dhi, %s AS lo, %s AS hi")
        params += [mfirst, lo, hi, (lo - EPOCH).days, (hi - EPOCH).days]
    return " UNION ALL ".join(rows), params


def _union_days_sql(*, keys: str, source: str, starts: list[str], ends: list[str]) -> str:
    """Per `keys` (columns of `source`'s rows) and month: the days of the union of each member's seats.

    `source` yields one row per seat and month with the key columns, member_id, aid (the seat id),
    mfirst, lo and hi; `starts`/`ends` are extra day-number bounds (a service's dates)."""
    start = _bound("max", _day_number("start_date"), "lo", *starts)
    end = _bound("min", f"CASE WHEN end_date IS NULL THEN hi ELSE {_day_number('end_date')} END", "hi", *ends)
    return f"""SELECT {keys}, member_id, mfirst,
            CASE WHEN prev IS NOT NULL AND prev >= s THEN e - prev ELSE e - s + 1 END AS n
        FROM (
            SELECT {keys}, member_id, mfirst, s, e,
                MAX(e) OVER (PARTITION BY {keys}, member_id, mfirst ORDER BY s, aid
                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev
            FROM (SELECT {keys}, member_id, aid, mfirst, {start} AS s, {end} AS e FROM ({source}) seat) clipped
            WHERE s <= e
        ) ordered
        WHERE prev IS NULL OR e > prev"""


def _partner_seats(*, first: date, last: date, partner_ids, customer_id: int | None, by_month: bool):
    ids = list(partner_ids)
    months, params = _months_sql(first, last, by_month=by_month)
    scope = f"a.partner_id IN ({_placeholders(ids)})"
    params += ids
    if customer_id is not None:
        scope += " AND a.customer_id = %s"
        params.append(customer_id)
    source = f"""SELECT a.customer_id, a.member_id, a.id AS aid, a.start_date, a.end_date, m.mfirst, m.lo, m.hi
        FROM {SeatAssignment._meta.db_table} a
        JOIN ({months}) m ON a.start_date <= m.dhi AND (a.end_date IS NULL OR a.end_date >= m.dlo)
        WHERE {scope}"""
    return _union_days_sql(keys="customer_id", source=source, starts=[], ends=[]), params


def seat_days_by_customer(*, partner_ids, first: date, last: date) -> dict[int, tuple[int, int]]:
    """{customer id: (seat-days, active users)} over first..last, whatever the services say."""
    if not partner_ids:
        return {}
    days, params = _partner_seats(first=first, last=last, partner_ids=partner_ids, customer_id=None, by_month=False)
    sql = f"SELECT customer_id, SUM(n), COUNT(DISTINCT member_id) FROM ({days}) d GROUP BY customer_id"
    return {customer_id: (int(n), users) for customer_id, n, users in _run(sql, params)}


def seat_days_by_month(*, partner_id: int, customer_id: int | None, first: date, last: date) -> dict[date, int]:
    """{first of month: seat-days} over first..last for a partner, or one customer of it."""
    days, params = _partner_seats(first=first, last=last, partner_ids=[partner_id], customer_id=customer_id,
                                  by_month=True)
    sql = f"SELECT mfirst, SUM(n) FROM ({days}) d GROUP BY mfirst"
    return {_as_date(month): int(n) for month, n in _run(sql, params)}


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
    months, params = _months_sql(first, last, by_month=True)
    source = f"""SELECT s.id AS sid, a.member_id, a.id AS aid, a.start_date, a.end_date, m.mfirst, m.lo, m.hi,
            s.start_date AS svc_start, s.end_date AS svc_end
        FROM {t['svc']} s
        JOIN {SeatAssignment._meta.db_table} a ON a.partner_id = s.partner_id
            AND (s.customer_id IS NULL OR a.customer_id = s.customer_id)
        JOIN ({months}) m ON a.start_date <= m.dhi AND (a.end_date IS NULL OR a.end_date >= m.dlo)
        WHERE s.id IN ({_placeholders(ids)})"""
    days = _union_days_sql(
        keys="sid", source=source, starts=[_day_number("svc_start")],
        ends=[f"CASE WHEN svc_end IS NULL THEN hi ELSE {_day_number('svc_end')} END"],
    )
    sql = f"SELECT sid, mfirst, SUM(n) FROM ({days}) d GROUP BY sid, mfirst"
    return {(sid, _as_date(month)): int(n) for sid, month, n in _run(sql, [*params, *ids])}

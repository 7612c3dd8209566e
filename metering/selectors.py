"""Seat-day metering as set-based SQL (billing-rules 3.1): one query per scope and range, never a loop
over members or days. Runs unchanged on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Q

from billing.core.periods import Period
from billing.core.sql import Params
from metering.matching import Place, filter_takes, names_organization
from metering.models import AgentPresence, Day, Suspension, UsageSnapshot
from partners.models import Customer, Method, Partner, SeatAssignment, Service
from partners.terms import TermsBook

# Seat-days are a union of date intervals per member (billing-rules 3.1: a member counts once a day, however
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


def _months_sql(p: Params, first: date, last: date, *, by_month: bool) -> str:
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
    return " UNION ALL ".join(
        f"SELECT {p.ref(f'm{i}_first', mfirst)} AS mfirst, {p.ref(f'm{i}_dlo', lo)} AS dlo, "
        f"{p.ref(f'm{i}_dhi', hi)} AS dhi, {p.ref(f'm{i}_lo', (lo - EPOCH).days)} AS lo, "
        f"{p.ref(f'm{i}_hi', (hi - EPOCH).days)} AS hi"
        for i, (mfirst, lo, hi) in enumerate(spans))


def _union_days_sql(*, keys: str, source: str, starts: list[str], ends: list[str], per_member: bool = False) -> str:
    """Per `keys` (columns of `source`'s rows) and month: the days of the union of each member's seats.

    `source` yields one row per seat and month with the key columns, member_id, aid (the seat id),
    mfirst, lo and hi; `starts`/`ends` are extra day-number bounds (a service's dates). `per_member`:
    the keys are the member's own (its customer), so members alone partition the seats."""
    partition = "member_id, mfirst" if per_member else f"{keys}, member_id, mfirst"
    start = _bound("max", _day_number("start_date"), "lo", *starts)
    end = _bound("min", f"CASE WHEN end_date IS NULL THEN hi ELSE {_day_number('end_date')} END", "hi", *ends)
    return f"""SELECT {keys}, member_id, mfirst,
            CASE WHEN prev IS NOT NULL AND prev >= s THEN e - prev ELSE e - s + 1 END AS n
        FROM (
            SELECT {keys}, member_id, mfirst, s, e,
                MAX(e) OVER (PARTITION BY {partition} ORDER BY s, aid
                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev
            FROM (SELECT {keys}, member_id, aid, mfirst, {start} AS s, {end} AS e FROM ({source}) seat) clipped
            WHERE s <= e
        ) ordered
        WHERE prev IS NULL OR e > prev"""


def _partner_seats(p: Params, *, first: date, last: date, partner_ids, customer_id: int | None,
                   by_month: bool) -> str:
    months = _months_sql(p, first, last, by_month=by_month)
    scope = f"a.partner_id IN ({p.each('pid', partner_ids)})"
    if customer_id is not None:
        scope += f" AND a.customer_id = {p.ref('customer', customer_id)}"
    source = f"""SELECT a.customer_id, a.member_id, a.id AS aid, a.start_date, a.end_date, m.mfirst, m.lo, m.hi
        FROM {SeatAssignment._meta.db_table} a
        JOIN ({months}) m ON a.start_date <= m.dhi AND (a.end_date IS NULL OR a.end_date >= m.dlo)
        WHERE {scope}"""
    return _union_days_sql(keys="customer_id", source=source, starts=[], ends=[], per_member=True)


def seat_days_by_customer(*, partner_ids, first: date, last: date) -> dict[int, tuple[int, int]]:
    """{customer id: (seat-days, active users)} over first..last, whatever the services say."""
    if not partner_ids:
        return {}
    p = Params()
    days = _partner_seats(p, first=first, last=last, partner_ids=partner_ids, customer_id=None, by_month=False)
    sql = f"SELECT customer_id, SUM(n), COUNT(DISTINCT member_id) FROM ({days}) d GROUP BY customer_id"
    return {customer_id: (int(n), users) for customer_id, n, users in _run(sql, p)}


def seat_days_by_month(*, partner_id: int, customer_id: int | None, first: date, last: date) -> dict[date, int]:
    """{first of month: seat-days} over first..last for a partner, or one customer of it."""
    p = Params()
    days = _partner_seats(p, first=first, last=last, partner_ids=[partner_id], customer_id=customer_id,
                          by_month=True)
    sql = f"SELECT mfirst, SUM(n) FROM ({days}) d GROUP BY mfirst"
    return {_as_date(month): int(n) for month, n in _run(sql, p)}


def seat_days(*, partner_id: int, customer_id: int | None, first: date, last: date) -> int:
    return sum(seat_days_by_month(partner_id=partner_id, customer_id=customer_id, first=first, last=last).values())


def _as_date(value) -> date:
    # SQLite hands raw column values back as text
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# --- usage meters (billing-rules 3.4-3.7, 6.7-6.8) -------------------------------------------------------
# The SQL below is written once for SQLite and PostgreSQL: a calendar join instead of generated
# series, CASE instead of GREATEST, integer division for ceilings, correlated sub-selects for
# "the last snapshot on or before the day".


def _tables():
    q = connection.ops.quote_name
    return {
        "days": Day._meta.db_table, "snap": UsageSnapshot._meta.db_table, "susp": Suspension._meta.db_table,
        "pres": AgentPresence._meta.db_table, "cust": Customer._meta.db_table, "svc": Service._meta.db_table,
        "grp": q("group"),
    }


# a customer (alias c) suspended for the whole day d.day
_SUSPENDED = """EXISTS (SELECT 1 FROM {susp} sp WHERE sp.customer_id = {cust_id}
    AND sp.first_full_day <= d.day AND (sp.last_full_day IS NULL OR sp.last_full_day >= d.day))"""

def _usage_days_sql(p: Params, t, customers: str, first: date, last: date) -> str:
    """Rows (customer_id, day, users_count, storage_bytes, suspended) for the customers `customers`
    selects (SQL returning ids, its parameters in `p`), on each day of first..last from their first
    snapshot in force; suspended is 1 on a day the customer is suspended for the whole day.

    Usage carries forward: each snapshot holds from its date to the day before the next, so snapshots
    become intervals (a window over the customer's snapshots) spread over their days; the snapshot in
    force on `first` is one index probe per customer; suspended days are listed once and met by
    equality."""
    first_, last_ = p.ref("first", first), p.ref("last", last)
    return f"""SELECT iv.customer_id, d1.day, iv.users_count, iv.storage_bytes,
                CASE WHEN sus.customer_id IS NULL THEN 0 ELSE 1 END AS suspended
            FROM (
                SELECT u0.customer_id, u0.date AS lo, u0.users_count, u0.storage_bytes,
                    LEAD(u0.date) OVER (PARTITION BY u0.customer_id ORDER BY u0.date) AS hi
                FROM {t['snap']} u0 LEFT JOIN (  -- each customer's snapshot in force on `first` (an index probe)
                    SELECT c1.id AS customer_id, (SELECT MAX(u1.date) FROM {t['snap']} u1
                                                  WHERE u1.customer_id = c1.id AND u1.date <= {first_}) AS since
                    FROM {t['cust']} c1 WHERE c1.id IN ({customers})
                ) b ON b.customer_id = u0.customer_id
                WHERE u0.customer_id IN ({customers}) AND u0.date <= {last_} AND u0.date >= COALESCE(b.since, {first_})
            ) iv JOIN {t['days']} d1 ON d1.day >= iv.lo AND (iv.hi IS NULL OR d1.day < iv.hi)
                AND d1.day >= {first_} AND d1.day <= {last_}
            LEFT JOIN (
                SELECT DISTINCT sp.customer_id, d2.day FROM {t['susp']} sp
                JOIN {t['days']} d2 ON d2.day >= {first_} AND d2.day <= {last_}
                    AND sp.first_full_day <= d2.day AND (sp.last_full_day IS NULL OR sp.last_full_day >= d2.day)
                WHERE sp.customer_id IN ({customers})
            ) sus ON sus.customer_id = iv.customer_id AND sus.day = d1.day"""


def _covered_days_sql(p: Params, ids, t, first: date, last: date, *, every_pair: bool) -> str:
    """(s: the service's row, sc.cid: a customer it covers, cd: that customer's usage on a day of
    first..last inside the service's dates, with cd.suspended 1 when it is suspended for the whole day):
    the rows peak users and licenses aggregate (billing-rules 3.4, 3.6). Days without any snapshot yet have no
    cd row; `every_pair` keeps a (service, customer) without any (cd NULLs) for the licenses' zeros.
    Services meet their customers' usage days (`_usage_days_sql`) by equality on the customer."""
    services = p.each("sid", ids)
    customers = f"""SELECT c0.id FROM {t['cust']} c0
        WHERE c0.partner_id IN (SELECT partner_id FROM {t['svc']} WHERE id IN ({services}))"""
    usage = _usage_days_sql(p, t, customers, first, last)
    join = "LEFT JOIN" if every_pair else "JOIN"
    return f"""FROM (
            SELECT s0.id AS sid, s0.customer_id AS cid FROM {t['svc']} s0
            WHERE s0.id IN ({services}) AND s0.customer_id IS NOT NULL
            UNION ALL
            SELECT s0.id, c0.id FROM {t['svc']} s0 JOIN {t['cust']} c0 ON c0.partner_id = s0.partner_id
            WHERE s0.id IN ({services}) AND s0.customer_id IS NULL
        ) sc
        JOIN {t['svc']} s ON s.id = sc.sid
        {join} ({usage}) cd ON cd.customer_id = sc.cid AND cd.day >= s.start_date
            AND (s.end_date IS NULL OR cd.day <= s.end_date)
        WHERE s.start_date <= {p.ref('last', last)} AND (s.end_date IS NULL OR s.end_date >= {p.ref('first', first)})"""


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
    p = Params()
    scope = _covered_days_sql(p, ids, t, first, last, every_pair=False)
    sql = f"""SELECT sid, MAX(total) FROM (
        SELECT s.id AS sid, cd.day AS day, SUM(CASE WHEN cd.suspended = 1 THEN 0 ELSE cd.users_count END) AS total
        {scope} GROUP BY s.id, cd.day
    ) t GROUP BY sid"""
    return {sid: int(peak or 0) for sid, peak in _run(sql, p)}


GB = Decimal(10**9)  # storage_per_license_gb counts decimal gigabytes (billing-rules 3.6)


def licenses_on_day(users_count: int, storage_bytes: int, storage_per_license_gb: Decimal | None) -> int:
    """A tenant's licenses on one day it is not suspended for the whole day (billing-rules 3.6): the larger of
    users_count and ceil(storage_bytes ÷ (storage_per_license_gb × 10⁹)); users_count alone without
    storage_per_license_gb. Exact integers, no float: the field has 3 decimal places, so a license holds a
    whole number of bytes (rounded, as the SQL rounds it, should a value ever have more).

    The one place the rule is written in Python: the admin's usage list and the reseller API call it, and
    `licenses_by_service` below computes the same in SQL (the set-based billing path), checked against this
    function on random histories (metering/tests/test_meter_properties.py). A day suspended whole counts 0:
    that is the caller's (billing-rules 6.8). Example (billing-rules 3.10): 9 users and 480 GB at 50 GB per
    license is max(9, ceil(9.6)) = 10."""
    if not storage_per_license_gb:
        return users_count
    per_license = int((storage_per_license_gb * GB).to_integral_value(rounding=ROUND_HALF_UP))
    return max(users_count, -(-storage_bytes // per_license))


def licenses_by_service(*, service_ids, first: date, last: date,
                        storage_gb: dict[int, Decimal | None] | None = None) -> dict[tuple[int, int], int]:
    """{(service, customer): billable licenses} (billing-rules 3.6): per day not suspended for the whole
    day, `licenses_on_day` in SQL, max(users, ceil(storage / (GB per license x 10^9))); the customer's highest
    day counts. The storage per license is the one in force on `first` (a dated term, billing-rules 3.11);
    `storage_gb`: those values by service id, when the caller has the services' terms already."""
    ids = list(service_ids)
    if not ids:
        return {}
    t = _tables()
    p = Params()
    # the bytes a license holds, by the storage per license in force on the span's first day (a dated term,
    # billing-rules 3.11), in exact integers: never the database's binary float of the decimal
    if storage_gb is None:
        services = list(Service.objects.filter(pk__in=ids))
        book = TermsBook(services)
        storage_gb = {s.pk: book.on(s, first).storage_per_license_gb for s in services}
    stored = [(sid, int((gb * GB).to_integral_value(rounding=ROUND_HALF_UP)))
              for sid, gb in sorted(storage_gb.items()) if gb]
    if stored:
        per = ("CAST(CASE s.id " + " ".join(f"WHEN {p.ref(f'lsid{i}', sid)} THEN {p.ref(f'lper{i}', n)}"
                                           for i, (sid, n) in enumerate(stored)) + " END AS BIGINT)")
    else:
        per = "CAST(NULL AS BIGINT)"
    users, storage = "COALESCE(cd.users_count, 0)", "COALESCE(cd.storage_bytes, 0)"
    # the ceiling without adding per - 1 first: the import takes storage up to 2^63 - 1 (bigint out of range)
    by_storage = f"({storage} / {per} + CASE WHEN {storage} %% {per} > 0 THEN 1 ELSE 0 END)"  # %% is %
    value = f"""CASE WHEN cd.suspended = 1 THEN 0
        WHEN {per} IS NULL OR {by_storage} <= {users} THEN {users}
        ELSE {by_storage} END"""
    scope = _covered_days_sql(p, ids, t, first, last, every_pair=True)
    sql = f"SELECT s.id, sc.cid, MAX({value}) {scope} GROUP BY s.id, sc.cid"
    return {(sid, cid): int(n or 0) for sid, cid, n in _run(sql, p)}


def peak_users_by_customer(*, partner_ids, first: date, last: date) -> dict[int, int]:
    """Statements (billing-rules 6.10): each customer's highest daily users_count, 0 on suspended days (and
    before any snapshot: such a customer has no row here)."""
    ids = list(partner_ids)
    if not ids:
        return {}
    t = _tables()
    p = Params()
    customers = f"SELECT c0.id FROM {t['cust']} c0 WHERE c0.partner_id IN ({p.each('pid', ids)})"
    usage = _usage_days_sql(p, t, customers, first, last)
    sql = f"""SELECT cd.customer_id, MAX(CASE WHEN cd.suspended = 1 THEN 0 ELSE cd.users_count END)
        FROM ({usage}) cd GROUP BY cd.customer_id"""
    return {cid: int(n or 0) for cid, n in _run(sql, p)}


def _day_after(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"({column} + 1)"
    return f"date({column}, '+1 day')"


def _presence_changes_sql(p: Params, t, partners: str, first: date, last: date) -> str:
    """(partner_id, organization, org_ref, org_id, grp, views, day, dn) for the partners `partners` selects
    (SQL returning ids, its parameters in `p`): the change in agents present on each day of first..last
    where there is one, per place (docs/rmm.md); on `first`, the agents already in force. A presence is a
    +1 on the day it starts (or `first`) and a -1 on the day after it ends, so agents never meet days."""
    grp, pres = t["grp"], t["pres"]
    scope = f"p.partner_id IN ({partners})"
    first_, last_ = p.ref("first", first), p.ref("last", last)
    start = f"CASE WHEN p.present_from < {first_} THEN {first_} ELSE p.present_from END"
    place = f"p.partner_id, p.organization, p.org_ref, p.org_id, p.{grp} AS grp, p.views"
    return f"""SELECT partner_id, organization, org_ref, org_id, grp, views, day, SUM(dn) AS dn FROM (
            SELECT {place}, {start} AS day, 1 AS dn FROM {pres} p
            WHERE {scope} AND p.present_from <= {last_} AND (p.present_until IS NULL OR p.present_until >= {first_})
            UNION ALL
            SELECT {place}, {_day_after('p.present_until')}, -1 FROM {pres} p
            WHERE {scope} AND p.present_from <= {last_} AND p.present_until >= {first_} AND p.present_until < {last_}
        ) e GROUP BY partner_id, organization, org_ref, org_id, grp, views, day"""


def _names_org(name_sql: str, place: str) -> str:
    """SQL: `name_sql` (already trimmed and in lower case) names the organization of the row `place`
    by its name, short reference or id (metering.matching.names_organization)."""
    return (f"{name_sql} <> '' AND {name_sql} IN (LOWER({place}.organization), LOWER({place}.org_ref), "
            f"LOWER({place}.org_id))")


def _contains(haystack: str, needle: str) -> str:
    function = "STRPOS" if connection.vendor == "postgresql" else "INSTR"
    return f"{function}({haystack}, {needle}) > 0"


def _agent_changes_sql(p: Params, ids, t, first: date, last: date) -> str:
    """(sid, partner_id, meter, organization, org_ref, org_id, day, dn): for each service and RMM
    organization it takes (billing-rules 3.7), the change in matching agents on each day of
    first..last where there is one; on `first`, the agents already in force.

    Agents never meet days here: a presence is a +1 on the day it starts (or `first`) and a -1 on the
    day after it ends, summed per place and day; services then take the changes of the places their
    filter takes, the rule of metering.matching.filter_takes (its property test holds the two
    together): a view, an organization by name, reference or id (and a group with the groups below
    it), a customer's organization, or the partner's whole inventory. The cost grows with presences,
    not with agents x days x services."""
    services = p.each("sid", ids)
    changes = _presence_changes_sql(p, t, f"SELECT partner_id FROM {t['svc']} WHERE id IN ({services})", first, last)
    # each service's filter as plain values (partners.models.rmm_filter_parts stored them in lower case)
    filters = f"""SELECT s.id AS sid, s.partner_id, s.meter, s.rmm_view AS view,
            CASE WHEN s.rmm_org <> '' OR s.rmm_view <> '' THEN s.rmm_org
                 WHEN s.customer_id IS NOT NULL THEN LOWER(TRIM(COALESCE(sc.rmm_organization, ''))) ELSE '' END AS org,
            CASE WHEN s.rmm_org <> '' THEN s.rmm_group ELSE '' END AS grp,
            CASE WHEN s.rmm_org = '' AND s.rmm_view = '' AND s.customer_id IS NULL THEN 1 ELSE 0 END AS whole
        FROM {t['svc']} s LEFT JOIN {t['cust']} sc ON sc.id = s.customer_id
        WHERE s.id IN ({services})"""
    group = "LOWER(g.grp)"
    takes = f"""v.whole = 1
            OR (v.view <> '' AND {_contains("LOWER(g.views)", "'|' || v.view || '|'")})
            OR (v.view = '' AND {_names_org('v.org', 'g')}
                AND (v.grp = '' OR {group} = v.grp OR SUBSTR({group}, 1, LENGTH(v.grp) + 1) = v.grp || '/'))"""
    return f"""WITH g AS ({changes}), v AS ({filters})
        SELECT v.sid, v.partner_id, v.meter, g.organization, g.org_ref, g.org_id, g.day, SUM(g.dn) AS dn
        FROM v JOIN g ON g.partner_id = v.partner_id AND ({takes})
        GROUP BY v.sid, v.partner_id, v.meter, g.organization, g.org_ref, g.org_id, g.day"""


def peak_assets_by_service(*, service_ids, first: date, last: date) -> dict[int, int]:
    """Highest daily count of matching agents in first..last, inside each service's dates. On the
    assets meter an organization whose tenant is suspended for the whole day counts 0, and so does a
    service of a customer suspended for the whole day (billing-rules 3.4, 6.7)."""
    ids = list(service_ids)
    if not ids:
        return {}
    t = _tables()
    p = Params()
    changes = _agent_changes_sql(p, ids, t, first, last)
    first_, last_, services = p.ref("first", first), p.ref("last", last), p.each("sid", ids)
    # the (organization, day)s whose tenant is suspended for the whole day, once
    suspended = f"""SELECT DISTINCT c2.partner_id, LOWER(TRIM(c2.rmm_organization)) AS org_key, d.day AS day
        FROM {t['cust']} c2 JOIN {t['susp']} sp ON sp.customer_id = c2.id
        JOIN {t['days']} d ON d.day >= {first_} AND d.day <= {last_}
            AND sp.first_full_day <= d.day AND (sp.last_full_day IS NULL OR sp.last_full_day >= d.day)
        WHERE TRIM(c2.rmm_organization) <> ''
            AND c2.partner_id IN (SELECT partner_id FROM {t['svc']} WHERE id IN ({services}))"""
    # runs of constant count per (service, organization), spread over their days
    sql = f"""SELECT s.id, MAX(CASE
            WHEN s.meter = 'assets' AND s.customer_id IS NOT NULL
                AND {_SUSPENDED.format(cust_id='s.customer_id', **t)} THEN 0
            ELSE COALESCE(daily.units, 0) END)
        FROM {t['svc']} s
        JOIN {t['days']} d ON d.day >= {first_} AND d.day <= {last_}
            AND d.day >= s.start_date AND (s.end_date IS NULL OR d.day <= s.end_date)
        LEFT JOIN (
            SELECT sid, day, SUM(CASE WHEN meter = 'assets' AND suspended = 1 THEN 0 ELSE n END) AS units
            FROM (
                -- each run once per day, whether one or several suspended customers name its organization (by
                -- name and by reference, say): a join row per customer would count its agents again
                SELECT r.sid, r.meter, r.n, d.day AS day, MAX(CASE WHEN os.day IS NULL THEN 0 ELSE 1 END) AS suspended
                FROM (
                    SELECT sid, partner_id, meter, organization, org_ref, org_id, day AS lo,
                        LEAD(day) OVER (PARTITION BY sid, organization, org_ref, org_id ORDER BY day) AS hi,
                        SUM(dn) OVER (PARTITION BY sid, organization, org_ref, org_id ORDER BY day) AS n
                    FROM ({changes}) ch
                ) r JOIN {t['days']} d ON d.day >= r.lo AND (r.hi IS NULL OR d.day < r.hi) AND d.day <= {last_}
                LEFT JOIN ({suspended}) os ON os.partner_id = r.partner_id AND os.day = d.day
                    AND {_names_org('os.org_key', 'r')}
                WHERE r.n <> 0
                GROUP BY r.sid, r.meter, r.n, r.organization, r.org_ref, r.org_id, r.lo, d.day
            ) per_run
            GROUP BY sid, day
        ) daily ON daily.sid = s.id AND daily.day = d.day
        WHERE s.id IN ({services})
        GROUP BY s.id"""
    return {sid: int(n or 0) for sid, n in _run(sql, p)}


def asset_unit_steps(*, service_ids, first: date, last: date) -> dict[int, list[tuple[date, int]]]:
    """Each per_asset service's units as a step function over first..last: (first, units) then one
    (day, units) per day the units change. per_asset units are the inventory in force whatever the
    tenant's state (billing-rules 3.7): no suspension applies here."""
    ids = list(service_ids)
    if not ids:
        return {}
    t = _tables()
    p = Params()
    changes = _agent_changes_sql(p, ids, t, first, last)
    sql = f"""SELECT sid, day, SUM(dn) OVER (PARTITION BY sid ORDER BY day) AS units FROM (
            SELECT sid, day, SUM(dn) AS dn FROM ({changes}) ch GROUP BY sid, day
        ) per_day ORDER BY sid, day"""
    steps: dict[int, list[tuple[date, int]]] = {sid: [(first, 0)] for sid in ids}
    for sid, day, units in _run(sql, p):
        day, units = _as_date(day), int(units)
        values = steps[sid]
        if day == first:
            values[0] = (first, units)
        elif units != values[-1][1]:
            values.append((day, units))
    return steps


def peak_assets_by_customer(*, partner_ids, first: date, last: date) -> dict[int, int]:
    """Statements (billing-rules 6.10): highest daily agent count of each customer's RMM organization in
    first..last (a customer without one has no row here: 0).

    As for the services' meters, agents never meet days (`_presence_changes_sql`): the running sum of
    an organization's changes (its groups together) is its count from that day on, so its highest value
    is the peak."""
    ids = list(partner_ids)
    if not ids:
        return {}
    t = _tables()
    p = Params()
    partners = p.each("pid", ids)
    changes = _presence_changes_sql(p, t, partners, first, last)
    sql = f"""SELECT c.id, MAX(r.n) FROM {t['cust']} c JOIN (
            SELECT partner_id, organization, org_ref, org_id,
                SUM(SUM(dn)) OVER (PARTITION BY partner_id, organization, org_ref, org_id ORDER BY day) AS n
            FROM ({changes}) g GROUP BY partner_id, organization, org_ref, org_id, day
        ) r ON r.partner_id = c.partner_id AND {_names_org('LOWER(TRIM(c.rmm_organization))', 'r')}
        WHERE c.partner_id IN ({partners})
        GROUP BY c.id"""
    return {cid: int(n or 0) for cid, n in _run(sql, p)}


def seat_days_by_service(*, service_ids, first: date, last: date) -> dict[tuple[int, date], int]:
    """{(service id, first of month): seat-days} over first..last, inside each service's dates and
    scope (the partner's customers, or its one customer): a fixed number of queries for any number of
    services.

    A service in force over the whole range (most of them) takes its customers' seat-days, counted
    once per customer and month for all such services together (the union of each member's seats:
    the same statement as `seat_days_by_customer`); only a service starting or ending inside the
    range has its seats clipped to its own dates."""

    ids = list(service_ids)
    if not ids:
        return {}
    services = list(Service.objects.filter(pk__in=ids).values_list("pk", "partner_id", "customer_id", "start_date",
                                                                    "end_date"))
    whole = [s for s in services if s[3] <= first and (s[4] is None or s[4] >= last)]
    counted = _seat_days_by_own_dates([s[0] for s in services if s not in whole], first, last)
    if whole:
        partner_ids = sorted({s[1] for s in whole})
        p = Params()
        days = _partner_seats(p, first=first, last=last, partner_ids=partner_ids, customer_id=None, by_month=True)
        per_customer = _run(f"SELECT customer_id, mfirst, SUM(n) FROM ({days}) d GROUP BY customer_id, mfirst", p)
        partner_of = dict(Customer.objects.filter(partner_id__in=partner_ids).values_list("pk", "partner_id"))
        owners: dict[tuple[str, int], dict[date, int]] = defaultdict(lambda: defaultdict(int))
        for customer_id, month, n in per_customer:
            owners[("customer", customer_id)][_as_date(month)] += int(n)
            owners[("partner", partner_of[customer_id])][_as_date(month)] += int(n)
        for sid, partner_id, customer_id, _, _ in whole:
            owner = ("customer", customer_id) if customer_id else ("partner", partner_id)
            counted.update({(sid, month): n for month, n in owners.get(owner, {}).items() if n})
    return counted


def _seat_days_by_own_dates(ids, first: date, last: date) -> dict[tuple[int, date], int]:
    """`seat_days_by_service` of services whose own dates cut the range: each seat clipped to them."""
    if not ids:
        return {}
    t = _tables()
    p = Params()
    months = _months_sql(p, first, last, by_month=True)
    source = f"""SELECT s.id AS sid, a.member_id, a.id AS aid, a.start_date, a.end_date, m.mfirst, m.lo, m.hi,
            s.start_date AS svc_start, s.end_date AS svc_end
        FROM {t['svc']} s
        JOIN {SeatAssignment._meta.db_table} a ON a.partner_id = s.partner_id
            AND (s.customer_id IS NULL OR a.customer_id = s.customer_id)
        JOIN ({months}) m ON a.start_date <= m.dhi AND (a.end_date IS NULL OR a.end_date >= m.dlo)
        WHERE s.id IN ({p.each("sid", ids)})"""
    days = _union_days_sql(
        keys="sid", source=source, starts=[_day_number("svc_start")],
        ends=[f"CASE WHEN svc_end IS NULL THEN hi ELSE {_day_number('svc_end')} END"],
    )
    sql = f"SELECT sid, mfirst, SUM(n) FROM ({days}) d GROUP BY sid, mfirst"
    return {(sid, _as_date(month)): int(n) for sid, month, n in _run(sql, p)}


# --- agents no customer takes (a sync run's and an import's lines) ---------------------------------------
def agents_unmatched(*, partner: Partner, agents=(), day: date, counts: Counter | None = None) -> list[dict]:
    """Agents of an inventory in an organization that no customer's RMM organization names, by organization
    (docs/rmm.md: never dropped silently). `billed_by`: the per_asset or assets-meter services that take them
    all the same (a partner-level service, an ORG filter), empty when nothing bills them."""
    customers = [c for c in Customer.objects.filter(partner=partner).values_list("rmm_organization", flat=True) if c]
    services = list(Service.objects.filter(partner=partner).filter(Q(method=Method.PER_ASSET) | Q(meter="assets"))
                    .active_on(day).select_related("customer"))
    # `counts`: {(organization, group, org_ref, org_id, views): agents}, when the caller counted them (in SQL)
    counts = counts if counts is not None else Counter((a.organization, a.group, a.org_ref, a.org_id, a.views)
                                                       for a in agents)
    unmatched: dict[str, dict] = {}
    for parts, n in counts.items():
        place = Place(*parts)
        if any(names_organization(name, place) for name in customers):
            continue
        entry = unmatched.setdefault(place.organization, {"organization": place.organization, "agents": 0,
                                                          "billed_by": set()})
        entry["agents"] += n
        entry["billed_by"] |= {s.code for s in services if filter_takes(
            org=s.rmm_org, group=s.rmm_group, view=s.rmm_view,
            customer_org=s.customer.rmm_organization if s.customer_id else None, place=place)}
    ordered = sorted(unmatched.values(), key=lambda e: (-e["agents"], e["organization"]))
    return [{**e, "billed_by": sorted(e["billed_by"])} for e in ordered]


def unmatched_summary(unmatched: list[dict]) -> list[str]:
    """The sync run's lines for agents no customer takes ("12 agents in organization 'Unnamed' match no
    customer")."""
    lines = []
    for entry in unmatched:
        billed = (f"billed by {', '.join(entry['billed_by'])}" if entry["billed_by"] else "not billed")
        lines.append(f"{entry['agents']} agent(s) in organization {entry['organization']!r} match no customer "
                     f"({billed})")
    return lines

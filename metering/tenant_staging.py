"""tenant-usage and tenant-events imports on PostgreSQL: the file COPYed into a staging table, applied in SQL.

A year of daily snapshots of a few thousand tenants is millions of rows. The engine (billing/core/importing.py)
reads each row in Python; here the file's bytes go to PostgreSQL as they are, through the same watch as
rmm-assets' and the usage records' (metering.staging._Scan: bytes COPY could read otherwise than the csv module,
whitespace to trim), every cell is read in SQL exactly as the kind's widgets read it, and a few set-based
statements write what the kinds in metering/imports.py write, by the same rules:

- tenant-usage: the last snapshot of a (customer, date) in the file wins; a date not stored yet is created,
  one stored with other values updated (stamped now, with this file as its source), one stored with the same
  values left as it was (its stamp included); every other row of that date counts as unchanged. One
  `usage.import` audit row per customer with snapshots created or updated.
- tenant-events: an exact duplicate (the same customer, action and instant), in the file or already recorded,
  is a no-op; the others are merged into the customer's suspensions. One `suspension.import` audit row per
  customer given new events.

As for the other staging paths, only a clean file is taken, and this path never reports an error itself: a row
the engine would refuse or might read otherwise (an unknown customer, a date in the future or in another form
than YYYY-MM-DD, a number in another form than plain digits, an instant in a form the two read differently),
raises NotClean, everything done here is rolled back, and the engine reads the file again, row by row, naming
each error as `row N: column: reason`. The events path is conservative about history: it takes a file only
when, for each customer, every event not already recorded comes after the customer's last recorded change, the
history recorded replays cleanly (no overlap) and the new events alternate from the state it leaves (suspend,
unsuspend, suspend...). Anything else (an event merged into the past, a double suspend) is the engine's to merge
or to refuse. So both paths give the same tables, audit rows and counts, or the same errors
(metering/tests/test_tenant_staging.py gives both random files). One log differs by design: the fact-change
rows PostgreSQL's triggers write (invoicing.FactChange) follow this path's statements, not the engine's batches;
each names the earliest day actually written, where the engine may also log a date it wrote and put back.
"""

from __future__ import annotations

from django.utils import timezone

from billing.core.copy_staging import SLUG_RE, CellReader, NotClean, _Scan, instant_read, staged_import
from billing.core.importing import ImportContext, ImportKind, ImportSummary
from billing.core.periods import utc_date
from billing.core.sql import Params
from metering.models import CALENDAR_FIRST
from metering.resources import BIG, COUNT
from partners.audit import audit_import_per_customer
from partners.choices import AuditAction

STAGE = "tenant_stage"
TABLES = (STAGE, "tenant_usage_plan", "tenant_events_in", "tenant_events_history",
          "tenant_events_plan", "tenant_events_new")
USAGE_FIELDS = ("users_count", "storage_bytes", "messages_count")  # metering.imports.USAGE_FIELDS


# --- tenant-usage -----------------------------------------------------------------------------------------------
def tenant_usage_fast_path(path, ctx: ImportContext, kind: ImportKind) -> ImportSummary | None:
    """Import a clean tenant-usage file (kind: the TenantUsageImport) by COPY; None when the engine must read it
    (then nothing was written)."""
    now = timezone.now()

    def apply(cursor, header, scan, rows):
        _usage_plan(cursor, header, scan, ctx, now)
        return _usage_apply(cursor, ctx, now)

    done = staged_import(path, ctx, kind, label=ctx.kind, tables=TABLES, apply=apply, numbered=True,
                         after=_audited(ctx, AuditAction.USAGE_IMPORT,
                                        lambda created, updated: {"snapshots": created + updated}))
    if done is None:
        return None
    rows, counts = done
    created = sum(c for _, c, _ in counts)
    updated = sum(u for _, _, u in counts)
    return ImportSummary(kind=ctx.kind, rows=rows, created=created, updated=updated,
                         unchanged=rows - created - updated, errors=[], error_count=0, bad_rows=0,
                         dry_run=ctx.dry_run, staged=True)


def _audited(ctx: ImportContext, action: AuditAction, values):
    """The `after` of a tenant import: one audit entry per customer of its (customer id, *counts), `values(*counts)`
    each."""
    return lambda counts: audit_import_per_customer(actor=ctx.actor, action=action, source=ctx.source,
                                                    counts={cid: values(*rest) for cid, *rest in counts})


def _usage_plan(cursor, header: list[str], scan: _Scan, ctx: ImportContext, now) -> None:
    """tenant_usage_plan: the last row of each (customer, date) of the file, read as the engine reads it, beside
    the snapshot stored. NotClean when any row is not certain to read as the engine reads it."""
    p = Params()
    cells = _Cells(header, scan, ctx, p)
    texts = [f"{cells.cell('date')} AS r_date", *(f"{cells.cell(f)} AS r_{f}" for f in USAGE_FIELDS)]
    values = ["CASE WHEN r_date <> '' THEN r_date::date END AS v_date",
              *(f"CASE WHEN r_{f} <> '' THEN r_{f}::bigint END AS v_{f}" for f in USAGE_FIELDS)]
    # a date only as YYYY-MM-DD (PostgreSQL reads more: 'today', 20260401, a year of 5 digits), written back alike
    bad = [f"v_date IS NULL OR r_date NOT LIKE '____-__-__' OR to_char(v_date, 'YYYY-MM-DD') <> r_date "
           f"OR v_date > {p.ref('today', utc_date(now))}"]
    # plain digits only (a sign or a leading zero: the engine's); beyond bigint (BIG) stops the statement
    for field, high, blank in (("users_count", COUNT, False), ("storage_bytes", BIG, False),
                               ("messages_count", BIG, True)):
        number, text = f"v_{field}", f"r_{field}"
        check = f"{number}::text <> {text} OR {number} NOT BETWEEN 0 AND {high}"
        bad.append(f"{text} <> '' AND ({check})" if blank else f"{number} IS NULL OR {check}")
    # the last row of each (customer, date), in order of customer and date (the order of the snapshots' key), with
    # the place of its first row (the engine audits customers in the order their dates first appear)
    cursor.execute(f"""
        CREATE TEMP TABLE tenant_usage_plan ON COMMIT DROP AS
        SELECT DISTINCT ON (customer_id, d) customer_id, d, u, s, m, NULL::bigint AS pk, false AS changed, first_n
        FROM (SELECT *, min(n) OVER (PARTITION BY customer_id, d) AS first_n
              FROM ({cells.checked(texts, values, bad)}) checked (n, customer_id, d, u, s, m)) rows
        ORDER BY customer_id, d, n DESC
    """, p)
    cursor.execute("SELECT EXISTS (SELECT FROM tenant_usage_plan WHERE customer_id IS NULL)")
    if cursor.fetchone()[0]:
        raise NotClean("a row with a cell to look at")
    # the snapshots stored for them (pk) and whether the file's values differ: looked up among the snapshots of
    # the file's customers and dates only (an index range, not the whole table)
    cursor.execute("SELECT array_agg(customer_id), min(first), max(last) FROM ("
                   "SELECT customer_id, min(d) AS first, max(d) AS last FROM tenant_usage_plan GROUP BY customer_id"
                   ") c")
    customers, first, last = cursor.fetchone()
    stored = {"customers": customers, "first": first, "last": last}
    where = "s.customer_id = ANY(%(customers)s) AND s.date BETWEEN %(first)s AND %(last)s"
    cursor.execute(f"SELECT EXISTS (SELECT FROM metering_usagesnapshot s WHERE {where})", stored)
    if cursor.fetchone()[0]:
        cursor.execute("ANALYZE tenant_usage_plan")  # a temporary table has no statistics: the join needs them
        cursor.execute(f"""
            UPDATE tenant_usage_plan p SET pk = s.id,
                changed = (s.users_count, s.storage_bytes, s.messages_count) IS DISTINCT FROM (p.u, p.s, p.m)
            FROM metering_usagesnapshot s
            WHERE {where} AND s.customer_id = p.customer_id AND s.date = p.d
        """, stored)


def _usage_apply(cursor, ctx: ImportContext, now) -> list[tuple[int, int, int]]:
    """The snapshots of tenant_usage_plan written as TenantUsageImport writes them: [(customer id, created,
    updated)] of the customers given new or changed snapshots."""
    cursor.execute("""
        SELECT customer_id, count(*) FILTER (WHERE pk IS NULL), count(*) FILTER (WHERE changed)
        FROM tenant_usage_plan WHERE pk IS NULL OR changed GROUP BY customer_id ORDER BY min(first_n)
    """)
    counts = cursor.fetchall()
    params = {"now": now, "source": ctx.source[:100]}
    if any(created for _, created, _ in counts):
        cursor.execute("""
            INSERT INTO metering_usagesnapshot (customer_id, date, users_count, storage_bytes, messages_count,
                                                recorded_at, source)
            SELECT customer_id, d, u, s, m, %(now)s, %(source)s FROM tenant_usage_plan WHERE pk IS NULL
        """, params)
    if any(updated for _, _, updated in counts):
        cursor.execute("""
            UPDATE metering_usagesnapshot t
            SET users_count = p.u, storage_bytes = p.s, messages_count = p.m, recorded_at = %(now)s,
                source = %(source)s
            FROM tenant_usage_plan p WHERE p.changed AND t.id = p.pk
        """, params)
    return counts


# --- tenant-events ----------------------------------------------------------------------------------------------
def tenant_events_fast_path(path, ctx: ImportContext, kind: ImportKind) -> ImportSummary | None:
    """Import a clean tenant-events file (kind: the TenantEventsImport) by COPY; None when the engine must read it
    (then nothing was written)."""
    def apply(cursor, header, scan, rows):
        _events_in(cursor, header, scan, ctx, timezone.now())
        _events_plan(cursor)
        return _events_apply(cursor, ctx)

    done = staged_import(path, ctx, kind, label=ctx.kind, tables=TABLES, apply=apply, numbered=True,
                         after=_audited(ctx, AuditAction.SUSPENSION_IMPORT,
                                        lambda suspended, unsuspended: {"suspended": suspended,
                                                                        "unsuspended": unsuspended}))
    if done is None:
        return None
    rows, counts = done
    created = sum(s + u for _, s, u in counts)
    return ImportSummary(kind=ctx.kind, rows=rows, created=created, updated=0, unchanged=rows - created, errors=[],
                         error_count=0, bad_rows=0, dry_run=ctx.dry_run, staged=True)


def _events_in(cursor, header: list[str], scan: _Scan, ctx: ImportContext, now) -> None:
    """tenant_events_in: each row of the file as (n, customer id, action, instant). NotClean when any row is not
    certain to read as the engine reads it."""
    p = Params()
    cells = _Cells(header, scan, ctx, p)
    texts = [f"{cells.cell('action')} AS r_action", f"{cells.cell('at')} AS r_at"]
    at_cast, at_refused = instant_read("r_at", "v_at", p, now)
    choices = "'suspend', 'unsuspend'"
    values = [f"CASE WHEN r_action IN ({choices}) THEN r_action WHEN r_action ~ '^[A-Za-z]+$' "
              f"AND lower(r_action) IN ({choices}) THEN lower(r_action) END AS v_action",
              f"{at_cast} AS v_at"]
    # an instant before the calendar is the engine's to refuse (TenantEventsImport)
    bad = ["v_action IS NULL", at_refused,
           f"(v_at AT TIME ZONE 'UTC')::date < {p.ref('calendar_first', CALENDAR_FIRST)}::date"]
    cursor.execute(f"""
        CREATE TEMP TABLE tenant_events_in ON COMMIT DROP AS
        SELECT * FROM ({cells.checked(texts, values, bad)}) checked (n, customer_id, action, at)
    """, p)
    cursor.execute("SELECT EXISTS (SELECT FROM tenant_events_in WHERE customer_id IS NULL)")
    if cursor.fetchone()[0]:
        raise NotClean("a row with a cell to look at")


def _events_plan(cursor) -> None:
    """tenant_events_new: the events not recorded yet, each customer's in the order the engine replays them
    (instant, then file order), with the previous action and the next instant. NotClean unless the engine's
    replay of them is certain to be the plain one (see the module's docstring)."""
    cursor.execute("ANALYZE tenant_events_in")
    # each customer's history: when it last changed, whether it ends suspended, whether it replays cleanly: in
    # order of suspension, each closed when or after it began and before the next began (an unsuspend recorded at
    # the instant of the next suspend replays first, but a zero-length suspension's own unsuspend after it), the
    # open one last
    cursor.execute("""
        CREATE TEMP TABLE tenant_events_history ON COMMIT DROP AS
        SELECT customer_id, max(greatest(suspended_at, unsuspended_at)) AS last_change,
               bool_or(unsuspended_at IS NULL) AS open,
               bool_and(CASE WHEN unsuspended_at IS NULL THEN next IS NULL
                             WHEN unsuspended_at > suspended_at THEN next IS NULL OR next >= unsuspended_at
                             ELSE unsuspended_at = suspended_at AND (next IS NULL OR next > unsuspended_at) END)
               AS replays
        FROM (
            SELECT customer_id, suspended_at, unsuspended_at,
                   lead(suspended_at) OVER (PARTITION BY customer_id ORDER BY suspended_at, id) AS next
            FROM metering_suspension WHERE customer_id IN (SELECT customer_id FROM tenant_events_in)
        ) s
        GROUP BY customer_id
    """)
    cursor.execute("SELECT EXISTS (SELECT FROM tenant_events_history WHERE NOT replays)")
    if cursor.fetchone()[0]:
        raise NotClean("a suspension history the engine replays itself")
    # old: at or before the last change (then it must be recorded already: a duplicate); first: not a repeat
    # of an earlier row of the file
    cursor.execute("""
        CREATE TEMP TABLE tenant_events_plan ON COMMIT DROP AS
        SELECT i.n, i.customer_id, i.action, i.at, coalesce(i.at <= h.last_change, false) AS old,
               row_number() OVER (PARTITION BY i.customer_id, i.action, i.at ORDER BY i.n) = 1 AS first,
               coalesce(h.open, false) AS open
        FROM tenant_events_in i LEFT JOIN tenant_events_history h ON h.customer_id = i.customer_id
    """)
    cursor.execute("""
        SELECT EXISTS (
            SELECT FROM tenant_events_plan e
            WHERE e.old AND NOT EXISTS (
                SELECT FROM metering_suspension s
                WHERE s.customer_id = e.customer_id
                  AND CASE WHEN e.action = 'suspend' THEN s.suspended_at = e.at ELSE s.unsuspended_at = e.at END
            )
        )
    """)
    if cursor.fetchone()[0]:
        raise NotClean("an event to merge into the recorded history")
    cursor.execute("""
        CREATE TEMP TABLE tenant_events_new ON COMMIT DROP AS
        SELECT n, customer_id, action, at, open,
               lag(action) OVER w AS previous, lead(at) OVER w AS next_at, row_number() OVER w AS k
        FROM tenant_events_plan WHERE NOT old AND first
        WINDOW w AS (PARTITION BY customer_id ORDER BY at, n)
    """)
    cursor.execute("""
        SELECT EXISTS (
            SELECT FROM tenant_events_new
            WHERE action = coalesce(previous, CASE WHEN open THEN 'suspend' ELSE 'unsuspend' END)
        )
    """)
    if cursor.fetchone()[0]:
        raise NotClean("a suspend while suspended or an unsuspend while not")


# a suspension's whole days, as Suspension.set_days (billing.core.periods.whole_days_between) gives them
_FIRST_DAY = ("(({at}) AT TIME ZONE 'UTC')::date "
              "+ CASE WHEN (({at}) AT TIME ZONE 'UTC')::time = time '00:00' THEN 0 ELSE 1 END")
_LAST_DAY = "(({at}) AT TIME ZONE 'UTC')::date - 1"


def _events_apply(cursor, ctx: ImportContext) -> list[tuple[int, int, int]]:
    """tenant_events_new written as TenantEventsImport writes it: a suspension left open by the history and
    closed by the file is replaced (as the engine rebuilds it: this file its source), and each new suspend begins
    a suspension, closed by the unsuspend after it. [(customer id, suspends, unsuspends)] per customer."""
    params = {"source": ctx.source[:100]}
    columns = "customer_id, suspended_at, unsuspended_at, first_full_day, last_full_day, source"
    cursor.execute(f"""
        WITH closed AS (
            DELETE FROM metering_suspension s USING tenant_events_new e
            WHERE e.k = 1 AND e.action = 'unsuspend' AND s.customer_id = e.customer_id AND s.unsuspended_at IS NULL
            RETURNING s.customer_id, s.suspended_at, e.at AS unsuspended_at
        )
        INSERT INTO metering_suspension ({columns})
        SELECT customer_id, suspended_at, unsuspended_at, {_FIRST_DAY.format(at='suspended_at')},
               {_LAST_DAY.format(at='unsuspended_at')}, %(source)s
        FROM closed ORDER BY customer_id
    """, params)
    cursor.execute(f"""
        INSERT INTO metering_suspension ({columns})
        SELECT customer_id, at, next_at, {_FIRST_DAY.format(at='at')}, {_LAST_DAY.format(at='next_at')}, %(source)s
        FROM tenant_events_new WHERE action = 'suspend' ORDER BY customer_id, at
    """, params)
    # in the order of each customer's first row, a repeat of an event already recorded included (as the engine)
    cursor.execute("""
        SELECT e.customer_id, count(*) FILTER (WHERE e.action = 'suspend'),
               count(*) FILTER (WHERE e.action = 'unsuspend')
        FROM tenant_events_new e
        JOIN (SELECT customer_id, min(n) AS first_n FROM tenant_events_in GROUP BY customer_id) f
          ON f.customer_id = e.customer_id
        GROUP BY e.customer_id, f.first_n ORDER BY f.first_n
    """)
    return cursor.fetchall()


# --- shared -----------------------------------------------------------------------------------------------------
class _Cells(CellReader):
    """The staged cells as the engine reads them, in SQL (billing.core.copy_staging.CellReader), with each row's
    customer (partner and customer by slug, as partners.lookups finds them)."""

    def __init__(self, header: list[str], scan: _Scan, ctx: ImportContext, p: Params):
        super().__init__(header, scan.trim, p)
        self.partner = ctx.partner

    def checked(self, texts: list[str], values: list[str], bad: list[str]) -> str:
        """A SELECT of (n, customer id, the values...) per staged row: the customer NULL when a row is bad (one
        of `bad`, an unknown customer, another partner than --partner, a cell near the csv module's limits).
        `texts` are the cells as r_NAME, `values` their values as v_NAME, read once."""
        p = self.p
        texts = [f"{self.cell('partner')} AS r_partner", f"{self.cell('customer')} AS r_customer", *texts]
        bad = [*bad, "k.customer_id IS NULL", *self.raw_checks]
        if self.partner:  # import_csv --partner: a row of another partner is a row error
            bad.append(f"t.r_partner <> {p.ref('partner', self.partner)}")
        raw = "".join(f", c{i}" for i in range(len(self.header))) if self.raw_checks else ""
        slug = p.ref("slug", SLUG_RE)
        names = [v.rsplit(" AS ", 1)[1] for v in values]
        return f"""
            SELECT t.n, CASE WHEN {' OR '.join(f'({b})' for b in bad)} THEN NULL ELSE k.customer_id END,
                   {', '.join(f't.{name}' for name in names)}
            FROM (
                SELECT * FROM (SELECT n, {', '.join(texts)}{raw} FROM {STAGE} OFFSET 0) r,
                LATERAL (SELECT {', '.join(values)}) x OFFSET 0
            ) t
            LEFT JOIN (
                SELECT p.slug AS partner_slug, c.slug AS customer_slug, c.id AS customer_id
                FROM partners_customer c JOIN partners_partner p ON p.id = c.partner_id
                WHERE p.slug ~ {slug} AND c.slug ~ {slug}
            ) k ON k.partner_slug = t.r_partner AND k.customer_slug = t.r_customer
        """

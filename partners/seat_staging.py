"""The seat-events import on PostgreSQL, set-based: the file COPYed into a staging table, the seat rules checked by
window functions over the staged events and the history, the seats written by INSERT … SELECT (issue 21).

The engine (partners.seat_import: an ordered replay of the partner's timeline in Python) stays the reference, and
this path never reports an error itself. It takes the files the nightly feeds send, whose new events all come
after the history already recorded, and proves them clean; anything else rolls back and goes to the engine,
which names every error as `row N: column: reason`:

1. the bytes are COPYed into a TEMP table with each row's place in the file (`billing.core.copy_staging` watches
   what COPY could read otherwise than the csv module), and one statement reads every cell as the resource's
   widgets read it (slugs, the member's name, the action in any case, the instant in the forms both read
   alike, not in the future), finding each row's partner and customer: a row it cannot read (an unknown
   customer, a bad instant, a blank cell, another partner under --partner…) is not clean;
2. the members are created (as the engine creates them, duplicates included); an event equal to an earlier row
   of the file, or to the history already recorded, is a no-op (`duplicate`);
3. per partner, the new events must all come after the history's last instant (T0 > H): then the history before
   them is settled and the merged timeline is the seats open at T0 followed by the file's events, in the order
   the engine replays them (instant, then file order). Over that order, running sums (window functions) give
   each event the member's, the customer's and the partner's seats just before it, and each assign and unassign
   is checked as `check_assignment` checks it: no double assign, no unassign without a seat, the customer's seat
   cap, and every seat_days commitment without overage in force on the event's UTC day (its committed seats
   then, purchases effective at month boundaries: `committed_seats_on`, computed per partner and day in Python
   from the same TermsBook the engine reads);
4. the seats are written: each new assign with the instant of the member's next event as its end, and each seat
   open at T0 that the file closes rebuilt with its end (the open row deleted, as the engine deletes and
   rebuilds a changed member's seats); the audit rows are the engine's (seat.import per customer with its
   counts and the seats already recorded that it ended), written by INSERT … SELECT.

`metering`'s property test gives both paths random histories and files (partners/tests/test_seat_staging.py).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from django.db import connection
from django.utils import timezone

from billing.core.copy_staging import SLUG_RE, TEXT_MAX, CellReader, NotClean, _Scan, instant_read, staged_import
from billing.core.importing import ImportContext, ImportKind, ImportSummary
from billing.core.sql import Params
from partners.choices import AuditAction
from partners.models import Method, Partner, SeatFileImported, SeatPurchase, Service
from partners.seating import committed_seats_on
from partners.services import alerts_evaluate
from partners.terms import TermsBook

# billing.core.widgets.SCIENTIFIC as a PostgreSQL pattern: a member id a spreadsheet rewrote (6.94826E+14)
SCIENTIFIC_SQL = r"^[+-]?[0-9]+([.,][0-9]+)?[eE][+-]?[0-9]+$"

STAGE, RAW, EVENTS, LIMITS = "seat_stage", "seat_raw", "seat_ev", "seat_limits"


def seat_events_fast_path(path, ctx: ImportContext, kind: ImportKind) -> ImportSummary | None:
    """Import a clean seat-events file set-based; None when the engine must read it (nothing was written)."""
    if connection.vendor != "postgresql":
        return None
    sha256 = _sha256(path)
    rows = _imported_before(sha256, ctx)
    if rows is not None:  # the same bytes, and no seat of their partners written since: every row a duplicate
        return ImportSummary(kind=ctx.kind, rows=rows, created=0, updated=0, unchanged=rows, errors=[], error_count=0,
                             bad_rows=0, dry_run=ctx.dry_run, staged=True)

    def after(applied) -> None:
        *_, written, partner_ids, rows = applied
        if ctx.dry_run:
            return
        if written:  # alerts judge the state now, as the engine's import does after its replay
            alerts_evaluate(partner_ids=sorted(written))
        # after the seats' own writes, whose trigger forgets the files imported before for these partners
        SeatFileImported.objects.filter(sha256=sha256).delete()
        SeatFileImported.objects.bulk_create(
            SeatFileImported(sha256=sha256, partner_id=pk, partners=len(partner_ids), rows=rows) for pk in partner_ids)

    done = staged_import(path, ctx, kind, label="seat-events", tables=(STAGE, RAW, EVENTS, LIMITS, "seat_h"),
                         apply=lambda cursor, header, scan, rows: (*_apply(cursor, header, scan, ctx), rows),
                         after=after, numbered=True)
    if done is None:
        return None
    rows, (created, unchanged, *_) = done
    return ImportSummary(kind=ctx.kind, rows=rows, created=created, updated=0, unchanged=unchanged, errors=[],
                         error_count=0, bad_rows=0, dry_run=ctx.dry_run, staged=True)


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _imported_before(sha256: str, ctx: ImportContext) -> int | None:
    """The data rows of a file of these bytes the set-based path imported, when none of its partners' seats has been
    written since (each partner's row is still there: the seats' trigger deletes it on any write), else None. Under
    --partner, only a file of that partner alone."""
    found = list(SeatFileImported.objects.filter(sha256=sha256).values_list("partner_id", "partners", "rows"))
    if not found or len({pk for pk, _, _ in found}) != found[0][1]:
        return None
    if ctx.partner and {pk for pk, _, _ in found} != set(
            Partner.objects.filter(slug=ctx.partner).values_list("pk", flat=True)):
        return None
    return found[0][2]


def _read(header: list[str], scan: _Scan, ctx: ImportContext, p: Params) -> str:
    """The SELECT of the staged rows as the resource reads them: (n, partner_id, customer_id, member, action, at)
    with customer_id NULL on a row the engine must read (which makes the file not clean)."""
    cells = CellReader(header, scan.trim, p)
    cell, raw = cells.cell, cells.raw_checks
    cast, instant_refused = instant_read("r_at", "v_at", p, timezone.now())
    texts = ", ".join(f"{cell(name)} AS r_{name}" for name in ("partner", "customer", "member", "action", "at"))
    bad = [
        f"r_partner !~ {p.ref('slug', SLUG_RE)}", f"r_customer !~ {p.ref('slug', SLUG_RE)}",
        "r_member = ''", f"char_length(r_member) > {TEXT_MAX}",
        # an id a spreadsheet rewrote in scientific notation (TextWidget's an_id): the engine refuses it by row
        f"r_member ~ {p.ref('scientific', SCIENTIFIC_SQL)}",
        "v_action IS NULL",
        instant_refused,  # the instant: only the forms PostgreSQL and the engine read alike
        "k.customer_id IS NULL",
    ]
    if scan.apostrophes:  # the exports' ' before formula-like text, which the engine takes off
        bad += [f"r_{name} LIKE {p.ref('quote', chr(39) + '%')}" for name in ("partner", "customer", "member")]
    if ctx.partner:  # import_csv --partner: a row of another partner is a row error
        bad.append(f"r_partner <> {p.ref('partner', ctx.partner)}")
    bad += raw
    raw_columns = "".join(f", c{header.index(n)}" for n in ("partner", "customer", "member", "action", "at")) \
        if raw else ""
    return f"""
        SELECT t.n, k.partner_id, CASE WHEN {' OR '.join(f'({b})' for b in bad)} THEN NULL ELSE k.customer_id END
               AS customer_id, t.r_member AS member, t.v_action AS action, t.v_at AS at
        FROM (
            SELECT * FROM (SELECT n, {texts}{raw_columns} FROM {STAGE} OFFSET 0) r,
            -- the action in any case of ASCII letters (PostgreSQL lower-cases İ to i, Python to i and a dot)
            LATERAL (SELECT CASE WHEN r_action IN ('assign', 'unassign') THEN r_action
                                 WHEN r_action ~ '^[A-Za-z]+$' AND lower(r_action) IN ('assign', 'unassign')
                                 THEN lower(r_action) END AS v_action,
                            {cast} AS v_at) x
            OFFSET 0
        ) t
        LEFT JOIN (
            SELECT p.slug AS partner_slug, c.slug AS customer_slug, c.partner_id, c.id AS customer_id
            FROM partners_customer c JOIN partners_partner p ON p.id = c.partner_id
        ) k ON k.partner_slug = t.r_partner AND k.customer_slug = t.r_customer
    """


def _apply(cursor, header: list[str], scan: _Scan, ctx: ImportContext) -> tuple[int, int, set[int], list[int]]:
    """Check and write the staged events: (events created, duplicates, the partners written, the file's partners)."""
    p = Params()
    ctx.step("finding customers and members")
    cursor.execute(f"CREATE TEMP TABLE {RAW} ON COMMIT DROP AS {_read(header, scan, ctx, p)}", p)
    cursor.execute(f"SELECT EXISTS (SELECT FROM {RAW} WHERE customer_id IS NULL)")
    if cursor.fetchone()[0]:
        raise NotClean("a row the engine must read")
    cursor.execute(f"SELECT DISTINCT partner_id FROM {RAW} ORDER BY 1")
    partner_ids = [row[0] for row in cursor.fetchall()]
    # the same lock as the live seat service and the engine: caps and commitments hold against concurrent assigns
    cursor.execute("SELECT id FROM partners_partner WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [partner_ids])
    # 2. members, as the engine creates them (every row's, duplicates included); then each event with its member
    # and whether it is a duplicate (of an earlier row, or of the history: a seat begun or ended then)
    cursor.execute(f"""
        INSERT INTO partners_member (customer_id, name)
        SELECT d.customer_id, d.member FROM (SELECT DISTINCT customer_id, member FROM {RAW}) d
        WHERE NOT EXISTS (SELECT FROM partners_member m WHERE m.customer_id = d.customer_id AND m.name = d.member)
        ORDER BY d.customer_id, d.member  -- the unique (customer, name) index written in its order, page after page
    """)  # a member another session adds meanwhile breaks the unique index: not clean, the engine reads the file
    # H: each partner's last instant of history (a seat begun or ended); an event after it cannot repeat the history,
    # so only the events up to it are looked up among the seats (a nightly file: none)
    cursor.execute("""
        CREATE TEMP TABLE seat_h ON COMMIT DROP AS
        SELECT p.id AS partner_id, greatest(
            (SELECT max(s.assigned_at) FROM partners_seatassignment s WHERE s.partner_id = p.id),
            (SELECT max(s.removed_at) FROM partners_seatassignment s
             WHERE s.partner_id = p.id AND s.end_date = (SELECT max(e.end_date) FROM partners_seatassignment e
                                                          WHERE e.partner_id = p.id))) AS h
        FROM partners_partner p WHERE p.id = ANY(%s)
    """, [partner_ids])
    cursor.execute(f"""
        CREATE TEMP TABLE {EVENTS} ON COMMIT DROP AS
        SELECT r.n, r.partner_id, r.customer_id, m.id AS member_id, r.action, r.at,
               row_number() OVER (PARTITION BY m.id, r.at, r.action ORDER BY r.n) > 1
               OR (r.at <= h.h AND r.action = 'assign' AND EXISTS (
                   SELECT FROM partners_seatassignment s WHERE s.member_id = m.id AND s.assigned_at = r.at))
               OR (r.at <= h.h AND r.action = 'unassign' AND EXISTS (
                   SELECT FROM partners_seatassignment s WHERE s.member_id = m.id AND s.removed_at = r.at))
               AS duplicate
        FROM {RAW} r JOIN partners_member m ON m.customer_id = r.customer_id AND m.name = r.member
        JOIN seat_h h ON h.partner_id = r.partner_id
    """)
    cursor.execute(f"SELECT count(*) FILTER (WHERE duplicate), count(*) FILTER (WHERE NOT duplicate) FROM {EVENTS}")
    unchanged, created = cursor.fetchone()
    if created == 0:
        return 0, unchanged, set(), partner_ids
    # 3. the new events come after the history (T0 > H), per partner
    cursor.execute(f"""
        SELECT e.partner_id FROM (SELECT partner_id, min(at) AS t0 FROM {EVENTS} WHERE NOT duplicate
                                  GROUP BY partner_id) e
        JOIN seat_h h ON h.partner_id = e.partner_id
        WHERE e.t0 <= h.h
        LIMIT 1
    """)
    if cursor.fetchone() is not None:
        raise NotClean("new events before the history's last instant")
    ctx.step("checking the seat rules")
    _limits(cursor)
    # each rule sums only the events it judges (each is its own window, partitioned by its scope): the member's
    # seat always; the customer's where it has a cap or a commitment without overage; the partner's where the
    # partner has one. A nightly file of customers without caps pays for one window, not three.
    cursor.execute(f"""
        WITH e AS (
            SELECT n, partner_id, customer_id, member_id, action, at, (at AT TIME ZONE 'UTC')::date AS day,
                   CASE WHEN action = 'assign' THEN 1 ELSE -1 END AS d
            FROM {EVENTS} WHERE NOT duplicate
        ),
        -- the seats open at T0 (end_date is blank exactly when removed_at is): the (partner, start, end) index
        open AS (SELECT partner_id, customer_id, member_id FROM partners_seatassignment
                 WHERE partner_id = ANY(%(partners)s) AND end_date IS NULL AND removed_at IS NULL),
        capped AS (SELECT id AS customer_id, seat_cap FROM partners_customer
                   WHERE partner_id = ANY(%(partners)s) AND (seat_cap IS NOT NULL OR id IN (
                       SELECT customer_id FROM {LIMITS} WHERE customer_id IS NOT NULL))),
        members AS (
            SELECT e.action, coalesce(o.n, 0) + sum(d) OVER (PARTITION BY e.member_id ORDER BY at, e.n
                                                              ROWS UNBOUNDED PRECEDING) - d AS had
            FROM e LEFT JOIN (SELECT member_id, count(*) AS n FROM open GROUP BY member_id) o
                   ON o.member_id = e.member_id
        ),
        customers AS (
            SELECT e.action, e.customer_id, e.day, k.seat_cap,
                   coalesce(o.n, 0) + sum(d) OVER (PARTITION BY e.customer_id ORDER BY at, e.n
                                                   ROWS UNBOUNDED PRECEDING) - d AS had
            FROM e JOIN capped k ON k.customer_id = e.customer_id
            LEFT JOIN (SELECT customer_id, count(*) AS n FROM open GROUP BY customer_id) o
                   ON o.customer_id = e.customer_id
        ),
        partners AS (
            SELECT e.action, e.partner_id, e.day,
                   coalesce(o.n, 0) + sum(d) OVER (PARTITION BY e.partner_id ORDER BY at, e.n
                                                   ROWS UNBOUNDED PRECEDING) - d AS had
            FROM e LEFT JOIN (SELECT partner_id, count(*) AS n FROM open GROUP BY partner_id) o
                   ON o.partner_id = e.partner_id
            WHERE e.partner_id IN (SELECT partner_id FROM {LIMITS} WHERE customer_id IS NULL)
        )
        SELECT EXISTS (SELECT FROM members x WHERE (x.action = 'unassign' AND x.had <> 1)
                                                OR (x.action = 'assign' AND x.had <> 0))
            OR EXISTS (SELECT FROM customers x
                       LEFT JOIN (SELECT customer_id, day, min(committed) AS committed FROM {LIMITS}
                                  WHERE customer_id IS NOT NULL GROUP BY customer_id, day) lc
                              ON lc.customer_id = x.customer_id AND lc.day = x.day
                       WHERE x.action = 'assign' AND ((x.seat_cap IS NOT NULL AND x.had + 1 > x.seat_cap)
                                                      OR x.had >= lc.committed))
            OR EXISTS (SELECT FROM partners x
                       JOIN (SELECT partner_id, day, min(committed) AS committed FROM {LIMITS}
                             WHERE customer_id IS NULL GROUP BY partner_id, day) lp
                         ON lp.partner_id = x.partner_id AND lp.day = x.day
                       WHERE x.action = 'assign' AND x.had >= lp.committed)
    """, {"partners": partner_ids})
    if cursor.fetchone()[0]:
        raise NotClean("a seat rule is broken (the engine names the row)")
    ctx.step("writing the seats")
    _write(cursor, ctx)
    cursor.execute(f"SELECT DISTINCT partner_id FROM {EVENTS} WHERE NOT duplicate")
    return created, unchanged, {row[0] for row in cursor.fetchall()}, partner_ids


def _limits(cursor) -> None:
    """seat_limits: per partner and UTC day of a new assign, each seat_days commitment without overage in force
    then with its committed seats (`committed_seats_on`, the terms of that day): what `check_assignment`
    enforces. A few rows per partner and day, computed here by the one function of the rule."""
    cursor.execute(f"CREATE TEMP TABLE {LIMITS} (partner_id bigint, customer_id bigint, day date, committed int) "
                   "ON COMMIT DROP")
    cursor.execute(f"""SELECT DISTINCT partner_id, (at AT TIME ZONE 'UTC')::date FROM {EVENTS}
                       WHERE NOT duplicate AND action = 'assign'""")
    days = defaultdict(set)
    for partner_id, day in cursor.fetchall():
        days[partner_id].add(day)
    services = list(Service.objects.filter(partner_id__in=list(days), method=Method.SEAT_DAYS, overage_enabled=False))
    if not services:
        return
    purchases = defaultdict(list)
    for service_id, effective, seats in SeatPurchase.objects.filter(service__in=services).values_list(
            "service_id", "effective_date", "seats"):
        purchases[service_id].append((effective, seats))
    book = TermsBook(services)
    rows = []
    for service in services:
        for day in sorted(days[service.partner_id]):
            if service.start_date > day or (service.end_date is not None and day > service.end_date):
                continue
            dated = book.on(service, day)
            if dated.overage_enabled:
                continue
            committed = committed_seats_on(day, committed_quantity=dated.committed_quantity,
                                           purchases=purchases[service.pk])
            if committed > 0:
                rows.append((service.partner_id, service.customer_id, day, committed))
    with cursor.copy(f"COPY {LIMITS} (partner_id, customer_id, day, committed) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


ISO = "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN mod(extract(microseconds FROM {0})::int, 1000000) <> 0 THEN to_char({0} AT TIME ZONE 'UTC', '.US') ELSE '' END || '+00:00'"  # noqa: E501  datetime.isoformat() of a UTC instant, as partners.audit.jsonable writes it


def _iso(column: str) -> str:
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE {ISO.format(column)} END"


def _write(cursor, ctx: ImportContext) -> None:
    """The seats and the audit rows, as the engine writes them for a timeline that is all new events after T0."""
    p = Params()
    source = p.ref("source", ctx.source[:100] or "import")
    actor = ctx.actor
    p.ref("actor_id", actor.user.pk if actor.user is not None else None)
    p.ref("actor_label", str(actor)[:200])
    p.ref("file", ctx.source)
    cursor.execute(f"""
        CREATE TEMP TABLE seat_new ON COMMIT DROP AS
        SELECT partner_id, customer_id, member_id, action, at, n,
               lead(at) OVER (PARTITION BY member_id ORDER BY at, n) AS next_at,
               row_number() OVER (PARTITION BY member_id ORDER BY at, n) AS k
        FROM {EVENTS} WHERE NOT duplicate
    """)
    # the seats open at T0 that the file ends (the member's first new event is its unassign): rebuilt with their end,
    # as the engine rebuilds a changed member's seats, keeping their source (an UPDATE in place measured slower: it
    # writes every index of the table's scattered pages, where the rebuilt rows go at its end with the new ones)
    cursor.execute("""
        CREATE TEMP TABLE seat_ended ON COMMIT DROP AS
        SELECT s.id, s.partner_id, s.customer_id, s.member_id, s.assigned_at, s.source, f.at AS removed_at
        FROM partners_seatassignment s JOIN seat_new f ON f.member_id = s.member_id AND f.k = 1
        WHERE s.removed_at IS NULL
    """)
    cursor.execute("DELETE FROM partners_seatassignment WHERE id IN (SELECT id FROM seat_ended)")
    cursor.execute(f"""
        INSERT INTO partners_seatassignment (partner_id, customer_id, member_id, assigned_at, removed_at,
                                             start_date, end_date, source)
        SELECT partner_id, customer_id, member_id, assigned_at, removed_at, (assigned_at AT TIME ZONE 'UTC')::date,
               (removed_at AT TIME ZONE 'UTC')::date, source
        FROM (SELECT partner_id, customer_id, member_id, at AS assigned_at, next_at AS removed_at, {source} AS source
              FROM seat_new WHERE action = 'assign'
              UNION ALL
              SELECT partner_id, customer_id, member_id, assigned_at, removed_at, source FROM seat_ended) w
        ORDER BY partner_id, assigned_at  -- the indexes by start are written at their end, page after page
    """, p)
    common = "now(), %(actor_id)s, %(actor_label)s, x.partner_id"
    columns = "(at, actor_id, actor_label, partner_id, action, object_type, object_id, object_repr, before, after)"
    # one entry per customer, with the seats the file wrote (its own and the open ones it ended, with their end) and
    # the seats already recorded that it ended, as they were (seat_import._audit)
    replaced = (f"jsonb_agg(jsonb_build_object('id', x.id, 'member', m.name, 'assigned_at', {_iso('x.assigned_at')}, "
                f"'removed_at', NULL) ORDER BY x.assigned_at, m.name COLLATE \"C\")")
    written = (f"jsonb_agg(jsonb_build_object('member', m.name, 'assigned_at', {_iso('w.assigned_at')}, "
               f"'removed_at', {_iso('w.removed_at')}) ORDER BY w.assigned_at, m.name COLLATE \"C\")")
    cursor.execute(f"""
        INSERT INTO partners_auditlog {columns}
        SELECT {common}, {p.ref('import', AuditAction.SEAT_IMPORT.value)}, 'partners.Customer', x.customer_id::text,
               c.slug, NULL, jsonb_build_object('assigned', x.assigned, 'unassigned', x.unassigned, 'file', %(file)s,
                                                'written', coalesce(w.seats, '[]'), 'replaced', coalesce(r.seats, '[]'))
        FROM (SELECT partner_id, customer_id, count(*) FILTER (WHERE action = 'assign') AS assigned,
                     count(*) FILTER (WHERE action = 'unassign') AS unassigned, min(at) AS first, min(n) AS n
              FROM seat_new GROUP BY partner_id, customer_id) x
        JOIN partners_customer c ON c.id = x.customer_id
        LEFT JOIN (SELECT w.customer_id, {written} AS seats
                   FROM (SELECT customer_id, member_id, at AS assigned_at, next_at AS removed_at FROM seat_new
                         WHERE action = 'assign'
                         UNION ALL
                         SELECT customer_id, member_id, assigned_at, removed_at FROM seat_ended) w
                   JOIN partners_member m ON m.id = w.member_id GROUP BY w.customer_id) w
               ON w.customer_id = x.customer_id
        LEFT JOIN (SELECT x.customer_id, {replaced} AS seats FROM seat_ended x
                   JOIN partners_member m ON m.id = x.member_id GROUP BY x.customer_id) r
               ON r.customer_id = x.customer_id
        ORDER BY x.partner_id, x.first, x.n
    """, p)
    for table in ("seat_new", "seat_ended"):
        cursor.execute(f"DROP TABLE {table}")

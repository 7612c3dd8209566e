"""The rmm-assets import on PostgreSQL: COPY the file into a staging table, check and apply it in SQL.

The row-by-row engine (billing/core/importing.py) reads a file in Python: the csv module, a widget per cell, a
dict per agent, then the rows written back with COPY. Here the file's bytes go to PostgreSQL as they are
(COPY into a TEMP table of text columns, with each row's place in the file), one statement cleans and
checks every cell, and a few set-based statements apply the inventory exactly as
metering.services.inventory_apply does (its docstring has the rules): the same agents, presences,
InventorySync, audit row and unit change notices (the last three written by the same functions), and the
same counts. What is left of a 100,000-agent import is PostgreSQL writing 200,000 rows, their indexes and
the foreign key checks at commit (some 2 of its 2.5 seconds on a 2-core machine).

Only a clean file is taken. This path decides "clean or not" and never reports an error itself: when
anything is not certain to read here exactly as the engine reads it, everything it did is rolled back
and the engine reads the file again, row by row, and names each error as `row N: column: reason`.
Not clean: bytes that are not UTF-8, a NUL, `\\.` (COPY's end-of-data marker), a header the engine would
refuse, a quote that does not open or close a whole cell, a line COPY refuses (a blank line, too few or too
many cells, mixed line ends), a blank required cell, a cell over 200 characters or starting with a ' (the
exports' formula escape, which the engine takes off), a last_seen in any other form than
YYYY-MM-DDTHH:MM:SS[.ffffff] with Z or a +HH:MM offset, the same agent twice with different values, a cell
or a row near the csv module's limits. A UTF-8 byte-order mark is skipped, as the engine skips it.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

import psycopg
from django.db import DatabaseError, connection, transaction

from billing.core.copy_staging import (  # noqa: F401  (the fast paths of metering import them from here too)
    CARRY_LIMIT,
    CHUNK,
    INSTANT_RE,
    MAX_COLUMNS,
    PLAIN_WHITESPACE,
    PY_WHITESPACE,
    TEXT_MAX,
    NotClean,
    _header,
    _Scan,
    chunk_progress,
    copy_to_stage,
)
from billing.core.importing import (
    MAX_RECORD_CHARS,
    ImportContext,
    ImportFileError,
    ImportKind,
    ImportSummary,
)
from metering.counting import CountingRules
from metering.models import AgentPresence, RmmIntegration
from metering.notices import unit_notices_around
from metering.selectors import agents_unmatched
from metering.services import InventoryError, InventoryResult, inventory_lock, inventory_record

logger = logging.getLogger(__name__)

FIELDS = ("agent_id", "machine_name", "organization", "group", "os", "last_seen")
TABLES = ("rmm_stage", "rmm_in", "rmm_force", "rmm_plan", "rmm_gone")


@dataclass(frozen=True)
class Staged:
    rows: int  # data rows of the file
    agents: int  # distinct agents (identical repeats counted once)


def rmm_assets_fast_path(path, ctx: ImportContext, kind: ImportKind) -> ImportSummary | None:
    """Import a clean rmm-assets file (of `kind`, the RmmAssetsImport) through a staging table; None when the
    engine must read it."""
    if connection.vendor != "postgresql":
        return None
    try:
        if CountingRules.of(RmmIntegration.objects.filter(partner=ctx.state["partner"]).first()).filters:
            raise NotClean("the partner's integration filters its agents: the engine leaves out each agent outside "
                           "them, with a warning")
        with transaction.atomic():
            with connection.cursor() as cursor:
                staged = _stage(cursor, path, kind, ctx)
            ctx.step("checking and writing")
            result = _apply_notified(ctx, staged)
            with connection.cursor() as cursor:
                _unbilled_warned(cursor, ctx)
                cursor.execute(f"DROP TABLE IF EXISTS {', '.join(TABLES)}")
            if ctx.dry_run:
                transaction.set_rollback(True)
    except NotClean as exc:
        logger.info("rmm-assets %s: read row by row (%s)", path, exc)
        ctx.step("reading row by row")
        return None
    return ImportSummary(
        kind=ctx.kind, rows=staged.rows, created=result.added,
        updated=result.agents_changed - result.added + result.removed,
        unchanged=staged.rows - result.agents_changed, errors=[], error_count=0, bad_rows=0, dry_run=ctx.dry_run,
        staged=True, warnings=sorted(ctx.warnings), warning_count=ctx.warning_count,
    )


def _unbilled_warned(cursor, ctx: ImportContext) -> None:
    """The agents no customer names and no service bills, listed as the engine lists them
    (metering.imports.unbilled_warned): counted in SQL by organization and group."""
    from metering.imports import unbilled_warned  # noqa: PLC0415 (metering.imports reads this module)

    cursor.execute("SELECT o, g, count(DISTINCT a), min(n) FROM rmm_in GROUP BY o, g")
    counts, first_rows = Counter(), {}
    for organization, group, agents, first in cursor.fetchall():
        counts[(organization, group, "", "", ())] += agents
        first_rows[organization] = min(first + 1, first_rows.get(organization, first + 1))  # the header is row 1
    unbilled_warned(ctx, agents_unmatched(partner=ctx.state["partner"], day=ctx.as_of, counts=counts), first_rows)


# --- the file into rmm_stage, checked and cleaned into rmm_in ---------------------------------------------------
def _stage(cursor, path, kind: ImportKind, ctx: ImportContext) -> Staged:
    header = _header(path, kind)
    try:
        cursor.execute(f"DROP TABLE IF EXISTS {', '.join(TABLES)}")
        _rows, scan = copy_to_stage(cursor, path, "rmm_stage", len(header), numbered=True,
                                    on_chunk=chunk_progress(ctx))
        return _clean(cursor, header, [f"c{i}" for i in range(len(header))], scan)
    except (DatabaseError, psycopg.Error) as exc:  # COPY refused a line, a date PostgreSQL cannot read, ...
        raise NotClean(f"PostgreSQL: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc


def _clean(cursor, header: list[str], columns: list[str], scan: _Scan) -> Staged:
    """rmm_in: one row per agent, cleaned as the resource's widgets clean it; NotClean on any doubt."""
    where = {name: columns[header.index(name)] for name in FIELDS if name in header}

    def cell(name):  # a cell as the engine reads it: missing or blank is "", trimmed as str.strip() trims
        if name not in where:
            return "''"
        return f"btrim(coalesce({where[name]}, ''), %(ws)s)" if scan.trim else f"coalesce({where[name]}, '')"

    texts = ("a", "m", "o", "g", "s")
    checks = ["a = ''", "m = ''", "o = ''"]
    if scan.apostrophes:  # the exports' ' before formula-like text, which the engine takes off
        checks += [f"{t} LIKE %(quote)s" for t in texts]
    checks.append(f"(greatest({', '.join(f'octet_length({t})' for t in texts)}) > %(text_max)s "
                  f"AND greatest({', '.join(f'char_length({t})' for t in texts)}) > %(text_max)s)")
    # the csv module's limits, in characters (a byte count is never smaller): a cell, and a row as read from the
    # file (at worst every character a doubled quote, each cell quoted, a comma each, CRLF). Untrimmed, the cells
    # read here are checked above (200 characters, 4 bytes each; last_seen 32): only the others are measured.
    measured = columns if scan.trim else [c for c in columns if c not in where.values()]
    known_bytes = 0 if scan.trim else len(where) * 4 * TEXT_MAX
    raw_lengths = [f"coalesce(octet_length({c}), 0)" for c in measured]
    if raw_lengths:
        checks.append(f"greatest({', '.join(raw_lengths)}) > %(cell_max)s")
        checks.append(f"2 * ({' + '.join(raw_lengths)}) + %(record_extra)s > %(record_max)s")
    cursor.execute(f"""
        CREATE TEMP TABLE rmm_in ON COMMIT DROP AS
        SELECT n, a, m, o, g, s, ls, bad
        FROM (
            SELECT n, a, m, o, g, s, ls,
                   {' OR '.join(checks)}
                   OR NOT CASE
                       WHEN lt = '' THEN true
                       WHEN lt LIKE '____-__-__T__:__:__Z'
                           THEN to_char(ls AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') = lt
                       ELSE lt ~ %(instant)s AND left(lt, 4) BETWEEN '1000' AND '9998' END AS bad
            FROM (
                SELECT n, {cell('agent_id')} AS a, {cell('machine_name')} AS m, {cell('organization')} AS o,
                       {cell('group')} AS g, {cell('os')} AS s, {cell('last_seen')} AS lt{
                       ''.join(f', {c}' for c in measured)}
                FROM rmm_stage OFFSET 0
            ) cells, LATERAL (
                -- PostgreSQL reads more than the engine (a date without a zone, 'today'): the check above says
                -- which it reads alike; what it cannot read at all stops the statement (not clean either)
                SELECT CASE WHEN lt <> '' THEN lt::timestamptz END AS ls
            ) instant OFFSET 0
        ) checked
    """, {
        "ws": scan.trim, "quote": "'%", "text_max": TEXT_MAX, "instant": INSTANT_RE,
        "cell_max": csv.field_size_limit(), "record_max": MAX_RECORD_CHARS,
        "record_extra": 2 * known_bytes + 3 * len(columns) + 2,
    })
    cursor.execute("SELECT count(*), count(*) FILTER (WHERE bad), count(DISTINCT a) FROM rmm_in")
    rows, bad, agents = cursor.fetchone()
    if bad:
        raise NotClean(f"{bad} row(s) with a cell to look at")
    if agents < rows:  # the same agent again: identical rows count once, different ones are row errors
        cursor.execute("SELECT count(*) FROM (SELECT DISTINCT a, m, o, g, s, ls FROM rmm_in) rows")
        if cursor.fetchone()[0] != agents:
            raise NotClean("the same agent with different values")
        cursor.execute("DELETE FROM rmm_in i USING rmm_in j WHERE j.a = i.a AND j.n < i.n")
    return Staged(rows=rows, agents=agents)


# --- rmm_in applied as inventory_apply applies its agents ---------------------------------------------------------
def _apply_notified(ctx: ImportContext, staged: Staged) -> InventoryResult:
    partner = ctx.state["partner"]
    try:
        return unit_notices_around(partner=partner, as_of=ctx.as_of,
                                   apply=lambda: _apply(ctx=ctx, partner=partner, as_of=ctx.as_of, staged=staged))
    except InventoryError as exc:  # as the engine's RmmAssetsImport.finish says it
        raise ImportFileError(str(exc)) from exc


def _apply(*, ctx: ImportContext, partner, as_of: date, staged: Staged) -> InventoryResult:
    """inventory_apply's rules in SQL, statement for statement in its order of writes (closing presences
    before opening others, so that no agent ever has two open presences)."""
    latest = inventory_lock(partner=partner, as_of=as_of)
    if latest is not None and as_of < latest:
        raise NotClean("an inventory dated before the latest one (a back-filled night): the engine applies it")
    if AgentPresence.objects.filter(partner=partner).exclude(org_ref="", org_id="", views="").exists():
        raise NotClean("agents placed by an RMM's API (organization references, ids or views): the engine gives a "
                       "file's agents what the API told of their places (services.with_known_places)")
    params = {"partner": partner.pk, "as_of": as_of, "day_before": as_of - timedelta(days=1),
              "same_date": as_of == latest}
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT FROM metering_rmmagent WHERE partner_id = %(partner)s) "
                       "OR EXISTS (SELECT FROM metering_agentpresence WHERE partner_id = %(partner)s)", params)
        if cursor.fetchone()[0]:
            added, moved, removed, updated, agents_changed = _apply_changes(cursor, params)
        else:  # the partner's first inventory: every agent is new, and present from as_of
            added = agents_changed = staged.agents
            moved = removed = updated = 0
            cursor.execute(f"{_NEW_AGENTS.format(source='rmm_in', new='true')} {_OPENING_PRESENCES}", params)
    return inventory_record(partner=partner, as_of=as_of, latest=latest, agents=staged.agents, added=added,
                            moved=moved, removed=removed, updated=updated, agents_changed=agents_changed,
                            actor=ctx.actor, source=ctx.source)


# new agents in the file's order; the presences that open on as_of follow (in one statement: they need the ids)
_NEW_AGENTS = """
    WITH new AS (
        INSERT INTO metering_rmmagent (partner_id, agent_id, machine_name, os, last_seen)
        SELECT %(partner)s, a, m, s, ls FROM {source} WHERE {new} ORDER BY n
        RETURNING id, agent_id
    )
"""
_OPENING_PRESENCES = """
    INSERT INTO metering_agentpresence (agent_id, partner_id, organization, "group", present_from, present_until)
    SELECT new.id, %(partner)s, i.o, i.g, %(as_of)s, NULL FROM new JOIN rmm_in i ON i.a = new.agent_id ORDER BY i.n
"""


# a file agent's whole place, as the engine compares places (services.Place): a plain file names no API parts
PLACE = "(i.o, i.g, '', '', '')"


def _apply_changes(cursor, params) -> tuple[int, int, int, int, int]:
    """An inventory compared with the partner's agents and presences: (added, moved, removed, agents with new
    details, agents changed in any way)."""
    # the presences in force on as_of, one per agent: the earliest, as the engine's dict keeps
    cursor.execute("""
        CREATE TEMP TABLE rmm_force ON COMMIT DROP AS
        SELECT DISTINCT ON (agent_id) id, agent_id, organization, "group", org_ref, org_id, views, present_from,
               present_until
        FROM metering_agentpresence
        WHERE partner_id = %(partner)s AND present_from <= %(as_of)s
          AND (present_until IS NULL OR present_until >= %(as_of)s)
        ORDER BY agent_id, present_from
    """, params)
    # each agent of the file: its RmmAgent (pk NULL: new), whether its details changed, its presence in
    # force (f_id) and whether it moved; reopen: its presence closed yesterday in the same place, on a
    # corrected inventory for the latest date (it never left)
    cursor.execute(f"""
        CREATE TEMP TABLE rmm_plan ON COMMIT DROP AS
        SELECT i.n, i.a, i.m, i.o, i.g, i.s, i.ls, r.id AS pk,
               r.id IS NOT NULL AND (r.machine_name, r.os, r.last_seen) IS DISTINCT FROM (i.m, i.s, i.ls) AS meta,
               f.id AS f_id, f.present_from AS f_from, f.present_until AS f_until,
               f.id IS NOT NULL AND (f.organization, f."group", f.org_ref, f.org_id, f.views) <> {PLACE} AS moved,
               y.id AS reopen
        FROM rmm_in i
        LEFT JOIN metering_rmmagent r ON r.partner_id = %(partner)s AND r.agent_id = i.a
        LEFT JOIN rmm_force f ON f.agent_id = r.id
        LEFT JOIN (
            SELECT DISTINCT ON (agent_id) id, agent_id, organization, "group", org_ref, org_id, views
            FROM metering_agentpresence
            WHERE %(same_date)s AND partner_id = %(partner)s AND present_until = %(day_before)s
            ORDER BY agent_id, present_from
        ) y ON f.id IS NULL AND y.agent_id = r.id
               AND (y.organization, y."group", y.org_ref, y.org_id, y.views) = {PLACE}
    """, params)
    cursor.execute("""
        CREATE TEMP TABLE rmm_gone ON COMMIT DROP AS
        SELECT f.id, f.present_from FROM rmm_force f
        WHERE NOT EXISTS (SELECT FROM rmm_plan p WHERE p.f_id = f.id)
    """)
    cursor.execute("""
        SELECT count(*) FILTER (WHERE pk IS NULL OR f_id IS NULL), count(*) FILTER (WHERE moved),
               (SELECT count(*) FROM rmm_gone), count(*) FILTER (WHERE meta),
               count(*) FILTER (WHERE pk IS NULL OR f_id IS NULL OR moved OR meta),
               count(*) FILTER (WHERE reopen IS NOT NULL)
        FROM rmm_plan
    """)
    added, moved, removed, updated, agents_changed, reopened = cursor.fetchone()
    if updated:
        cursor.execute("""
            UPDATE metering_rmmagent r SET machine_name = p.m, os = p.s, last_seen = p.ls
            FROM rmm_plan p WHERE p.meta AND r.id = p.pk
        """)
    if moved or removed:
        # closed: moved away (from an earlier date) and gone; a same-date move of a closed presence keeps its end
        cursor.execute("""
            UPDATE metering_agentpresence t SET present_until = %(day_before)s
            FROM rmm_plan p WHERE p.moved AND p.f_from <> %(as_of)s AND t.id = p.f_id
        """, params)
        cursor.execute("""
            UPDATE metering_agentpresence t SET organization = p.o, "group" = p.g
            FROM rmm_plan p WHERE p.moved AND p.f_from = %(as_of)s AND p.f_until IS NOT NULL AND t.id = p.f_id
        """, params)
        cursor.execute("""
            UPDATE metering_agentpresence t SET present_until = %(day_before)s
            FROM rmm_gone g WHERE g.present_from <> %(as_of)s AND t.id = g.id
        """, params)
        # gone on the date it arrived: it never was
        cursor.execute("""
            DELETE FROM metering_agentpresence t USING rmm_gone g WHERE g.present_from = %(as_of)s AND t.id = g.id
        """, params)
        # moved again on the date it arrived or moved: the same presence, in its new place
        cursor.execute("""
            UPDATE metering_agentpresence t SET organization = p.o, "group" = p.g
            FROM rmm_plan p WHERE p.moved AND p.f_from = %(as_of)s AND p.f_until IS NULL AND t.id = p.f_id
        """, params)
    if reopened:
        cursor.execute("""
            UPDATE metering_agentpresence t SET present_until = NULL
            FROM rmm_plan p WHERE p.reopen IS NOT NULL AND t.id = p.reopen
        """)
    if added or moved:
        # new agents, then the presences that open on as_of: theirs, the agents back and those moved on as_of
        cursor.execute(_NEW_AGENTS.format(source="rmm_plan", new="pk IS NULL") + """
            INSERT INTO metering_agentpresence (agent_id, partner_id, organization, "group", present_from,
                                                present_until)
            SELECT opening.pk, %(partner)s, opening.o, opening.g, %(as_of)s, NULL
            FROM (
                SELECT p.n, new.id AS pk, p.o, p.g FROM new JOIN rmm_plan p ON p.pk IS NULL AND p.a = new.agent_id
                UNION ALL
                SELECT n, pk, o, g FROM rmm_plan
                WHERE pk IS NOT NULL AND ((f_id IS NULL AND reopen IS NULL) OR (moved AND f_from <> %(as_of)s))
            ) opening
            ORDER BY opening.n
        """, params)
    return added, moved, removed, updated, agents_changed

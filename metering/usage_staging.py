"""Usage record imports on PostgreSQL: the file COPYed into a staging table and written by one INSERT … SELECT.

A month of calls is tens of millions of rows. The engine (billing/core/importing.py) reads each in Python; here
the file's bytes go to PostgreSQL as they are, through the same watch as rmm-assets' (metering.staging: bytes
COPY could read otherwise than the csv module, whitespace to trim), and one statement reads every cell as
the kind's widgets read it, finds each row's customer, and inserts the records with
`ON CONFLICT (partner, key) DO NOTHING`: an exact duplicate, in the file or already recorded, is a no-op, as
in the engine (billing-rules 3.12).

As for rmm-assets, only a clean file is taken, and this path never reports an error itself. A row that the
engine would refuse, or might read otherwise (an unknown customer, a bad or future instant, a number in
another form than plain digits, a destination class outside its letters...), makes the statement fail (its
customer is left NULL, which the column refuses), and when some rows were not inserted, one more statement
looks for a key recorded with other values: either way everything done here is rolled back and the engine
reads the file again, row by row, naming each error as `row N: column: reason`. So the two paths give the
same records or the same errors (metering/tests/test_usage_records.py gives both random files).
"""

from __future__ import annotations

import psycopg
import psycopg.errors
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing.core.copy_staging import SLUG_RE, CellReader, NotClean, _Scan, instant_read, staged_import
from billing.core.importing import ImportContext, ImportKind, ImportSummary
from billing.core.sql import Params
from metering.choices import CallDirection
from metering.usage_records import RecordKind, records_audit, records_lock

STAGE = "usage_record_stage"
INTEGER_MAX = 2_147_483_647
DESTINATION_MAX = 40


def records_fast_path(path, ctx: ImportContext, kind: ImportKind) -> ImportSummary | None:
    """Import a clean file of usage records (kind: a metering.imports.UsageRecordsImport) by COPY; None when the
    engine must read it (then nothing was written)."""
    record: RecordKind = kind.record
    done = staged_import(path, ctx, kind, label=record.name, tables=(STAGE,),
                         apply=lambda cursor, header, scan, rows: _insert(cursor, record, header, scan, ctx, rows),
                         after=lambda created: records_audit(record, ctx, created))
    if done is None:
        return None
    rows, created = done
    total = sum(created.values())
    return ImportSummary(kind=ctx.kind, rows=rows, created=total, updated=0, unchanged=rows - total, errors=[],
                         error_count=0, bad_rows=0, dry_run=ctx.dry_run, staged=True)


def _insert(cursor, record: RecordKind, header: list[str], scan: _Scan, ctx: ImportContext,
            rows: int) -> dict[int, int]:
    """The staged rows as records: {partner id: records created}. NotClean when a row is not certain to read as
    the engine reads it, or a key is recorded with other values."""
    p = Params()
    cells = CellReader(header, scan.trim, p)
    cell, raw_checks = cells.cell, cells.raw_checks  # a cell as the engine reads it
    partner = cell("partner")
    # r: each cell's text (r_...); x: its value (v_...), read once; bad: a row the engine must read
    texts = [f"{partner} AS r_partner", f"{cell('customer')} AS r_customer"]
    values, bad = [], []
    for column in record.columns:
        texts.append(f"{cell(column.name)} AS r_{column.name}")
        text, name = f"r_{column.name}", f"v_{column.name}"  # v_: "user" is a reserved word
        if column.form == "text":
            values.append(f"{text} AS {name}")
            if not column.blank:
                bad.append(f"{text} = ''")
            bad.append(f"(octet_length({text}) > {column.max_length} AND char_length({text}) > {column.max_length})")
            if scan.apostrophes:  # the exports' ' before formula-like text, which the engine takes off
                bad.append(f"{text} LIKE {p.ref('quote', chr(39) + '%')}")
        elif column.form == "instant":
            cast, refused = instant_read(text, name, p, timezone.now())
            values.append(f"{cast} AS {name}")
            bad.append(refused)
        elif column.form in ("seconds", "count"):
            # plain digits only (a sign, a leading zero or another digit: the engine's); too many stops the statement
            values.append(f"CASE WHEN {text} <> '' THEN ({text})::bigint END AS {name}")
            bad.append(f"{name} IS NULL OR {name}::text <> {text} OR {name} NOT BETWEEN "
                       f"{1 if column.form == 'count' else 0} AND {INTEGER_MAX}")
        elif column.form == "direction":
            choices = p.each("direction", CallDirection.values)
            values.append(f"CASE WHEN {text} IN ({choices}) THEN {text} WHEN {text} ~ '^[A-Za-z]+$' "
                          f"AND lower({text}) IN ({choices}) THEN lower({text}) END AS {name}")
            bad.append(f"{name} IS NULL")
        elif column.form == "destination":  # resources.DestinationWidget
            values.append(f"CASE WHEN {text} ~ '^[a-z0-9][a-z0-9-]*$' THEN {text} "
                          f"WHEN {text} ~ '^[A-Za-z0-9][A-Za-z0-9 _-]*$' THEN regexp_replace(lower({text}), "
                          f"'[ _]+', '-', 'g') WHEN {text} = '' THEN '' END AS {name}")
            bad.append(f"{name} IS NULL OR char_length({name}) > {DESTINATION_MAX}"
                       + ("" if column.blank else f" OR {name} = ''"))
        else:
            raise ValueError(f"unknown form {column.form!r}")
    bad.append("k.customer_id IS NULL")
    if ctx.partner:  # import_csv --partner: a row of another partner is a row error
        bad.append(f"t.r_partner <> {p.ref('partner', ctx.partner)}")
    bad += raw_checks
    fields = record.fields
    table = record.model._meta.db_table
    qn = connection.ops.quote_name
    raw = "".join(f", c{i}" for i in range(len(header))) if raw_checks else ""
    staged = f"""
        SELECT k.partner_id, CASE WHEN {' OR '.join(f'({b})' for b in bad)} THEN NULL ELSE k.customer_id END
               AS customer_id, {', '.join(f't.v_{f}' for f in fields)}
        FROM (
            SELECT * FROM (SELECT {', '.join(texts)}{raw} FROM {STAGE} OFFSET 0) r,
            LATERAL (SELECT {', '.join(values)}) x OFFSET 0
        ) t
        LEFT JOIN (
            SELECT p.slug AS partner_slug, c.slug AS customer_slug, c.partner_id, c.id AS customer_id
            FROM partners_customer c JOIN partners_partner p ON p.id = c.partner_id
            -- only the keys the engine's SlugWidget reads (a slug stored past the model's validators is refused)
            WHERE p.slug ~ {p.ref('slug', SLUG_RE)} AND c.slug ~ {p.ref('slug', SLUG_RE)}
        ) k ON k.partner_slug = t.r_partner AND k.customer_slug = t.r_customer
    """
    columns = ["partner_id", "customer_id", *fields]
    selected = ["partner_id", "customer_id", *(f"v_{f}" for f in fields)]
    p.ref("source", ctx.source[:100])
    # the partners named: their usage records written one batch at a time (records_lock), before any key is read
    cursor.execute(f"SELECT id FROM partners_partner WHERE slug IN (SELECT DISTINCT {partner} FROM {STAGE})", p)
    records_lock(pk for (pk,) in cursor.fetchall())
    # the customers of the partners named, held as the foreign key constraint would hold each (models.py)
    cursor.execute(f"""
        SELECT c.id FROM partners_customer c JOIN partners_partner p ON p.id = c.partner_id
        WHERE p.slug IN (SELECT DISTINCT {partner} FROM {STAGE}) FOR KEY SHARE OF c
    """, p)

    def insert(on_conflict: str) -> None:
        cursor.execute(f"""
            WITH new AS (
                INSERT INTO {table} ({', '.join(qn(c) for c in columns)}, source)
                SELECT {', '.join(f's.{c}' for c in selected)}, %(source)s FROM ({staged}) s
                {on_conflict}
                RETURNING partner_id
            )
            SELECT partner_id, count(*) FROM new GROUP BY partner_id
        """, p)

    try:  # new records, the usual file: a plain INSERT (ON CONFLICT probes the key index once more a row)
        with transaction.atomic():
            insert("")
    except IntegrityError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
            raise
        # a key already recorded or repeated in the file: the exact duplicates are left out
        insert(f"ON CONFLICT (partner_id, {qn(record.key)}) DO NOTHING")
    created = dict(cursor.fetchall())
    if sum(created.values()) < rows:  # duplicates: each must be exact (the same key with other values: errors)
        compared = zip(columns[1:2] + list(fields[1:]), selected[1:2] + selected[3:], strict=True)
        differs = " OR ".join(f"r.{qn(c)} IS DISTINCT FROM s.{v}" for c, v in compared)
        cursor.execute(f"""
            SELECT EXISTS (
                SELECT FROM ({staged}) s JOIN {table} r ON r.partner_id = s.partner_id AND r.{qn(record.key)} = s.v_{
                    record.key}
                WHERE {differs}
            )
        """, p)
        if cursor.fetchone()[0]:
            raise NotClean("a key recorded with other values")
    return created

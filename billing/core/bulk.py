"""Bulk writes of many rows: PostgreSQL COPY where it is there, batched ORM writes elsewhere.

The ORM's bulk_create builds a model instance and a parameter per cell, and bulk_update a CASE per
column: for the 100,000 agents of an RMM inventory that is most of the import's time. COPY streams
the same rows as one command (psycopg 3's `cursor.copy`). Callers give plain tuples in the order of
`columns` (attribute names, e.g. "partner_id"); no model `save()` runs, so callers set derived
fields themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from django.db import connection
from psycopg.types.json import Jsonb

BATCH = 2000


def _columns(model, columns: list[str]) -> str:
    return ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)


def _copy_cells(model, columns: list[str]):
    """A row's cells as COPY takes them: a dict in a JSON column as JSON, a choice enum as its value."""
    json = {i for i, c in enumerate(columns) if model._meta.get_field(c).get_internal_type() == "JSONField"}
    return lambda row: [Jsonb(value) if i in json else value.value if isinstance(value, Enum) else value
                        for i, value in enumerate(row)]


def insert_rows(model, columns: list[str], rows: Iterable[tuple]) -> int:
    """Insert rows into the model's table; returns how many (on PostgreSQL by COPY, `_copy_cells`)."""
    n = 0
    if connection.vendor == "postgresql":
        cells = _copy_cells(model, columns)
        # COPY goes to psycopg's own cursor: its errors are made Django's (an IntegrityError, say) here
        with connection.wrap_database_errors, connection.cursor() as cursor, cursor.copy(
            f"COPY {connection.ops.quote_name(model._meta.db_table)} ({_columns(model, columns)}) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(cells(row))
                n += 1
        return n
    batch = []
    for row in rows:
        batch.append(model(**dict(zip(columns, row, strict=True))))
        if len(batch) >= BATCH:
            model.objects.bulk_create(batch)
            n, batch = n + len(batch), []
    model.objects.bulk_create(batch)
    return n + len(batch)


def insert_objects(model, objects: list) -> None:
    """Insert unsaved model instances and set their primary keys.

    On PostgreSQL the keys are drawn from the table's sequence in one query, and the rows copied with
    `insert_rows`: the ORM's bulk_create prepares every cell through its field (most of writing a large
    CI's 10,000 children and lines). Values are taken as they are (`attname`s: foreign keys as ids).
    Elsewhere, bulk_create. No `save()` or `pre_save` runs: callers set every value (auto_now fields
    included)."""
    if not objects:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects, batch_size=BATCH)
        return
    with connection.wrap_database_errors, connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [model._meta.db_table, model._meta.pk.column, len(objects)])
        for obj, (pk,) in zip(objects, cursor.fetchall(), strict=True):
            obj.pk = pk
    columns = [f.attname for f in model._meta.concrete_fields]  # the primary key first
    insert_rows(model, columns, ([getattr(obj, c) for c in columns] for obj in objects))
    for obj in objects:
        obj._state.adding, obj._state.db = False, connection.alias


def update_rows(model, columns: list[str], rows: Iterable[tuple]) -> int:
    """Set `columns` of the rows whose primary key is each tuple's first value: (pk, *values) (on PostgreSQL by
    COPY into a temporary table, the cells as `insert_rows` writes them)."""
    rows = list(rows)
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(model._meta.db_table)
        pk = connection.ops.quote_name(model._meta.pk.column)
        names = [connection.ops.quote_name(model._meta.get_field(c).column) for c in columns]
        cells = _copy_cells(model, [model._meta.pk.name, *columns])
        with connection.wrap_database_errors, connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMP TABLE bulk_update_rows ON COMMIT DROP AS "
                           f"SELECT {pk}, {', '.join(names)} FROM {table} WITH NO DATA")
            with cursor.copy(f"COPY bulk_update_rows ({pk}, {', '.join(names)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(cells(row))
            assignments = ", ".join(f"{name} = u.{name}" for name in names)
            cursor.execute(f"UPDATE {table} t SET {assignments} FROM bulk_update_rows u WHERE t.{pk} = u.{pk}")
            cursor.execute("DROP TABLE bulk_update_rows")
        return len(rows)
    objects = [model(pk=row[0], **dict(zip(columns, row[1:], strict=True))) for row in rows]
    model.objects.bulk_update(objects, columns, batch_size=500)
    return len(rows)

"""The usage records that records services bill (billing-rules 3.13) are facts the true-ups watch (4.11), as the
other metered tables of 0011: a call or a meeting sent after its month was billed is logged for its partner and
day, so the next run measures that month again. Statement-level with a transition table: one row per partner a
COPY or a batch touched, whatever its size. SQLite has none (a run there measures every month)."""

import importlib

from django.db import migrations

triggers = importlib.import_module("invoicing.migrations.0011_fact_change_triggers")

# table: (the partner of a row r, the UTC day a row r covers, a join to reach the partner)
TABLES = {
    "metering_callusagerecord": ("r.partner_id", "(r.started_at AT TIME ZONE 'UTC')::date", ""),
    "metering_meetingsummaryrecord": ("r.partner_id", "(r.started_at AT TIME ZONE 'UTC')::date", ""),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, (partner, day, join) in TABLES.items():
        schema_editor.execute(triggers._statement_sql(table, partner, day, join))


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP FUNCTION IF EXISTS fact_change_{table}() CASCADE")


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0014_labels"),
        ("metering", "0013_usage_records"),
    ]

    operations = [migrations.RunPython(create, drop)]

"""RMM API tokens sealed in the database (billing/core/sealed.py): the tokens stored as typed until now are
encrypted in place; going back opens them again (with the keys configured when it runs)."""

from django.db import migrations

import billing.core.sealed

TABLE = "metering_rmmintegration"


def _rewrite(schema_editor, pick: str, change) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT id, api_token FROM {TABLE} WHERE api_token <> '' AND {pick}",
                       [billing.core.sealed.PREFIX + "%"])
        for pk, stored in cursor.fetchall():
            cursor.execute(f"UPDATE {TABLE} SET api_token = %s WHERE id = %s", [change(stored), pk])


def seal_tokens(apps, schema_editor):
    _rewrite(schema_editor, "api_token NOT LIKE %s", billing.core.sealed.seal)


def open_tokens(apps, schema_editor):
    _rewrite(schema_editor, "api_token LIKE %s", billing.core.sealed.unseal)


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0008_fk_indexes_covered"),
    ]

    operations = [
        migrations.AlterField(
            model_name="rmmintegration",
            name="api_token",
            field=billing.core.sealed.SealedTextField(blank=True,
                                                 help_text="REST: sent as Authorization: Bearer (stored encrypted)"),
        ),
        migrations.RunPython(seal_tokens, open_tokens),
    ]

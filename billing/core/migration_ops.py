"""Migration operations Django's own do not do exactly."""

from django.db import migrations


def fk_index_dropped(app_label: str, alter: migrations.AlterField) -> migrations.SeparateDatabaseAndState:
    """`alter` (a foreign key of `app_label` altered to db_index=False) as a migration that only drops the
    key's own index, under the name Django gave it.

    Django's AlterField would also drop a partial unique index on the same column (one_open_presence, on
    agent_id) without creating it again, and would drop and re-add the foreign key constraint, checking
    every row of the table again."""

    def field_of(apps):
        model = apps.get_model(app_label, alter.model_name)
        return model, model._meta.get_field(alter.name)

    def forwards(apps, schema_editor):
        model, field = field_of(apps)
        name = schema_editor._create_index_name(model._meta.db_table, [field.column], suffix="")
        schema_editor.execute(schema_editor._delete_index_sql(model, name))

    def backwards(apps, schema_editor):
        model, field = field_of(apps)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))

    return migrations.SeparateDatabaseAndState(
        state_operations=[alter],
        database_operations=[migrations.RunPython(forwards, backwards)],
    )

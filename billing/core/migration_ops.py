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


class GroupGrants:
    """Permissions a migration grants to the admin's groups ({group name: [(app label, codename), ...]}), as a
    RunPython (`operation()`) that creates the permissions first and takes them back when unapplied.
    `apply_to_groups(apps)` adds them again (the access tests call it after a flush empties the groups)."""

    def __init__(self, grants: dict[str, list[tuple[str, str]]]):
        self.grants = grants

    def apply_to_groups(self, apps) -> None:
        Group = apps.get_model("auth", "Group")
        Permission = apps.get_model("auth", "Permission")
        for name, permissions in self.grants.items():
            group, _ = Group.objects.get_or_create(name=name)
            for app_label, codename in permissions:
                group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))

    def grant(self, apps, schema_editor) -> None:
        # a fresh database has no permissions yet when migrations run: create them as post_migrate would
        from django.contrib.auth.management import create_permissions  # noqa: PLC0415 (only when migrating)

        for app_config in apps.get_app_configs():
            app_config.models_module = True
            create_permissions(app_config, apps=apps, verbosity=0)
            app_config.models_module = None
        self.apply_to_groups(apps)

    def revoke(self, apps, schema_editor) -> None:
        Group = apps.get_model("auth", "Group")
        Permission = apps.get_model("auth", "Permission")
        for name, permissions in self.grants.items():
            for group in Group.objects.filter(name=name):
                for app_label, codename in permissions:
                    group.permissions.remove(*Permission.objects.filter(content_type__app_label=app_label,
                                                                        codename=codename))

    def operation(self) -> migrations.RunPython:
        return migrations.RunPython(self.grant, self.revoke)

"""The price lists and own items (read-only in the admin) for both staff groups of partners' 0007_admin_groups:
a Billing clerk and an Auditor read them."""

from django.db import migrations

GRANTS = {
    "Billing clerk": [("rebilling", "view_resaleprice"), ("rebilling", "view_resaleitem")],
    "Auditor": [("rebilling", "view_resaleprice"), ("rebilling", "view_resaleitem")],
}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    apply_to_groups(apps)


def apply_to_groups(apps):
    """Add the grants (tests call every migration's apply_to_groups in order after a flush)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in permissions:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in GRANTS.items():
        for group in Group.objects.filter(name=name):
            for app_label, codename in permissions:
                group.permissions.remove(*Permission.objects.filter(content_type__app_label=app_label,
                                                                    codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("rebilling", "0001_initial"),
        ("partners", "0019_admin_groups_company_profile"),
    ]

    operations = [migrations.RunPython(grant, revoke)]

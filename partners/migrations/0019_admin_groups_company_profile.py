"""The company profile (invoicing.CompanyProfile: who issues the invoices) for both staff groups of
0007_admin_groups: a Billing clerk fills it in and keeps it up to date; an Auditor reads it."""

from django.db import migrations

GRANTS = {
    "Billing clerk": [("invoicing", "view_companyprofile"), ("invoicing", "add_companyprofile"),
                      ("invoicing", "change_companyprofile")],
    "Auditor": [("invoicing", "view_companyprofile")],
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
        ("partners", "0018_legal_details"),
        ("invoicing", "0012_legal_details"),
    ]

    operations = [migrations.RunPython(grant, revoke)]

"""The two staff roles of the admin, as groups with explicit permissions.

- "Billing clerk": sets up partners, customers and services, assigns seats and buys seats, imports
  usage, sets up RMM integrations and starts syncs, issues drafts, records payments, credits
  invoices, bills one-time charges, creates and revokes API keys. Never: users, groups or
  permissions, partner users' roles, scheduled jobs, or deleting anything issued (only drafts and
  unbilled one-time charges can be deleted, and the admin refuses the rest).
- "Auditor": reads everything billing-related, the audit log included; changes nothing, imports
  nothing, starts nothing.

The sets are written out here, frozen like any migration: a model added later gets into a group by
a new migration (tests/test_access.py fails until it does). Running this again resets both groups to
these sets; other groups are left alone.
"""

from django.db import migrations

V, A, C, D = "view", "add", "change", "delete"

CLERK = {
    ("partners", "partner"): (V, A, C),
    ("partners", "customer"): (V, A, C),
    ("partners", "service"): (V, A, C),
    ("partners", "member"): (V,),
    ("partners", "seatassignment"): (V, A, C),  # add: assign a seat; change: unassign
    ("partners", "seatpurchase"): (V, A),
    ("partners", "partneruser"): (V,),  # roles are given by an administrator
    ("partners", "utilizationalert"): (V,),
    ("partners", "auditlog"): (V,),
    ("partners", "apikey"): (V, A, C),  # change: revoke
    ("metering", "usagesnapshot"): (V, A),  # add: import
    ("metering", "suspension"): (V, A),
    ("metering", "rmmagent"): (V,),
    ("metering", "agentpresence"): (V,),
    ("metering", "inventorysync"): (V,),
    ("metering", "rmmintegration"): (V, A, C),
    ("metering", "syncrun"): (V, A),  # add: Sync now, Get units now
    ("metering", "unitchangenotice"): (V,),
    ("invoicing", "invoice"): (V, C, D),  # change: issue, credit, pay, regenerate; delete: drafts only
    ("invoicing", "payment"): (V, A),
    ("invoicing", "onetimecharge"): (V, A, C, D),  # change and delete until billed
    ("django_celery_beat", "periodictask"): (V,),
    ("django_celery_beat", "crontabschedule"): (V,),
    ("django_celery_beat", "intervalschedule"): (V,),
    ("django_celery_beat", "clockedschedule"): (V,),
    ("django_celery_beat", "solarschedule"): (V,),
}
AUDITOR = {model: (V,) for model in CLERK}
GROUPS = {"Billing clerk": CLERK, "Auditor": AUDITOR}


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are created after migrations (post_migrate); a fresh database needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    set_groups(apps)


def set_groups(apps):
    """Both groups with exactly their permissions (tests call it too: a flush empties the groups)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, grants in GROUPS.items():
        wanted = [(app, f"{action}_{model}") for (app, model), actions in grants.items() for action in actions]
        permissions = []
        for app_label, codename in wanted:
            permissions.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)


apply_to_groups = set_groups  # what tests re-apply after a flush, with the later migrations' grants


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("partners", "0006_partner_billing_portal_url"),
        ("metering", "0006_inventory_sync_beat_schedule"),
        ("invoicing", "0004_billing_after_sync"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]

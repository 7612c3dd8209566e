"""The nightly RMM inventory sync, as a celery-beat entry visible and editable in the admin."""

from django.db import migrations

TASK = "metering.tasks.sync_inventories_task"


def create(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name="RMM inventory sync (nightly, one task per partner)",
        defaults={"task": TASK, "crontab": schedule, "enabled": True,
                  "description": "Fetches every enabled RMM integration's inventory as of today (UTC), applies "
                                 "it, and emails per_asset unit changes to the services' notification emails."},
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0005_rmm_integration_sync_runs"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]

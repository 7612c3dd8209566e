"""The daily billing run and payment-status refresh, as celery-beat entries editable in the admin."""

from django.db import migrations

ENTRIES = [
    ("Billing run (daily, one task per partner)", "invoicing.tasks.run_daily_billing_task", "30", "0",
     "Bills every partner through today: CIs on the 1st, INVs for first months and one-time charges."),
    ("Payment statuses and unsent invoice emails (daily)", "invoicing.tasks.refresh_payment_statuses_task", "0",
     "6", "Open invoices past their due date become overdue; invoice emails that never left are sent."),
]


def create(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour, description in ENTRIES:
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
        )
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "crontab": schedule, "enabled": True, "description": description}
        )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        task__in=[task for _, task, *_ in ENTRIES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0002_sequences"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]

"""The daily billing run moves to 03:00 UTC, after the 02:00 RMM inventory sync, so the CI of the 1st
bills the units in force that day (billing-rules 3.7) rather than the day before's."""

from django.db import migrations

NAME = "Billing run (daily, one task per partner)"


def move(apps, schema_editor, hour="3", minute="0"):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.filter(name=NAME).update(crontab=schedule)


def back(apps, schema_editor):
    move(apps, schema_editor, hour="0", minute="30")


class Migration(migrations.Migration):
    dependencies = [("invoicing", "0003_beat_schedules"), ("metering", "0006_inventory_sync_beat_schedule")]
    operations = [migrations.RunPython(move, back)]

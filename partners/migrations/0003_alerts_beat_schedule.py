"""The daily utilization-alerts job, as a celery-beat entry visible and editable in the admin."""

from django.db import migrations

TASK = "partners.tasks.evaluate_utilization_alerts_task"


def create(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="15", hour="0", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name="Utilization alerts (daily)",
        defaults={"task": TASK, "crontab": schedule, "enabled": True,
                  "description": "Judges utilization on today's commitments and sends alert emails that never left."},
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("partners", "0002_stage_member_index"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]

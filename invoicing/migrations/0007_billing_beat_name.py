"""The daily billing job now queues a task per batch of partners (BILLING_TASK_PARTNERS): its beat
entry says so."""

from django.db import migrations

OLD, NEW = "Billing run (daily, one task per partner)", "Billing run (daily, a task per batch of partners)"


def rename(apps, schema_editor, old=OLD, new=NEW):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=old).update(name=new)


def back(apps, schema_editor):
    rename(apps, schema_editor, old=NEW, new=OLD)


class Migration(migrations.Migration):
    dependencies = [("invoicing", "0006_rerun_constraints"), ("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunPython(rename, back)]

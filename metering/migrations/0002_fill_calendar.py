from datetime import date, timedelta

from django.db import migrations

FIRST, LAST = date(2000, 1, 1), date(2100, 12, 31)


def fill(apps, schema_editor):
    Day = apps.get_model("metering", "Day")
    days, day = [], FIRST
    while day <= LAST:
        days.append(Day(day=day, month=day.replace(day=1)))
        day += timedelta(days=1)
    Day.objects.bulk_create(days, batch_size=5000, ignore_conflicts=True)


def empty(apps, schema_editor):
    apps.get_model("metering", "Day").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("metering", "0001_initial")]
    operations = [migrations.RunPython(fill, empty)]

# The seats' dates are their instants' UTC dates, checked by the database (billing-rules 9.4): a queryset update()
# of removed_at alone had left end_date behind, which metering counts and the set-based import reads.

import zoneinfo

import django.db.models.functions.datetime
from django.db import migrations, models
from django.db.models import Q
from django.db.models.functions import TruncDate

UTC = zoneinfo.ZoneInfo("UTC")


def dates_from_instants(apps, schema_editor):
    """Rows written behind the model's back get the dates of their instants before the check holds them to it."""
    Seat = apps.get_model("partners", "SeatAssignment")
    Seat.objects.exclude(start_date=TruncDate("assigned_at", tzinfo=UTC)).update(
        start_date=TruncDate("assigned_at", tzinfo=UTC))
    Seat.objects.filter(removed_at__isnull=True, end_date__isnull=False).update(end_date=None)
    Seat.objects.filter(removed_at__isnull=False).filter(
        Q(end_date__isnull=True) | ~Q(end_date=TruncDate("removed_at", tzinfo=UTC))).update(
        end_date=TruncDate("removed_at", tzinfo=UTC))


class Migration(migrations.Migration):

    dependencies = [
        ('partners', '0026_seat_file_fingerprints'),
    ]

    operations = [
        migrations.RunPython(dates_from_instants, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='seatassignment',
            constraint=models.CheckConstraint(condition=models.Q(('start_date', django.db.models.functions.datetime.TruncDate('assigned_at', tzinfo=zoneinfo.ZoneInfo('UTC'))), models.Q(models.Q(('end_date__isnull', True), ('removed_at__isnull', True)), models.Q(('end_date', django.db.models.functions.datetime.TruncDate('removed_at', tzinfo=zoneinfo.ZoneInfo('UTC'))), ('end_date__isnull', False), ('removed_at__isnull', False)), _connector='OR')), name='seat_dates_are_the_instants_utc_dates'),
        ),
    ]

"""InvoiceLine.posting: proration lines are numbered per (service, month, effective date), so that the
database can refuse a unit change posted twice (0006). Lines already posted are numbered in the order
they were written."""

from collections import defaultdict

from django.db import migrations, models


def number_postings(apps, schema_editor):
    InvoiceLine = apps.get_model("invoicing", "InvoiceLine")
    seen = defaultdict(int)
    numbered = []
    for line in InvoiceLine.objects.filter(line_type="proration").order_by("invoice_id", "id"):
        seen[(line.service_id, line.period, line.effective_date)] += 1
        line.posting = seen[(line.service_id, line.period, line.effective_date)]
        numbered.append(line)
    InvoiceLine.objects.bulk_update(numbered, ["posting"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0004_billing_after_sync"),
    ]

    operations = [
        migrations.AddField(
            model_name='invoiceline',
            name='posting',
            field=models.PositiveIntegerField(blank=True, editable=False, help_text='proration: 1 for the first line posted for this service, month and effective date, 2 for a later correction of the same date (a corrected inventory), and so on', null=True),
        ),
        migrations.RunPython(number_postings, migrations.RunPython.noop),
    ]

from django.db import migrations


def create(apps, schema_editor):
    InvoiceSequence = apps.get_model("invoicing", "InvoiceSequence")
    for prefix in ("CI", "INV", "CN"):
        InvoiceSequence.objects.get_or_create(prefix=prefix)


class Migration(migrations.Migration):
    dependencies = [("invoicing", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]

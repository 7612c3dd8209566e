"""The one-time tokens and import jobs now belong to the kernel (billing.core): state only, the tables stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("partners", "0015_import_jobs"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.DeleteModel(name="IdempotentRequest"),
            migrations.DeleteModel(name="ImportJob"),
        ]),
    ]

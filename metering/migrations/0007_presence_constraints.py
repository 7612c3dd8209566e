"""An agent has one presence per start date, and a presence ends on or after it starts: applying an
inventory again never counts an agent twice on a date."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ('metering', '0006_inventory_sync_beat_schedule'),
        ('partners', '0006_partner_billing_portal_url'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='agentpresence',
            constraint=models.UniqueConstraint(fields=('agent', 'present_from'), name='one_presence_per_agent_start'),
        ),
        migrations.AddConstraint(
            model_name='agentpresence',
            constraint=models.CheckConstraint(condition=models.Q(('present_until__isnull', True), ('present_until__gte', models.F('present_from')), _connector='OR'), name='presence_ends_after_it_starts'),
        ),
    ]

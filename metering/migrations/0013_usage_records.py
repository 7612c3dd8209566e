"""Usage records: call usage, call detail and meeting summary records (billing-rules 3.12), without foreign key
constraints in the database (metering/models.py says why); the admin's two staff groups of partners'
0007_admin_groups read them."""

import django.db.models.deletion
from django.db import migrations, models

from billing.core.migration_ops import GroupGrants

VIEWS = [("metering", "view_callusagerecord"), ("metering", "view_calldetailrecord"),
         ("metering", "view_meetingsummaryrecord")]
GRANTS = GroupGrants({"Billing clerk": VIEWS, "Auditor": VIEWS})
apply_to_groups = GRANTS.apply_to_groups  # the access tests apply every group migration's grants


class Migration(migrations.Migration):

    dependencies = [
        ('metering', '0012_verbose_names'),
        ('partners', '0020_verbose_names'),
    ]

    operations = [
        migrations.CreateModel(
            name='CallDetailRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('leg_id', models.CharField(max_length=100, verbose_name='leg ID')),
                ('call_id', models.CharField(max_length=100, verbose_name='call ID')),
                ('user', models.CharField(blank=True, max_length=100, verbose_name='user or extension')),
                ('from_number', models.CharField(blank=True, max_length=100, verbose_name='from')),
                ('to_number', models.CharField(blank=True, max_length=100, verbose_name='to')),
                ('started_at', models.DateTimeField(verbose_name='started (UTC)')),
                ('duration_seconds', models.PositiveIntegerField(verbose_name='duration (s)')),
                ('direction', models.CharField(choices=[('inbound', 'inbound'), ('outbound', 'outbound'), ('internal', 'internal')], max_length=8)),
                ('destination', models.CharField(blank=True, max_length=40, verbose_name='destination class')),
                ('source', models.CharField(blank=True, max_length=100)),
                ('customer', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.customer')),
                ('partner', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.partner')),
            ],
            options={
                'verbose_name': 'call detail record',
                'indexes': [models.Index(fields=['customer', 'started_at'], name='call_leg_customer_start')],
                'constraints': [models.UniqueConstraint(fields=('partner', 'leg_id'), name='call_leg_unique_id')],
            },
        ),
        migrations.CreateModel(
            name='CallUsageRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('record_id', models.CharField(max_length=100, verbose_name='record ID')),
                ('user', models.CharField(blank=True, max_length=100, verbose_name='user or extension')),
                ('started_at', models.DateTimeField(verbose_name='started (UTC)')),
                ('duration_seconds', models.PositiveIntegerField(verbose_name='duration (s)')),
                ('direction', models.CharField(choices=[('inbound', 'inbound'), ('outbound', 'outbound'), ('internal', 'internal')], max_length=8)),
                ('destination', models.CharField(help_text="the vendor's words, in lower case with - for spaces (billing-rules 3.12)", max_length=40, verbose_name='destination class')),
                ('source', models.CharField(blank=True, max_length=100)),
                ('customer', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.customer')),
                ('partner', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.partner')),
            ],
            options={
                'verbose_name': 'call usage record',
                'indexes': [models.Index(fields=['customer', 'started_at'], name='call_record_customer_start')],
                'constraints': [models.UniqueConstraint(fields=('partner', 'record_id'), name='call_record_unique_id')],
            },
        ),
        migrations.CreateModel(
            name='MeetingSummaryRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('meeting_id', models.CharField(max_length=100, verbose_name='meeting ID')),
                ('host', models.CharField(max_length=200)),
                ('started_at', models.DateTimeField(verbose_name='started (UTC)')),
                ('duration_seconds', models.PositiveIntegerField(verbose_name='duration (s)')),
                ('participants', models.PositiveIntegerField()),
                ('source', models.CharField(blank=True, max_length=100)),
                ('customer', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.customer')),
                ('partner', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.partner')),
            ],
            options={
                'verbose_name': 'meeting summary record',
                'indexes': [models.Index(fields=['customer', 'started_at'], name='meeting_record_customer_start')],
                'constraints': [models.UniqueConstraint(fields=('partner', 'meeting_id'), name='meeting_record_unique_id')],
            },
        ),
        GRANTS.operation(),
    ]

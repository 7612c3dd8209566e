"""Billing runs as they went (invoicing.BillingRun), and who may start one from the admin's billing page: the
"Billing clerk" group of partners/migrations/0007_admin_groups.py gets the runs' view permission and
`invoicing.run_billing` (preview and run); the "Auditor" reads them."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from billing.core.migration_ops import GroupGrants


GRANTS = GroupGrants({
    "Billing clerk": [("invoicing", "view_billingrun"), ("invoicing", "run_billing")],
    "Auditor": [("invoicing", "view_billingrun")],
})
apply_to_groups = GRANTS.apply_to_groups  # the access tests apply every group migration's grants


class Migration(migrations.Migration):

    dependencies = [
        ('invoicing', '0012_legal_details'),
        ('partners', '0019_admin_groups_company_profile'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='BillingRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('started_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('through', models.DateField(help_text='everything due up to this day')),
                ('scope', models.CharField(help_text='all partners, one partner, or the partners of a batch', max_length=300)),
                ('draft', models.BooleanField(default=False, help_text='a preview: drafts only, nothing issued', verbose_name='preview')),
                ('source', models.CharField(choices=[('admin', 'Admin (billing page)'), ('command', 'run_billing command'), ('task', 'Daily billing task')], max_length=10)),
                ('actor_label', models.CharField(blank=True, help_text='the user, command or task', max_length=200)),
                ('status', models.CharField(choices=[('running', 'Running'), ('succeeded', 'Succeeded'), ('partly_failed', 'Partly failed'), ('failed', 'Failed')], default='running', max_length=20)),
                ('documents', models.JSONField(blank=True, default=list, help_text='[{id, number, kind, partner}] of what it wrote, in the order written')),
                ('counts', models.JSONField(blank=True, default=dict, help_text='{kind: documents written}')),
                ('document_count', models.PositiveIntegerField(default=0)),
                ('held', models.JSONField(blank=True, default=list, help_text='[{partner, reason}]: not billed for missing legal details (a preview: would not be)')),
                ('failures', models.JSONField(blank=True, default=list, help_text='[{partner, reason}]: billing them failed')),
                ('partner', models.ForeignKey(blank=True, help_text='the one partner billed, if it was one', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='partners.partner')),
                ('started_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-started_at', '-id'],
                'permissions': [('run_billing', 'Can preview and run billing from the admin')],
            },
        ),
        GRANTS.operation(),
    ]

"""What a billing rerun relies on, backed by the database: one child per customer of a CI, a CI names
its month, an issued invoice has a number, a charge once per invoice, a one-time charge, a first month
and a credited line billed once, and each posting of a per_asset unit change once."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0005_invoiceline_posting"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='childinvoice',
            constraint=models.UniqueConstraint(condition=models.Q(('customer__isnull', False)), fields=('invoice', 'customer'), name='one_child_per_customer_per_ci'),
        ),
        migrations.AddConstraint(
            model_name='childinvoice',
            constraint=models.UniqueConstraint(condition=models.Q(('customer__isnull', True)), fields=('invoice',), name='one_partner_child_per_ci'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'CI'), _negated=True), models.Q(('month', ''), _negated=True), _connector='OR'), name='ci_names_its_month'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('state', 'issued'), _negated=True), ('number__isnull', False), _connector='OR'), name='issued_invoice_has_number'),
        ),
        migrations.AddConstraint(
            model_name='invoiceline',
            constraint=models.UniqueConstraint(condition=models.Q(('key', ''), _negated=True), fields=('invoice', 'key'), name='one_line_per_charge_per_invoice'),
        ),
        migrations.AddConstraint(
            model_name='invoiceline',
            constraint=models.UniqueConstraint(condition=models.Q(('line_type', 'one_time')), fields=('key',), name='one_time_charge_billed_once'),
        ),
        migrations.AddConstraint(
            model_name='invoiceline',
            constraint=models.UniqueConstraint(condition=models.Q(('line_type', 'first_month')), fields=('key',), name='first_month_billed_once'),
        ),
        migrations.AddConstraint(
            model_name='invoiceline',
            constraint=models.UniqueConstraint(condition=models.Q(('line_type', 'credit')), fields=('key',), name='line_credited_once'),
        ),
        migrations.AddConstraint(
            model_name='invoiceline',
            constraint=models.UniqueConstraint(condition=models.Q(('line_type', 'proration')), fields=('service', 'period', 'effective_date', 'posting'), name='one_posting_per_proration_change'),
        ),
        migrations.AddConstraint(
            model_name='invoiceline',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('line_type', 'proration'), _negated=True), models.Q(('effective_date__isnull', False), ('posting__isnull', False), ('service__isnull', False)), _connector='OR'), name='proration_line_is_numbered'),
        ),
    ]

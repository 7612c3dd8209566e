"""Customer invoices (billing-rules 12.4-12.9): the partners' rebilling profiles and their customers' billing
profiles, the customer invoices with their lines and per-partner sequences, and the charges not rebilled; and
the admin's groups' permissions on them (a Billing clerk reads the invoices and keeps the profiles, an Auditor
reads them all)."""


import django.core.validators
import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models

from billing.core.migration_ops import GroupGrants

VIEWED = [("rebilling", f"view_{name}") for name in (
    "customerinvoice", "unbilledcharge", "rebillingprofile", "customerbillingprofile")]
GRANTS = GroupGrants({
    # change_customerinvoice: issue drafts and credit in full (the admin's actions; nothing is edited)
    "Billing clerk": [*VIEWED, ("rebilling", "change_customerinvoice"), *(
        ("rebilling", f"{verb}_{name}") for verb in ("add", "change")
        for name in ("rebillingprofile", "customerbillingprofile"))],
    "Auditor": VIEWED,
})
apply_to_groups = GRANTS.apply_to_groups  # the access tests apply every group migration's grants


class Migration(migrations.Migration):

    dependencies = [
        ('invoicing', '0014_labels'),
        ('partners', '0022_rebilling_invoice_audit_actions'),
        ('rebilling', '0002_admin_groups'),
    ]

    operations = [
        migrations.CreateModel(
            name='CustomerBillingProfile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('legal_name', models.CharField(blank=True, help_text="blank: the customer's name", max_length=200)),
                ('address', models.TextField(blank=True, help_text='printed on its invoices; one line per line')),
                ('tax_id', models.CharField(blank=True, max_length=60, verbose_name='tax ID')),
                ('purchase_order', models.CharField(blank=True, max_length=100, verbose_name='purchase order')),
                ('tax_rate', models.DecimalField(decimal_places=3, default=Decimal('0'), help_text='percent, e.g. 8.25', max_digits=6, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                ('billing_emails', models.TextField(blank=True, help_text='who receives its invoices, separated by commas')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('customer', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='billing_profile', to='partners.customer')),
            ],
            options={
                'verbose_name': 'customer billing profile',
            },
        ),
        migrations.CreateModel(
            name='CustomerInvoice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('invoice', 'Invoice'), ('credit_note', 'Credit note')], default='invoice', max_length=12)),
                ('number', models.CharField(blank=True, max_length=24, null=True, unique=True)),
                ('state', models.CharField(choices=[('draft', 'Draft'), ('issued', 'Issued')], default='draft', max_length=10)),
                ('month', models.CharField(help_text='the month it bills, YYYY-MM', max_length=7)),
                ('issue_date', models.DateField()),
                ('due_date', models.DateField()),
                ('currency', models.CharField(max_length=3)),
                ('tax_rate', models.DecimalField(decimal_places=3, default=Decimal('0'), max_digits=6)),
                ('subtotal', models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=14)),
                ('tax_amount', models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=14)),
                ('total', models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=14)),
                ('issuer', models.JSONField(blank=True, null=True)),
                ('recipient', models.JSONField(blank=True, null=True)),
                ('issued_at', models.DateTimeField(blank=True, null=True)),
                ('pdf', models.FileField(blank=True, upload_to='customer-invoices/', verbose_name='PDF')),
                ('pdf_version', models.PositiveIntegerField(default=0, verbose_name='PDF version')),
                ('emailed_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('credits', models.ForeignKey(blank=True, help_text='a credit note: the invoice it corrects', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='credit_notes', to='rebilling.customerinvoice')),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='invoices_from_partner', to='partners.customer')),
                ('partner', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='customer_invoices', to='partners.partner')),
                ('source', models.ForeignKey(blank=True, help_text="the partner's invoice it follows", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='invoicing.invoice')),
            ],
            options={
                'verbose_name': 'customer invoice',
                'ordering': ['-issue_date', '-id'],
            },
        ),
        migrations.CreateModel(
            name='CustomerInvoiceLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('line_type', models.CharField(choices=[('usage', 'Usage'), ('minimum', 'Minimum'), ('overage', 'Overage'), ('recurring', 'Recurring'), ('variable_usage', 'Variable Usage'), ('proration', 'Proration'), ('first_month', 'First Month'), ('one_time', 'One Time'), ('tax', 'Tax'), ('credit', 'Credit'), ('true_up', 'True Up')], max_length=20)),
                ('period', models.CharField(help_text='the month the line covers, YYYY-MM', max_length=7)),
                ('quantity', models.DecimalField(blank=True, decimal_places=10, max_digits=24, null=True)),
                ('unit_price', models.DecimalField(blank=True, decimal_places=4, max_digits=14, null=True)),
                ('amount', models.DecimalField(decimal_places=2, max_digits=14)),
                ('description', models.CharField(max_length=300)),
                ('taxable', models.BooleanField(default=True)),
                ('key', models.CharField(blank=True, help_text='what makes the charge unique', max_length=120)),
                ('details', models.JSONField(blank=True, default=dict, help_text='facts the amount was computed from')),
                ('position', models.PositiveIntegerField(default=0)),
                ('invoice', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='rebilling.customerinvoice')),
                ('item', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rebilling.resaleitem', verbose_name='own item')),
                ('service', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.service')),
            ],
            options={
                'verbose_name': 'customer invoice line',
                'ordering': ['invoice', 'position', 'id'],
            },
        ),
        migrations.CreateModel(
            name='CustomerInvoiceSequence',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('invoice', 'Invoice'), ('credit_note', 'Credit note')], max_length=12)),
                ('last', models.PositiveIntegerField(default=0)),
                ('partner', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='partners.partner')),
            ],
        ),
        migrations.CreateModel(
            name='RebillingProfile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('enabled', models.BooleanField(default=False, help_text="the billing run issues invoices to this partner's customers", verbose_name='rebilling on')),
                ('number_prefix', models.CharField(help_text="the customer invoices' numbers begin with it: NWIT-0001 (credit notes NWIT-CN-0001)", max_length=10, unique=True, validators=[django.core.validators.RegexValidator('^[A-Z][A-Z0-9]{1,9}$', '2 to 10 capital letters and digits, beginning with a letter (e.g. NWIT)')])),
                ('legal_name', models.CharField(blank=True, help_text="blank: the partner's name", max_length=200)),
                ('address', models.TextField(blank=True, help_text="blank: the partner's billing address")),
                ('tax_id', models.CharField(blank=True, help_text="blank: the partner's tax ID", max_length=60, verbose_name='tax ID')),
                ('email', models.EmailField(blank=True, help_text='printed: where customers ask about their invoices', max_length=254)),
                ('phone', models.CharField(blank=True, max_length=40)),
                ('website', models.CharField(blank=True, max_length=200)),
                ('bank_details', models.TextField(blank=True, help_text='how customers pay the partner')),
                ('invoice_footer', models.TextField(blank=True, help_text='printed at the end of every customer invoice')),
                ('logo', models.ImageField(blank=True, help_text='PNG or JPEG, printed 18 mm high', upload_to='rebilling/logos/')),
                ('payment_terms_days', models.PositiveIntegerField(default=30, help_text="days the partner's customers have to pay", verbose_name='payment terms (days)')),
                ('email_invoices', models.BooleanField(default=False, help_text="email each issued customer invoice to the customer's billing emails", verbose_name='email customer invoices')),
                ('review_drafts', models.BooleanField(default=False, help_text='the run drafts customer invoices instead of issuing them; the partner issues them', verbose_name='draft for review')),
                ('customer_billing', models.BooleanField(default=False, help_text='customer invoices show the account (previous balance, credits, payments, amount due); off: new charges only', verbose_name='Customer Billing')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('partner', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='rebilling_profile', to='partners.partner')),
            ],
            options={
                'verbose_name': 'rebilling profile',
            },
        ),
        migrations.CreateModel(
            name='UnbilledCharge',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('period', models.CharField(max_length=7)),
                ('line_type', models.CharField(choices=[('usage', 'Usage'), ('minimum', 'Minimum'), ('overage', 'Overage'), ('recurring', 'Recurring'), ('variable_usage', 'Variable Usage'), ('proration', 'Proration'), ('first_month', 'First Month'), ('one_time', 'One Time'), ('tax', 'Tax'), ('credit', 'Credit'), ('true_up', 'True Up')], max_length=20)),
                ('quantity', models.DecimalField(blank=True, decimal_places=10, max_digits=24, null=True)),
                ('reason', models.CharField(choices=[('no_price', 'No resale price for the customer'), ('not_split', 'Billed to the partner as a whole: no quantity per customer')], max_length=12)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('customer', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.customer')),
                ('partner', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.partner')),
                ('service', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='partners.service')),
                ('source', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='invoicing.invoice')),
            ],
            options={
                'verbose_name': 'charge not rebilled',
                'verbose_name_plural': 'charges not rebilled',
                'ordering': ['-created_at', 'id'],
            },
        ),
        migrations.AddIndex(
            model_name='customerinvoice',
            index=models.Index(fields=['partner', 'issue_date'], name='customer_invoice_partner_date'),
        ),
        migrations.AddConstraint(
            model_name='customerinvoice',
            constraint=models.UniqueConstraint(condition=models.Q(('kind', 'invoice')), fields=('source', 'customer'), name='customer_invoice_once_per_source'),
        ),
        migrations.AddConstraint(
            model_name='customerinvoice',
            constraint=models.UniqueConstraint(condition=models.Q(('kind', 'credit_note')), fields=('credits',), name='customer_invoice_credited_once'),
        ),
        migrations.AddConstraint(
            model_name='customerinvoice',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('state', 'issued'), _negated=True), ('number__isnull', False), _connector='OR'), name='customer_invoice_issued_has_number'),
        ),
        migrations.AddConstraint(
            model_name='customerinvoice',
            constraint=models.CheckConstraint(condition=models.Q(('kind', 'invoice'), ('credits__isnull', False), _connector='OR'), name='customer_credit_note_names_invoice'),
        ),
        migrations.AddConstraint(
            model_name='customerinvoiceline',
            constraint=models.UniqueConstraint(condition=models.Q(('line_type', 'credit')), fields=('key',), name='customer_line_credited_once'),
        ),
        migrations.AddConstraint(
            model_name='customerinvoicesequence',
            constraint=models.UniqueConstraint(fields=('partner', 'kind'), name='customer_sequence_unique'),
        ),
        migrations.AddIndex(
            model_name='unbilledcharge',
            index=models.Index(fields=['partner', 'period'], name='unbilled_charge_partner_period'),
        ),
        GRANTS.operation(),
    ]

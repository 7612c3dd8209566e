from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "invoicing"
    verbose_name = "Invoicing"

    def ready(self):
        # registers the periods report and the one-time-charges and payments import kinds
        from billing.core.registry import register_invoiced_months
        from invoicing import imports, reports  # noqa: F401
        from invoicing.models import Invoice

        register_invoiced_months(Invoice.objects.last_invoiced_months)  # partners asks, without importing us

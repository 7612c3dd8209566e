from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "invoicing"
    verbose_name = "Invoicing"

    def ready(self):
        # registers the periods report and the one-time-charges and payments import kinds
        from invoicing import imports, reports  # noqa: F401

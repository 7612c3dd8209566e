from django.apps import AppConfig


class RebillingConfig(AppConfig):
    name = "invoicing.rebilling"
    label = "rebilling"
    verbose_name = "Rebilling"

    def ready(self):
        from invoicing.rebilling import imports  # noqa: F401  (registers the resale-prices import kind)

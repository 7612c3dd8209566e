from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "billing.core"
    label = "core"
    verbose_name = "Kernel"

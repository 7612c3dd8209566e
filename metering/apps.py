from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"
    verbose_name = "Metering"

    def ready(self):
        from metering import imports, reports  # noqa: F401  (registers import kinds and the statements report)

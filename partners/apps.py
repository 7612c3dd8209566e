from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = "Partners and seats"

    def ready(self):
        from partners import imports  # noqa: F401  (registers the import kinds)

from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _sqlite_unicode_lower(sender, connection, **kwargs):
    """SQLite's LOWER folds ASCII only; RMM names are compared in lower case (billing-rules 3.7) as Python
    folds them (metering.matching.key), so the embedded database folds them the same way. PostgreSQL's
    LOWER already folds every letter."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "LOWER", 1, lambda text: text.lower() if isinstance(text, str) else text, deterministic=True)


class MeteringConfig(AppConfig):
    name = "metering"
    verbose_name = "Metering"

    def ready(self):
        from metering import imports, reports  # noqa: F401  (registers import kinds and the statements report)

        connection_created.connect(_sqlite_unicode_lower, dispatch_uid="metering.sqlite_unicode_lower")

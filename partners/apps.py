from zoneinfo import ZoneInfo

from django.apps import AppConfig
from django.db.migrations.serializer import BaseSerializer
from django.db.migrations.writer import MigrationWriter


class ZoneInfoSerializer(BaseSerializer):
    """A time zone in a migration (the seats' check that their dates are the instants' UTC dates names UTC)."""

    def serialize(self):
        return f"zoneinfo.ZoneInfo({self.value.key!r})", {"import zoneinfo"}


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = "Partners and seats"

    def ready(self):
        from partners import imports  # noqa: F401  (registers the import kinds)

        MigrationWriter.register_serializer(ZoneInfo, ZoneInfoSerializer)

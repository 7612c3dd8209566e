"""python manage.py reseal_tokens: every RMM API token sealed again with the first key of
FIELD_ENCRYPTION_KEYS, the step between adding a new key and retiring the old (operations 14)."""

from django.core.management.base import BaseCommand, CommandError

from billing.core.sealed import SealedValueError
from metering.services import rmm_tokens_reseal


class Command(BaseCommand):
    help = "Seal every stored RMM API token again with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        try:
            count = rmm_tokens_reseal()
        except SealedValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{count} RMM API token(s) sealed with the first key of FIELD_ENCRYPTION_KEYS.")

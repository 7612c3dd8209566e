"""python manage.py create_api_key --partner SLUG [--name NAME]: prints a new key once (billing-rules 8.5, 11.1)."""

from django.core.management.base import BaseCommand, CommandError

from billing.core.actor import Actor
from partners.api_keys import api_key_create
from partners.models import Partner


class Command(BaseCommand):
    help = "Create an API key for a partner and print it once: only its digest is stored."

    def add_arguments(self, parser):
        parser.add_argument("--partner", required=True)
        parser.add_argument("--name", default="")

    def handle(self, *args, partner, name, **options):
        found = Partner.objects.filter(slug=partner).first()
        if found is None:
            raise CommandError(f"unknown partner {partner!r}")
        api_key, key = api_key_create(partner=found, actor=Actor(label="create_api_key"), name=name)
        self.stdout.write(key)
        self.stderr.write(f"Key {api_key.prefix}… for {found.slug}: shown once, store it now.")

"""python manage.py rmm_connect --partner SLUG --vendor kaseya-vsa|datto|ninjaone|json --url URL [--username NAME]
--secret-file FILE [--filter ...] (docs/rmm.md): create or update a partner's RMM integration from the shell."""

import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from billing.core.actor import Actor
from metering.models import IntegrationKind
from metering.services import rmm_integration_save
from partners.models import Partner

VENDORS = [k for k in IntegrationKind.values if k != IntegrationKind.FOLDER]


class Command(BaseCommand):
    help = ("Create or update a partner's RMM integration (the secret is read from a file, or - for standard "
            "input, and stored encrypted). Then: sync_inventory --partner SLUG --dry-run.")

    def add_arguments(self, parser):
        parser.add_argument("--partner", required=True, help="partner slug")
        parser.add_argument("--vendor", required=True, choices=VENDORS)
        parser.add_argument("--url", required=True, help="the RMM's API address, e.g. https://vsa.example.com")
        parser.add_argument("--username", default=None,
                            help="Kaseya VSA: the API user's name; Datto RMM: the API key; NinjaOne: the client id")
        parser.add_argument("--secret-file", required=True,
                            help="a file holding the secret (VSA personal access token, Datto secret key, NinjaOne "
                                 "client secret, JSON bearer token); - reads standard input")
        parser.add_argument("--filter", action="append", default=None, metavar="ORG|ORG/GROUP|view:NAME",
                            help="only agents some filter takes are the partner's inventory (repeatable); "
                                 "--filter '' clears them")
        parser.add_argument("--guard-percent", type=int, default=None,
                            help="hold a sync that removes more than this share of the agents (default 20)")
        for state, default in (("offline", "yes"), ("suspended", "no"), ("never-checked-in", "no")):
            parser.add_argument(f"--bill-{state}", choices=["yes", "no"], default=None,
                                help=f"bill agents that are {state.replace('-', ' ')} (default {default})")
        parser.add_argument("--disable", action="store_true", help="keep the settings, run no sync")

    def handle(self, *args, partner, vendor, url, username, secret_file, filter, guard_percent, disable, **options):
        found = Partner.objects.filter(slug=partner).first()
        if found is None:
            raise CommandError(f"unknown partner {partner!r}")
        secret = self._secret(secret_file)
        values = {"kind": vendor, "base_url": url.strip(), "api_token": secret, "enabled": not disable}
        if username is not None:
            values["username"] = username.strip()
        if filter is not None:
            values["inventory_filter"] = "\n".join(f.strip() for f in filter if f.strip())
        if guard_percent is not None:
            values["removal_guard_percent"] = guard_percent
        for state in ("offline", "suspended", "never_checked_in"):
            choice = options[f"bill_{state}"]
            if choice is not None:
                values[f"count_{state}"] = choice == "yes"
        try:
            integration, created = rmm_integration_save(
                partner=found, values=values, actor=Actor(label=f"rmm_connect --partner {partner}"))
        except ValidationError as exc:
            reasons = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
            raise CommandError(f"the integration was not saved: {reasons}") from exc
        self.stdout.write(f"{found.slug}: {'created' if created else 'updated'} the "
                          f"{integration.get_kind_display()} integration at {integration.base_url}"
                          + (" (disabled)" if not integration.enabled else "")
                          + f"; try it with: python manage.py sync_inventory --partner {found.slug} --dry-run")

    @staticmethod
    def _secret(path: str) -> str:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{path}: cannot read the secret: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path}: the secret file is not UTF-8 text") from exc
        secret = text.strip()
        if not secret:
            raise CommandError(f"{path}: the secret file is empty")
        if "\n" in secret:
            raise CommandError(f"{path}: the secret file holds more than one line")
        return secret

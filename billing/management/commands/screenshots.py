"""python manage.py screenshots [--out docs/img] [--only NAME ...]: the pictures of docs/img taken anew from the
demo, in a throw-away database (billing/screenshots.py)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing import screenshots


class Command(BaseCommand):
    help = "Photograph the main admin and portal pages and page 1 of a CI and an INV of the demo into docs/img."

    def add_arguments(self, parser):
        parser.add_argument("--out", default=str(Path(settings.BASE_DIR) / "docs" / "img"),
                            help="the folder to write the PNGs to (default: docs/img)")
        parser.add_argument("--only", nargs="*", metavar="NAME",
                            help="only these pictures, by file name without .png: " + ", ".join(
                                [s.name for s in screenshots.SHOTS] + [n for n, _ in screenshots.INVOICES]))

    def handle(self, *args, out, only, **options):
        try:
            written = screenshots.regenerate(Path(out), only=only, log=self.stdout.write)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{len(written)} picture(s) written to {out}"))

"""python manage.py render_invoice NUMBER --output FILE.pdf (billing-rules 8.4)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.core.registry import document_pdf
from invoicing.models import Invoice
from invoicing.pdf import render_invoice_pdf


class Command(BaseCommand):
    help = ("Write the PDF of an invoice (CI-..., INV-... or CN-...), or of a partner's invoice to its customer, to "
            "a file.")

    def add_arguments(self, parser):
        parser.add_argument("number", help="the invoice number, e.g. CI-0002")
        parser.add_argument("--output", required=True, help="the PDF file to write")

    def handle(self, *args, number, output, **options):
        wanted = number.strip().upper()
        invoice = Invoice.objects.select_related("partner").filter(number=wanted).first()
        # or a document of a later app, by its own number (a partner's invoice to its customer: NWIT-0001)
        render = (lambda: render_invoice_pdf(invoice)) if invoice is not None else document_pdf(wanted)
        if render is None:
            raise CommandError(f"unknown invoice number {number!r}")
        path = Path(output)
        if not path.parent.is_dir():
            raise CommandError(f"--output: no such directory {str(path.parent)!r}")
        try:
            pdf = render()
        except (ImportError, OSError) as exc:  # WeasyPrint without Pango on this machine
            raise CommandError(f"cannot render PDFs here: {exc}") from exc
        try:
            path.write_bytes(pdf)
        except OSError as exc:
            raise CommandError(f"--output: cannot write {str(path)!r}: {exc.strerror or exc}") from exc
        self.stdout.write(f"{wanted}: wrote {path} ({len(pdf):,} bytes)")

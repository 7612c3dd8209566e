"""Invoice PDFs: HTML templates rendered by WeasyPrint."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from invoicing.selectors import invoice_document


def render_invoice_html(invoice) -> str:
    return render_to_string("invoicing/invoice.html", invoice_document(invoice))


def render_invoice_pdf(invoice) -> bytes:
    from weasyprint import HTML

    return HTML(string=render_invoice_html(invoice), base_url=str(settings.BASE_DIR)).write_pdf()

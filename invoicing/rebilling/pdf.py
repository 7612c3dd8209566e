"""Customer invoice PDFs (billing-rules 12.5): the partner's document to its customer, in the partner's branding
(its legal details and logo as the issuer), rendered by WeasyPrint as our own invoices are (invoicing.pdf)."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from invoicing.rebilling.models import CustomerInvoice
from invoicing.rebilling.selectors import customer_invoice_document

TEMPLATE = "rebilling/customer_invoice.html"


def render_customer_invoice_html(invoice) -> str:
    return render_to_string(TEMPLATE, customer_invoice_document(invoice))


def render_customer_invoice_pdf(invoice) -> bytes:
    """The PDF of a customer invoice or credit note (A4)."""
    # imported here: WeasyPrint needs Pango, which only rendering requires (the admin and API start without it)
    from weasyprint import HTML  # noqa: PLC0415

    return HTML(string=render_customer_invoice_html(invoice), base_url=str(settings.BASE_DIR)).write_pdf()


def customer_invoice_pdf_content(invoice) -> bytes:
    """The stored PDF (the one emailed) when there is one, else rendered now."""
    if invoice.pdf:
        try:
            with invoice.pdf.open("rb") as stored:
                return stored.read()
        except OSError:
            pass
    return render_customer_invoice_pdf(invoice)


def customer_invoice_pdf_finder(number: str):
    """`render_invoice`'s lookup (billing.core.registry): the renderer of the customer invoice numbered `number`
    (drafts have none), or None."""
    invoice = CustomerInvoice.objects.select_related("partner", "customer").filter(number=number).first()
    return None if invoice is None else (lambda: render_customer_invoice_pdf(invoice))

"""Thin Celery tasks of rebilling: a customer invoice's email."""

from celery import shared_task

from invoicing.rebilling.invoices import customer_invoice_email_send
from invoicing.rebilling.models import CustomerInvoice


@shared_task(bind=True, max_retries=5, default_retry_delay=120)
def send_customer_invoice_task(self, invoice_id: int):
    invoice = CustomerInvoice.objects.get(pk=invoice_id)
    try:
        customer_invoice_email_send(invoice=invoice)
    except OSError as exc:  # SMTP down: try later
        raise self.retry(exc=exc) from exc

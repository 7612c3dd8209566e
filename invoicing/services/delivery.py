"""Delivery of issued documents: their emails, queued after the commit and sent once, and their stored PDFs.

The documents waiting for their email are read by `invoicing.selectors.unsent_invoices`."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

from invoicing import pdf
from invoicing.models import Invoice
from invoicing.reports import invoice_lines_xlsx
from invoicing.selectors import invoice_pdf_detailed
from invoicing.templatetags.invoice_format import format_money

logger = logging.getLogger("invoicing.services")  # the services' one logger, by the name it has always had


def invoice_emails_enqueue(invoice_ids: list[int]) -> None:
    """Queue the emails of issued (committed) invoices (`emails_enqueue`)."""
    # a named cycle: the task sends the email with invoice_email_send, in this package
    from invoicing.tasks import send_invoice_task  # noqa: PLC0415

    emails_enqueue(send_invoice_task, invoice_ids, "invoice")


def emails_enqueue(task, ids: list[int], what: str, log: logging.Logger = logger) -> None:
    """Queue `task` for each issued (committed) document of `ids` (`what`: "invoice", "customer invoice"), all on
    one producer: one broker connection; `log`: the caller's logger.

    Issued and committed, they must stay so whatever the queue does: an error queuing one document's
    email is logged and the next is tried; a broker that cannot be reached stops the rest at once
    (logged once, not retried document by document). The daily job sends every email that never left."""
    done = 0
    try:
        with task.app.producer_or_acquire() as producer:
            for document_id in ids:
                try:
                    task.apply_async((document_id,), producer=producer)
                except BrokerUnreachable:
                    raise
                except Exception:
                    log.exception("could not queue the email of %s %s; the daily job sends it", what, document_id)
                done += 1
    except Exception:
        left = ids[done:]
        if not left:  # every email was handed over; only giving the producer back failed
            log.warning("the queue's producer could not be released after queuing %d %s emails", done, what,
                           exc_info=True)
            return
        log.exception("could not reach the queue for the emails of %d %ss (ids %s); the daily job sends "
                         "them", len(left), what, ", ".join(map(str, left[:20])) + (", ..." if len(left) > 20 else ""))


@transaction.atomic
def invoice_email_send(*, invoice: Invoice) -> Invoice:
    """Email an issued invoice's PDF to the partner's billing contacts, once."""

    invoice = Invoice.objects.select_for_update().select_related("partner").get(pk=invoice.pk)
    if invoice.emailed_at is not None or not invoice.is_issued:
        return invoice
    recipients = invoice.partner.billing_contacts
    if recipients:
        message = EmailMessage(
            subject=f"{invoice.partner.name}: invoice {invoice.number}, due {invoice.due_date}",
            body=(f"Please find attached invoice {invoice.number} dated {invoice.issue_date:%d %B %Y}.\n"
                  f"Amount due: {format_money(invoice.amount_due, invoice.currency)}, "
                  f"by {invoice.due_date:%d %B %Y}.\n"),
            from_email=settings.DEFAULT_FROM_EMAIL, to=recipients,
        )
        invoice = invoice_pdf_store(invoice=invoice)  # the file kept is the one sent
        try:
            with invoice.pdf.open("rb") as stored:
                message.attach(f"{invoice.number}.pdf", stored.read(), "application/pdf")
            if not invoice_pdf_detailed(invoice):  # the PDF shows subtotals: the lines come along

                message.attach(f"{invoice.number}-lines.xlsx", invoice_lines_xlsx(invoice),
                               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            message.send()
        except Exception:
            # the rollback forgets the file's name and version: remove the file too, or it is left orphaned
            # and the retry's copy gets another name beside it
            invoice.pdf.storage.delete(invoice.pdf.name)
            raise
    invoice.emailed_at = timezone.now()
    invoice.save(update_fields=["emailed_at"])
    return invoice


def invoice_pdf_store(*, invoice: Invoice) -> Invoice:
    """Render the PDF and keep it with the invoice (pdf_version counts renderings); issued invoices
    allow this one change."""

    content = pdf.render_invoice_pdf(invoice)
    invoice.pdf_version += 1
    invoice.pdf.save(f"{invoice.number or f'draft-{invoice.pk}'}-v{invoice.pdf_version}.pdf", ContentFile(content),
                     save=False)
    invoice.save(update_fields=["pdf", "pdf_version"])
    return invoice

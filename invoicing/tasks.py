"""Thin Celery tasks: billing fanned out daily in batches of partners, invoice emails, payment statuses."""

from datetime import date

from celery import group, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.hooks import unsent_emails_enqueue
from billing.core.periods import utc_date
from invoicing.choices import RunSource
from invoicing.models import Invoice
from invoicing.selectors import unsent_invoices
from invoicing.services import (
    billing_run_recorded,
    invoice_email_send,
    invoice_emails_enqueue,
    invoice_statuses_refresh,
)
from partners.models import Partner

BILLING_QUEUE = "billing"


def _billing_actor(requested_by: str) -> Actor:
    """The billing job, and who asked for it when it was run by hand (the admin's Run action)."""
    return Actor(label=f"billing task, asked by {requested_by}" if requested_by else "billing task")


@shared_task(bind=True, max_retries=3, default_retry_delay=300)
def bill_partners_task(self, partner_ids: list[int], through: str, requested_by: str = ""):
    """A batch of partners billed together (one transaction; partner by partner if it fails), recorded as a
    billing run: a partner that fails is recorded and the others are billed; a database outage is retried (the
    run is idempotent: nothing bills twice)."""
    try:
        run = billing_run_recorded(partner_ids=partner_ids, through=date.fromisoformat(through),
                                   actor=_billing_actor(requested_by), batch_size=len(partner_ids),
                                   source=RunSource.TASK, reraise=(OperationalError, InterfaceError))
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc) from exc
    return [document["number"] for document in run.documents]


@shared_task
def run_daily_billing_task(requested_by: str = ""):
    """Daily (celery-beat): bill every partner through today, one task per BILLING_TASK_PARTNERS
    partners (by slug), for the workers to share. `requested_by`: who ran it by hand (the admin's Run action),
    named on what it issues."""
    today = utc_date(timezone.now()).isoformat()
    partner_ids = list(Partner.objects.order_by("slug").values_list("pk", flat=True))
    size = max(1, settings.BILLING_TASK_PARTNERS)
    group(bill_partners_task.s(partner_ids[start:start + size], today, requested_by)
          for start in range(0, len(partner_ids), size)).apply_async(queue=BILLING_QUEUE)
    return len(partner_ids)


@shared_task(bind=True, max_retries=5, default_retry_delay=120)
def send_invoice_task(self, invoice_id: int):
    invoice = Invoice.objects.select_related("partner").get(pk=invoice_id)
    try:
        invoice_email_send(invoice=invoice)
    except OSError as exc:  # SMTP down: try later
        raise self.retry(exc=exc) from exc


@shared_task
def refresh_payment_statuses_task():
    """Daily: invoices past due become overdue; emails that never left are sent (ours, and the later layers':
    rebilling's customer invoices)."""
    changed = invoice_statuses_refresh()
    invoice_emails_enqueue(list(unsent_invoices().values_list("pk", flat=True)))
    unsent_emails_enqueue()
    return changed

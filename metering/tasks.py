"""Thin Celery tasks: the nightly RMM sync fanned out per partner, and unit change emails."""

from datetime import date

from celery import group, shared_task
from django.conf import settings
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.periods import utc_date
from metering.models import RmmIntegration, SyncStatus, SyncTrigger, UnitChangeNotice
from metering.notices import unit_change_notice_send, unit_change_notices_unsent
from metering.sync import inventory_sync, sync_runs_abandoned
from partners.models import Partner


def retry_delay(retries: int) -> int:
    """Exponential backoff: base, 2 x base, 4 x base... seconds (RMM_SYNC_RETRY_BASE_SECONDS)."""
    return settings.RMM_SYNC_RETRY_BASE_SECONDS * 2**retries


@shared_task(bind=True)
def sync_partner_inventory_task(self, partner_id: int, as_of: str):
    """One partner's sync; every try is a SyncRun. A fault that looks transient (timeout, HTTP 5xx)
    is tried again with exponential backoff, RMM_SYNC_RETRIES times; then the failed run stays. A
    failed sync never fails the task, so one partner never stops the others."""
    partner = Partner.objects.filter(pk=partner_id).first()
    if partner is None:
        return "no such partner"
    # the inventory fetched now is the one of today (UTC): a task delivered days late (workers down) or retried
    # after midnight never dates what it finds back to the night it was queued (billing-rules 3.7)
    day = max(date.fromisoformat(as_of), utc_date(timezone.now()))
    run = inventory_sync(partner=partner, as_of=day, actor=Actor(label="nightly RMM sync"),
                         trigger=SyncTrigger.NIGHTLY, attempt=self.request.retries + 1)
    retries = settings.RMM_SYNC_RETRIES
    if run.status == SyncStatus.FAILED and run.retryable and self.request.retries < retries:
        # In a worker, retry() raises Retry and the broker brings the task back after the countdown.
        # In-process (eager: the embedded default and the tests) a raised Retry would abort the whole
        # nightly fan-out, so it is returned instead and Celery's apply() runs the next try at once.
        return self.retry(countdown=retry_delay(self.request.retries), max_retries=retries,
                          throw=not self.request.is_eager)
    return run.status


@shared_task
def sync_inventories_task():
    """Nightly (celery-beat, 02:00 UTC): one sync task per partner with an enabled integration, as of
    today (UTC); and unit change emails that never left are sent."""
    today = utc_date(timezone.now()).isoformat()
    sync_runs_abandoned()
    partner_ids = list(RmmIntegration.objects.filter(enabled=True).order_by("partner_id")
                       .values_list("partner_id", flat=True))
    if partner_ids:
        group(sync_partner_inventory_task.s(pk, today) for pk in partner_ids).apply_async()
    for notice_id in unit_change_notices_unsent().values_list("pk", flat=True):
        send_unit_change_notice_task.delay(notice_id)
    return len(partner_ids)


@shared_task(bind=True, max_retries=5, default_retry_delay=120)
def send_unit_change_notice_task(self, notice_id: int):
    notice = UnitChangeNotice.objects.filter(pk=notice_id).first()
    if notice is None:
        return
    try:
        unit_change_notice_send(notice=notice)
    except OSError as exc:  # SMTP down: try again later
        raise self.retry(exc=exc) from exc

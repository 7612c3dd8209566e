"""Unit change notices (billing-rules 3.7): an inventory applied with the units in force of each per_asset service
read before and after it, one notice recorded per service whose units changed, and sent once to the service's
notification emails, after commit, through a Celery task. Used by the nightly sync, "Get units now", the
rmm-assets import and its COPY path (metering.staging)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.emails import split_emails
from metering.models import (
    SyncRun,
    UnitChangeNotice,
)
from metering.selectors import asset_unit_steps
from metering.services import AgentRow, InventoryResult, inventory_apply, inventory_latest_as_of
from partners.models import Method, Partner, Service

logger = logging.getLogger(__name__)

NOTICE_RESEND_AFTER = timedelta(minutes=10)  # a notice still unsent after this is sent by the nightly job


def inventory_apply_notified(*, partner: Partner, as_of: date, agents: dict[str, AgentRow], actor: Actor,
                             source: str, run: SyncRun | None = None):
    """inventory_apply, then one notice per per_asset service whose units in force on `as_of` changed
    (syncs and rmm-assets imports alike: the notification emails of billing-rules 3.7, decision (ai))."""
    return unit_notices_around(
        partner=partner, as_of=as_of, run=run,
        apply=lambda: inventory_apply(partner=partner, as_of=as_of, agents=agents, actor=actor, source=source))


def unit_notices_around(*, partner: Partner, as_of: date, apply: Callable[[], InventoryResult],
                        run: SyncRun | None = None, check: Callable | None = None) -> InventoryResult:
    """Apply an inventory (`apply`) and record one notice per per_asset service whose units in force on
    `as_of` changed (inventory_apply_notified, and the rmm-assets COPY path of metering.staging). `check`
    (units before, units after, services, the result) may stop it by raising before any notice is recorded
    (the removal guard); the units are None when the inventory added, moved and removed nothing (then no
    service's units changed, and they are not read: the common night).

    An inventory dated after every one recorded changes nothing before its date: the units in force the
    day before, read after applying it, are those in force on its date before it, so one query reads both
    sides (a same-date correction or a back-filled night reads them before applying)."""
    services = list(Service.objects.filter(partner=partner, method=Method.PER_ASSET).active_on(as_of)
                    .order_by("pk"))
    latest = inventory_latest_as_of(partner)
    forward = latest is None or as_of > latest
    before = None if forward else asset_units_on(services=services, day=as_of)
    result = apply()
    if not (result.added or result.moved or result.removed):
        if check is not None:
            check(None, None, services, result)
        return result
    if forward:
        steps = asset_unit_steps(service_ids=[s.pk for s in services], first=as_of - timedelta(days=1), last=as_of)
        before = {sid: values[0][1] for sid, values in steps.items()}
        after = {sid: values[-1][1] for sid, values in steps.items()}  # the step in force on as_of
    else:
        after = asset_units_on(services=services, day=as_of)
    if check is not None:
        check(before, after, services, result)
    for service in services:
        if before[service.pk] != after[service.pk]:
            _notice_record(service=service, day=as_of, before=before[service.pk], after=after[service.pk], run=run)
    return result


def service_units(services, before: dict[int, int], after: dict[int, int]) -> list[dict]:
    """Per service: its code, name, units before and after, and the change (what a run shows)."""
    return [{"code": s.code, "name": s.name, "before": before[s.pk], "after": after[s.pk],
             "change": after[s.pk] - before[s.pk]} for s in services]


def service_units_on(*, partner: Partner, day: date) -> list[dict]:
    """service_units of the partner's per_asset services active on a day, unchanged (an inventory that changed
    nothing)."""
    services = list(Service.objects.filter(partner=partner, method=Method.PER_ASSET).active_on(day).order_by("pk"))
    units = asset_units_on(services=services, day=day)
    return service_units(services, units, units)


def asset_units_on(*, services, day: date) -> dict[int, int]:
    """Units in force on a date of per_asset services (billing-rules 3.7, 6.7), one query for all of them."""
    steps = asset_unit_steps(service_ids=[s.pk for s in services], first=day, last=day)
    return {sid: (values[0][1] if values else 0) for sid, values in steps.items()}


def _notice_record(*, service: Service, day: date, before: int, after: int, run: SyncRun | None) -> None:
    """One notice per (service, date, units after): the same change found again is not told again;
    a change back to units told earlier that day, after another value was told, is told again."""
    recipients = ", ".join(split_emails(service.notification_emails))
    notice, created = UnitChangeNotice.objects.get_or_create(
        service=service, effective_date=day, units_after=after,
        defaults={"units_before": before, "sync_run": run, "recipients": recipients},
    )
    if not created:
        latest = (UnitChangeNotice.objects.filter(service=service, effective_date=day)
                  .order_by("-created_at", "-pk").first())
        if latest.pk == notice.pk:
            return
        notice.units_before, notice.sync_run, notice.recipients = before, run, recipients
        notice.created_at, notice.emailed_at = timezone.now(), None
        notice.save()
    if recipients:
        transaction.on_commit(lambda pk=notice.pk: _enqueue_notice(pk))


def _enqueue_notice(notice_id: int) -> None:
    """Queue the email; with the broker down the notice stays unsent and the nightly job sends it."""
    # a named cycle: the task sends the notice with unit_change_notice_send, in this module
    from metering.tasks import send_unit_change_notice_task  # noqa: PLC0415

    try:
        send_unit_change_notice_task.delay(notice_id)
    except Exception:  # the inventory is committed: never fail the sync over a queue outage
        logger.exception("could not queue unit change notice %s; the nightly sync job will send it", notice_id)


@transaction.atomic
def unit_change_notice_send(*, notice: UnitChangeNotice) -> UnitChangeNotice:
    """Email one notice and record when it left (once: the row is locked, so a retried task and the
    nightly job cannot both send it). A notice without recipients is kept, never emailed."""
    notice = UnitChangeNotice.objects.select_for_update().select_related("service__partner").get(pk=notice.pk)
    recipients = split_emails(notice.recipients)
    if notice.emailed_at is not None or not recipients:
        return notice
    service = notice.service
    change = notice.units_after - notice.units_before
    subject = (f"[{service.partner.name}] {service.name}: RMM units {notice.units_before} -> {notice.units_after} "
               f"from {notice.effective_date}")
    body = (
        f"The RMM inventory synced as of {notice.effective_date} changes the billing units of {service.name} "
        f"({service.code}, {service.scope_label}"
        + (f", filter {service.rmm_filter}" if service.rmm_filter else "")
        + f") from {notice.units_before} to {notice.units_after} ({change:+d}), effective {notice.effective_date}.\n\n"
        "A month already billed is prorated from that date on the next consolidated invoice; later months "
        f"are billed at {notice.units_after} units until the next change.\n"
    )
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    notice.emailed_at = timezone.now()
    notice.save(update_fields=["emailed_at"])
    return notice


def unit_change_notices_unsent():
    """Notices with recipients whose email never left (the broker was down, say)."""
    return UnitChangeNotice.objects.filter(emailed_at__isnull=True, created_at__lt=timezone.now() - NOTICE_RESEND_AFTER
                                           ).exclude(recipients="")


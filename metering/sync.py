"""RMM inventory syncs: fetch a partner's whole inventory, apply it, tell the contracts whose units moved.

The seed's "nightly job on VSA" and "Get units now" both come here (RULES 3.6): the inventory
fetched is the partner's whole RMM as of the sync's date, and every change takes effect on that
date. A per_asset service whose units in force on that date changed is notified once per change
(to its notification emails, after commit, through a Celery task).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from billing.actor import Actor
from billing.emails import split_emails
from billing.periods import utc_date
from metering.connectors import ConnectorError, connector_for
from metering.models import (
    AgentPresence,
    RmmIntegration,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    UnitChangeNotice,
)
from metering.selectors import asset_unit_steps
from metering.services import AgentRow, InventoryError, InventoryResult, inventory_apply, inventory_latest_as_of
from partners.models import Method, Partner, Service

logger = logging.getLogger(__name__)

NOTICE_RESEND_AFTER = timedelta(minutes=10)  # a notice still unsent after this is sent by the nightly job


class SyncRefused(Exception):
    """An inventory the sync will not apply (its run fails with this message)."""


def inventory_sync(*, partner: Partner, as_of: date, actor: Actor, trigger: str, attempt: int = 1) -> SyncRun:
    """Fetch the partner's inventory through its integration and apply it as of `as_of`.

    Not one @transaction.atomic block, on purpose: the run is recorded first (a sync that dies
    half way still shows as running), and the fetch (network, seconds) happens outside any
    transaction so it holds no lock. Only the apply is one transaction, with the run marked ok
    in it: a run is ok exactly when its inventory is written. Any fault of the fetch or the apply
    marks the run failed with the message and writes nothing to the inventory; the run is
    returned either way (`retryable` says whether trying later may help).

    Idempotent: the same inventory again on the same date changes nothing and emails nothing.
    """
    integration = RmmIntegration.objects.filter(partner=partner).first()
    run = SyncRun.objects.create(partner=partner, integration=integration, as_of=as_of, trigger=trigger,
                                 attempt=attempt, actor_label=str(actor)[:200])
    if integration is None:
        return _fail(run, f"{partner.slug} has no RMM integration: add one under Metering > RMM integrations")
    if not integration.enabled:
        return _fail(run, f"the RMM integration of {partner.slug} is disabled")
    if as_of > utc_date(timezone.now()):
        return _fail(run, f"as of {as_of} is in the future")
    latest = inventory_latest_as_of(partner)
    if latest is not None and as_of < latest:
        return _fail(run, f"an inventory as of {latest} is already recorded for {partner.slug}; "
                          f"inventories go forward in time")
    try:
        rows = connector_for(integration).fetch_inventory(integration)
    except ConnectorError as exc:
        return _fail(run, str(exc), retryable=exc.transient)
    except Exception as exc:  # a connector bug: the nightly job goes on with the other partners
        logger.exception("RMM sync of %s: the connector failed", partner.slug)
        return _fail(run, f"the connector failed: {type(exc).__name__}: {exc}")
    run.source = (getattr(rows, "source", "") or integration.kind)[:200]
    run.agents_seen = len(rows)
    try:
        with transaction.atomic():
            _apply(run=run, partner=partner, as_of=as_of, rows=rows, actor=actor)
    except (SyncRefused, InventoryError) as exc:
        return _fail(run, str(exc))
    except (OperationalError, InterfaceError) as exc:  # the database, not the data: worth another try
        logger.warning("RMM sync of %s: database error: %s", partner.slug, exc)
        return _fail(run, f"database error: {exc}", retryable=True)
    except Exception as exc:
        logger.exception("RMM sync of %s: applying the inventory failed", partner.slug)
        return _fail(run, f"applying the inventory failed: {type(exc).__name__}: {exc}")
    return run


def _fail(run: SyncRun, message: str, *, retryable: bool = False) -> SyncRun:
    run.status = SyncStatus.FAILED
    run.error = message
    run.retryable = retryable
    run.finished_at = timezone.now()
    run.added = run.moved = run.removed = 0
    run.inventory = None
    run.save()
    return run


def _agents_by_id(rows: list[AgentRow]) -> dict[str, AgentRow]:
    agents: dict[str, AgentRow] = {}
    for row in rows:
        if agents.setdefault(row.agent_id, row) != row:
            raise SyncRefused(f"agent {row.agent_id} appears twice with different values")
    return agents


def _apply(*, run: SyncRun, partner: Partner, as_of: date, rows: list[AgentRow], actor: Actor) -> None:
    """Under the partner's lock (the one inventory_apply takes): units before, apply, units after."""
    Partner.objects.select_for_update().filter(pk=partner.pk).first()
    agents = _agents_by_id(rows)
    if not agents:
        in_force = (AgentPresence.objects.filter(partner=partner, present_from__lte=as_of)
                    .exclude(present_until__lt=as_of).count())
        if in_force:
            raise SyncRefused(
                f"the RMM reported no agents while {in_force} are in force: refused as a likely fault of the "
                f"RMM (an empty inventory would remove them all); if they are really gone, import an empty "
                f"rmm-assets file with --as-of {as_of}")
    result = inventory_apply_notified(partner=partner, as_of=as_of, agents=agents, actor=actor,
                                      source=f"sync #{run.pk}: {run.source}"[:200], run=run)
    run.status = SyncStatus.OK
    run.added, run.moved, run.removed = result.added, result.moved, result.removed
    run.inventory = result.sync
    run.finished_at = timezone.now()
    run.save()


def inventory_apply_notified(*, partner: Partner, as_of: date, agents: dict[str, AgentRow], actor: Actor,
                             source: str, run: SyncRun | None = None):
    """inventory_apply, then one notice per per_asset service whose units in force on `as_of` changed
    (syncs and rmm-assets imports alike: the notification emails of RULES 6)."""
    return unit_notices_around(
        partner=partner, as_of=as_of, run=run,
        apply=lambda: inventory_apply(partner=partner, as_of=as_of, agents=agents, actor=actor, source=source))


def unit_notices_around(*, partner: Partner, as_of: date, apply: Callable[[], InventoryResult],
                        run: SyncRun | None = None) -> InventoryResult:
    """Apply an inventory (`apply`) and record one notice per per_asset service whose units in force on
    `as_of` changed (inventory_apply_notified, and the rmm-assets COPY path of metering.staging)."""
    services = list(Service.objects.filter(partner=partner, method=Method.PER_ASSET).active_on(as_of)
                    .order_by("pk"))
    before = asset_units_on(services=services, day=as_of)
    result = apply()
    after = asset_units_on(services=services, day=as_of)
    for service in services:
        if before[service.pk] != after[service.pk]:
            _notice_record(service=service, day=as_of, before=before[service.pk], after=after[service.pk], run=run)
    return result


def asset_units_on(*, services, day: date) -> dict[int, int]:
    """Units in force on a date of per_asset services (RULES 3.6, 9.7), one query for all of them."""
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
    from metering.tasks import send_unit_change_notice_task

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


STALE_RUN_AFTER = timedelta(hours=2)


def sync_runs_abandoned(*, now=None) -> int:
    """Runs still "running" long after they started died with their process (a worker killed, a
    deploy): they are marked failed, so the admin never shows a sync as running forever."""
    now = now or timezone.now()
    return SyncRun.objects.filter(status=SyncStatus.RUNNING, started_at__lt=now - STALE_RUN_AFTER).update(
        status=SyncStatus.FAILED, finished_at=now,
        error="abandoned: the process running this sync stopped before it finished")


def unit_change_notices_unsent():
    """Notices with recipients whose email never left (the broker was down, say)."""
    return UnitChangeNotice.objects.filter(emailed_at__isnull=True, created_at__lt=timezone.now() - NOTICE_RESEND_AFTER
                                           ).exclude(recipients="")


# --- "Get units now" ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceUnits:
    service: Service
    day: date
    units_before: int
    units: int
    run: SyncRun


def units_now(*, services, actor: Actor) -> list[ServiceUnits]:
    """Sync each selected per_asset service's partner as of today (once per partner) and report the
    units in force today per service. Services of other methods are left out."""
    today = utc_date(timezone.now())
    services = [s for s in services if s.method == Method.PER_ASSET]
    before = asset_units_on(services=services, day=today)
    runs: dict[int, SyncRun] = {}
    for service in sorted(services, key=lambda s: s.partner_id):
        if service.partner_id not in runs:
            runs[service.partner_id] = inventory_sync(partner=service.partner, as_of=today, actor=actor,
                                                      trigger=SyncTrigger.MANUAL)
    after = asset_units_on(services=services, day=today)
    return [ServiceUnits(service=s, day=today, units_before=before[s.pk], units=after[s.pk], run=runs[s.partner_id])
            for s in services]

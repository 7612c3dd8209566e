"""RMM inventory syncs: fetch a partner's whole inventory, apply it, tell the contracts whose units moved.

The seed's "nightly job on VSA" and "Get units now" both come here (billing-rules 3.7): the inventory
fetched is the partner's whole RMM as of the sync's date, and every change takes effect on that
date. A per_asset service whose units in force on that date changed is notified once per change
(to its notification emails, after commit, through a Celery task).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.periods import utc_date
from metering.connectors import ConnectorError, connector_for
from metering.counting import CountingRules, agents_billed
from metering.models import (
    AgentPresence,
    RmmAgent,
    RmmIntegration,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from metering.notices import asset_units_on, service_units, unit_notices_around
from metering.selectors import agents_unmatched
from metering.services import AgentRow, InventoryError, inventory_apply
from partners.audit import audit_record
from partners.choices import AuditAction
from partners.models import Method, Partner, Service

logger = logging.getLogger(__name__)



class SyncRefused(Exception):
    """An inventory the sync will not apply (its run fails with this message)."""


class HeldForReview(Exception):
    """A complete inventory that would remove too much: nothing is applied, the run waits for staff."""

    def __init__(self, review: dict):
        super().__init__(review["reason"])
        self.review = review


@dataclass(frozen=True)
class RemovalGuard:
    """When a sync is held for review (docs/rmm.md, "The removal guard"): it would remove more than `percent`
    of the partner's agents in force (every one of them, whatever the percent), or take a per_asset service
    that has units to 0."""

    percent: int

    def reasons(self, *, in_force: int, removed: int, before: dict[int, int], after: dict[int, int]) -> list[str]:
        reasons = []
        if in_force and removed == in_force:  # an empty answer is far more often a fault than a partner's end
            reasons.append(f"it would remove every agent ({removed})")
        elif in_force and removed * 100 > self.percent * in_force:
            reasons.append(f"it would remove {removed} of {in_force} agents ({removed * 100 / in_force:.0f}%, "
                           f"more than {self.percent}%)")
        emptied = sum(1 for sid, units in before.items() if units > 0 and after.get(sid, 0) == 0)
        if emptied:
            reasons.append(f"it would take {emptied} service(s) with units to 0")
        return reasons


REVIEW_AGENTS_SHOWN = 500  # agents that would go, listed on the review page


def inventory_sync(*, partner: Partner, as_of: date, actor: Actor, trigger: str, attempt: int = 1,
                   dry_run: bool = False) -> SyncRun:
    """Fetch the partner's inventory through its integration and apply it as of `as_of`.

    Not one @transaction.atomic block, on purpose: the run is recorded first (a sync that dies
    half way still shows as running), and the fetch (network, seconds) happens outside any
    transaction so it holds no lock. Only the apply is one transaction, with the run marked ok
    in it: a run is ok exactly when its inventory is written. Any fault of the fetch or the apply
    marks the run failed with the message and writes nothing to the inventory; the run is
    returned either way (`retryable` says whether trying later may help). An inventory the removal
    guard stops is held for review (`sync_run_approve`, `sync_run_reject`): nothing changes and
    nobody is emailed until staff decide.

    `dry_run`: everything but the writes; the run returned is not saved and its `review` says what
    applying would do (units per service before and after).

    Idempotent: the same inventory again on the same date changes nothing and emails nothing.
    """
    integration = RmmIntegration.objects.filter(partner=partner).first()
    run = SyncRun(partner=partner, integration=integration, as_of=as_of, trigger=trigger, attempt=attempt,
                  actor_label=str(actor)[:200])
    if not dry_run:
        run.save()
    if integration is None:
        return _fail(run, f"{partner.slug} has no RMM integration: add one under Metering > RMM integrations",
                     dry_run=dry_run)
    if not integration.enabled:
        return _fail(run, f"the RMM integration of {partner.slug} is disabled", dry_run=dry_run)
    if as_of > utc_date(timezone.now()):
        return _fail(run, f"as of {as_of} is in the future", dry_run=dry_run)
    try:
        rows = connector_for(integration).fetch_inventory(integration)
    except ConnectorError as exc:
        return _fail(run, str(exc), retryable=exc.transient, dry_run=dry_run)
    except Exception as exc:  # a connector bug: the nightly job goes on with the other partners
        logger.exception("RMM sync of %s: the connector failed", partner.slug)
        return _fail(run, f"the connector failed: {type(exc).__name__}: {exc}", dry_run=dry_run)
    run.source = (getattr(rows, "source", "") or integration.kind)[:200]
    run.pages = getattr(rows, "pages", 0) or 0
    run.agents_seen = len(rows)
    billed, run.skipped = agents_billed(rows, CountingRules.of(integration))
    run.agents_billed = len(billed)
    guard = RemovalGuard(integration.removal_guard_percent)
    try:
        with transaction.atomic():
            _apply(run=run, partner=partner, as_of=as_of, rows=billed, actor=actor, guard=guard, dry_run=dry_run)
    except HeldForReview as exc:  # never on a dry run: its check ends with _DryRunDone
        return _hold(run, exc.review, billed)
    except (SyncRefused, InventoryError) as exc:
        return _fail(run, str(exc), dry_run=dry_run)
    except _DryRunDone as done:
        run.review = done.review
        return run
    except (OperationalError, InterfaceError) as exc:  # the database, not the data: worth another try
        logger.warning("RMM sync of %s: database error: %s", partner.slug, exc)
        return _fail(run, f"database error: {exc}", retryable=True, dry_run=dry_run)
    except Exception as exc:
        logger.exception("RMM sync of %s: applying the inventory failed", partner.slug)
        return _fail(run, f"applying the inventory failed: {type(exc).__name__}: {exc}", dry_run=dry_run)
    return run


class _DryRunDone(Exception):
    """Rolls a dry run's apply back, carrying what it would have done."""

    def __init__(self, review: dict):
        super().__init__("dry run")
        self.review = review


def _fail(run: SyncRun, message: str, *, retryable: bool = False, dry_run: bool = False) -> SyncRun:
    run.status = SyncStatus.FAILED
    run.error = message
    run.retryable = retryable
    run.finished_at = timezone.now()
    run.added = run.moved = run.removed = 0
    run.inventory = None
    if not dry_run:
        run.save()
    return run


def _hold(run: SyncRun, review: dict, agents: list[AgentRow]) -> SyncRun:
    run.status = SyncStatus.HELD
    run.review = review
    run.held_inventory = [agent_to_json(a) for a in agents]
    run.error = f"held for review: {review['reason']}"
    run.finished_at = timezone.now()
    run.save()
    logger.warning("RMM sync of %s as of %s held for review: %s", run.partner.slug, run.as_of, review["reason"])
    return run


def agent_to_json(agent: AgentRow) -> dict:
    values = agent._asdict()
    values["last_seen"] = agent.last_seen.isoformat() if agent.last_seen else None
    values["views"] = list(agent.views)
    return values


def agent_from_json(values: dict) -> AgentRow:
    seen = values.get("last_seen")
    return AgentRow(**{**values, "views": tuple(values.get("views") or ()),
                       "last_seen": datetime.fromisoformat(seen) if seen else None})


def _agents_by_id(rows: list[AgentRow]) -> dict[str, AgentRow]:
    agents = {row.agent_id: row for row in rows}
    if len(agents) != len(rows):  # connectors give each agent once; a twin must at least be the same
        for row in rows:
            if agents[row.agent_id] != row:
                raise SyncRefused(f"agent {row.agent_id} appears twice with different values")
    return agents


def _apply(*, run: SyncRun, partner: Partner, as_of: date, rows: list[AgentRow], actor: Actor,
           guard: RemovalGuard | None, dry_run: bool = False) -> None:
    """Under the partner's lock (the one inventory_apply takes): units before, apply, units after; the guard
    (None: staff approved) may hold it, a dry run always rolls back."""
    Partner.objects.select_for_update().filter(pk=partner.pk).first()
    agents = _agents_by_id(rows)
    in_force = (AgentPresence.objects.filter(partner=partner, present_from__lte=as_of)
                .exclude(present_until__lt=as_of).count())

    def check(before: dict[int, int] | None, after: dict[int, int] | None, services: list[Service], result) -> None:
        removed = len(result.gone)
        if before is None:  # nothing added, moved or removed: nothing to hold, units as they were
            if not dry_run:
                return
            before = after = asset_units_on(services=services, day=as_of)
        reasons = guard.reasons(in_force=in_force, removed=removed, before=before, after=after) if guard else []
        units = service_units(services, before, after)
        if not reasons and not dry_run:
            # what sync_inventory prints; an approved run keeps why it was held
            run.review = {**(run.review or {}), "services": units}
            return
        review = {
            "reason": "; ".join(reasons), "as_of": as_of.isoformat(), "agents_in_force": in_force,
            "agents_after": len(agents), "removed": removed, "threshold_percent": guard.percent if guard else None,
            "services": units,
            "removed_agents": _agents_shown(result.gone[:REVIEW_AGENTS_SHOWN]),
            "removed_not_shown": max(0, removed - REVIEW_AGENTS_SHOWN),
            "unmatched": agents_unmatched(partner=partner, agents=agents.values(), day=as_of),
        }
        raise HeldForReview(review) if reasons and not dry_run else _DryRunDone({**review, "held": bool(reasons)})

    result = unit_notices_around(
        partner=partner, as_of=as_of, run=run, check=check,
        apply=lambda: inventory_apply(partner=partner, as_of=as_of, agents=agents, actor=actor,
                                      source=f"sync #{run.pk}: {run.source}"[:200]))
    run.status = SyncStatus.OK
    run.added, run.moved, run.removed = result.added, result.moved, result.removed
    run.inventory = result.sync
    run.unmatched = agents_unmatched(partner=partner, agents=agents.values(), day=as_of)
    run.finished_at = timezone.now()
    run.save()


def _agents_shown(gone) -> list[dict]:
    """What the review page shows of the agents a sync would remove ((agent pk, organization, group) each)."""
    names = dict((pk, (agent_id, name)) for pk, agent_id, name in RmmAgent.objects.filter(
        pk__in=[pk for pk, _, _ in gone]).values_list("pk", "agent_id", "machine_name"))
    shown = [{"agent_id": names[pk][0], "machine_name": names[pk][1], "organization": org, "group": group}
             for pk, org, group in gone]
    return sorted(shown, key=lambda a: (a["organization"], a["group"], a["machine_name"], a["agent_id"]))


# --- review of a held sync --------------------------------------------------------------------------
class ReviewError(Exception):
    """The run is not waiting for review (approved or rejected already, say)."""


def _held_run_locked(run: SyncRun) -> SyncRun:
    """The run, locked (one decision at a time), or ReviewError when it is not waiting for one."""
    run = SyncRun.objects.select_for_update().select_related("partner").get(pk=run.pk)
    if run.status != SyncStatus.HELD:
        raise ReviewError(f"sync run #{run.pk} is {run.get_status_display().lower()}, not held for review")
    return run


def sync_run_approve(*, run: SyncRun, actor: Actor) -> SyncRun:
    """Apply a held inventory as of its date, as staff approved it (the guard does not stop it again). Later
    inventories recorded since stay: it fills in its night (billing-rules decision (t)). Unit change notices go
    out as for any sync."""
    with transaction.atomic():
        run = _held_run_locked(run)
        agents = [agent_from_json(a) for a in run.held_inventory or []]
        _apply(run=run, partner=run.partner, as_of=run.as_of, rows=agents, actor=actor, guard=None)
        run.held_inventory = None
        run.error = ""
        run.reviewed_by, run.reviewed_at = str(actor)[:200], timezone.now()
        run.save()
        audit_record(actor=actor, action=AuditAction.INVENTORY_APPROVE, obj=run, partner=run.partner,
                     after={"sync_run": run.pk, "as_of": run.as_of.isoformat(), "reason": run.review.get("reason", ""),
                            "added": run.added, "moved": run.moved, "removed": run.removed})
    return run


@transaction.atomic
def sync_run_reject(*, run: SyncRun, actor: Actor) -> SyncRun:
    """Drop a held inventory: nothing changes."""
    run = _held_run_locked(run)
    run.status = SyncStatus.REJECTED
    run.held_inventory = None
    run.error = f"rejected: {run.review.get('reason', '')}"
    run.reviewed_by, run.reviewed_at = str(actor)[:200], timezone.now()
    run.save()
    audit_record(actor=actor, action=AuditAction.INVENTORY_REJECT, obj=run, partner=run.partner,
                 after={"sync_run": run.pk, "as_of": run.as_of.isoformat(), "reason": run.review.get("reason", "")})
    return run


STALE_RUN_AFTER = timedelta(hours=2)


def sync_runs_abandoned(*, now=None) -> int:
    """Runs still "running" long after they started died with their process (a worker killed, a
    deploy): they are marked failed, so the admin never shows a sync as running forever."""
    now = now or timezone.now()
    return SyncRun.objects.filter(status=SyncStatus.RUNNING, started_at__lt=now - STALE_RUN_AFTER).update(
        status=SyncStatus.FAILED, finished_at=now,
        error="abandoned: the process running this sync stopped before it finished")


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

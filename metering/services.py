"""Writes of usage data: suspension history and RMM inventories (imports and syncs both come here)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

import psycopg
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import FilteredRelation, Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from billing.core.actor import Actor
from billing.core.bulk import insert_rows, update_rows
from billing.core.periods import format_instant, utc_date
from billing.core.sealed import SealedValueError, Unreadable
from metering.matching import Place, names_organization, views_text
from metering.models import AgentPresence, InventorySync, RmmAgent, RmmIntegration, Suspension, UsageSnapshot
from partners.audit import audit_record, snapshot
from partners.choices import AuditAction
from partners.models import Customer, Partner

SUSPEND, UNSUSPEND = "suspend", "unsuspend"


class InventoryError(Exception):
    """An inventory that cannot be applied (out of order, say)."""


class AgentRow(NamedTuple):
    """One agent (device) of an RMM inventory, in the product's words whatever the vendor (docs/rmm.md).

    `organization` is the RMM's name of the agent's organization (a Kaseya VSA organization, a Datto RMM
    site, a NinjaOne organization); `org_ref` and `org_id` its short reference and id where the RMM has
    them, so that a customer's RMM organization may name any of the three (billing-rules 3.7). `group` is
    the agent's group as a path from the top, "/"-separated ("" is the organization itself): VSA's dotted
    machine group `lab.workstations.birchwood` of organization `birchwood` is `workstations/lab`. `views`
    are the names of the RMM machine views the agent is in, sorted.

    The flags say what the RMM reports of the agent's state; which states are billed is decided per
    integration (metering.counting): `online` None when the source does not say.

    A named tuple rather than a frozen dataclass: a sync makes 100,000 of them, and a frozen dataclass
    costs twice as much to build.
    """

    agent_id: str
    machine_name: str
    organization: str
    group: str
    os: str = ""
    last_seen: datetime | None = None
    org_ref: str = ""
    org_id: str = ""
    views: tuple[str, ...] = ()
    online: bool | None = None
    suspended: bool = False  # suspended in the RMM (a VSA suspended agent, a Datto suspended device)
    deleted: bool = False  # deleted in the RMM (Datto keeps deleted devices in its lists): never billed
    never_checked_in: bool = False  # a template or an agent awaiting approval that never reported
    # a node the RMM monitors with no agent of its own (NinjaOne's SNMP devices, cloud monitors, VM guests seen
    # through their host, unmanaged devices): never billed, as no agent is installed (decision (ak))
    no_agent: bool = False


@dataclass(frozen=True)
class InventoryResult:
    sync: InventorySync | None
    added: int
    moved: int
    removed: int
    updated: int
    # agents of the inventory that changed in any way (added, moved or new details), each counted once
    agents_changed: int = 0
    # (agent pk, organization, group) of the agents it removed: in force on its date, absent from it
    gone: tuple = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.moved or self.removed or self.updated)


def inventory_latest_as_of(partner: Partner) -> date | None:
    return (
        InventorySync.objects.filter(partner=partner).order_by("-as_of").values_list("as_of", flat=True).first()
    )


@dataclass(slots=True)
class _Presence:
    """The parts of an AgentPresence an inventory compares and changes (plain rows: a model instance
    per agent was a third of applying an unchanged 100,000-agent inventory)."""

    pk: int
    organization: str
    group: str
    org_ref: str
    org_id: str
    views: str
    present_from: date
    present_until: date | None

    @property
    def place(self) -> tuple[str, str, str, str, str]:
        return (self.organization, self.group, self.org_ref, self.org_id, self.views)

    @place.setter
    def place(self, value) -> None:
        self.organization, self.group, self.org_ref, self.org_id, self.views = value


PRESENCE_PLACE = ("organization", "group", "org_ref", "org_id", "views")


def agent_place(row: AgentRow) -> tuple[str, str, str, str, str]:
    """Where an inventory puts an agent, as its presence stores it: a change of any part is a move."""
    return (row.organization, row.group, row.org_ref, row.org_id, views_text(row.views) if row.views else "")


def _rows(queryset) -> list[tuple]:
    """The rows of a values_list queryset as one fetch of PostgreSQL's binary results: for the 100,000-row
    reads of an inventory, Django's chunked iteration and the text form of instants cost three times what the
    database does (an unchanged nightly sync spent most of its own time here). Elsewhere, Django's own
    iteration (SQLite needs its converters)."""
    if connection.vendor != "postgresql":
        return list(queryset)

    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


def _presences(queryset) -> dict[int, _Presence]:
    """{agent pk: its presence} of a queryset of presences."""
    fields = ("agent_id", "pk", *PRESENCE_PLACE, "present_from", "present_until")
    return {agent_id: _Presence(*rest) for agent_id, *rest in queryset.values_list(*fields)}


# the columns of _known: the agent (0-4), then its presence in force on the date (5-12, None without one)
_ID, _PK, _META, _PRESENCE, _PLACE = 0, 1, slice(2, 5), slice(5, None), slice(6, 11)


def _known(*, partner: Partner, as_of: date, presences: bool) -> dict[str, tuple]:
    """The partner's agents {agent id: (agent id, pk, name, os, last seen[, presence pk, *place, from, until])}:
    with `presences`, each joined to its presence in force on as_of (None for those columns without one), in
    one statement and as plain rows (an unchanged 100,000-agent inventory is the nightly sync's common case:
    a _Presence is made only for those that change). Presences written by hand may overlap: the earliest
    in force is kept (chosen here, not sorted by the database: the sort of 100,000 joined rows spilled
    to disk)."""
    agents = RmmAgent.objects.filter(partner=partner)
    if not presences:
        return {row[0]: row for row in _rows(agents.values_list("agent_id", "pk", "machine_name", "os",
                                                                "last_seen"))}
    in_force_then = Q(presences__present_from__lte=as_of) & (
        Q(presences__present_until__isnull=True) | Q(presences__present_until__gte=as_of))
    rows = _rows(agents.annotate(now=FilteredRelation("presences", condition=in_force_then))
                 .values_list("agent_id", "pk", "machine_name", "os", "last_seen", "now__pk",
                              *(f"now__{name}" for name in PRESENCE_PLACE), "now__present_from", "now__present_until"))
    known: dict[str, tuple] = {}
    for row in rows:
        first = known.setdefault(row[0], row)
        if first is not row and (first[11], first[5]) > (row[11], row[5]):  # overlapping: the earliest
            known[row[0]] = row
    return known


def with_known_places(*, partner: Partner, as_of: date, agents: dict[str, AgentRow]) -> dict[str, AgentRow]:
    """A file's agents with what the RMM's API told of their place and a file cannot say (docs/rmm.md 6).

    An export names an agent's organization one way or two (VSA's: its reference, from the machine group, and
    its id) and lists no views. An agent of the file whose presence from the API in force on `as_of` (else its
    first one after it: a night filled in before the first sync) is in the organization the file names (by name,
    reference or id, either way) takes that organization's name, and the reference, id and views the file does
    not give. So the same agents imported for a missed night stay in the services that take them by view or by
    organization name, and an integration kept to a view keeps them."""
    api = (AgentPresence.objects.filter(partner=partner).exclude(org_ref="", org_id="", views="")
           .values_list("agent__agent_id", "organization", "org_ref", "org_id", "views"))
    in_force = Q(present_from__lte=as_of) & (Q(present_until__isnull=True) | Q(present_until__gte=as_of))
    known: dict[str, tuple] = {}
    for rows in (api.filter(in_force), api.filter(present_from__gt=as_of)):
        for row in rows.order_by("present_from").iterator():  # the earliest of overlapping ones
            if row[0] in agents:
                known.setdefault(row[0], row)
    placed = dict(agents)
    for agent_id, organization, org_ref, org_id, views in known.values():
        agent = agents[agent_id]
        place = Place(organization, org_ref=org_ref, org_id=org_id)
        if any(names_organization(name, place) for name in (agent.organization, agent.org_ref, agent.org_id)):
            placed[agent_id] = agent._replace(organization=organization, org_ref=agent.org_ref or org_ref,
                                              org_id=agent.org_id or org_id,
                                              views=agent.views or tuple(v for v in views.split("|") if v))
    return placed


def with_api_ids(*, partner: Partner, as_of: date, agents: dict[str, AgentRow]) -> dict[str, AgentRow]:
    """A file's agents that carry no id of the RMM's (NinjaOne's device report: `organization/systemName`), under
    the id the RMM's API gave the same machine, where its presence in force on `as_of` (else its first one after
    it) is in the same organization (by name, any case) and has the same machine name: so a missed night filled in
    from the report keeps the API's agents (docs/rmm.md 6), not other agents of the same machines that the next
    sync would remove. An agent the API never listed keeps the file's id."""
    wanted = {(agent.organization.casefold(), agent.machine_name.casefold()): agent_id
              for agent_id, agent in agents.items() if agent.machine_name}
    if not wanted:
        return agents
    api = (AgentPresence.objects.filter(partner=partner).exclude(org_ref="", org_id="", views="")
           .values_list("agent__agent_id", "organization", "agent__machine_name"))
    in_force = Q(present_from__lte=as_of) & (Q(present_until__isnull=True) | Q(present_until__gte=as_of))
    found: dict[str, str] = {}  # the file's id -> the API's
    taken: set[str] = set()
    for rows in (api.filter(in_force), api.filter(present_from__gt=as_of)):
        for api_id, organization, machine_name in rows.order_by("present_from").iterator():
            file_id = wanted.get((organization.casefold(), (machine_name or "").casefold()))
            if file_id is not None and file_id not in found and api_id not in taken and api_id not in agents:
                found[file_id], _ = api_id, taken.add(api_id)
    return {found.get(agent_id, agent_id): agent._replace(agent_id=found.get(agent_id, agent_id))
            for agent_id, agent in agents.items()}


def inventory_next_as_of(partner: Partner, as_of: date) -> date | None:
    """The first inventory recorded after `as_of` (None: `as_of` is the latest or later)."""
    return (InventorySync.objects.filter(partner=partner, as_of__gt=as_of).order_by("as_of")
            .values_list("as_of", flat=True).first())


@transaction.atomic
def inventory_apply(*, partner: Partner, as_of: date, agents: dict[str, AgentRow], actor: Actor,
                    source: str = "") -> InventoryResult:
    """Apply a whole inventory as of a date (billing-rules 3.7, 9.5, decision (t)).

    Every change takes effect on `as_of`, the date it was detected: agents
    new to the inventory are present from it, agents that left are present
    through the day before, agents moved to another place (organization,
    group, views) switch on it. Applying the same inventory again changes
    nothing, and a corrected inventory for the latest date replaces that
    date's changes. An inventory dated before the latest one recorded (a
    missed night filled in later) holds from its date until the next one
    recorded (`_inventory_backfill`).
    """
    latest = inventory_lock(partner=partner, as_of=as_of)
    day_before = as_of - timedelta(days=1)
    # agents and presences are written with COPY on PostgreSQL (billing/core/bulk.py): an inventory has
    # 100,000 agents, and the ORM's bulk writes were most of its time
    following = inventory_next_as_of(partner, as_of) if latest is not None and as_of < latest else None
    # {agent id: (agent id, pk, name, os, last seen)}, the rows as read (compared by slices), and going forward
    # {agent pk: (agent pk, presence pk, *place, from, until)} of the presences in force on as_of
    known = _known(partner=partner, as_of=as_of, presences=following is None)
    new_agents = [(partner.pk, row.agent_id, row.machine_name, row.os, row.last_seen)
                  for agent_id, row in agents.items() if agent_id not in known]
    insert_rows(RmmAgent, ["partner_id", "agent_id", "machine_name", "os", "last_seen"], new_agents)
    new_pk = (dict(RmmAgent.objects.filter(partner=partner).values_list("agent_id", "pk")) if new_agents else {})
    if following is not None:
        agent_pk = {**{agent_id: row[_PK] for agent_id, row in known.items()}, **new_pk}
        added, moved, gone, changed_ids = _inventory_backfill(
            partner=partner, as_of=as_of, until=following - timedelta(days=1), agents=agents, agent_pk=agent_pk)
        changed_ids |= {agent_id for agent_id in agents if agent_id not in known}
        return inventory_record(partner=partner, as_of=as_of, latest=latest, agents=len(agents), added=added,
                                moved=moved, removed=len(gone), updated=0, agents_changed=len(changed_ids),
                                actor=actor, source=source, backfilled_until=following - timedelta(days=1),
                                gone=tuple(gone))

    presences = AgentPresence.objects.filter(partner=partner)
    closed_yesterday = _presences(presences.filter(present_until=day_before)) if as_of == latest else {}
    changed_meta, changed_ids = [], set()
    creates, updates, deletes = [], [], []
    added = moved = removed = 0
    for agent_id, row in agents.items():  # one pass: each agent's details, then its place
        was = known.pop(agent_id, None)
        if was is None:
            pk, current = new_pk[agent_id], None
        else:
            pk = was[_PK]
            if was[_META] != (row.machine_name, row.os, row.last_seen):
                changed_meta.append((pk, row.machine_name, row.os, row.last_seen))
                changed_ids.add(agent_id)
            current = was if was[5] is not None else None
        place = agent_place(row)
        if current is not None:
            if current[_PLACE] == place:
                continue
            current = _Presence(*current[_PRESENCE])
            moved += 1
            changed_ids.add(agent_id)
            if current.present_from == as_of:
                current.place = place
                updates.append(current)
                continue
            current.present_until = day_before
            updates.append(current)
        else:
            added += 1
            changed_ids.add(agent_id)
            earlier = closed_yesterday.get(pk)
            if earlier is not None and earlier.place == place:
                earlier.present_until = None  # a corrected inventory for the same date: it never left
                updates.append(earlier)
                continue
        creates.append((pk, partner.pk, *place, as_of, None))
    update_rows(RmmAgent, ["machine_name", "os", "last_seen"], changed_meta)
    left = [row for row in known.values() if row[5] is not None]  # in force, absent: gone from as_of
    gone = tuple((row[_PK], row[6], row[7]) for row in left)
    for presence in (_Presence(*row[_PRESENCE]) for row in left):
        removed += 1
        if presence.present_from == as_of:
            deletes.append(presence.pk)
        else:
            presence.present_until = day_before
            updates.append(presence)
    # close before opening, so that an agent never has two open presences
    fields = [*PRESENCE_PLACE, "present_until"]
    update_rows(AgentPresence, fields, [(p.pk, *p.place, p.present_until)
                                        for p in updates if p.present_until is not None])
    AgentPresence.objects.filter(pk__in=deletes).delete()
    update_rows(AgentPresence, fields, [(p.pk, *p.place, p.present_until)
                                        for p in updates if p.present_until is None])
    insert_rows(AgentPresence, ["agent_id", "partner_id", *PRESENCE_PLACE, "present_from", "present_until"],
                creates)
    return inventory_record(partner=partner, as_of=as_of, latest=latest, agents=len(agents), added=added,
                            moved=moved, removed=removed, updated=len(changed_meta), agents_changed=len(changed_ids),
                            actor=actor, source=source, gone=gone)


def _inventory_backfill(*, partner: Partner, as_of: date, until: date, agents: dict[str, AgentRow],
                        agent_pk: dict[str, int]) -> tuple[int, int, list[tuple], set[str]]:
    """An inventory of a missed night, filled in later (billing-rules 3.7, decision (t)): the agents' places on
    as_of..until (the day before the next inventory recorded) become the inventory's, before and after
    stay as recorded. Returns (added, moved, the agents removed as (pk, organization, group)) against what
    was in force on as_of, and the agent ids whose presences changed.

    Only the presences of the window and the days either side of it are read: each agent's timeline
    there is cut around the window, the inventory's place put in it, and touching pieces of one place
    joined again, so the presences stay as a forward inventory would have left them. The agents' details
    (name, os, last seen) are not taken back to an older inventory's."""
    day_before, day_after = as_of - timedelta(days=1), until + timedelta(days=1)
    rows = (AgentPresence.objects.filter(partner=partner, present_from__lte=day_after)
            .exclude(present_until__lt=day_before).order_by("agent_id", "present_from"))
    timelines: dict[int, list[_Presence]] = defaultdict(list)
    for agent_id, *rest in rows.values_list("agent_id", "pk", *PRESENCE_PLACE, "present_from", "present_until"):
        timelines[agent_id].append(_Presence(*rest))
    wanted = {agent_pk[agent_id]: agent_place(row) for agent_id, row in agents.items()}
    id_of = {pk: agent_id for agent_id, pk in agent_pk.items()}
    added = moved = 0
    gone: list[tuple] = []
    changed: set[str] = set()
    deletes: list[int] = []
    creates: list[tuple] = []
    for pk in sorted(set(timelines) | set(wanted)):
        segments = timelines.get(pk, [])
        old = next((s.place for s in segments if s.present_from <= as_of
                    and (s.present_until is None or s.present_until >= as_of)), None)
        new = wanted.get(pk)
        if old is None and new is not None:
            added += 1
        elif old is not None and new is None:
            gone.append((pk, old[0], old[1]))
        elif old != new:
            moved += 1
        pieces: list[tuple[date, date | None, tuple]] = []
        for s in segments:
            if s.present_from < as_of:
                end = day_before if s.present_until is None else min(s.present_until, day_before)
                pieces.append((s.present_from, end, s.place))
            if s.present_until is None or s.present_until > until:
                pieces.append((max(s.present_from, day_after), s.present_until, s.place))
        if new is not None:
            pieces.append((as_of, until, new))
        pieces.sort(key=lambda piece: piece[0])
        joined: list[tuple[date, date | None, tuple]] = []
        for start, end, place in pieces:
            if joined and joined[-1][2] == place and joined[-1][1] is not None \
                    and joined[-1][1] + timedelta(days=1) == start:
                joined[-1] = (joined[-1][0], end, place)
            else:
                joined.append((start, end, place))
        if joined == [(s.present_from, s.present_until, s.place) for s in segments]:
            continue
        changed.add(id_of[pk])
        deletes += [s.pk for s in segments]
        creates += [(pk, partner.pk, *place, start, end) for start, end, place in joined]
    AgentPresence.objects.filter(pk__in=deletes).delete()
    insert_rows(AgentPresence, ["agent_id", "partner_id", *PRESENCE_PLACE, "present_from", "present_until"],
                creates)
    return added, moved, gone, changed


def inventory_lock(*, partner: Partner, as_of: date) -> date | None:
    """Lock the partner (one inventory at a time); returns the latest as-of date recorded before this one
    (None: the first inventory)."""
    Partner.objects.select_for_update().filter(pk=partner.pk).first()
    return inventory_latest_as_of(partner)


def inventory_record(*, partner: Partner, as_of: date, latest: date | None, agents: int, added: int, moved: int,
                     removed: int, updated: int, agents_changed: int, actor: Actor, source: str,
                     backfilled_until: date | None = None, gone: tuple = ()) -> InventoryResult:
    """The InventorySync and its audit row of an inventory just applied (none when it changed nothing on the
    date already recorded), and the result (inventory_apply and metering.staging both end here)."""
    result_counts = {"added": added, "moved": moved, "removed": removed}
    sync = None
    recorded = latest is not None and (latest == as_of or InventorySync.objects.filter(
        partner=partner, as_of=as_of).exists())
    if added or moved or removed or updated or not recorded:
        sync = InventorySync.objects.create(partner=partner, as_of=as_of, agents=agents, source=source[:200],
                                            **result_counts)
        after = {"as_of": as_of.isoformat(), "agents": agents, **result_counts, "metadata_updated": updated,
                 "source": source}
        if backfilled_until is not None:
            after["back_filled_until"] = backfilled_until.isoformat()
        audit_record(actor=actor, action=AuditAction.INVENTORY_APPLY, obj=sync, partner=partner, after=after)
    return InventoryResult(sync, added, moved, removed, updated, agents_changed=agents_changed, gone=gone)


@dataclass(frozen=True)
class TenantEvent:
    row: int  # 0 for history already recorded
    customer_id: int
    action: str
    at: datetime
    began: datetime | None = None  # history unsuspends: when that suspension began

    @property
    def order(self) -> tuple:
        """At one instant: unsuspends already recorded, then the file in file order, then suspends
        already recorded (a zero-length suspension keeps its suspend first), as for seat events."""
        if self.row:
            bucket = 1
        elif self.action == UNSUSPEND and self.began is not None and self.began < self.at:
            bucket = 0
        else:
            bucket = 2
        return (self.at, bucket, self.row, self.action)


def suspension_replay(events: list[TenantEvent]) -> tuple[list[Suspension], list[tuple[int, str, str]]]:
    """Rebuild one customer's suspensions from its merged events, in TenantEvent.order
    (file order breaks ties, billing-rules 9.4). Returns (suspensions, errors as (row, column, reason))."""
    events = sorted(events, key=lambda e: e.order)
    suspensions: list[Suspension] = []
    errors: list[tuple[int, str, str]] = []
    open_since: datetime | None = None
    # An event already recorded can only fail because of a file row before it: the last file row
    # applied set the state it meets, so that row is the one that breaks the history (billing-rules 9.4).
    last_file_row = 0
    for event in events:
        stamp = format_instant(event.at) + ("" if event.row else " (already imported)")
        row = event.row or last_file_row
        if event.action == SUSPEND:
            if open_since is not None:
                errors.append((row, "action", f"already suspended at {stamp} (since "
                                              f"{format_instant(open_since)})"))
                continue
            open_since = event.at
        else:
            if open_since is None:
                errors.append((row, "action", f"unsuspend at {stamp} while not suspended"))
                continue
            suspensions.append(Suspension(customer_id=event.customer_id, suspended_at=open_since,
                                          unsuspended_at=event.at).set_days())
            open_since = None
        if event.row:
            last_file_row = event.row
    if open_since is not None:
        suspensions.append(Suspension(customer_id=events[-1].customer_id, suspended_at=open_since).set_days())
    return suspensions, errors


# --- live tenant changes (the HTTP API): suspend / unsuspend now, record a usage snapshot -----------
class TenantStateError(Exception):
    """A suspend of a suspended tenant, or an unsuspend of one that is not suspended (a conflict)."""


SUSPENSION_FIELDS = ("customer_id", "suspended_at", "unsuspended_at", "source")
USAGE_SNAPSHOT_FIELDS = ("users_count", "storage_bytes", "messages_count")


def _lock_customer(customer):
    return Customer.objects.select_for_update().get(pk=customer.pk)


@transaction.atomic
def tenant_suspend(*, customer, actor: Actor, source: str = "api") -> Suspension:
    """Suspend the tenant now (billing-rules 3.6: counting stops from the next whole day). A tenant already
    suspended is refused, as a tenant-events import refuses a double suspend."""

    customer = _lock_customer(customer)
    current = Suspension.objects.filter(customer=customer, unsuspended_at__isnull=True).first()
    if current is not None:
        raise TenantStateError(
            f"{customer.slug} is already suspended (since {format_instant(current.suspended_at)})"
        )
    suspension = Suspension(customer=customer, suspended_at=timezone.now(), source=source[:100])
    suspension.save()
    audit_record(actor=actor, action=AuditAction.SUSPENSION_SUSPEND, obj=suspension, partner_id=customer.partner_id,
                 after=snapshot(suspension, SUSPENSION_FIELDS))
    return suspension


@transaction.atomic
def tenant_unsuspend(*, customer, actor: Actor, source: str = "api") -> Suspension:
    """End the tenant's open suspension now (billing-rules 3.6: the day it happens counts)."""

    customer = _lock_customer(customer)
    suspension = Suspension.objects.select_for_update().filter(customer=customer, unsuspended_at__isnull=True).first()
    if suspension is None:
        raise TenantStateError(f"{customer.slug} is not suspended")
    before = snapshot(suspension, SUSPENSION_FIELDS)
    suspension.unsuspended_at = max(timezone.now(), suspension.suspended_at)
    suspension.save()
    audit_record(actor=actor, action=AuditAction.SUSPENSION_UNSUSPEND, obj=suspension, partner_id=customer.partner_id,
                 before=before, after=snapshot(suspension, SUSPENSION_FIELDS))
    return suspension


@transaction.atomic
def usage_snapshot_record(*, customer, date: date, users_count: int, storage_bytes: int,
                          messages_count: int | None = None, actor: Actor,
                          source: str = "api"):
    """Record a tenant's usage for a UTC date: the last snapshot of a date wins (billing-rules 3.4, 6.11).

    Returns (snapshot, outcome) with outcome "created", "updated" or "unchanged"; an unchanged
    snapshot is not written again (recording the same values twice = once). A future date is refused.
    """

    if date > utc_date(timezone.now()):
        raise ValidationError({"date": f"{date} is in the future"})
    values = {"users_count": users_count, "storage_bytes": storage_bytes, "messages_count": messages_count}
    for name in ("users_count", "storage_bytes"):
        if values[name] is None or values[name] < 0:
            raise ValidationError({name: "must be a whole number, 0 or more"})
    if messages_count is not None and messages_count < 0:
        raise ValidationError({"messages_count": "must be a whole number, 0 or more"})
    customer = _lock_customer(customer)
    existing = UsageSnapshot.objects.select_for_update().filter(customer=customer, date=date).first()
    if existing is None:
        snap = UsageSnapshot.objects.create(customer=customer, date=date, source=source[:100], **values)
        audit_record(actor=actor, action=AuditAction.USAGE_RECORD, obj=snap, partner_id=customer.partner_id,
                     after={"date": date.isoformat(), **values})
        return snap, "created"
    before = {name: getattr(existing, name) for name in USAGE_SNAPSHOT_FIELDS}
    if before == values:
        return existing, "unchanged"
    for name, value in values.items():
        setattr(existing, name, value)
    existing.source = source[:100]
    existing.save()
    audit_record(actor=actor, action=AuditAction.USAGE_RECORD, obj=existing, partner_id=customer.partner_id,
                 before={"date": date.isoformat(), **before}, after={"date": date.isoformat(), **values})
    return existing, "updated"


@transaction.atomic
def rmm_tokens_reseal() -> int:
    """Seal every stored RMM API token again with the first key of FIELD_ENCRYPTION_KEYS (billing/core/sealed.py),
    after a new key was put first, so that the old one can be retired. All or nothing: a token no listed
    key opens is named by its partner and nothing is written. Returns how many tokens were sealed."""
    integrations = list(RmmIntegration.objects.select_for_update(of=("self",)).select_related("partner")
                        .exclude(api_token="").order_by("partner__slug"))
    unreadable = [i.partner.slug for i in integrations if isinstance(i.api_token, Unreadable)]
    if unreadable:
        raise SealedValueError(f"no key in FIELD_ENCRYPTION_KEYS opens the API token of {', '.join(unreadable)}: "
                               f"nothing was changed (list the key they were sealed with, or type them again)")
    RmmIntegration.objects.bulk_update(integrations, ["api_token"])  # each sealed anew, with the first key
    return len(integrations)


# --- RMM integrations: written by the admin and by `rmm_connect` ----------------------------------------
def rmm_token_fingerprint(token: str) -> str:
    """A short digest for the audit log: tells two secrets apart without revealing either. Keyed with
    the SECRET_KEY, so a leaked audit log cannot be used to confirm a guessed secret offline."""

    return salted_hmac("metering.rmm-token-fingerprint", token, algorithm="sha256").hexdigest()[:12] if token else ""


INTEGRATION_AUDIT_FIELDS = ("kind", "enabled", "base_url", "username", "folder_path", "count_offline",
                            "count_suspended", "count_never_checked_in", "inventory_filter", "removal_guard_percent")


def rmm_integration_snapshot(integration: RmmIntegration) -> dict:
    """The audit row's view of an integration: every setting, the secret only as a fingerprint."""
    token = integration.api_token
    shown = ("set, unreadable" if isinstance(token, Unreadable) else f"set ({rmm_token_fingerprint(token)})") \
        if token else "not set"
    return {"partner": integration.partner.slug if integration.partner_id else None,
            **{name: getattr(integration, name) for name in INTEGRATION_AUDIT_FIELDS}, "api_token": shown}


@transaction.atomic
def rmm_integration_save(*, partner: Partner, values: dict, actor: Actor) -> tuple[RmmIntegration, bool]:
    """Create or update a partner's RMM integration with `values` (model fields; `api_token` the secret as
    typed, sealed on save), validated as the admin validates it, and audited as the admin audits it (the
    secret by a fingerprint). Returns (integration, created)."""

    integration = RmmIntegration.objects.select_for_update().filter(partner=partner).first()
    created = integration is None
    before = None if created else rmm_integration_snapshot(integration)
    integration = integration or RmmIntegration(partner=partner)
    for name, value in values.items():
        setattr(integration, name, value)
    integration.full_clean()
    if integration.kind != "folder" and not integration.api_token:
        raise ValidationError({"api_token": "this RMM needs a secret"})
    integration.save()
    after = rmm_integration_snapshot(integration)
    if after != before:
        audit_record(actor=actor, action=AuditAction.of("rmm_integration", "create" if created else "update"),
                     obj=integration,
                     partner=partner, before=before, after=after)
    return integration, created

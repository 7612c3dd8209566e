"""Import kinds of usage data: tenant-usage, tenant-events, rmm-assets, and the usage records call-usage,
call-details and meeting-summaries (billing-rules 3.12, 9; import-formats 5.6-5.8, 5.12)."""

from __future__ import annotations

from collections import defaultdict

from django.utils import timezone

from billing.core.importing import ImportContext, ImportFileError, ImportKind, ParsedRow
from billing.core.periods import format_instant, utc_date
from billing.core.registry import register_import
from metering import rmm_exports
from metering.counting import CountingRules, not_billed_because
from metering.models import CALENDAR_FIRST, RmmIntegration, Suspension, UsageSnapshot
from metering.notices import inventory_apply_notified
from metering.resources import RmmAssetResource, TenantEventResource, TenantUsageResource, usage_record_resource
from metering.selectors import agents_unmatched, unmatched_summary
from metering.services import (
    AgentRow,
    InventoryError,
    TenantEvent,
    suspension_replay,
    with_api_ids,
    with_known_places,
)
from metering.staging import rmm_assets_fast_path
from metering.tenant_staging import tenant_events_fast_path, tenant_usage_fast_path
from metering.usage_records import CALL_DETAILS, CALL_USAGE, MEETING_SUMMARIES, RecordKind, records_audit, records_batch
from metering.usage_staging import records_fast_path
from partners.audit import audit_import_per_customer
from partners.choices import AuditAction
from partners.lookups import customers_by_key, partners_by_slug
from partners.models import Partner

USAGE_FIELDS = ("users_count", "storage_bytes", "messages_count")



def _resolve_customers(batch, ctx: ImportContext) -> dict[int, object]:
    """Customer of each row (by number), with errors for unknown partners and customers."""
    partners = partners_by_slug(r.values["partner"] for r in batch)
    customers = customers_by_key((r.values["partner"], r.values["customer"]) for r in batch)
    found = {}
    for row in batch:
        v = row.values
        if v["partner"] not in partners:
            ctx.error(row.number, "partner", f"unknown partner {v['partner']!r}")
        elif (v["partner"], v["customer"]) not in customers:
            ctx.error(row.number, "customer", f"unknown customer {v['customer']!r} of partner {v['partner']}")
        else:
            found[row.number] = customers[(v["partner"], v["customer"])]
    return found


@register_import
class TenantUsageImport(ImportKind):
    """Daily usage snapshots: the last snapshot of a date wins, in the file and against history.

    A date may come back in a later batch of the same file. Each batch writes its values, and the
    outcome of a (customer, date) is judged in `finish`, against what was stored before the file:
    so a re-import of the same file changes nothing and counts every row unchanged, even when a
    batch in the middle briefly held an earlier row's value (its stamp is then put back).
    """

    name = "tenant-usage"
    resource_class = TenantUsageResource
    required_columns = ("partner", "customer", "date", "users_count", "storage_bytes")

    def process_batch(self, batch, ctx):
        today = utc_date(timezone.now())
        customers = _resolve_customers(batch, ctx)
        latest: dict[tuple[int, object], dict] = {}
        for row in batch:
            customer = customers.get(row.number)
            if customer is None:
                continue
            if row.values["date"] > today:
                ctx.error(row.number, "date", f"{row.values['date']} is in the future")
                continue
            ctx.state["valid"] = ctx.state.get("valid", 0) + 1
            latest[(customer.pk, row.values["date"])] = {f: row.values[f] for f in USAGE_FIELDS}
        existing = {
            (s.customer_id, s.date): s
            for s in UsageSnapshot.objects.filter(
                customer_id__in={k[0] for k in latest}, date__in={k[1] for k in latest}
            )
        }
        # (customer id, date) -> [values before the file (None: no snapshot), (recorded_at, source) before
        # the file, the file's latest values, whether this file has updated the stored snapshot]
        seen: dict[tuple[int, object], list] = ctx.state.setdefault("seen", {})
        creates, updates = [], []
        for key, values in latest.items():
            snapshot = existing.get(key)
            if key in seen:
                seen[key][2] = values
            elif snapshot is None:
                seen[key] = [None, None, values, False]
            else:
                seen[key] = [_usage_values(snapshot), (snapshot.recorded_at, snapshot.source), values, False]
            if snapshot is None:
                creates.append(UsageSnapshot(customer_id=key[0], date=key[1], source=ctx.source[:100], **values))
            elif _usage_values(snapshot) != values:
                for field, value in values.items():
                    setattr(snapshot, field, value)
                snapshot.recorded_at = timezone.now()
                snapshot.source = ctx.source[:100]
                updates.append(snapshot)
                seen[key][3] = True
        if ctx.ok:
            UsageSnapshot.objects.bulk_create(creates)
            UsageSnapshot.objects.bulk_update(updates, [*USAGE_FIELDS, "recorded_at", "source"])

    def finish(self, ctx):
        seen = ctx.state.get("seen", {})
        touched: dict[int, int] = defaultdict(int)
        restore = {}
        for (customer_id, day), (before, stamp, after, written) in seen.items():
            if before is None:
                ctx.created += 1
            elif before != after:
                ctx.updated += 1
            else:
                ctx.unchanged += 1
                if written:
                    restore[(customer_id, day)] = stamp
                continue
            touched[customer_id] += 1
        ctx.unchanged += ctx.state.get("valid", 0) - len(seen)  # rows superseded by a later row of the same date
        if not ctx.ok:
            return
        if restore:  # a date an earlier batch changed and a later one put back: as it was, stamp included
            snapshots = UsageSnapshot.objects.filter(
                customer_id__in={k[0] for k in restore}, date__in={k[1] for k in restore})
            changed = []
            for snapshot in snapshots:
                stamp = restore.get((snapshot.customer_id, snapshot.date))
                if stamp is not None and (snapshot.recorded_at, snapshot.source) != stamp:
                    snapshot.recorded_at, snapshot.source = stamp
                    changed.append(snapshot)
            UsageSnapshot.objects.bulk_update(changed, ["recorded_at", "source"])
        if touched:
            audit_import_per_customer(actor=ctx.actor, action=AuditAction.USAGE_IMPORT, source=ctx.source,
                                      counts={cid: {"snapshots": n} for cid, n in touched.items()})

    def fast_path(self, path, ctx):
        return tenant_usage_fast_path(path, ctx, self)


def _usage_values(snapshot: UsageSnapshot) -> dict:
    return {f: getattr(snapshot, f) for f in USAGE_FIELDS}


@register_import
class TenantEventsImport(ImportKind):
    """Suspend / unsuspend events merged into each tenant's suspension history."""

    name = "tenant-events"
    resource_class = TenantEventResource
    required_columns = ("partner", "customer", "action", "at")

    def process_batch(self, batch, ctx):
        now = timezone.now()
        customers = _resolve_customers(batch, ctx)
        events = ctx.state.setdefault("events", defaultdict(list))
        for row in batch:
            customer = customers.get(row.number)
            if customer is None:
                continue
            if row.values["at"] > now:
                ctx.error(row.number, "at", f"{format_instant(row.values['at'])} is in the future")
                continue
            if utc_date(row.values["at"]) < CALENDAR_FIRST:  # no day before it is counted (and year 1 has no eve)
                ctx.error(row.number, "at", f"{format_instant(row.values['at'])} is before {CALENDAR_FIRST}, the "
                                            f"first day metering counts")
                continue
            events[customer.pk].append(TenantEvent(row.number, customer.pk, row.values["action"], row.values["at"]))

    def finish(self, ctx):
        events: dict[int, list[TenantEvent]] = ctx.state.get("events", {})
        if not events:
            return
        history = defaultdict(list)
        for s in Suspension.objects.filter(customer_id__in=list(events)):
            history[s.customer_id].append(s)
        rebuilt_ids, rebuilt, counts = [], [], {}
        for customer_id, file_events in events.items():
            known = set()
            past = []
            for s in history[customer_id]:
                past.append(TenantEvent(0, customer_id, "suspend", s.suspended_at))
                known.add(("suspend", s.suspended_at))
                if s.unsuspended_at:
                    past.append(TenantEvent(0, customer_id, "unsuspend", s.unsuspended_at, began=s.suspended_at))
                    known.add(("unsuspend", s.unsuspended_at))
            new, seen = [], set()
            for event in file_events:
                key = (event.action, event.at)
                if key in known or key in seen:
                    ctx.unchanged += 1  # an exact duplicate, in the file or already imported
                    continue
                seen.add(key)
                new.append(event)
            if not new:
                continue
            suspensions, errors = suspension_replay(past + new)
            for row, column, reason in errors:
                ctx.error(row or new[0].row, column, reason)
            ctx.created += len(new)
            # keep the rows that come out as they were (their ids and sources); replace the rest
            kept = {(s.suspended_at, s.unsuspended_at): s for s in history[customer_id]}
            for suspension in suspensions:
                if kept.pop((suspension.suspended_at, suspension.unsuspended_at), None) is None:
                    rebuilt.append(suspension)
            rebuilt_ids += [s.pk for s in kept.values()]
            counts[customer_id] = {
                "suspended": sum(e.action == "suspend" for e in new),
                "unsuspended": sum(e.action == "unsuspend" for e in new),
            }
        if ctx.ok and counts:
            source = ctx.source[:100]
            for s in rebuilt:
                s.source = s.source or source
            Suspension.objects.filter(pk__in=rebuilt_ids).delete()
            Suspension.objects.bulk_create(rebuilt)
            audit_import_per_customer(actor=ctx.actor, action=AuditAction.SUSPENSION_IMPORT, source=ctx.source,
                                      counts=counts)

    def fast_path(self, path, ctx):
        return tenant_events_fast_path(path, ctx, self)


def _same_agent_hint(ctx) -> str:
    if ctx.state.get("format") == "ninjaone":
        return (" (NinjaOne's device report has no device id: an agent is its organization and system name, so "
                "two devices of one name in one organization cannot be told apart; rename one in NinjaOne)")
    return ""


def agent_row(values: dict) -> AgentRow:
    """An agent from the parsed cells of an rmm-assets row (the import and the sync connectors read the same)."""
    return AgentRow(agent_id=values["agent_id"], machine_name=values["machine_name"],
                    organization=values["organization"], group=values["group"] or "", os=values["os"] or "",
                    last_seen=values["last_seen"])


@register_import
class RmmAssetsImport(ImportKind):
    """A whole RMM inventory of one partner as of a date: agents absent from it are gone from that date.

    The file is the product's own columns, read by the engine (and on PostgreSQL by the COPY path) as always,
    or an RMM's export as downloaded, read by metering.rmm_exports (import-formats 9):
    either way each row is an AgentRow, and the whole is applied by the same inventory_apply_notified."""

    name = "rmm-assets"
    resource_class = RmmAssetResource
    required_columns = ("agent_id", "machine_name", "organization", "group")
    blank_allowed = ("group",)
    allow_extra_columns = True  # RMM exports carry more columns than we read
    allow_no_rows = True  # an empty inventory: every agent is gone
    needs_partner_option = True
    needs_as_of_option = True
    formats = rmm_exports.FORMATS  # --format NAME
    map_fields = rmm_exports.FIELDS  # --map COLUMN=FIELD

    def check_options(self, ctx):
        super().check_options(ctx)
        if ctx.as_of > utc_date(timezone.now()):
            raise ImportFileError(f"--as-of {ctx.as_of} is in the future")

        partner = Partner.objects.filter(slug=ctx.partner).first()
        if partner is None:
            raise ImportFileError(f"unknown partner {ctx.partner!r}")
        ctx.state["partner"] = partner
        if ctx.file_format is not None:
            ctx.file_format = ctx.file_format.strip().lower()
            if ctx.file_format not in rmm_exports.FORMATS:
                raise ImportFileError(f"--format: unknown format {ctx.file_format!r} "
                                      f"(one of {', '.join(rmm_exports.FORMATS)})")
        try:
            ctx.state["column_map"] = rmm_exports.parse_column_map(ctx.column_map)
        except ValueError as exc:
            raise ImportFileError(str(exc)) from None

    def read_file(self, path, ctx):
        """An RMM's export (or a file with --map) is read here; a file of the product's own columns is left to
        the engine (None), which reads it exactly as before."""
        export = rmm_exports.read_export(path, file_format=ctx.file_format, column_map=ctx.state["column_map"])
        if export is None:
            return None
        ctx.state["format"] = export.fmt.name
        ctx.state["read_as"] = f"read as {export.fmt.title}"
        return export.header, export.rows

    def parse_row(self, number, raw, ctx):
        read = raw.get(rmm_exports.ROW)
        if read is None:
            return super().parse_row(number, raw, ctx)
        for column, reason in read.warnings:
            ctx.warn(number, column, reason)
        for column, reason in read.errors:
            ctx.error(number, column, reason)
        if read.errors:
            return None
        return ParsedRow(number, {"agent_id": read.agent.agent_id, "agent": read.agent,
                                  "agent_column": read.agent_column}, frozenset())

    def fast_path(self, path, ctx):
        """On PostgreSQL a clean file is COPYed into a staging table and applied in SQL (metering.staging);
        the engine reads the others, row by row."""

        return rmm_assets_fast_path(path, ctx, self)

    def process_batch(self, batch, ctx):
        agents: dict[str, tuple[int, AgentRow, str]] = ctx.state.setdefault("agents", {})
        for row in batch:
            v = row.values
            agent = v.get("agent") or agent_row(v)
            column = v.get("agent_column", "agent_id")
            if v["agent_id"] in agents:
                first_row, first, _ = agents[v["agent_id"]]
                if first == agent:
                    ctx.unchanged += 1
                elif first.deleted != agent.deleted:
                    # NinjaOne keeps a decommissioned device's record when the machine is enrolled again under its
                    # name: the record still managed is the agent, the other is never billed (rmm.md 4)
                    if first.deleted:
                        agents[v["agent_id"]] = (row.number, agent, column)
                    gone = first_row if first.deleted else row.number
                    ctx.warn(gone, column, f"a deleted record of the same agent as row "
                                           f"{row.number if first.deleted else first_row}: left out")
                else:
                    ctx.error(row.number, column,
                              f"same agent as row {first_row} with different values{_same_agent_hint(ctx)}")
                continue
            agents[v["agent_id"]] = (row.number, agent, column)

    def finish(self, ctx):
        if not ctx.ok:
            return

        # the agents billed, by the partner's integration's rules (the defaults without one; docs/rmm.md, "Which
        # agents count"): an export may say an agent is deleted, suspended, never checked in or offline
        rules = CountingRules.of(RmmIntegration.objects.filter(partner=ctx.state["partner"]).first())
        read = ctx.state.get("agents", {})
        agents_read = {agent_id: agent for agent_id, (_, agent, _) in read.items()}
        if ctx.state.get("format") == "ninjaone":  # a report with no device id: the API's ids of the same machines
            agents_read = with_api_ids(partner=ctx.state["partner"], as_of=ctx.as_of, agents=agents_read)
            read = {agent.agent_id: read[file_id] for file_id, agent in zip(read, agents_read.values(), strict=True)}
        # what the RMM's API told of the agents' places and a file cannot say (views, an organization's name)
        placed = with_known_places(partner=ctx.state["partner"], as_of=ctx.as_of, agents=agents_read)
        agents, left_out = {}, 0
        for agent_id, (number, _, column) in read.items():
            agent = placed[agent_id]
            reason = not_billed_because(agent, rules)
            if reason is None:
                agents[agent_id] = agent
            else:
                left_out += 1
                ctx.warn(number, column, f"{agent_id!r} is not billed ({reason}): left out of the inventory")
        try:
            result = inventory_apply_notified(partner=ctx.state["partner"], as_of=ctx.as_of, agents=agents,
                                              actor=ctx.actor, source=ctx.source)
        except InventoryError as exc:
            raise ImportFileError(str(exc)) from exc
        # one count per row of the file (an agent moved and renamed is one update), plus the agents it removed;
        # a row left out changes nothing of its own
        ctx.created += result.added
        ctx.updated += result.agents_changed - result.added + result.removed
        ctx.unchanged += len(agents) - result.agents_changed + left_out
        first_rows: dict[str, int] = {}
        for agent_id, (number, _, _) in read.items():
            if agent_id in agents:
                first_rows.setdefault(agents[agent_id].organization, number)
        unbilled_warned(ctx, agents_unmatched(partner=ctx.state["partner"], agents=agents.values(), day=ctx.as_of),
                        first_rows)


def unbilled_warned(ctx: ImportContext, unmatched: list[dict], first_rows: dict[str, int]) -> None:
    """The agents of an inventory file that no customer names and no service bills, listed on the first row of
    their organization, never dropped silently (docs/rmm.md 3, decision (an)): an organization's name mangled
    by an export (PowerShell 5.1 writes `M?ller` for Müller) would otherwise take a customer's units to 0 with
    nothing said. Agents of no customer that a service of the whole partner bills are a sync run's lines only."""
    unbilled = [entry for entry in unmatched if not entry["billed_by"]]
    for entry, line in zip(unbilled, unmatched_summary(unbilled), strict=True):
        ctx.warn(first_rows.get(entry["organization"], 0), "organization", line)


class UsageRecordsImport(ImportKind):
    """Usage records of one kind (metering.usage_records): each row one call, leg or meeting, keyed by its own id
    within the partner. New records are written batch by batch; an exact duplicate (in the file or already
    imported) is a no-op, the same key with other values a row error (billing-rules 3.12). On PostgreSQL a
    clean file goes by COPY (metering.usage_staging) to the same rows."""

    record: RecordKind

    def __init__(self):
        self.name = self.record.name
        self.resource_class = usage_record_resource(self.record.model, self.record.columns)
        self.required_columns = ("partner", "customer", *(c.name for c in self.record.columns if not c.blank))

    def process_batch(self, batch, ctx):
        records_batch(self.record, batch, ctx, _resolve_customers(batch, ctx))

    def finish(self, ctx):
        if ctx.ok:
            records_audit(self.record, ctx, ctx.state.get("created", {}))

    def fast_path(self, path, ctx):
        return records_fast_path(path, ctx, self)


@register_import
class CallUsageImport(UsageRecordsImport):
    record = CALL_USAGE


@register_import
class CallDetailsImport(UsageRecordsImport):
    record = CALL_DETAILS


@register_import
class MeetingSummariesImport(UsageRecordsImport):
    record = MEETING_SUMMARIES

"""The seat-events import: the file's events merged into the seat history (billing-rules 9.4).

Rows are applied in order of their instant (file order breaks ties), after
the history already imported at the same instant. The merged history must be
valid at every instant: no double assign, no unassign without a seat, and no
new assignment past a seat cap or a commitment without overage, judged as of
the event's instant. Memory stays bounded by the seats active at once:

1. each batch of rows is resolved (partners, customers, members: a few
   queries per batch) and written to a staging table;
2. exact duplicates (of a row above, or of history already imported) are
   marked in SQL and change nothing;
3. per partner, from the earliest new event T0, the history's events are
   copied beside the new ones, the seats of the members the file changes are
   taken out, and one ordered pass over the staging table replays the
   timeline, checking the rules and writing the rebuilt seats in batches.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from django.db.models import Case, Exists, F, Min, OuterRef, Q, Value, When
from django.utils import timezone

from billing.core.importing import ImportContext, ImportKind
from billing.core.periods import format_instant, utc_date
from billing.core.registry import register_import
from partners.audit import audit_entry, jsonable
from partners.choices import AuditAction
from partners.lookups import customers_by_key, partners_by_slug
from partners.models import (
    AuditLog,
    Customer,
    Member,
    Method,
    Partner,
    SeatAssignment,
    SeatEventStage,
    SeatPurchase,
    Service,
)
from partners.resources import SeatEventResource
from partners.seat_staging import seat_events_fast_path
from partners.seating import Commitment, SeatRuleError, check_assignment, committed_seats_on
from partners.services import alerts_evaluate
from partners.terms import TermsBook

ASSIGN, UNASSIGN = "assign", "unassign"



@register_import
class SeatEventsImport(ImportKind):
    name = "seat-events"
    resource_class = SeatEventResource
    required_columns = ("partner", "customer", "member", "action", "at")

    def fast_path(self, path, ctx):
        """On PostgreSQL a file whose new events all come after the history is checked and written set-based
        (partners.seat_staging); the engine below reads every other file, and is the reference."""
        return seat_events_fast_path(path, ctx, self)

    # --- 1. stage ---------------------------------------------------------------------
    def process_batch(self, batch, ctx: ImportContext) -> None:
        token = ctx.state.setdefault("token", uuid.uuid4().hex)
        now = timezone.now()
        partners = partners_by_slug(r.values["partner"] for r in batch)
        customers = customers_by_key((r.values["partner"], r.values["customer"]) for r in batch)
        good = []
        for row in batch:
            v = row.values
            if v["partner"] not in partners:
                ctx.error(row.number, "partner", f"unknown partner {v['partner']!r}")
                continue
            customer = customers.get((v["partner"], v["customer"]))
            if customer is None:
                ctx.error(row.number, "customer", f"unknown customer {v['customer']!r} of partner {v['partner']}")
                continue
            if v["at"] > now:
                ctx.error(row.number, "at", f"{format_instant(v['at'])} is in the future")
                continue
            good.append((row, customer))
        Member.objects.bulk_create(
            [Member(customer=c, name=r.values["member"]) for r, c in good], ignore_conflicts=True
        )
        members = {
            (m.customer_id, m.name): m.pk
            for m in Member.objects.filter(
                customer__in={c.pk for _, c in good}, name__in={r.values["member"] for r, _ in good}
            )
        }
        SeatEventStage.objects.bulk_create(
            SeatEventStage(
                token=token, rank=1, seq=row.number, row=row.number, partner_id=customer.partner_id,
                customer_id=customer.pk, member_id=members[(customer.pk, row.values["member"])],
                action=row.values["action"], at=row.values["at"],
            )
            for row, customer in good
        )

    # --- 2 and 3. deduplicate, replay, rebuild ------------------------------------------
    def finish(self, ctx: ImportContext) -> None:
        token = ctx.state.get("token")
        if token is None:
            return
        staged = SeatEventStage.objects.filter(token=token)
        try:
            self._mark_duplicates(staged)
            ctx.unchanged += staged.filter(rank=1, duplicate=True).count()
            starts = dict(
                staged.filter(rank=1, duplicate=False).order_by().values_list("partner_id")
                .annotate(t0=Min("at"))
            )
            for partner_id, t0 in sorted(starts.items()):
                _Replay(ctx, token, partner_id, t0).run()
        finally:
            staged.delete()

    @staticmethod
    def _mark_duplicates(staged) -> None:
        """A row equal to an earlier row, or to history already imported, is a no-op."""
        file_rows = staged.filter(rank=1)
        earlier_same = staged.filter(
            rank=1, member_id=OuterRef("member_id"), at=OuterRef("at"), action=OuterRef("action"),
            row__lt=OuterRef("row"),
        )
        file_rows.filter(Exists(earlier_same)).update(duplicate=True)
        file_rows.filter(action=ASSIGN).filter(
            Exists(SeatAssignment.objects.filter(member_id=OuterRef("member_id"), assigned_at=OuterRef("at")))
        ).update(duplicate=True)
        file_rows.filter(action=UNASSIGN).filter(
            Exists(SeatAssignment.objects.filter(member_id=OuterRef("member_id"), removed_at=OuterRef("at")))
        ).update(duplicate=True)


class _Replay:
    """One partner's timeline from T0 on: rules checked, seats of changed members rebuilt."""

    def __init__(self, ctx: ImportContext, token: str, partner_id: int, t0: datetime):
        self.ctx, self.token, self.partner_id, self.t0 = ctx, token, partner_id, t0
        self.staged = SeatEventStage.objects.filter(token=token, partner_id=partner_id)
        self.changed_members = set(
            self.staged.filter(rank=1, duplicate=False).values_list("member_id", flat=True).distinct()
        )
        self.caps = dict(Customer.objects.filter(partner_id=partner_id).values_list("pk", "seat_cap"))
        self.services = list(Service.objects.filter(partner_id=partner_id, method=Method.SEAT_DAYS))
        self.purchases = defaultdict(list)
        for service_id, effective, seats in SeatPurchase.objects.filter(service__in=self.services).values_list(
            "service_id", "effective_date", "seats"
        ):
            self.purchases[service_id].append((effective, seats))
        self.terms = TermsBook(self.services)  # the commitment in force on each event's date (billing-rules 3.11)
        self.in_force: dict = {}  # day -> the commitments in force that day
        # member -> (customer id, assigned_at, source) while the member holds a seat
        self.active: dict[int, tuple[int, datetime, str]] = {}
        self.by_customer: dict[int, int] = defaultdict(int)
        self.last_file_row: dict[int, int] = {}
        # member -> the file row whose assign opened the member's active seat
        self.file_seats: dict[int, int] = {}
        self.blamed: set[int] = set()
        self.first_row = None
        self.pending: list[SeatAssignment] = []
        self.replaced: dict[tuple, tuple[int, int]] = {}
        self.written: dict[int, list[tuple]] = defaultdict(list)  # customer id -> (member id, from, until)
        self.unchanged_seats = 0
        self.counts = defaultdict(lambda: {"assigned": 0, "unassigned": 0})

    def commitments(self, day) -> list[Commitment]:
        """The seat_days commitments in force on `day` (billing-rules decision (b)): services running that day,
        each with its committed seats then (`committed_seats_on`)."""
        if day not in self.in_force:
            self.in_force[day] = [
                Commitment(s.code, committed_seats_on(day, committed_quantity=self.terms.on(s, day).committed_quantity,
                                                      purchases=self.purchases[s.pk]),
                           s.overage_enabled, s.customer_id)
                for s in self.services if s.start_date <= day and (s.end_date is None or day <= s.end_date)
            ]
        return self.in_force[day]

    def run(self) -> None:
        # the same lock as the live seat service: caps and commitments hold against concurrent assigns
        Partner.objects.select_for_update().filter(pk=self.partner_id).first()
        history = SeatAssignment.objects.filter(partner_id=self.partner_id)
        # the history's events from T0 on, beside the file's
        self._copy_history(history)
        # the seats held just before T0
        for member_id, customer_id, assigned_at, source in history.filter(assigned_at__lt=self.t0).filter(
            Q(removed_at__isnull=True) | Q(removed_at__gte=self.t0)
        ).values_list("member_id", "customer_id", "assigned_at", "source").iterator():
            self._open(member_id, customer_id, assigned_at, source)
        # the changed members' seats are rebuilt from the replay; what they were is kept for the audit
        rebuilt = history.filter(member_id__in=self.changed_members).filter(
            Q(assigned_at__gte=self.t0) | Q(removed_at__isnull=True) | Q(removed_at__gte=self.t0)
        )
        self.replaced = {
            (member_id, assigned_at, removed_at): (pk, customer_id)
            for pk, member_id, customer_id, assigned_at, removed_at in rebuilt.values_list(
                "pk", "member_id", "customer_id", "assigned_at", "removed_at").iterator(chunk_size=2000)
        }
        rebuilt.delete()
        # At one instant: removals already imported, then the file in file order, then assigns already
        # imported (a seat opened and closed at that very instant keeps its assign first), so that the
        # outcome never depends on how a history was split into files.
        bucket = Case(
            When(rank=0, action=UNASSIGN, assigned_at__lt=F("at"), then=Value(0)),
            When(rank=1, then=Value(1)),
            default=Value(2),
        )
        events = (
            self.staged.filter(duplicate=False)
            .annotate(bucket=bucket)
            .order_by("at", "bucket", "seq", "action")
            .values_list("rank", "seq", "row", "customer_id", "member_id", "action", "at")
        )
        for rank, seq, row, customer_id, member_id, action, at in events.iterator(chunk_size=2000):
            if self.first_row is None and rank == 1:
                self.first_row = row
            if rank == 1:
                self._file_event(row, customer_id, member_id, action, at)
            else:
                self._history_event(seq, customer_id, member_id, action, at)
        for member_id, (customer_id, assigned_at, source) in self.active.items():
            self._emit(member_id, customer_id, assigned_at, None, source)
        self._flush(force=True)
        self._audit()

    def _copy_history(self, history) -> None:
        common = {"token": self.token, "rank": 0, "row": 0, "partner_id": self.partner_id}
        assigns = history.filter(assigned_at__gte=self.t0).values_list(
            "pk", "customer_id", "member_id", "assigned_at"
        )
        removals = history.filter(removed_at__gte=self.t0).values_list(
            "pk", "customer_id", "member_id", "removed_at", "assigned_at"
        )
        for action, rows in ((ASSIGN, assigns), (UNASSIGN, removals)):
            buffer = []
            for pk, customer_id, member_id, at, *began in rows.iterator(chunk_size=2000):
                buffer.append(SeatEventStage(seq=pk, customer_id=customer_id, member_id=member_id, action=action,
                                             at=at, assigned_at=began[0] if began else None, **common))
                if len(buffer) >= 2000:
                    SeatEventStage.objects.bulk_create(buffer)
                    buffer = []
            SeatEventStage.objects.bulk_create(buffer)
        # keep the source of history seats that will be rebuilt
        self.sources = dict(
            history.filter(member_id__in=self.changed_members, assigned_at__gte=self.t0).values_list("pk", "source")
        )

    # --- state changes ------------------------------------------------------------------
    def _open(self, member_id, customer_id, at, source) -> None:
        self.active[member_id] = (customer_id, at, source)
        self.by_customer[customer_id] += 1

    def _close(self, member_id, at) -> None:
        customer_id, assigned_at, source = self.active.pop(member_id)
        self.by_customer[customer_id] -= 1
        self.file_seats.pop(member_id, None)
        self._emit(member_id, customer_id, assigned_at, at, source)

    def _emit(self, member_id, customer_id, assigned_at, removed_at, source) -> None:
        if member_id not in self.changed_members:
            return  # untouched: its row was left in place
        if self.replaced.pop((member_id, assigned_at, removed_at), None) is not None:
            self.unchanged_seats += 1  # rebuilt as it was: nothing to audit
        else:  # a seat the file wrote, new or with another end (the audit lists it, decision (ax))
            self.written[customer_id].append((member_id, assigned_at, removed_at))
        self.pending.append(
            SeatAssignment(partner_id=self.partner_id, customer_id=customer_id, member_id=member_id,
                           assigned_at=assigned_at, removed_at=removed_at, source=source).set_dates()
        )
        self._flush()

    def _flush(self, force: bool = False) -> None:
        if self.pending and (force or len(self.pending) >= 2000):
            if self.ctx.ok:
                SeatAssignment.objects.bulk_create(self.pending)
            self.pending = []

    # --- events -------------------------------------------------------------------------
    def _file_event(self, row, customer_id, member_id, action, at) -> None:
        ctx = self.ctx
        self.last_file_row[member_id] = row
        if action == ASSIGN:
            if member_id in self.active:
                since = self.active[member_id][1]
                ctx.error(row, "member",
                          f"already holds an active seat in this customer (since {format_instant(since)})")
                return
            try:
                check_assignment(
                    member_active=False,
                    customer_active=self.by_customer[customer_id],
                    seat_cap=self.caps.get(customer_id),
                    partner_active=len(self.active),
                    commitments=self.commitments(utc_date(at)),
                    customer_id=customer_id,
                )
            except SeatRuleError as exc:
                ctx.error(row, exc.column, f"{exc} at {format_instant(at)}")
                return
            self._open(member_id, customer_id, at, ctx.source[:100] or "import")
            self.file_seats[member_id] = row
            self.counts[customer_id]["assigned"] += 1
        else:
            if member_id not in self.active:
                ctx.error(row, "action", f"unassign without an active seat at {format_instant(at)}")
                return
            self._close(member_id, at)
            self.counts[customer_id]["unassigned"] += 1
        ctx.created += 1

    def _history_event(self, assignment_id, customer_id, member_id, action, at) -> None:
        blame = self.last_file_row.get(member_id, self.first_row)
        if action == ASSIGN:
            if member_id in self.active:
                self.ctx.error(blame, "at", f"conflicts with the seat history already imported: the member is "
                                            f"assigned again at {format_instant(at)} while this seat is still active")
                return
            self._check_history_assign(customer_id, at)
            self._open(member_id, customer_id, at, self.sources.get(assignment_id, "import"))
        else:
            if member_id not in self.active:
                self.ctx.error(blame, "at", f"conflicts with the seat history already imported: the seat "
                                            f"removed at {format_instant(at)} would already be ended")
                return
            self._close(member_id, at)

    def _check_history_assign(self, customer_id, at) -> None:
        """A seat already imported must still fit the cap and the commitments once the file's seats are in
        (billing-rules 9.4: the merged history is valid at every instant). When it fits without the file's seats but
        not with them, the row that breaks it is the latest file seat active in the rule's scope."""
        if not self.file_seats:
            return
        file_here = sum(1 for m in self.file_seats if self.active[m][0] == customer_id)
        rules = [(self.caps.get(customer_id), [], customer_id)]
        rules += [(None, [c], c.customer_id) for c in self.commitments(utc_date(at))]
        for cap, commitments, scope in rules:
            def check(without_file: bool, cap=cap, commitments=commitments) -> None:
                check_assignment(
                    member_active=False,
                    customer_active=self.by_customer[customer_id] - (file_here if without_file else 0),
                    seat_cap=cap,
                    partner_active=len(self.active) - (len(self.file_seats) if without_file else 0),
                    commitments=commitments,
                    customer_id=customer_id,
                )
            try:
                check(without_file=False)
                continue
            except SeatRuleError as exc:
                error = exc
            try:
                check(without_file=True)
            except SeatRuleError:
                continue  # broken without this file's seats too: not this file's doing
            in_scope = [(self.active[m][1], row) for m, row in self.file_seats.items()
                        if scope is None or self.active[m][0] == scope]
            row = max(in_scope)[1] if in_scope else self.first_row
            if row not in self.blamed:
                self.blamed.add(row)
                self.ctx.error(row, error.column, f"conflicts with the seat history already imported: at "
                                                  f"{format_instant(at)}, {error}")

    def _audit(self) -> None:
        """One entry per customer the file touched (billing-rules decision (ax)): the file, its counts, the seats it
        wrote (member, from, until) and the seats already recorded that it ended, as they were (rebuilt with their
        end, they get new ids)."""
        if not self.ctx.ok:
            return
        actor = self.ctx.actor
        names = dict(Customer.objects.filter(pk__in=self.counts).values_list("pk", "slug"))
        members = dict(Member.objects.filter(
            pk__in={k[0] for k in self.replaced} | {seat[0] for seats in self.written.values() for seat in seats}
        ).values_list("pk", "name"))
        replaced, written = defaultdict(list), defaultdict(list)
        for (member_id, assigned_at, removed_at), (pk, customer_id) in self.replaced.items():
            replaced[customer_id].append({"id": pk, "member": members[member_id], "assigned_at": jsonable(assigned_at),
                                          "removed_at": jsonable(removed_at)})
        for customer_id, seats in self.written.items():
            written[customer_id] = [{"member": members[member_id], "assigned_at": jsonable(assigned_at),
                                     "removed_at": jsonable(removed_at)}
                                    for member_id, assigned_at, removed_at in seats]

        def ordered(seats):
            return sorted(seats, key=lambda seat: (seat["assigned_at"], seat["member"].encode()))

        AuditLog.objects.bulk_create(
            audit_entry(actor=actor, action=AuditAction.SEAT_IMPORT, object_type="partners.Customer", object_id=cid,
                        object_repr=names.get(cid, ""), partner_id=self.partner_id,
                        after={**counts, "file": self.ctx.source, "written": ordered(written[cid]),
                               "replaced": ordered(replaced[cid])})
            for cid, counts in self.counts.items()
        )
        # alerts judge the state now: importing history sends at most what it calls for
        alerts_evaluate(partner_ids=[self.partner_id])

"""Usage records: calls (rated calls and their legs) and meetings (billing-rules 3.12; import-formats 5.12).

A record is what a phone or meeting system reports, one row a call, leg or meeting, keyed by its own id
within the partner. The three kinds share one way in: `import_csv` and the API both run the import engine
(billing/core/importing.py) with the kinds of metering/imports.py, and on PostgreSQL a clean file goes by
COPY instead (metering/usage_staging.py), to the same rows.

- `RECORD_KINDS`: each kind's columns (the resources, the staged SQL and the docs follow them);
- `records_batch` / `records_audit`: the engine's checks and writes, a batch at a time;
- `usage_record_totals`: the meters, one GROUP BY per table for any partners and a month.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, models
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.bulk import insert_rows
from billing.core.importing import ImportContext, ImportSummary, ParsedRow, run_import
from billing.core.periods import Period, format_instant
from billing.core.sql import Params
from metering.models import CallDetailRecord, CallUsageRecord, MeetingSummaryRecord
from partners.audit import audit_entry
from partners.choices import AuditAction
from partners.models import AuditLog, Customer, Partner

SECONDS_PER_MINUTE = 60


@dataclass(frozen=True)
class Column:
    """A column of a record file after partner and customer, named as the model's field.

    form: text (max_length), instant (ISO 8601 with Z or an offset), seconds (a whole number, 0 or more),
    count (a whole number, 1 or more), direction (inbound, outbound, internal), destination (a class in the
    vendor's words, normalised: resources.DestinationWidget)."""

    name: str
    form: str
    max_length: int = 0
    blank: bool = False  # the column may be left out or blank (stored as "")


@dataclass(frozen=True)
class RecordKind:
    name: str  # the import kind
    model: type[models.Model]
    columns: tuple[Column, ...]  # the key first
    noun: str  # for messages and the audit row

    @property
    def key(self) -> str:
        return self.columns[0].name

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def compared(self) -> tuple[str, ...]:
        """What an exact duplicate repeats: every value but the key (and the source file)."""
        return ("customer_id", *self.fields[1:])


STARTED = Column("started_at", "instant")
DURATION = Column("duration_seconds", "seconds")
DIRECTION = Column("direction", "direction")

CALL_USAGE = RecordKind("call-usage", CallUsageRecord, (
    Column("record_id", "text", 100), Column("user", "text", 100, blank=True), STARTED, DURATION, DIRECTION,
    Column("destination", "destination"),
), "call usage records")
CALL_DETAILS = RecordKind("call-details", CallDetailRecord, (
    Column("leg_id", "text", 100), Column("call_id", "text", 100), Column("user", "text", 100, blank=True),
    Column("from_number", "text", 100, blank=True), Column("to_number", "text", 100, blank=True),
    STARTED, DURATION, DIRECTION, Column("destination", "destination", blank=True),
), "call detail records")
MEETING_SUMMARIES = RecordKind("meeting-summaries", MeetingSummaryRecord, (
    Column("meeting_id", "text", 100), Column("host", "text", 200), STARTED, DURATION,
    Column("participants", "count"),
), "meeting summary records")
RECORD_KINDS = {kind.name: kind for kind in (CALL_USAGE, CALL_DETAILS, MEETING_SUMMARIES)}


# --- the engine's checks and writes -----------------------------------------------------------------------------
def _differences(kind: RecordKind, known: tuple, values: tuple) -> str:
    shown = []
    for name, before, now in zip(kind.compared, known, values, strict=True):
        if before != now:
            if name == "customer_id":
                shown.append("customer")
            else:
                text = format_instant if name == "started_at" else repr
                shown.append(f"{name} {text(before)} recorded, {text(now)} here")
    return "; ".join(shown)


def customers_hold(customer_ids) -> None:
    """Hold the customers' rows until the transaction ends as a foreign key constraint would (FOR KEY SHARE: no
    one deletes them meanwhile), once per customer; the records' tables have no such constraint (models.py)."""
    if connection.vendor == "postgresql" and customer_ids:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM partners_customer WHERE id = ANY(%(ids)s) FOR KEY SHARE",
                           {"ids": sorted(customer_ids)})


RECORDS_LOCK = 312_006  # the class of the advisory locks of usage records' writes (billing-rules 3.12, 11.6)


def records_lock(partner_ids) -> None:
    """Serialise the writes of usage records of each of these partners until the transaction ends: a batch reads
    which keys are recorded, then inserts the others, so two batches of one partner at once (an API batch sent
    again while the first is still being written, an import beside it) would both find a key new and the second
    insert fail on the key's unique index. With the lock the second waits for the first to commit, then reads its
    records (each statement reads what is committed when it starts) and finds them recorded: a no-op, as a batch
    sent again after the first is.

    PostgreSQL: a transaction-level advisory lock per partner, taken in the order of their ids (the lock of a
    partner never stops its seats, billing or anything but its usage records). Both ways in take it before they
    read the keys: the engine's `records_batch` and the COPY path (metering.usage_staging). SQLite writes one
    transaction at a time anyway."""
    ids = sorted({int(pk) for pk in partner_ids})
    if connection.vendor != "postgresql" or not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT count(pg_advisory_xact_lock(%(space)s, mod(id, 2147483648)::integer))
            FROM unnest(%(ids)s::bigint[]) AS id  -- in the array's order
        """, {"space": RECORDS_LOCK, "ids": ids})


def records_batch(kind: RecordKind, batch: list[ParsedRow], ctx: ImportContext, customers: dict) -> None:
    """Check a batch of parsed rows (their customers resolved by row number) and write the new records.

    A record whose key is already recorded (by an earlier import, or earlier in this file: each batch is
    written as it is read) is an exact duplicate when every value is the same, a no-op; with other values
    it is a row error naming them (billing-rules 3.12). Nothing is kept between batches but the counts, so a
    file of millions of rows takes the memory of one batch."""
    now = timezone.now()
    rows = []
    for row in batch:
        customer = customers.get(row.number)
        if customer is None:
            continue
        if row.values["started_at"] > now:
            ctx.error(row.number, "started_at", f"{format_instant(row.values['started_at'])} is in the future")
            continue
        values = (customer.pk, *(row.values[f] for f in kind.fields[1:]))
        rows.append((row, customer.partner_id, values))
    if not rows:
        return
    records_lock({partner_id for _, partner_id, _ in rows})  # a partner's batches one at a time, before keys are read
    customers_hold({customer.pk for customer in customers.values()})
    key = kind.key
    known = {
        (partner_id, record_key): tuple(values)
        for partner_id, record_key, *values in kind.model.objects.filter(
            partner_id__in={p for _, p, _ in rows}, **{f"{key}__in": {r.values[key] for r, _, _ in rows}},
        ).values_list("partner_id", key, *kind.compared)
    }
    created = ctx.state.setdefault("created", defaultdict(int))
    source = ctx.source[:100]
    new = []
    for row, partner_id, values in rows:
        record_key = row.values[key]
        before = known.get((partner_id, record_key))
        if before is None:
            known[(partner_id, record_key)] = values
            new.append((partner_id, record_key, *values, source))
            created[partner_id] += 1
            ctx.created += 1
        elif before == values:
            ctx.unchanged += 1  # an exact duplicate
        else:
            ctx.error(row.number, key, f"{record_key!r} is already recorded with other values "
                                       f"({_differences(kind, before, values)})")
    insert_rows(kind.model, ["partner_id", key, *kind.compared, "source"], new)


def records_audit(kind: RecordKind, ctx: ImportContext, created: dict[int, int]) -> None:
    """One `usage.import` audit row per partner given new records, with their count (no row per record)."""
    if not created:
        return
    partners = Partner.objects.in_bulk(list(created))
    AuditLog.objects.bulk_create(
        audit_entry(actor=ctx.actor, action=AuditAction.USAGE_IMPORT, obj=partners[pid], partner_id=pid,
                    after={"kind": kind.name, kind.noun.replace(" ", "_"): n, "file": ctx.source})
        for pid, n in sorted(created.items())
    )


def records_submit(*, kind: RecordKind, partner: Partner, rows: list[dict], actor: Actor,
                   source: str = "api") -> ImportSummary:
    """Records sent as data (the API's batches): each row a dict of the kind's columns (partner aside), run through
    the same engine as a file (all or nothing, exact duplicates no-ops). Errors name the file row: the n-th row
    (from 0) is `row n + 2`."""
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")  # a CR or LF in a value is then quoted: one row per record
    writer.writerow(["partner", "customer", *kind.fields])
    for row in rows:
        writer.writerow([partner.slug, row["customer"], *(row.get(f, "") for f in kind.fields)])
    text.seek(0)
    return run_import(kind.name, text, actor=actor, source=source)


# --- the meters -------------------------------------------------------------------------------------------------
METERS_DOC = """Meter keys of usage_record_totals (billing-rules 3.12), per customer and UTC month of the start:
  call_minutes:<direction>:<destination>  minutes of calls, each call rounded up to the whole minute
  calls:<direction>:<destination>         calls
  meeting_minutes                         minutes of meetings, each meeting rounded up to the whole minute
  meetings                                meetings
  participant_minutes                     each meeting's minutes times its participants
"""


def call_minutes(seconds: int) -> int:
    """A call's billed minutes: its seconds rounded up to the whole minute (0 seconds: 0 minutes)."""
    return -(-seconds // SECONDS_PER_MINUTE)


def usage_record_totals(partner_ids, month: Period) -> dict[tuple[int, str], Decimal]:
    """{(customer id, meter key): quantity} of the partners' usage records started in the UTC month (METERS_DOC);
    meters with nothing recorded are left out. One GROUP BY over each table's (customer, started_at) index."""
    # the customers first: each one's range of the (customer, started_at) index, not the index read whole
    customer_ids = list(Customer.objects.filter(partner_id__in=list(partner_ids)).values_list("pk", flat=True))
    if not customer_ids:
        return {}
    p = Params()
    start, end = (connection.ops.adapt_datetimefield_value(t) for t in (month.start, month.end))  # SQLite: text
    within = (f"customer_id IN ({p.each('customer', sorted(customer_ids))}) "
              f"AND started_at >= {p.ref('start', start)} AND started_at < {p.ref('end', end)}")
    minutes = f"(CAST(duration_seconds AS bigint) + {SECONDS_PER_MINUTE - 1}) / {SECONDS_PER_MINUTE}"
    totals: dict[tuple[int, str], Decimal] = {}
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT customer_id, direction, destination, count(*), sum({minutes})
            FROM {CallUsageRecord._meta.db_table} WHERE {within}
            GROUP BY customer_id, direction, destination
        """, p)
        for customer_id, direction, destination, calls, total in cursor.fetchall():
            totals[(customer_id, f"calls:{direction}:{destination}")] = Decimal(calls)
            totals[(customer_id, f"call_minutes:{direction}:{destination}")] = Decimal(total)
        cursor.execute(f"""
            SELECT customer_id, count(*), sum({minutes}), sum({minutes} * participants)
            FROM {MeetingSummaryRecord._meta.db_table} WHERE {within}
            GROUP BY customer_id
        """, p)
        for customer_id, meetings, total, participant_total in cursor.fetchall():
            totals[(customer_id, "meetings")] = Decimal(meetings)
            totals[(customer_id, "meeting_minutes")] = Decimal(total)
            totals[(customer_id, "participant_minutes")] = Decimal(participant_total)
    return totals

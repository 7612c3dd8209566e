"""Adversarial cases for the set-based (COPY) paths of tenant-usage, tenant-events (metering.tenant_staging) and the
usage records call-usage, call-details and meeting-summaries (metering.usage_staging) against the row-by-row engine
(metering.imports, metering.usage_records), the reference: each file is imported both ways from the same state and
must give the same answer (counts, or the same `row N: column: reason` errors) and the same tables and audit rows
(import-formats 5.6, 5.7, 5.12; billing-rules 9.3). Cases the property tests of test_tenant_staging.py and
test_usage_records.py do not reach: numbers, dates, instants and enum values in the forms a user may write, offsets
across a UTC midnight, the last snapshot of a date in the file and in the database, re-imports, --partner,
--dry-run, keys and slugs the engine refuses, and cells cut by a COPY chunk boundary.

The clock stands at 2026-11-21 12:00 UTC ("today" for the future checks).
"""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.utils import timezone

import billing.core.copy_staging as copy_staging
from billing.core.actor import Actor
from billing.core.importing import run_import_file
from metering.models import CallDetailRecord, CallUsageRecord, MeetingSummaryRecord
from metering.tests.test_tenant_staging import EVENTS, USAGE, USAGE_NO_MESSAGES, acme, both, engine, tables, today
from metering.tests.test_usage_records import GOOD, HEADERS
from partners.models import AuditLog
from partners.tests.factories import CustomerFactory
from tests.import_checks import csv_text, staged_answer

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: the set-based paths are PostgreSQL's; SQLite reads row by row")]
__all__ = ["acme", "today"]  # the fixtures: acme (north, south) and globex (east); the clock at 2026-11-21 12:00 UTC

ACTOR = Actor(label="staging review")
MODELS = {"call-usage": CallUsageRecord, "call-details": CallDetailRecord, "meeting-summaries": MeetingSummaryRecord}


def _file(tmp_path, header: str, *rows: str, name: str = "file.csv", crlf: bool = False):
    path = tmp_path / name
    text = csv_text(header, *rows)
    path.write_bytes((text.replace("\n", "\r\n") if crlf else text).encode())
    return path


def _history(tmp_path, kind: str, header: str, *rows: str):
    path = _file(tmp_path, header, *rows, name="earlier.csv")
    summary = engine(kind, path, source="earlier.csv", actor=ACTOR)
    assert summary.ok, [str(e) for e in summary.errors]


# --- usage records: both ways ------------------------------------------------------------------------------------
def _record_tables(kind: str) -> dict:
    model = MODELS[kind]
    fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
    return {"records": sorted(model.objects.values_list(*fields)),
            "audit": sorted(((a.action, a.actor_label, a.object_type, a.object_id, a.partner_id,
                              json.dumps(a.after, sort_keys=True)) for a in AuditLog.objects.all()), key=repr)}


def records_both(kind: str, path, **options):
    """The engine (rolled back), then run_import_file (kept): the same answer and the same records and audit rows.
    Returns (the answer, whether run_import_file took the set-based path)."""
    options = {"actor": ACTOR, "source": path.name, **options}
    with transaction.atomic():
        expected, staged = staged_answer(lambda: engine(kind, path, **options))
        expected_tables = _record_tables(kind)
        transaction.set_rollback(True)
    assert not staged
    got, staged = staged_answer(lambda: run_import_file(kind, path, **options))
    assert got == expected
    assert _record_tables(kind) == expected_tables
    return got, staged


# --- tenant-usage: cells -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", [
    "5", "+5", " 5", '" 5 "', "05", "5.0", "1e3", "0x10", "1_000", "-0", "\u0665", "\uff15", "2147483647",
    "2147483648", "99999999999999999999", "", "\u00a05",
])
def test_a_users_count_cell_reads_alike_both_ways(acme, tmp_path, cell):
    """A user's whole number in any form: the same snapshot, or the same row error."""
    both("tenant-usage", _file(tmp_path, USAGE, "acme,south,2026-04-01,1,2,3", f"acme,north,2026-04-01,{cell},2,3"))


@pytest.mark.parametrize("cell", ["", '""', " ", "0", "-0", "+7", "007", "9223372036854775807",
                                  "9223372036854775808"])
def test_a_messages_count_cell_reads_alike_both_ways(acme, tmp_path, cell):
    """The optional messages_count: blank is 'not known' (NULL) both ways, over a stored value too."""
    _history(tmp_path, "tenant-usage", USAGE, "acme,north,2026-04-01,1,2,9")
    both("tenant-usage", _file(tmp_path, USAGE, f"acme,north,2026-04-01,1,2,{cell}", "acme,south,2026-04-01,1,2,"))


@pytest.mark.parametrize("cell", [
    "2026-04-01", " 2026-04-01 ", "2026-4-1", "2026-02-03T00:00", "2026-02-03 00:00:00", "20260203", "today",
    "yesterday", "epoch", "2026-11-21", "2026-11-22", "9999-12-31", "0001-01-01", "2026-02-29", "2026-02-30",
    "\uff12026-04-01", "2026-04-01Z", "+2026-04-01",
])
def test_a_date_cell_reads_alike_both_ways(acme, tmp_path, cell):
    """A snapshot's date: exactly YYYY-MM-DD and not after today (UTC), both ways."""
    both("tenant-usage", _file(tmp_path, USAGE, "acme,south,2026-04-01,1,2,3", f"acme,north,{cell},1,2,3"))


@pytest.mark.parametrize(("customer", "partner"), [
    ("north", "acme"), ("North", "acme"), ("north", "ACME"), ("east", "acme"), ("east", "globex"),
    ("'north", "acme"), ("north ", " acme"), ("nörth", "acme"), ("", "acme"),
])
def test_the_customer_of_a_usage_row_is_found_alike_both_ways(acme, tmp_path, customer, partner):
    both("tenant-usage", _file(tmp_path, USAGE, f'"{partner}","{customer}",2026-04-01,1,2,3'))


# --- tenant-usage: the last snapshot of a date -------------------------------------------------------------------
@pytest.mark.parametrize("rows", [
    ["acme,north,2026-04-01,11,2,", "acme,north,2026-04-01,10,2,9"],  # back to what is stored: unchanged
    ["acme,north,2026-04-01,10,2,9", "acme,north,2026-04-01,11,2,9"],  # the last row wins: updated
    ["acme,north,2026-04-01,10,2,9", "acme,north,2026-04-01,10,2,"],  # messages now unknown: updated
    ["acme,north,2026-04-01,10,2,9"] * 5,  # the stored values, again and again
    ["acme,north,2026-04-01,1,1,1", "acme,north,2026-04-02,1,1,1", "acme,north,2026-04-01,1,1,1",
     "acme,north,2026-04-03,1,1,1", "acme,north,2026-04-01,10,2,9"],  # across batches (IMPORT_BATCH_SIZE 3)
    ["acme,south,2026-04-01,1,1,1", "acme,north,2026-04-01,12,2,9", "acme,south,2026-04-01,1,1,1",
     "acme,north,2026-04-01,10,2,9", "acme,south,2026-04-01,2,1,1"],
])
def test_the_last_snapshot_of_a_date_wins_in_the_file_and_against_the_database(acme, tmp_path, rows):
    """north has 10 users, 2 bytes and 9 messages on 1 April: the file's last row of each date decides, the earlier
    ones are unchanged, and a date put back to its stored values keeps its stamp and source."""
    _history(tmp_path, "tenant-usage", USAGE, "acme,north,2026-04-01,10,2,9")
    _, staged = both("tenant-usage", _file(tmp_path, USAGE, *rows))
    assert staged


def test_a_file_without_messages_count_makes_the_stored_count_unknown_both_ways(acme, tmp_path):
    """import-formats 4: a tenant-usage row is the whole record of its key, a column left out stored blank."""
    _history(tmp_path, "tenant-usage", USAGE, "acme,north,2026-04-01,10,2,9", "acme,north,2026-04-02,10,2,")
    (_, summary), staged = both("tenant-usage", _file(tmp_path, USAGE_NO_MESSAGES, "acme,north,2026-04-01,10,2",
                                                      "acme,north,2026-04-02,10,2"))
    assert staged and (summary.updated, summary.unchanged) == (1, 1)


@pytest.mark.parametrize("text", [
    "partner,customer,date,users_count,storage_bytes\nacme,north,2026-04-01,1,2\n\nacme,south,2026-04-01,1,2\n",
    "partner,customer,date,users_count,storage_bytes\nacme,north,2026-04-01,1,2\n,,,,\nacme,south,2026-04-01,1,2\n",
    "partner,customer,date,users_count,storage_bytes\nacme,north,2026-04-01,1,2\n\n\n\n",
    "partner,customer,date,users_count,storage_bytes\racme,north,2026-04-01,1,2\racme,south,2026-04-01,1,2\r\r",
    "partner,customer,date,users_count,storage_bytes\r\nacme,north,2026-04-01,1,2\nacme,south,2026-04-01,1,2\n",
    " Partner,CUSTOMER , Date,users_count,storage_bytes\nacme,north,2026-04-01,1,2",
    "partner,customer,date,users_count,storage_bytes\nacme,north,2026-04-01,1\n",
    "partner,customer,date,users_count,storage_bytes\nacme,north,2026-04-01,1,2,\n",
    "partner,customer,date,users_count,storage_bytes\n",
])
def test_blank_lines_line_ends_and_short_rows_agree_both_ways(acme, tmp_path, text):
    """Blank lines (in the middle, at the end, of empty cells) are skipped and not counted as rows, CR line ends and
    a CRLF header over LF rows read, a line with fewer cells reads the missing ones as blank, an empty cell past the
    last column is ignored, the header's names trimmed and in any case, a file of only a header refused: alike."""
    path = tmp_path / "usage.csv"
    path.write_bytes(text.encode())
    both("tenant-usage", path)


def test_a_usage_file_imported_again_is_unchanged_both_ways(acme, tmp_path):
    path = _file(tmp_path, USAGE, "acme,north,2026-04-01,1,2,", "acme,south,2026-04-01,3,4,5",
                 "acme,north,2026-04-01,6,7,8", "acme,north,2026-11-21,1,1,1")
    (_, first), staged = both("tenant-usage", path)
    assert staged and (first.created, first.unchanged) == (3, 1)
    (_, again), staged = both("tenant-usage", path)
    assert staged and (again.created, again.updated, again.unchanged) == (0, 0, 4)


@pytest.mark.parametrize("options", [{"partner": "acme"}, {"partner": "globex"}, {"dry_run": True},
                                     {"partner": "acme", "dry_run": True}, {"source": "s" * 150}])
def test_usage_options_agree_both_ways(acme, tmp_path, options):
    _history(tmp_path, "tenant-usage", USAGE, "acme,north,2026-04-01,10,2,9")
    both("tenant-usage", _file(tmp_path, USAGE, "acme,north,2026-04-01,11,2,9", "acme,south,2026-04-01,1,2,3"),
         **options)


def test_usage_of_two_partners_with_partner_option(acme, tmp_path):
    both("tenant-usage", _file(tmp_path, USAGE, "acme,north,2026-04-01,11,2,9", "globex,east,2026-04-01,1,2,3"),
         partner="acme")


def test_usage_audit_rows_come_in_the_same_order_both_ways(acme, tmp_path):
    """The audit log lists entries by id: south's rows come first in the file, and the engine writes south's entry
    first."""
    path = _file(tmp_path, USAGE, "acme,south,2026-04-01,1,2,3", "acme,north,2026-04-01,1,2,3")
    with transaction.atomic():
        engine("tenant-usage", path, source="f.csv", actor=ACTOR)
        expected = list(AuditLog.objects.order_by("id").values_list("object_repr", flat=True))
        transaction.set_rollback(True)
    assert run_import_file("tenant-usage", path, source="f.csv", actor=ACTOR).staged
    assert list(AuditLog.objects.order_by("id").values_list("object_repr", flat=True)) == expected


# --- tenant-events: cells ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", [
    "suspend", "SUSPEND", "Suspend", "sUsPeNd", " suspend ", '" Suspend"', "'suspend", "\u017fuspend", "su\u017fpend",
    "SUSPEND\u0130", "suspended", "", "\uff53uspend", "suspend\u200b", "\u00a0suspend",
])
def test_an_action_cell_reads_alike_both_ways(acme, tmp_path, action):
    both("tenant-events", _file(tmp_path, EVENTS, "acme,south,suspend,2026-04-01T09:00:00Z",
                                f"acme,north,{action},2026-04-01T09:00:00Z"))


@pytest.mark.parametrize("instant", [
    "2026-04-01T09:00:00Z", "2026-04-01T09:00Z", "2026-04-01T09Z", "2026-04-01T0900Z", "20260401T090000Z",
    "2026-04-01T09:00:00+0100", "2026-04-01T09:00:00+01", "2026-04-01T09:00+01", "2026-04-01 09:00:00+00",
    "2026-04-01 09:00:00+00:00", "2026-04-01T09:00:00.1234567Z", "2026-04-01T09:00:00.123456Z",
    "2026-04-01T09:00:00,5Z", "2026-04-01T24:00:00Z", "2026-04-01T09:00:60Z", "today", "now", "epoch",
    "2026-04-01T09:00:00-00:00", "2026-04-01T09:00:00+14:00", "2026-04-01T09:00:00+15:00",
    "2026-04-01T09:00:00 Z", "2026-04-01T09:00:00+01:00:00", "0999-06-01T00:00:00Z", "0999-06-01 00:00:00+00",
    "2026-04-01t09:00:00z", "2026-091T09:00:00Z", "2026-W14-3T09:00:00Z", "2026-04-01T09:00:00 +01:00",
    "2026-04-01T09:00:00UTC", "2026-04-01T09:00:00 Europe/Paris", "2026-04-01T09:00:00", "2026-11-21T12:30:00Z",
    "2026-11-21T13:30:00+02:00", "2026-11-21T12:00:00-00:30", "2026-04-01T09:00:00.5+01", "0000-06-01T00:00:00Z",
    "0001-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "2026-04-01T09:00:00.Z",
])
def test_an_instant_cell_reads_alike_both_ways(acme, tmp_path, instant):
    both("tenant-events", _file(tmp_path, EVENTS, "acme,south,suspend,2026-04-01T09:00:00Z",
                                f"acme,north,suspend,{instant}"))


@pytest.mark.parametrize("rows", [
    # a day written at offsets across a UTC midnight: whole days counted in UTC
    ["acme,north,suspend,2026-03-31T23:30:00-02:00", "acme,north,unsuspend,2026-04-03T00:30:00+02:00"],
    ["acme,north,suspend,2026-04-01T00:00:00+00:00", "acme,north,unsuspend,2026-04-02T01:00:00+01:00"],
    ["acme,north,suspend,2026-04-01T02:00:00+02:00", "acme,north,unsuspend,2026-04-01T00:00:00.000001Z"],
    ["acme,north,suspend,2026-02-28T23:00:00-01:00", "acme,north,unsuspend,2026-03-02T00:59:59+01:00"],
    # the same instant written twice: a duplicate in the file
    ["acme,north,suspend,2026-04-01T02:00:00+02:00", "acme,north,Suspend,2026-04-01T00:00:00Z",
     "acme,north,unsuspend,2026-04-02T00:00:00Z"],
])
def test_suspensions_across_a_utc_midnight_agree_both_ways(acme, tmp_path, rows):
    _, staged = both("tenant-events", _file(tmp_path, EVENTS, *rows))
    assert staged


def test_an_unsuspend_on_the_first_day_of_year_one_agrees_both_ways(acme, tmp_path):
    """A suspension ended on 1 January of year 1 (a typo for 2001, say): its last whole day would be the day
    before, which no date of the engine can hold. Both ways it is a row error: metering counts no day before
    2000-01-01."""
    (_, summary), staged = both("tenant-events", _file(tmp_path, EVENTS, "acme,north,suspend,0001-01-01T00:00:00Z",
                                                       "acme,north,unsuspend,0001-01-01T12:00:00Z"))
    assert not staged and [str(e) for e in summary.errors] == [
        "row 2: at: 0001-01-01T00:00:00Z is before 2000-01-01, the first day metering counts",
        "row 3: at: 0001-01-01T12:00:00Z is before 2000-01-01, the first day metering counts"]


def test_an_events_file_imported_again_is_unchanged_both_ways(acme, tmp_path):
    _history(tmp_path, "tenant-events", EVENTS, "acme,north,suspend,2026-03-01T00:00:00Z")
    path = _file(tmp_path, EVENTS, "acme,north,unsuspend,2026-03-05T10:00:00+01:00",
                 "acme,south,suspend,2026-04-01T09:00:00Z", "acme,north,suspend,2026-04-01T09:00:00Z",
                 "acme,south,unsuspend,2026-04-02T09:00:00Z", "acme,south,SUSPEND,2026-04-01T11:00:00+02:00")
    (_, first), staged = both("tenant-events", path)
    assert staged and (first.created, first.unchanged) == (4, 1)
    (_, again), staged = both("tenant-events", path)
    assert staged and (again.created, again.unchanged) == (0, 5)


@pytest.mark.parametrize("options", [{"partner": "acme"}, {"partner": "globex"}, {"dry_run": True},
                                     {"source": "s" * 150}])
def test_events_options_agree_both_ways(acme, tmp_path, options):
    _history(tmp_path, "tenant-events", EVENTS, "acme,north,suspend,2026-03-01T00:00:00Z")
    both("tenant-events", _file(tmp_path, EVENTS, "acme,north,unsuspend,2026-03-05T10:00:00Z",
                                "acme,south,suspend,2026-04-01T09:00:00Z"), **options)


def test_events_of_a_customer_of_another_partner(acme, tmp_path):
    both("tenant-events", _file(tmp_path, EVENTS, "acme,east,suspend,2026-04-01T09:00:00Z",
                                "globex,east,suspend,2026-04-01T09:00:00Z"))


def test_events_audit_rows_come_in_the_same_order_both_ways(acme, tmp_path):
    """north's first row repeats an event already imported; south's new event comes before north's: the engine
    writes north's entry first (its first row), the set-based path south's (its first new event)."""
    _history(tmp_path, "tenant-events", EVENTS, "acme,north,suspend,2026-03-01T00:00:00Z")
    path = _file(tmp_path, EVENTS, "acme,north,suspend,2026-03-01T00:00:00Z", "acme,south,suspend,2026-04-01T09:00:00Z",
                 "acme,north,unsuspend,2026-04-01T09:00:00Z")
    with transaction.atomic():
        engine("tenant-events", path, source="f.csv", actor=ACTOR)
        expected = list(AuditLog.objects.filter(after__file="f.csv").order_by("id")
                        .values_list("object_repr", flat=True))
        transaction.set_rollback(True)
    assert run_import_file("tenant-events", path, source="f.csv", actor=ACTOR).staged
    assert list(AuditLog.objects.filter(after__file="f.csv").order_by("id")
                .values_list("object_repr", flat=True)) == expected


# --- usage records -----------------------------------------------------------------------------------------------
CALL = "acme,north,c-9,201,2026-11-01T00:00:00Z,61,outbound,local"


def _call(**cells) -> str:
    values = dict(zip(HEADERS["call-usage"].split(","), CALL.split(","), strict=True))
    values.update(cells)
    return ",".join(values.values())


@pytest.mark.parametrize("direction", [
    "outbound", "OUTBOUND", "Outbound", " outbound ", '" Inbound"', "'outbound", "\u0130nbound", "\u0131nbound",
    "INBOUND\u0307", "out bound", "outbound\u200b", "\uff4futbound", "",
])
def test_a_direction_cell_reads_alike_both_ways(acme, tmp_path, direction):
    records_both("call-usage", _file(tmp_path, HEADERS["call-usage"], *GOOD["call-usage"], _call(direction=direction)))


@pytest.mark.parametrize("destination", [
    "Mobile UK", "mobile_uk", "MOBILE-UK", "Mobile  _UK", "mobile - uk", "mobile-", "-mobile", "_mobile", "Mobile/UK",
    "\u00dcnited", "mobile\tuk", '" Mobile UK "', "'Mobile", "'-mobile", "x" * 40, "x" * 41, "a" + " " * 60 + "b",
    "a_" * 20, "a_" * 21, "\u212a", "",
])
def test_a_destination_cell_reads_alike_both_ways(acme, tmp_path, destination):
    records_both("call-usage", _file(tmp_path, HEADERS["call-usage"], *GOOD["call-usage"],
                                     _call(destination=destination)))


@pytest.mark.parametrize("destination", ["Mobile UK", "", "'x", "-x"])
def test_a_blank_or_odd_leg_destination_reads_alike_both_ways(acme, tmp_path, destination):
    row = f"acme,north,l-9,c-9,,,,2026-11-01T00:00:00Z,1,inbound,{destination}"
    records_both("call-details", _file(tmp_path, HEADERS["call-details"], *GOOD["call-details"], row))


@pytest.mark.parametrize("seconds", ["0", "+5", " 5", "05", "5.0", "1e3", "\u0665", "2147483647", "2147483648",
                                     "99999999999999999999", "-0", "-1", ""])
def test_a_duration_cell_reads_alike_both_ways(acme, tmp_path, seconds):
    records_both("call-usage", _file(tmp_path, HEADERS["call-usage"], *GOOD["call-usage"],
                                     _call(duration_seconds=seconds)))


@pytest.mark.parametrize("participants", ["0", "1", "+1", "01", "2147483647", "2147483648"])
def test_a_participants_cell_reads_alike_both_ways(acme, tmp_path, participants):
    row = f"acme,north,m-9,host,2026-11-01T00:00:00Z,60,{participants}"
    records_both("meeting-summaries", _file(tmp_path, HEADERS["meeting-summaries"], *GOOD["meeting-summaries"], row))


@pytest.mark.parametrize("instant", [
    "2026-11-01T00:00:00Z", "2026-11-01T00:30:00+01:00", "2026-10-31T23:30:00-01:00", "2026-11-01 00:00:00+00",
    "2026-11-01T00:00Z", "2026-11-01T00:00:00", "2026-11-21T12:30:00Z", "2026-11-21T13:30:00+02:00", "today",
    "0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "2026-11-01T00:00:00.1234567Z",
])
def test_a_started_at_cell_reads_alike_both_ways(acme, tmp_path, instant):
    records_both("call-usage", _file(tmp_path, HEADERS["call-usage"], *GOOD["call-usage"], _call(started_at=instant)))


@pytest.mark.parametrize(("key", "user"), [
    ("'=1+2", "201"), ("'c-9", "201"), ("c-9", "'=SUM(A1)"), ("c-9", "'201"), ("c-9", "''=1"), (" c-1 ", "201"),
    ("c-9", "\u00e9" * 100), ("c-9", "\u00e9" * 101), ("\U0001f600" * 100, ""), ("\U0001f600" * 101, ""),
    ('"c,9"', '"a\nb"'), ("c-9", '" "'), ("C-1", "201"),
])
def test_text_cells_read_alike_both_ways(acme, tmp_path, key, user):
    records_both("call-usage", _file(tmp_path, HEADERS["call-usage"], *GOOD["call-usage"],
                                     _call(record_id=key, user=user)))


@pytest.mark.parametrize("again", [
    "acme,north,c-1,201,2026-11-01T00:59:59+01:00,61,OUTBOUND,International",  # the same values, written otherwise
    "acme,north,c-3,,2026-11-01T00:00:00Z,0,inbound,toll_free",
    "acme,north,c-3,,2026-11-01T00:00:00Z,0,inbound,Toll  Free",
    "acme,north,c-1,201,2026-10-31T23:59:59Z,61,outbound,intl",  # other values: an error
    "acme,south,c-1,201,2026-10-31T23:59:59Z,61,outbound,International",
    "acme,north,c-1,201,2026-10-31T23:59:59.5Z,61,outbound,International",
    "acme,north,c-1,,2026-10-31T23:59:59Z,61,outbound,International",
    "globex,east,c-1,201,2026-10-31T23:59:59Z,61,outbound,International",  # another partner's key
])
@pytest.mark.parametrize("recorded", [False, True])
def test_a_key_repeated_in_the_file_or_recorded_agrees_both_ways(acme, tmp_path, again, recorded):
    """billing-rules 3.12: the same key with the same values (as read) is a no-op, with other values an error."""
    if recorded:
        _history(tmp_path, "call-usage", HEADERS["call-usage"], *GOOD["call-usage"])
    records_both("call-usage", _file(tmp_path, HEADERS["call-usage"], *GOOD["call-usage"], again))


@pytest.mark.parametrize("kind", list(HEADERS))
def test_a_records_file_imported_again_is_unchanged_both_ways(acme, tmp_path, kind):
    path = _file(tmp_path, HEADERS[kind], *GOOD[kind], GOOD[kind][2])
    (_, first), staged = records_both(kind, path)
    assert staged and (first.created, first.unchanged) == (4, 1)
    (_, again), staged = records_both(kind, path)
    assert staged and (again.created, again.unchanged) == (0, 5)


@pytest.mark.parametrize("options", [{"partner": "acme"}, {"partner": "globex"}, {"dry_run": True},
                                     {"partner": "acme", "dry_run": True}, {"source": "s" * 150}])
def test_records_options_agree_both_ways(acme, tmp_path, options):
    records_both("call-usage", _file(tmp_path, HEADERS["call-usage"], *GOOD["call-usage"],
                                     "globex,east,c-1,1,2026-11-01T00:00:00Z,1,outbound,local"), **options)


@pytest.mark.parametrize("customer", ["east", "North", "nörth", "'north", ""])
def test_a_records_customer_is_found_alike_both_ways(acme, tmp_path, customer):
    records_both("call-usage", _file(tmp_path, HEADERS["call-usage"], *GOOD["call-usage"], _call(customer=customer)))


@pytest.mark.parametrize("header", [
    "partner,customer,record_id,started_at,duration_seconds,direction,destination",  # no user column
    "destination,direction,duration_seconds,started_at,user,record_id,customer,partner",
])
def test_a_records_header_in_another_shape_agrees_both_ways(acme, tmp_path, header):
    values = {"partner": "acme", "customer": "north", "record_id": "c-9", "user": "7",
              "started_at": "2026-11-01T00:00:00Z", "duration_seconds": "5", "direction": "inbound",
              "destination": "Toll Free"}
    row = ",".join(values[name] for name in header.split(","))
    _, staged = records_both("call-usage", _file(tmp_path, header, row, row))
    assert staged


# --- keys the engine refuses, held by the database ---------------------------------------------------------------
@pytest.mark.parametrize("slug", ["North-2", "-north", "north.2"])
def test_a_customer_slug_the_engine_refuses_is_refused_by_the_tenant_paths_too(acme, tmp_path, slug):
    """A customer saved without its validators (a shell, a script, an old row) may hold a slug no file can name:
    the engine's SlugWidget refuses the cell before it looks the customer up."""
    CustomerFactory(partner=acme, slug=slug)
    (_, summary), staged = both("tenant-usage", _file(tmp_path, USAGE, f"acme,{slug},2026-04-01,1,2,3"))
    assert not summary.ok and not staged
    (_, summary), staged = both("tenant-events", _file(tmp_path, EVENTS, f"acme,{slug},suspend,2026-04-01T09:00:00Z"))
    assert not summary.ok and not staged


@pytest.mark.parametrize("slug", ["North-2", "-north"])
@pytest.mark.parametrize("kind", list(HEADERS))
def test_a_customer_slug_the_engine_refuses_is_refused_by_the_records_path_too(acme, tmp_path, slug, kind):
    CustomerFactory(partner=acme, slug=slug)
    row = GOOD[kind][0].replace("acme,north,", f"acme,{slug},", 1)
    (_, summary), staged = records_both(kind, _file(tmp_path, HEADERS[kind], row))
    assert not summary.ok and not staged


def test_a_partner_slug_the_engine_refuses_is_refused_by_the_records_path_too(acme, tmp_path):
    CustomerFactory(partner__slug="Initech", slug="west")
    (_, summary), staged = records_both("call-usage", _file(
        tmp_path, HEADERS["call-usage"], "Initech,west,c-1,201,2026-10-31T23:59:59Z,61,outbound,local"))
    assert not summary.ok and not staged


# --- cells cut by a COPY chunk boundary --------------------------------------------------------------------------
BOM = "\ufeff"
CUT_FILES = {
    "tenant-usage": [
        (USAGE, "acme ,north, 2026-04-01,5 ,2,3 ", " acme,south,2026-04-02,1, 2,", "acme,north,2026-04-03,7,8, "),
        (USAGE_NO_MESSAGES, '"acme"," north","2026-04-01"," 5 ",2', '"acme","south ",2026-04-02,"1","2"'),
        (USAGE, "acme,north,2026-04-01,\u30005\u3000,2,3", "acme,south\u00a0,2026-04-02,1,2,\u2003"),
    ],
    "tenant-events": [
        (EVENTS, "acme ,north, Suspend ,2026-04-01T09:00:00Z ", " acme,north,UNSUSPEND,2026-04-02 09:00:00+00"),
        (EVENTS, '"acme"," south","suspend","2026-04-01T11:00:00+02:00 "', '"acme","south ",unsuspend,'
                 '"2026-04-02T09:00:00.5Z"'),
        (EVENTS, "acme,north,\u2002suspend,2026-04-01T09:00:00Z", "acme,north,unsuspend\t,2026-04-02T09:00:00Z"),
    ],
    "call-usage": [
        (HEADERS["call-usage"], "acme, north ,c-1 ,\u00e9t\u00e9 , 2026-11-01T00:00:00Z,61 , Outbound,Toll Free ",
         " acme,north, c-2,,2026-11-01T00:30:00+01:00,0,inbound, mobile_uk"),
        (HEADERS["call-usage"], '"acme","north","c-1","a ""b"" c","2026-11-01T00:00:00Z","61","outbound","local"',
         '"acme","south"," c-2 ","x\r\ny","2026-11-01T00:00:00Z","0","inbound","Toll Free"'),
        (HEADERS["call-usage"], "acme,north,c-1,\u00e9\u00a0,2026-11-01T00:00:00Z,61,outbound,local\u3000",
         "acme,south,\u2009c-2,\U0001f600,2026-11-01T00:00:00Z,1,inbound,Toll Free"),
    ],
}


def _cut_file(tmp_path, header: str, *rows: str, crlf: bool, bom: bool):
    path = tmp_path / "cut.csv"
    text = csv_text(header, *rows)
    path.write_bytes(((BOM if bom else "") + (text.replace("\n", "\r\n") if crlf else text)).encode())
    return path


def _state(kind: str, since):
    return tables(since) if kind.startswith("tenant") else _record_tables(kind)


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize(("kind", "number"), [(kind, n) for kind in CUT_FILES for n in range(3)])
def test_every_chunk_boundary_gives_the_engine_sstaged_answer(acme, tmp_path, monkeypatch, kind, number, crlf):
    """The file is read in CHUNK bytes (1 MiB): here cut at every byte (CHUNK from 1 to the file's size), so that
    every cell, space, quote, CR, LF and multi-byte character of a file with a byte-order mark meets a boundary.
    Each cut must take the set-based path and give what the engine gives."""
    header, *rows = CUT_FILES[kind][number]
    if kind == "tenant-events":
        _history(tmp_path, kind, EVENTS, "acme,north,suspend,2026-03-01T00:00:00Z",
                 "acme,north,unsuspend,2026-03-02T00:00:00Z")
    path = _cut_file(tmp_path, header, *rows, crlf=crlf, bom=True)
    options = {"actor": ACTOR, "source": "cut.csv"}
    with transaction.atomic():
        since = timezone.now()
        expected, _ = staged_answer(lambda: engine(kind, path, **options))
        expected_state = _state(kind, since)
        transaction.set_rollback(True)
    assert expected[1].ok, expected
    size = path.stat().st_size
    for chunk in range(1, size + 1):
        monkeypatch.setattr(copy_staging, "CHUNK", chunk)  # what copy_to_stage reads
        with transaction.atomic():
            since = timezone.now()
            got, staged = staged_answer(lambda: run_import_file(kind, path, **options))
            assert (chunk, staged, got) == (chunk, True, expected)
            assert _state(kind, since) == expected_state, chunk
            transaction.set_rollback(True)

"""Usage records (billing-rules 3.12; import-formats 5.12): `import_csv call-usage`, `call-details` and
`meeting-summaries` through the command line as a clerk runs it, the meters that sum them per customer and UTC
month, and, on PostgreSQL, the COPY path (metering.usage_staging) against the engine on random files.

Rejected files are checked as in test_usage_imports: exit 1, exactly the expected `row N: column: reason` lines,
and every table as before. The bad row is the last of a file longer than IMPORT_BATCH_SIZE (3 under test
settings), so a batch of good rows has been written inside the import's transaction before it.

The clock stands at 2026-11-21 12:00 UTC ("today" for the future checks).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection, transaction
from django.db.models import PROTECT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.core import paging
from billing.core.actor import Actor
from billing.core.importing import run_import, run_import_file
from billing.core.periods import Period, format_instant
from conftest import examples
from metering.models import CallDetailRecord, CallUsageRecord, MeetingSummaryRecord
from metering.tests.factories import acme_and_globex
from metering.usage_records import call_minutes, usage_record_totals
from partners.models import AuditLog, Customer, Partner
from partners.tests.factories import PartnerFactory
from tests.import_checks import csv_text, import_rejected, row_error_lines, table_rows

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TRACKED = (Partner, Customer, CallUsageRecord, CallDetailRecord, MeetingSummaryRecord, AuditLog)
on_postgres = pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="needs PostgreSQL: the COPY path is PostgreSQL's; SQLite reads row by row")

CALLS = "partner,customer,record_id,user,started_at,duration_seconds,direction,destination"
LEGS = "partner,customer,leg_id,call_id,user,from_number,to_number,started_at,duration_seconds,direction,destination"
MEETINGS = "partner,customer,meeting_id,host,started_at,duration_seconds,participants"
HEADERS = {"call-usage": CALLS, "call-details": LEGS, "meeting-summaries": MEETINGS}
GOOD = {
    "call-usage": [
        "acme,north,c-1,201,2026-10-31T23:59:59Z,61,outbound,International",
        "acme,north,c-2,202,2026-11-01T00:30:00+01:00,60,outbound,international",
        "acme,north,c-3,,2026-11-01T00:00:00Z,0,Inbound,Toll Free",
        "acme,south,c-4,301,2026-11-02T08:00:00Z,3599,internal,internal",
    ],
    "call-details": [
        "acme,north,l-1,c-1,201,+15551230001,+448001234567,2026-10-31T23:59:59Z,61,outbound,international",
        "acme,north,l-2,c-2,202,+15557650002,201,2026-11-02T10:30:00Z,30,inbound,",
        "acme,north,l-3,c-2,203,201,203,2026-11-02T10:30:30Z,31,internal,internal",
        "acme,south,l-4,c-3,,301,+15551230004,2026-11-03T12:00:00Z,0,outbound,local",
    ],
    "meeting-summaries": [
        "acme,north,m-1,ana@north.example,2026-10-31T23:30:00Z,1800,5",
        "acme,north,m-2,ben@north.example,2026-11-02T14:00:00Z,3601,12",
        "acme,south,m-3,cleo@south.example,2026-11-03T08:00:00+02:00,600,2",
        "acme,south,m-4,cleo@south.example,2026-11-04T16:00:00Z,59,1",
    ],
}
MODELS = {"call-usage": CallUsageRecord, "call-details": CallDetailRecord, "meeting-summaries": MeetingSummaryRecord}


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def acme(db):
    """acme with customers north and south; globex with east (a customer of another partner)."""
    return acme_and_globex()


@pytest.fixture
def write(csv_file):
    counter = iter(range(1000))
    return lambda kind, *rows: csv_file(f"{kind}-{next(counter)}.csv", csv_text(HEADERS[kind], *rows))


def imported(cli, kind, path, *options) -> str:
    result = cli("import_csv", kind, str(path), *options)
    assert result.status == 0, result.err
    assert not row_error_lines(result.err)
    return result.out


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- good files ------------------------------------------------------------------------------------------------
def test_a_call_usage_file_is_recorded_in_utc_with_destination_classes_normalised(cli, acme, write):
    """billing-rules 3.12: instants to UTC, directions and destination classes in lower case ("Toll Free" is
    toll-free), a blank user kept blank; one usage.import audit row for the partner with the count."""
    out = imported(cli, "call-usage", write("call-usage", *GOOD["call-usage"]))
    assert "call-usage: imported 4 rows: 4 created, 0 updated, 0 unchanged" in out
    rows = list(CallUsageRecord.objects.order_by("record_id").values_list(
        "customer__slug", "record_id", "user", "started_at", "duration_seconds", "direction", "destination"))
    assert rows == [
        ("north", "c-1", "201", at("2026-10-31T23:59:59Z"), 61, "outbound", "international"),
        ("north", "c-2", "202", at("2026-10-31T23:30:00Z"), 60, "outbound", "international"),
        ("north", "c-3", "", at("2026-11-01T00:00:00Z"), 0, "inbound", "toll-free"),
        ("south", "c-4", "301", at("2026-11-02T08:00:00Z"), 3599, "internal", "internal"),
    ]
    assert set(CallUsageRecord.objects.values_list("partner__slug", flat=True)) == {"acme"}
    audit = AuditLog.objects.get(action="usage.import")
    assert (audit.partner_id, audit.after["kind"], audit.after["call_usage_records"]) == (acme.pk, "call-usage", 4)


@pytest.mark.parametrize("kind", list(HEADERS))
def test_importing_the_same_file_again_changes_nothing(cli, acme, write, kind):
    """billing-rules 3.12, 9.3: exact duplicates are no-ops, whether already imported or repeated in the file;
    no second audit row when nothing is new."""
    path = write(kind, *GOOD[kind], GOOD[kind][0])
    assert f"{kind}: imported 5 rows: 4 created, 0 updated, 1 unchanged" in imported(cli, kind, path)
    before = table_rows(TRACKED)
    assert f"{kind}: imported 5 rows: 0 created, 0 updated, 5 unchanged" in imported(cli, kind, path)
    assert table_rows(TRACKED) == before


@pytest.mark.parametrize("kind", list(HEADERS))
def test_a_dry_run_writes_nothing(cli, acme, write, kind):
    before = table_rows(TRACKED)
    out = imported(cli, kind, write(kind, *GOOD[kind]), "--dry-run")
    assert f"{kind}: would import 4 rows: 4 created" in out
    assert table_rows(TRACKED) == before


def test_the_legs_of_a_call_share_its_call_id(cli, acme, write):
    imported(cli, "call-details", write("call-details", *GOOD["call-details"]))
    legs = CallDetailRecord.objects.filter(call_id="c-2").order_by("started_at")
    assert [(leg.leg_id, leg.from_number, leg.to_number, leg.direction) for leg in legs] == [
        ("l-2", "+15557650002", "201", "inbound"), ("l-3", "201", "203", "internal")]
    assert CallDetailRecord.objects.get(leg_id="l-2").destination == ""


# --- refused files ---------------------------------------------------------------------------------------------
ROW_ERRORS = [
    pytest.param("call-usage", "ghost,north,c-9,1,2026-11-01T00:00:00Z,1,outbound,local",
                 "partner: unknown partner 'ghost'", id="unknown-partner"),
    pytest.param("call-usage", "acme,west,c-9,1,2026-11-01T00:00:00Z,1,outbound,local",
                 "customer: unknown customer 'west' of partner acme", id="unknown-customer"),
    pytest.param("call-usage", "acme,east,c-9,1,2026-11-01T00:00:00Z,1,outbound,local",
                 "customer: unknown customer 'east' of partner acme", id="customer-of-another-partner"),
    pytest.param("call-usage", "acme,north,c-9,1,2026-11-01T00:00:00,1,outbound,local",
                 "started_at: instant '2026-11-01T00:00:00' has no time zone: add Z or an offset such as +02:00",
                 id="naive-instant"),
    pytest.param("call-usage", "acme,north,c-9,1,2026-11-31T00:00:00Z,1,outbound,local",
                 "started_at: expected an ISO 8601 instant with Z or an offset, got '2026-11-31T00:00:00Z'",
                 id="bad-instant"),
    pytest.param("call-usage", "acme,north,c-9,1,2026-11-21T13:30:00+01:00,1,outbound,local",
                 "started_at: 2026-11-21T12:30:00Z is in the future", id="future-instant"),
    pytest.param("call-usage", "acme,north,c-9,1,2026-11-01T00:00:00Z,-1,outbound,local",
                 "duration_seconds: must not be negative", id="negative-duration"),
    pytest.param("call-usage", "acme,north,c-9,1,2026-11-01T00:00:00Z,1.5,outbound,local",
                 "duration_seconds: not a whole number: '1.5'", id="fractional-duration"),
    pytest.param("call-usage", "acme,north,c-9,1,2026-11-01T00:00:00Z,1,sideways,local",
                 "direction: unknown direction 'sideways' (one of inbound, outbound, internal)",
                 id="unknown-direction"),
    pytest.param("call-usage", "acme,north,c-9,1,2026-11-01T00:00:00Z,1,outbound,intl/mobile",
                 "destination: 'intl/mobile' is not a destination class", id="bad-destination"),
    pytest.param("call-usage", "acme,north,c-9,1,2026-11-01T00:00:00Z,1,outbound,",
                 "destination: is required", id="no-destination"),
    pytest.param("call-usage", "acme,north,c-1,201,2026-10-31T23:59:59Z,62,outbound,international",
                 "record_id: 'c-1' is already recorded with other values (duration_seconds 61 recorded, 62 here)",
                 id="same-key-other-values"),
    pytest.param("call-details", "acme,north,,c-2,1,2,3,2026-11-01T00:00:00Z,1,outbound,local",
                 "leg_id: is required", id="leg-without-id"),
    pytest.param("call-details", "acme,north,l-1,c-9,201,+15551230001,+448001234567,2026-10-31T23:59:59Z,61,"
                                 "outbound,international",
                 "leg_id: 'l-1' is already recorded with other values (call_id 'c-1' recorded, 'c-9' here)",
                 id="leg-same-key-other-call"),
    pytest.param("meeting-summaries", "acme,north,m-9,ana@north.example,2026-11-01T00:00:00Z,60,0",
                 "participants: must be at least 1", id="no-participants"),
    pytest.param("meeting-summaries", "acme,south,m-1,ana@north.example,2026-10-31T23:30:00Z,1800,5",
                 "meeting_id: 'm-1' is already recorded with other values (customer)", id="meeting-other-customer"),
]


@pytest.mark.parametrize(("kind", "row", "error"), ROW_ERRORS)
def test_a_bad_row_refuses_the_whole_file(cli, acme, write, kind, row, error):
    """billing-rules 3.12, 9.6: all or nothing; the bad row (6, after a full batch) is named with its column."""
    _, lines = import_rejected(cli, kind, write(kind, *GOOD[kind], row), tracked=TRACKED)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"row 6: {error}"), lines


def test_a_record_already_imported_with_other_values_is_refused(cli, acme, write):
    """billing-rules 3.12: a record is never changed by a later file (it may have been billed)."""
    imported(cli, "call-usage", write("call-usage", *GOOD["call-usage"]))
    changed = GOOD["call-usage"][3].replace(",3599,", ",3600,")
    _, lines = import_rejected(cli, "call-usage", write("call-usage", GOOD["call-usage"][0], changed),
                               tracked=TRACKED)
    assert lines == ["row 3: record_id: 'c-4' is already recorded with other values "
                     "(duration_seconds 3599 recorded, 3600 here)"]


@pytest.mark.parametrize("model", list(MODELS.values()))
def test_a_partner_or_customer_with_records_cannot_be_deleted(model):
    """The records' tables have no foreign key constraint in the database (models.py): Django's PROTECT stands."""
    for name in ("partner", "customer"):
        field = model._meta.get_field(name)
        assert field.remote_field.on_delete is PROTECT and not field.db_constraint


# --- the meters ------------------------------------------------------------------------------------------------
def test_the_meters_sum_per_customer_and_utc_month(cli, acme, write):
    """billing-rules 3.12: a record belongs to the UTC month of its start (00:30+01:00 on 1 November is October);
    each call and meeting is rounded up to the whole minute, then summed."""
    for kind in ("call-usage", "meeting-summaries"):
        imported(cli, kind, write(kind, *GOOD[kind]))
    north, south = Customer.objects.get(slug="north").pk, Customer.objects.get(slug="south").pk
    assert usage_record_totals([acme.pk], Period.parse("2026-10")) == {
        (north, "calls:outbound:international"): 2, (north, "call_minutes:outbound:international"): 3,
        (north, "meetings"): 1, (north, "meeting_minutes"): 30, (north, "participant_minutes"): 150,
    }
    assert usage_record_totals([acme.pk], Period.parse("2026-11")) == {
        (north, "calls:inbound:toll-free"): 1, (north, "call_minutes:inbound:toll-free"): 0,
        (south, "calls:internal:internal"): 1, (south, "call_minutes:internal:internal"): 60,
        (north, "meetings"): 1, (north, "meeting_minutes"): 61, (north, "participant_minutes"): 61 * 12,
        (south, "meetings"): 2, (south, "meeting_minutes"): 11, (south, "participant_minutes"): 10 * 2 + 1,
    }
    assert usage_record_totals([PartnerFactory().pk], Period.parse("2026-11")) == {}
    assert all(isinstance(v, Decimal) for v in usage_record_totals([acme.pk], Period.parse("2026-11")).values())


def reference_totals(calls, meetings, month: Period) -> dict:
    """The meters in plain Python (billing-rules 3.12): per call and meeting, minutes rounded up, then summed."""
    totals = defaultdict(int)
    for customer, started, seconds, direction, destination in calls:
        if month.start <= started < month.end:
            totals[(customer, f"calls:{direction}:{destination}")] += 1
            totals[(customer, f"call_minutes:{direction}:{destination}")] += math.ceil(seconds / 60)
    for customer, started, seconds, participants in meetings:
        if month.start <= started < month.end:
            totals[(customer, "meetings")] += 1
            totals[(customer, "meeting_minutes")] += math.ceil(seconds / 60)
            totals[(customer, "participant_minutes")] += math.ceil(seconds / 60) * participants
    return dict(totals)


BOUNDARY = datetime(2026, 10, 1, tzinfo=UTC)
starts = st.integers(min_value=-3 * 86400, max_value=3 * 86400).map(lambda s: BOUNDARY + timedelta(seconds=s))
seconds = st.one_of(st.integers(0, 7200), st.sampled_from([0, 1, 59, 60, 61, 119, 120, 2_147_483_647]))


@settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(calls=st.lists(st.tuples(st.sampled_from(["north", "south"]), starts, seconds,
                                st.sampled_from(["inbound", "outbound", "internal"]),
                                st.sampled_from(["local", "international", "toll-free"])), max_size=25),
       meetings=st.lists(st.tuples(st.sampled_from(["north", "south"]), starts, seconds, st.integers(1, 500)),
                         max_size=15))
def test_the_meters_equal_the_pure_reference(acme, calls, meetings):
    """The SQL meters against reference_totals, for records on both sides of a UTC month boundary."""
    with transaction.atomic():
        ids = {c.slug: c.pk for c in Customer.objects.filter(partner=acme)}
        CallUsageRecord.objects.bulk_create(
            CallUsageRecord(partner=acme, customer_id=ids[c], record_id=f"c{n}", started_at=s, duration_seconds=d,
                            direction=dr, destination=ds) for n, (c, s, d, dr, ds) in enumerate(calls))
        MeetingSummaryRecord.objects.bulk_create(
            MeetingSummaryRecord(partner=acme, customer_id=ids[c], meeting_id=f"m{n}", host="h", started_at=s,
                                 duration_seconds=d, participants=p) for n, (c, s, d, p) in enumerate(meetings))
        for month in (Period.parse("2026-09"), Period.parse("2026-10")):
            want = {(ids[c], k): v for (c, k), v in reference_totals(calls, meetings, month).items()}
            assert usage_record_totals([acme.pk], month) == want
        transaction.set_rollback(True)


@given(st.lists(st.integers(0, 10**6), max_size=50))
def test_per_call_rounding_bounds_the_sum(durations):
    """Each call rounds up on its own: the sum of minutes is at least the total rounded up, and at most one minute a
    call more than the exact total."""
    total = sum(call_minutes(d) for d in durations)
    assert math.ceil(sum(durations) / 60) <= total <= sum(durations) / 60 + len(durations)
    assert all(call_minutes(d) * 60 - 60 < d <= call_minutes(d) * 60 for d in durations if d)
    assert call_minutes(0) == 0


# --- PostgreSQL: the COPY path against the engine ---------------------------------------------------------------
def _engine(kind, path, **options):
    with open(path, encoding="utf-8-sig", newline="") as stream:
        return run_import(kind, stream, **options)


def _records(model) -> list[tuple]:
    fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
    return sorted(model.objects.values_list(*fields))


def both_ways(kind, path, **options):
    """(engine summary, staged-path summary, the records each wrote): the engine's import rolled back first."""
    model = MODELS[kind]
    with transaction.atomic():
        by_engine = _engine(kind, path, **options)
        engine_rows = _records(model)
        engine_audit = sorted(AuditLog.objects.values_list("partner_id", "action", "after"), key=repr)
        transaction.set_rollback(True)
    with transaction.atomic():
        staged = run_import_file(kind, path, **options)
        staged_rows = _records(model)
        staged_audit = sorted(AuditLog.objects.values_list("partner_id", "action", "after"), key=repr)
        transaction.set_rollback(True)
    return by_engine, staged, (engine_rows, engine_audit), (staged_rows, staged_audit)


def _same(by_engine, staged):
    assert (staged.ok, staged.rows, staged.created, staged.unchanged, [str(e) for e in staged.errors]) == (
        by_engine.ok, by_engine.rows, by_engine.created, by_engine.unchanged, [str(e) for e in by_engine.errors])


@on_postgres
@pytest.mark.parametrize("kind", list(HEADERS))
def test_a_clean_file_takes_the_copy_path_to_the_same_records(acme, write, kind):
    path = write(kind, *GOOD[kind], GOOD[kind][1])
    by_engine, staged, engine_tables, staged_tables = both_ways(kind, path, source="f.csv", actor=Actor(label="t"))
    assert staged.staged and not by_engine.staged
    _same(by_engine, staged)
    assert staged_tables == engine_tables


@on_postgres
def test_a_bad_file_is_left_to_the_engine_which_names_the_rows(acme, write):
    path = write("call-usage", *GOOD["call-usage"], "acme,west,c-9,1,2026-11-01T00:00:00Z,1,outbound,local")
    summary = run_import_file("call-usage", path)
    assert not summary.staged
    assert [str(e) for e in summary.errors] == ["row 6: customer: unknown customer 'west' of partner acme"]
    assert not CallUsageRecord.objects.exists()


# random files: cells from good and bad values, in the forms both paths read alike and in others (a leading zero,
# "+5", an offset, capitals) that the COPY path leaves to the engine
cells = {
    "customer": st.sampled_from(["north", "south", "north", "east", "west", " north"]),
    "record_id": st.sampled_from(["a", "b", "c", "d", "e", "f", ""]),
    "user": st.sampled_from(["", "201", "ext 7", "'=1+2", "x" * 101]),
    "started_at": st.sampled_from(["2026-10-31T23:59:59Z", "2026-11-01T00:00:00Z", "2026-11-01T00:30:00+01:00",
                                   "2026-11-01T00:00:00.5Z", "2026-11-01 00:00:00Z", "2026-11-01T00:00:00",
                                   "2026-02-30T00:00:00Z", "2026-12-01T00:00:00Z", "2026-11-01T24:00:00Z"]),
    "duration_seconds": st.sampled_from(["0", "59", "61", "3600", "007", "+5", "-1", "1.5", "2147483648", ""]),
    "direction": st.sampled_from(["outbound", "inbound", "internal", "Outbound", "sideways"]),
    "destination": st.sampled_from(["local", "international", "Toll Free", "toll_free", "intl/x", "-x", ""]),
}
# only values both paths read alike: a file of these that the engine takes must go by COPY
PLAIN = {"customer": ["north", "south"], "record_id": ["a", "b", "c", "d"], "user": ["", "201", "ext 7"],
         "started_at": ["2026-10-31T23:59:59Z", "2026-11-01T00:00:00Z", "2026-11-01T00:30:00+01:00"],
         "duration_seconds": ["0", "59", "61"], "direction": ["outbound", "inbound", "Internal"],
         "destination": ["local", "Toll Free", "toll_free"]}


def _row(c: dict) -> str:
    return ",".join(["acme", *(c[name] for name in PLAIN)])


def _is_plain(row: str) -> bool:
    return all(value in PLAIN[name] for name, value in zip(PLAIN, row.split(",")[1:], strict=True))


call_rows = st.fixed_dictionaries(cells).map(_row)
plain_rows = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in PLAIN.items()}).map(_row)


@on_postgres
@settings(max_examples=examples(30), deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=st.one_of(st.lists(call_rows, min_size=1, max_size=12), st.lists(plain_rows, min_size=1, max_size=12)),
       recorded=st.lists(plain_rows, max_size=4))
def test_random_files_give_the_same_records_or_the_same_errors_both_ways(acme, tmp_path_factory, rows, recorded):
    """Whatever the file, and whatever is already recorded: the COPY path and the engine write the same records,
    count the same, or the engine names the errors (the COPY path never reports one itself)."""
    directory = tmp_path_factory.mktemp("calls")
    with transaction.atomic():
        earlier = directory / "earlier.csv"
        earlier.write_text(csv_text(CALLS, *recorded))
        if recorded:
            _engine("call-usage", earlier)  # whatever of it is good (or nothing)
        path = directory / "calls.csv"
        path.write_text(csv_text(CALLS, *rows))
        by_engine, staged, engine_tables, staged_tables = both_ways("call-usage", path, source="calls.csv")
        _same(by_engine, staged)
        assert staged_tables == engine_tables
        if by_engine.ok and all(_is_plain(row) for row in rows):
            assert staged.staged
        transaction.set_rollback(True)



@on_postgres
def test_the_partner_option_is_checked_on_the_copy_path_too(acme, write):
    path = write("call-usage", *GOOD["call-usage"])
    summary = run_import_file("call-usage", path, partner="globex")
    assert not summary.ok and not summary.staged
    assert str(summary.errors[0]).startswith("row 2: partner: 'acme' is not the partner given with --partner")


def test_a_file_of_many_rows_streams(acme, tmp_path):
    """Memory is bounded by a batch: a file is never held whole (the engine streams it, the COPY path sends it in
    chunks); here simply a file of a few thousand rows imports whole, both ways the database offers."""
    lines = [f"acme,north,r{n},,{format_instant(NOW - timedelta(minutes=n))},{n % 300},outbound,local"
             for n in range(3000)]
    path = tmp_path / "many.csv"
    path.write_text(csv_text(CALLS, *lines))
    summary = run_import_file("call-usage", path)
    assert (summary.ok, summary.created, summary.staged) == (True, 3000, connection.vendor == "postgresql")
    assert CallUsageRecord.objects.count() == 3000


# --- the admin -------------------------------------------------------------------------------------------------
ADMIN_LISTS = {"call-usage": "/admin/metering/callusagerecord/", "call-details": "/admin/metering/calldetailrecord/",
               "meeting-summaries": "/admin/metering/meetingsummaryrecord/"}


@pytest.mark.parametrize("kind", list(HEADERS))
def test_the_admin_lists_records_read_only_by_partner_customer_and_month(admin_client, cli, acme, write, kind):
    imported(cli, kind, write(kind, *GOOD[kind]))
    url = ADMIN_LISTS[kind]
    north = Customer.objects.get(slug="north")
    page = admin_client.get(url)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 4
    assert "2026-11" in page.content.decode() and "2025-11" in page.content.decode()  # months from the calendar
    north_count, october, november = {"call-usage": (3, 2, 2), "call-details": (3, 1, 3),
                                      "meeting-summaries": (2, 1, 3)}[kind]
    assert admin_client.get(f"{url}?customer={north.pk}").context["cl"].result_count == north_count
    assert admin_client.get(f"{url}?utc_month=2026-10").context["cl"].result_count == october
    chosen = admin_client.get(f"{url}?partner__id__exact={acme.pk}&utc_month=2026-11")
    assert chosen.context["cl"].result_count == november
    assert admin_client.get(f"{url}?utc_month=nonsense").status_code == 200
    assert admin_client.get(f"{url}add/").status_code == 403
    change = admin_client.get(f"{url}{MODELS[kind].objects.first().pk}/change/")
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()


@on_postgres
def test_an_unfiltered_admin_list_of_millions_of_records_is_not_counted(admin_client, monkeypatch):
    """billing.core.paging: the table's statistics, not a count of every row (test_admin_large_lists)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE metering_callusagerecord")
        cursor.execute("UPDATE pg_class SET reltuples = 10000000 WHERE relname = 'metering_callusagerecord'")
    monkeypatch.setattr(paging, "ESTIMATE_ABOVE", 1000)
    page = admin_client.get(ADMIN_LISTS["call-usage"])
    assert page.context["cl"].result_count == 10_000_000

"""tenant-usage and tenant-events on PostgreSQL: a clean file takes the COPY staging path (metering.tenant_staging)
and gives exactly what the row-by-row engine gives; any file that path is not sure of goes to the engine.

Each file is imported twice from the same state: first by the engine (billing.core.importing.run_import on a text
stream, always row by row), looked at and rolled back, then by run_import_file, which takes the staging path on
PostgreSQL. The answers (the summary, `staged` aside) and everything the import writes (snapshots, suspensions,
audit rows; ids aside, a snapshot's stamp as "before the import" or "stamped by it") must be the same. The
staging path itself needs PostgreSQL: on SQLite these tests are skipped with the reason.

The clock stands at 2026-11-21 12:00 UTC ("today" for the future checks).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.core.actor import Actor
from billing.core.importing import open_csv, run_import, run_import_file
from conftest import examples
from metering.models import Suspension, UsageSnapshot
from metering.tests.factories import acme_and_globex
from partners.models import AuditLog
from tests.import_checks import csv_text, staged_answer

pytestmark = [pytest.mark.django_db, pytest.mark.postgres,
              pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="needs PostgreSQL: the COPY path is PostgreSQL's; SQLite reads row by row")]

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ACTOR = Actor(label="import_csv tenant file")
USAGE = "partner,customer,date,users_count,storage_bytes,messages_count"
USAGE_NO_MESSAGES = "partner,customer,date,users_count,storage_bytes"
EVENTS = "partner,customer,action,at"


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def acme(db):
    """acme with customers north and south; globex with east (a customer of another partner)."""
    return acme_and_globex()


# --- importing a file both ways ---------------------------------------------------------------------------------
def engine(kind, path, **options):
    """The row-by-row engine, whatever the database."""
    with open_csv(path) as stream:
        return run_import(kind, stream, **options)


def tables(since: datetime) -> dict:
    """What the two kinds write, ids aside; a snapshot stamped at or after `since` (the import's start) as
    "stamped", one stamped before it with its stamp (it must be left as it was)."""
    return {
        "snapshots": sorted(
            (slug, day, users, storage, messages, source, "stamped" if stamp >= since else stamp)
            for slug, day, users, storage, messages, source, stamp in UsageSnapshot.objects.values_list(
                "customer__slug", "date", "users_count", "storage_bytes", "messages_count", "source", "recorded_at")),
        "suspensions": sorted(Suspension.objects.values_list(
            "customer__slug", "suspended_at", "unsuspended_at", "first_full_day", "last_full_day", "source"),
            key=repr),
        "audit": sorted(((a.action, a.actor_label, a.object_type, a.object_id, a.object_repr, a.partner_id,
                          json.dumps(a.before, sort_keys=True), json.dumps(a.after, sort_keys=True))
                         for a in AuditLog.objects.all()), key=repr),
    }


def both(kind, path, **options) -> tuple[object, bool]:
    """Import the file by the engine (rolled back), then by run_import_file: the same answer and tables.
    Returns (the answer, whether run_import_file took the staging path); the second import stays."""
    options = {"actor": ACTOR, "source": path.name, **options}
    with transaction.atomic():
        since = timezone.now()
        expected, staged = staged_answer(lambda: engine(kind, path, **options))
        expected_tables = tables(since)
        transaction.set_rollback(True)
    assert not staged
    since = timezone.now()
    got, staged = staged_answer(lambda: run_import_file(kind, path, **options))
    assert got == expected
    assert tables(since) == expected_tables
    return got, staged


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("z", "Z")).astimezone(UTC)


# --- tenant-usage -----------------------------------------------------------------------------------------------
def test_a_clean_usage_file_takes_the_copy_path_and_merges_as_the_engine_does(acme, tmp_path):
    """Created, updated (stamped, this file its source), unchanged (its stamp kept), and the last row of a date
    winning across batches, the earlier rows of that date unchanged."""
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(csv_text(USAGE, "acme,north,2026-04-01,10,100,5", "acme,north,2026-04-02,11,100,",
                                "acme,south,2026-04-01,3,0,"))
    assert engine("tenant-usage", earlier, source="earlier.csv").ok
    path = tmp_path / "usage.csv"
    path.write_text(csv_text(
        USAGE,
        "acme,north,2026-04-01,99,100,5",  # superseded by row 7
        "acme,north,2026-04-02,12,100,",  # updated
        "acme,south,2026-04-01,3,0,",  # unchanged
        "acme,south,2026-04-02,4,500,7",  # created
        "acme,south,2026-04-02,4,500,7",  # the same again
        "acme,north,2026-04-01,10,100,5",  # back to what was stored: unchanged
    ))
    (_, summary), staged = both("tenant-usage", path)
    assert staged
    assert (summary.rows, summary.created, summary.updated, summary.unchanged) == (6, 1, 1, 4)
    north_1 = UsageSnapshot.objects.get(customer__slug="north", date=date(2026, 4, 1))
    assert (north_1.users_count, north_1.source) == (10, "earlier.csv")
    north_2 = UsageSnapshot.objects.get(customer__slug="north", date=date(2026, 4, 2))
    assert (north_2.users_count, north_2.source) == (12, "usage.csv")
    audit = AuditLog.objects.filter(action="usage.import", after__file="usage.csv").order_by("object_repr")
    assert [(a.object_repr, a.after["snapshots"]) for a in audit] == [("North (acme)", 1), ("South (acme)", 1)]


def test_a_usage_file_without_messages_and_with_spaces_is_taken(acme, tmp_path):
    path = tmp_path / "usage.csv"
    path.write_text(csv_text(USAGE_NO_MESSAGES, "acme, north ,2026-04-01,1,2", '"acme","south","2026-04-01",3,4'))
    (_, summary), staged = both("tenant-usage", path)
    assert staged and summary.created == 2
    assert list(UsageSnapshot.objects.order_by("customer__slug").values_list("customer__slug", "messages_count")) == [
        ("north", None), ("south", None)]


def test_a_usage_dry_run_takes_the_copy_path_and_writes_nothing(acme, tmp_path):
    path = tmp_path / "usage.csv"
    path.write_text(csv_text(USAGE, "acme,north,2026-04-01,1,2,3"))
    summary = run_import_file("tenant-usage", path, dry_run=True)
    assert (summary.staged, summary.dry_run, summary.created) == (True, True, 1)
    assert not UsageSnapshot.objects.exists() and not AuditLog.objects.exists()


@pytest.mark.parametrize("bad_row", [
    "acme,west,2026-04-01,1,2,3",  # unknown customer
    "acme,north,2026-11-22,1,2,3",  # tomorrow
    "acme,north,2026-4-1,1,2,3",  # another form of date
    "acme,north,2026-04-01,007,2,3",  # a leading zero: the engine reads it, the COPY path leaves it
    "acme,north,2026-04-01,1,-2,3",
])
def test_a_usage_file_the_copy_path_is_not_sure_of_goes_to_the_engine(acme, tmp_path, bad_row):
    path = tmp_path / "usage.csv"
    path.write_text(csv_text(USAGE, "acme,south,2026-04-01,1,2,3", bad_row))
    _, staged = both("tenant-usage", path)
    assert not staged


def test_the_partner_option_is_checked_on_the_copy_path_too(acme, tmp_path):
    path = tmp_path / "usage.csv"
    path.write_text(csv_text(USAGE, "acme,north,2026-04-01,1,2,3"))
    (_, summary), staged = both("tenant-usage", path, partner="globex")
    assert not summary.ok and not staged
    assert str(summary.errors[0]).startswith("row 2: partner: 'acme' is not the partner given with --partner")


# --- tenant-events ----------------------------------------------------------------------------------------------
def test_a_clean_events_file_takes_the_copy_path_and_merges_as_the_engine_does(acme, tmp_path):
    """After the history: north's open suspension closed (rebuilt, as the engine rebuilds it), a new one opened
    and closed at one instant, south's first; duplicates of recorded events and of the file's own rows no-ops."""
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(csv_text(EVENTS, "acme,north,suspend,2026-03-01T00:00:00Z",
                                "acme,north,unsuspend,2026-03-05T10:00:00Z", "acme,north,suspend,2026-04-01T09:00:00Z"))
    assert engine("tenant-events", earlier, source="earlier.csv").ok
    path = tmp_path / "events.csv"
    path.write_text(csv_text(
        EVENTS,
        "acme,north,suspend,2026-03-01T01:00:00+01:00",  # recorded already
        "acme,north,Unsuspend,2026-04-05T09:00:00Z",
        "acme,south,suspend,2026-04-03T09:00:00.250Z",
        "acme,north,suspend,2026-05-01T00:00:00Z",
        "acme,north,unsuspend,2026-05-01T00:00:00Z",
        "acme,south,suspend,2026-04-03T11:00:00.25+02:00",  # the same instant as row 4
    ))
    (_, summary), staged = both("tenant-events", path)
    assert staged
    assert (summary.rows, summary.created, summary.updated, summary.unchanged) == (6, 4, 0, 2)
    assert list(Suspension.objects.order_by("customer__slug", "suspended_at").values_list(
        "customer__slug", "suspended_at", "unsuspended_at", "first_full_day", "last_full_day", "source")) == [
        ("north", at("2026-03-01T00:00:00Z"), at("2026-03-05T10:00:00Z"), date(2026, 3, 1), date(2026, 3, 4),
         "earlier.csv"),
        ("north", at("2026-04-01T09:00:00Z"), at("2026-04-05T09:00:00Z"), date(2026, 4, 2), date(2026, 4, 4),
         "events.csv"),
        ("north", at("2026-05-01T00:00:00Z"), at("2026-05-01T00:00:00Z"), date(2026, 5, 1), date(2026, 4, 30),
         "events.csv"),
        ("south", at("2026-04-03T09:00:00.25Z"), None, date(2026, 4, 4), None, "events.csv"),
    ]
    audit = AuditLog.objects.filter(action="suspension.import", after__file="events.csv").order_by("object_repr")
    assert [(a.object_repr, a.after["suspended"], a.after["unsuspended"]) for a in audit] == [
        ("North (acme)", 1, 2), ("South (acme)", 1, 0)]


def test_events_after_a_zero_length_suspension_take_the_copy_path(acme, tmp_path):
    """A suspension that ended at the instant it began (both events at one instant, in file order) replays as
    recorded: a later file goes by COPY."""
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(csv_text(EVENTS, "acme,north,suspend,2026-03-01T00:00:00Z",
                                "acme,north,unsuspend,2026-03-01T00:00:00Z"))
    assert engine("tenant-events", earlier, source="earlier.csv").ok
    path = tmp_path / "events.csv"
    path.write_text(csv_text(EVENTS, "acme,north,suspend,2026-03-01T00:00:01Z"))
    _, staged = both("tenant-events", path)
    assert staged


def test_an_events_dry_run_takes_the_copy_path_and_writes_nothing(acme, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(csv_text(EVENTS, "acme,north,suspend,2026-04-01T09:00:00Z"))
    summary = run_import_file("tenant-events", path, dry_run=True)
    assert (summary.staged, summary.dry_run, summary.created) == (True, True, 1)
    assert not Suspension.objects.exists() and not AuditLog.objects.exists()


@pytest.mark.parametrize("rows", [
    # merged into the past: before north's last recorded change
    ["acme,north,suspend,2026-02-01T00:00:00Z", "acme,north,unsuspend,2026-02-02T00:00:00Z"],
    ["acme,north,unsuspend,2026-04-02T00:00:00Z"],  # an unsuspend while not suspended: the engine's error
    ["acme,south,suspend,2026-04-02T00:00:00Z", "acme,south,suspend,2026-04-03T00:00:00Z"],  # suspended twice
    ["acme,south,suspend,2026-04-02T00:00:00"],  # no zone
    ["acme,south,suspend,2026-11-21T13:00:00Z"],  # in the future
])
def test_an_events_file_the_copy_path_is_not_sure_of_goes_to_the_engine(acme, tmp_path, rows):
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(csv_text(EVENTS, "acme,north,suspend,2026-03-01T00:00:00Z",
                                "acme,north,unsuspend,2026-03-05T10:00:00Z"))
    assert engine("tenant-events", earlier, source="earlier.csv").ok
    path = tmp_path / "events.csv"
    path.write_text(csv_text(EVENTS, *rows))
    _, staged = both("tenant-events", path)
    assert not staged


# --- random files -----------------------------------------------------------------------------------------------
# cells from good and bad values, in the forms both paths read alike and in others that the COPY path leaves to
# the engine; PLAIN_*: the values both read alike (a file of only these that the engine takes must go by COPY)
CUSTOMERS = ["north", "south", "north", "east", "west", " south"]
PLAIN_CUSTOMERS = ["north", "south", " south"]
usage_cells = {
    "customer": st.sampled_from(CUSTOMERS),
    "date": st.sampled_from(["2026-04-01", "2026-04-02", "2026-04-03", "2026-11-21", "2026-4-1", "2026-02-30",
                             "2026-11-22", "20260401"]),
    "users_count": st.sampled_from(["0", "5", "12", "007", "+5", "-1", "2147483648", "", "x"]),
    "storage_bytes": st.sampled_from(["0", "500", "9223372036854775807", "9223372036854775808", "1.5"]),
    "messages_count": st.sampled_from(["", "7", "50", "-0"]),
}
PLAIN_USAGE = {"customer": PLAIN_CUSTOMERS, "date": ["2026-04-01", "2026-04-02", "2026-04-03", "2026-11-21"],
               "users_count": ["0", "5", "12"], "storage_bytes": ["0", "500", "9223372036854775807"],
               "messages_count": ["", "7", "50"]}
INSTANTS = ["2026-03-01T00:00:00Z", "2026-03-01T01:00:00+01:00", "2026-03-05T10:00:00Z", "2026-04-01T09:00:00Z",
            "2026-04-01T09:00:00.5Z", "2026-04-05T00:00:00Z", "2026-05-01T00:00:00z"]
event_cells = {
    "customer": st.sampled_from(CUSTOMERS),
    "action": st.sampled_from(["suspend", "unsuspend", "Suspend", "UNSUSPEND", "resume"]),
    "at": st.sampled_from([*INSTANTS, "2026-04-01T09:00:00", "2026-04-31T00:00:00Z", "2026-11-22T00:00:00Z",
                           "2026-04-01 09:00:00Z"]),
}
PLAIN_EVENTS = {"customer": PLAIN_CUSTOMERS, "action": ["suspend", "unsuspend", "Suspend", "UNSUSPEND"],
                "at": INSTANTS}


def _rows(plain: dict, cells: dict):
    return st.fixed_dictionaries(cells).map(lambda c: ",".join(["acme", *(c[name] for name in plain)]))


def _is_plain(plain: dict, row: str) -> bool:
    return all(value in plain[name] for name, value in zip(plain, row.split(",")[1:], strict=True))


def _plain_rows(plain: dict):
    return _rows(plain, {name: st.sampled_from(values) for name, values in plain.items()})


usage_rows, plain_usage_rows = _rows(PLAIN_USAGE, usage_cells), _plain_rows(PLAIN_USAGE)
event_rows, plain_event_rows = _rows(PLAIN_EVENTS, event_cells), _plain_rows(PLAIN_EVENTS)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=st.one_of(st.lists(usage_rows, min_size=1, max_size=12), st.lists(plain_usage_rows, min_size=1,
                                                                               max_size=12)),
       recorded=st.lists(plain_usage_rows, max_size=6), messages=st.booleans())
def test_random_usage_files_give_the_same_tables_or_the_same_errors_both_ways(acme, tmp_path_factory, rows,
                                                                               recorded, messages):
    """Whatever the file, and whatever is already recorded: the COPY path and the engine write the same snapshots
    and audit rows and count the same, or the engine names the errors (the COPY path never reports one)."""
    directory = tmp_path_factory.mktemp("usage")
    header = USAGE if messages else USAGE_NO_MESSAGES
    if not messages:
        rows = [row.rsplit(",", 1)[0] for row in rows]
    with transaction.atomic():
        if recorded:
            earlier = directory / "earlier.csv"
            earlier.write_text(csv_text(USAGE, *recorded))
            engine("tenant-usage", earlier, source="earlier.csv", actor=ACTOR)  # whatever of it is good (or nothing)
        path = directory / "usage.csv"
        path.write_text(csv_text(header, *rows))
        (_, summary), staged = both("tenant-usage", path)
        plain = dict(PLAIN_USAGE) if messages else {k: v for k, v in PLAIN_USAGE.items() if k != "messages_count"}
        if getattr(summary, "ok", False) and all(_is_plain(plain, row) for row in rows):
            assert staged
        transaction.set_rollback(True)


def _expect_staged(rows: list[str], suspensions: list[tuple[str, datetime, datetime | None]]) -> bool:
    """Whether the COPY path must take a plain file the engine takes: each event of a customer recorded already,
    or after the customer's last recorded change (a history the engine wrote always replays as recorded)."""
    recorded, last = set(), {}
    for customer, suspended, unsuspended in suspensions:
        recorded.add((customer, "suspend", suspended))
        if unsuspended is not None:
            recorded.add((customer, "unsuspend", unsuspended))
        last[customer] = max(last.get(customer, suspended), suspended, unsuspended or suspended)
    for row in rows:
        _, customer, action, text = row.split(",")
        customer, action, instant = customer.strip(), action.lower(), at(text)
        if (customer, action, instant) not in recorded and customer in last and instant <= last[customer]:
            return False
    return True


def _alternating(draw, customer: str, instants: list[str], first: str) -> list[str]:
    """Events of a customer at distinct instants (in time order), alternating from `first`."""
    chosen = sorted(draw(st.lists(st.sampled_from(instants), min_size=1, max_size=4, unique=True)), key=at)
    other = {"suspend": "unsuspend", "unsuspend": "suspend"}
    actions = [first]
    while len(actions) < len(chosen):
        actions.append(other[actions[-1]])
    return [f"acme,{customer},{action},{instant}" for action, instant in zip(actions, chosen, strict=True)]


EARLIER = ["2026-03-01T00:00:00Z", "2026-03-02T09:30:00+01:00", "2026-03-05T10:00:00Z", "2026-03-20T00:00:00Z"]
LATER = ["2026-03-20T00:00:00Z", "2026-04-01T09:00:00Z", "2026-04-01T09:00:00.5Z", "2026-04-05T00:00:00Z",
         "2026-05-01T00:00:00z", "2026-06-01T02:00:00+02:00"]


@st.composite
def appended(draw) -> tuple[list[str], list[str]]:
    """(a history recorded first, a file): each customer's events alternating, the file's after the history
    (or at its last instant), starting either way, with some of the history's rows again; in any file order."""
    recorded, rows, next_action = [], [], {}
    for customer in draw(st.lists(st.sampled_from(["north", "south"]), unique=True, max_size=2)):
        recorded += _alternating(draw, customer, EARLIER, "suspend")
        next_action[customer] = "suspend" if recorded[-1].split(",")[2] == "unsuspend" else "unsuspend"
    for customer in draw(st.lists(st.sampled_from(["north", "south"]), unique=True, min_size=1, max_size=2)):
        right = next_action.get(customer, "suspend")
        wrong = "suspend" if right == "unsuspend" else "unsuspend"
        rows += _alternating(draw, customer, LATER, draw(st.sampled_from([right, right, right, wrong])))
    rows += draw(st.lists(st.sampled_from(recorded or rows), max_size=3))
    return recorded, draw(st.permutations(rows))


def events_both_ways(directory, recorded: list[str], rows: list[str]) -> bool:
    """The history recorded by the engine (whatever of it is good), then the file both ways: whether the COPY
    path took it. When the file is plain and the engine takes it, the COPY path must have taken it exactly when
    each event is recorded already or comes after its customer's last recorded change."""
    if recorded:
        earlier = directory / "earlier.csv"
        earlier.write_text(csv_text(EVENTS, *recorded))
        engine("tenant-events", earlier, source="earlier.csv", actor=ACTOR)
    history = list(Suspension.objects.values_list("customer__slug", "suspended_at", "unsuspended_at"))
    path = directory / "events.csv"
    path.write_text(csv_text(EVENTS, *rows))
    (_, summary), staged = both("tenant-events", path)
    if getattr(summary, "ok", False) and all(_is_plain(PLAIN_EVENTS, row) for row in rows):
        assert staged == _expect_staged(rows, history)
    return staged


@settings(max_examples=examples(60), deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=st.one_of(st.lists(event_rows, min_size=1, max_size=10), st.lists(plain_event_rows, min_size=1,
                                                                               max_size=10)),
       recorded=st.lists(plain_event_rows, max_size=5))
def test_random_events_files_give_the_same_tables_or_the_same_errors_both_ways(acme, tmp_path_factory, rows,
                                                                                recorded):
    """The same for events merged into a recorded history (from an earlier file: whatever of it the engine
    took)."""
    with transaction.atomic():
        events_both_ways(tmp_path_factory.mktemp("events"), recorded, rows)
        transaction.set_rollback(True)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(case=appended())
def test_events_after_the_history_give_the_same_tables_both_ways(acme, tmp_path_factory, case):
    """Files that mostly go by COPY: each customer's events after its history, alternating (from the state the
    history leaves, most of the time), with repeats of recorded rows."""
    with transaction.atomic():
        events_both_ways(tmp_path_factory.mktemp("events"), *case)
        transaction.set_rollback(True)


@pytest.mark.parametrize(("history", "action"), [
    ([("2026-03-01T00:00:00Z", "2026-03-10T00:00:00Z"), ("2026-03-05T00:00:00Z", "2026-03-20T00:00:00Z")],
     "suspend"),  # overlapping
    ([("2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z"), ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z")],
     "suspend"),  # zero length, then another from the same instant: the replay meets two suspends first
    ([("2026-03-01T00:00:00Z", None), ("2026-03-05T00:00:00Z", "2026-03-20T00:00:00Z")], "unsuspend"),  # open first
])
def test_a_history_the_engine_would_replay_otherwise_goes_to_the_engine(acme, tmp_path, history, action):
    """Suspensions recorded by other means than an import (as the admin or a script might write them): the COPY
    path takes a file only over a history that replays as recorded."""
    for suspended, unsuspended in history:
        Suspension(customer=acme.customers.get(slug="north"), suspended_at=at(suspended),
                   unsuspended_at=unsuspended and at(unsuspended), source="by hand").save()
    path = tmp_path / "events.csv"
    path.write_text(csv_text(EVENTS, f"acme,north,{action},2026-04-01T00:00:00Z"))
    _, staged = both("tenant-events", path)
    assert not staged

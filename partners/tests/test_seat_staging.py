"""The seat-events import's set-based path on PostgreSQL (partners.seat_staging) against the engine
(partners.seat_import), the reference: random histories and files, valid and invalid, merged into existing
history, give the same seats, members, audit rows and counts, or the same errors (issue 21, billing-rules 9.4).
The set-based path never names an error itself: a file it cannot prove clean goes to the engine."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.core import copy_staging
from billing.core.actor import Actor
from billing.core.importing import run_import, run_import_file
from conftest import examples
from partners.models import AuditLog, Customer, Member, Partner, SeatAssignment, SeatFileImported, SeatPurchase
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db
on_postgres = pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="needs PostgreSQL: the set-based path is PostgreSQL's; SQLite reads row by row")

HEADER = "partner,customer,member,action,at"
ACTOR = Actor(label="seat test")


@pytest.fixture
def acme():
    partner = PartnerFactory(slug="acme")
    CustomerFactory(partner=partner, slug="north", seat_cap=3)
    CustomerFactory(partner=partner, slug="south", seat_cap=None)
    other = PartnerFactory(slug="other")
    CustomerFactory(partner=other, slug="west", seat_cap=None)
    service = ServiceFactory(partner=partner, code="seats", committed_quantity=4, overage_enabled=False,
                             start_date=date(2026, 1, 1))
    SeatPurchase.objects.create(service=service, seats=1, purchased_at=datetime(2026, 10, 20, tzinfo=UTC))
    return partner


def _engine(path, **options):
    with open(path, encoding="utf-8-sig", newline="") as stream:
        return run_import("seat-events", stream, **options)


def _tables():
    seats = sorted(SeatAssignment.objects.values_list(
        "partner_id", "customer_id", "member__name", "assigned_at", "removed_at", "start_date", "end_date", "source"),
        key=repr)
    members = sorted(Member.objects.values_list("customer_id", "name"))
    audit = sorted(AuditLog.objects.values_list("partner_id", "action", "object_type", "object_id", "object_repr",
                                                "before", "after", "actor_label"), key=repr)
    return seats, members, audit


def both_ways(path, **options):
    """(engine summary, set-based summary, the tables each left): the engine's import rolled back first."""
    options = {"source": "seats.csv", "actor": ACTOR, **options}
    with transaction.atomic():
        by_engine = _engine(path, **options)
        engine_tables = _tables()
        transaction.set_rollback(True)
    with transaction.atomic():
        staged = run_import_file("seat-events", path, **options)
        staged_tables = _tables()
        transaction.set_rollback(True)
    return by_engine, staged, engine_tables, staged_tables


def _same(by_engine, staged):
    assert (staged.ok, staged.rows, staged.created, staged.unchanged, [str(e) for e in staged.errors]) == (
        by_engine.ok, by_engine.rows, by_engine.created, by_engine.unchanged, [str(e) for e in by_engine.errors])


def csv_text(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


@on_postgres
def test_a_nightly_file_after_the_history_takes_the_set_based_path_to_the_same_seats(acme, tmp_path):
    history = tmp_path / "history.csv"
    history.write_text(csv_text("acme,north,ana,assign,2026-10-01T09:00:00Z",
                                "acme,north,ben,assign,2026-10-01T09:05:00Z",
                                "acme,south,cy,assign,2026-10-02T10:00:00Z",
                                "acme,north,ben,unassign,2026-10-05T17:00:00Z"))
    assert _engine(history, source="history.csv", actor=ACTOR).ok
    night = tmp_path / "night.csv"
    night.write_text(csv_text("acme,north,ana,unassign,2026-11-02T08:00:00Z",
                              "acme,north,ben,assign,2026-11-02T08:00:00Z",
                              "acme,south,dee,Assign,2026-11-02T09:00:00+01:00",
                              "acme,north,ana,assign,2026-11-03T08:00:00Z",
                              "acme,north,ben,assign,2026-10-01T09:05:00Z"))  # a duplicate of the history's
    by_engine, staged, engine_tables, staged_tables = both_ways(night)
    assert staged.staged and not by_engine.staged
    _same(by_engine, staged)
    assert staged_tables == engine_tables
    assert (staged.created, staged.unchanged) == (4, 1)


@on_postgres
def test_a_file_reaching_into_the_history_is_left_to_the_engine(acme, tmp_path):
    history = tmp_path / "history.csv"
    history.write_text(csv_text("acme,north,ana,assign,2026-10-01T09:00:00Z",
                                "acme,north,ana,unassign,2026-10-09T09:00:00Z"))
    assert _engine(history, source="history.csv", actor=ACTOR).ok
    late = tmp_path / "late.csv"
    late.write_text(csv_text("acme,north,ben,assign,2026-10-05T09:00:00Z"))
    _, staged, engine_tables, staged_tables = both_ways(late)
    assert not staged.staged
    assert staged_tables == engine_tables and staged.created == 1


@on_postgres
def test_a_broken_rule_is_named_by_the_engine(acme, tmp_path):
    """The cap of north is 3, the commitment 4 with overage off (5 from November: a purchase of 20 October)."""
    path = tmp_path / "cap.csv"
    path.write_text(csv_text(*(f"acme,north,m{n},assign,2026-10-10T09:0{n}:00Z" for n in range(4))))
    by_engine, staged, *_ = both_ways(path)
    assert not staged.ok and not staged.staged
    assert [str(e) for e in staged.errors] == [str(e) for e in by_engine.errors]
    assert "seat cap of 3 reached" in str(staged.errors[0])


@on_postgres
def test_the_same_file_again_is_every_row_unchanged_until_a_seat_of_its_partners_is_written(
        acme, tmp_path, django_assert_max_num_queries):
    """A file the set-based path imported is known by its SHA-256: the same bytes again are every row unchanged,
    without reading them, until any seat of its partners is written (the seats' trigger forgets it); then the file
    is read in full, and a seat deleted since is recorded again, as the engine would."""
    night = tmp_path / "night.csv"
    night.write_text(csv_text("acme,north,ana,assign,2026-11-02T08:00:00Z", "acme,south,cy,assign,2026-11-02T09:00:00Z",
                              "acme,north,ana,unassign,2026-11-03T08:00:00Z"))
    first = run_import_file("seat-events", night, source="night.csv", actor=ACTOR)
    assert first.staged and (first.created, first.unchanged) == (3, 0)
    assert SeatFileImported.objects.filter(partner_id=acme.pk).count() == 1
    with django_assert_max_num_queries(3):  # its fingerprint, not a COPY and a dozen statements
        again = run_import_file("seat-events", night, source="night.csv", actor=ACTOR)
    assert (again.ok, again.rows, again.created, again.unchanged) == (True, 3, 0, 3)
    copied = night.with_name("copy.csv")  # the same bytes under another name are the same file
    copied.write_bytes(night.read_bytes())
    assert run_import_file("seat-events", copied, actor=ACTOR).unchanged == 3
    # under --partner, a file of another partner is not waved through
    refused = run_import_file("seat-events", night, partner="other", actor=ACTOR)
    assert not refused.ok and "partner" in str(refused.errors[0])
    SeatAssignment.objects.filter(member__name="cy").delete()  # a clerk removes a seat in the admin
    assert not SeatFileImported.objects.exists()
    read_again = run_import_file("seat-events", night, source="night.csv", actor=ACTOR)
    assert (read_again.created, read_again.unchanged) == (1, 2)
    assert SeatAssignment.objects.filter(member__name="cy").exists()


@on_postgres
@pytest.mark.parametrize("rename", ["partner", "customer", "member"])
def test_a_renamed_key_makes_the_same_file_read_again(acme, tmp_path, rename):
    """The file names its rows by slugs and the member's name: once one changes, the same bytes would find other
    rows, so the file is read in full again (here: an unknown partner or customer; a member new again)."""
    night = tmp_path / "night.csv"
    night.write_text(csv_text("acme,north,ana,assign,2026-11-02T08:00:00Z",
                              "acme,north,ana,unassign,2026-11-03T08:00:00Z"))
    assert run_import_file("seat-events", night, actor=ACTOR).created == 2
    if rename == "partner":
        Partner.objects.filter(slug="acme").update(slug="acme-msp")
    elif rename == "customer":
        Customer.objects.filter(slug="north").update(slug="north-office")
    else:
        Member.objects.filter(name="ana").update(name="ana.lopez")
    assert not SeatFileImported.objects.exists()
    again = run_import_file("seat-events", night, actor=ACTOR)
    if rename == "member":
        assert (again.created, again.unchanged) == (2, 0)
    else:
        assert not again.ok and f"unknown {rename}" in str(again.errors[0])


@on_postgres
def test_a_dry_run_or_a_refused_file_is_not_remembered(acme, tmp_path):
    night = tmp_path / "night.csv"
    night.write_text(csv_text("acme,north,ana,assign,2026-11-02T08:00:00Z"))
    assert run_import_file("seat-events", night, dry_run=True, actor=ACTOR).created == 1
    assert not SeatFileImported.objects.exists()
    broken = tmp_path / "broken.csv"
    broken.write_text(csv_text("acme,north,ana,unassign,2026-11-02T08:00:00Z"))
    assert not run_import_file("seat-events", broken, actor=ACTOR).ok
    assert not SeatFileImported.objects.exists()
    assert run_import_file("seat-events", night, actor=ACTOR).created == 1


# --- random histories and files --------------------------------------------------------------------------------
INSTANTS = ["2026-10-01T09:00:00Z", "2026-10-03T12:00:00Z", "2026-10-03T12:00:00Z", "2026-10-20T00:00:00Z",
            "2026-10-31T23:59:59Z", "2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z", "2026-11-02T08:30:00+01:00",
            "2026-11-15T10:00:00Z", "2026-11-30T23:00:00Z"]
LATER = INSTANTS[5:]  # after every history instant below
event = st.tuples(st.sampled_from(["north", "north", "south", "west", "nobody"]),
                  st.sampled_from(["ana", "ben", "cy", "dee", "eve", "fay"]),
                  st.sampled_from(["assign", "assign", "unassign", "Assign", "remove"]),
                  st.sampled_from([*INSTANTS, "2026-11-02 08:00:00Z", "2099-01-01T00:00:00Z"]))
plain = st.tuples(st.sampled_from(["north", "south"]), st.sampled_from(["ana", "ben", "cy", "dee", "eve", "fay"]),
                  st.sampled_from(["assign", "unassign"]), st.sampled_from(LATER))
earlier = st.tuples(st.sampled_from(["north", "south"]), st.sampled_from(["ana", "ben", "cy", "dee"]),
                    st.sampled_from(["assign", "unassign"]), st.sampled_from(INSTANTS[:5]))


def _rows(events) -> list[str]:
    return [f"acme,{c},{m},{a},{at}" for c, m, a, at in events]


@on_postgres
@settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(history=st.lists(earlier, max_size=10), rows=st.one_of(st.lists(event, min_size=1, max_size=12),
                                                                st.lists(plain, min_size=1, max_size=12)))
def test_random_files_give_the_same_seats_or_the_same_errors_both_ways(acme, tmp_path_factory, history, rows):
    """Whatever the history already recorded and whatever the file: the same seats, members, audit rows and
    counts, or the same `row N: column: reason` errors."""
    directory = tmp_path_factory.mktemp("seats")
    with transaction.atomic():
        if history:
            # whatever of the history is valid, one event at a time: a history of any shape the engine accepts
            for n, row in enumerate(_rows(history)):
                path = directory / f"h{n}.csv"
                path.write_text(csv_text(row))
                with transaction.atomic():
                    if not _engine(path, source="history.csv", actor=ACTOR).ok:
                        transaction.set_rollback(True)
        path = directory / "file.csv"
        path.write_text(csv_text(*_rows(rows)))
        by_engine, staged, engine_tables, staged_tables = both_ways(path)
        _same(by_engine, staged)
        assert staged_tables == engine_tables
        if by_engine.ok and all(c in ("north", "south") and a in ("assign", "unassign") and at in LATER
                                for c, _m, a, at in rows):
            assert staged.staged  # a clean file after the history is never left to the engine
        transaction.set_rollback(True)


# --- files as PSAs, databases and spreadsheets write them -------------------------------------------------------
ROWS = ["acme,north,ana,assign,2026-11-02T08:00:00Z", "acme,north,ana,unassign,2026-11-03T08:00:00Z",
        "acme,south,ben,assign,2026-11-02T09:00:00Z"]


def _one(at: str) -> str:
    return csv_text(f"acme,north,ana,assign,{at}")


# the file, and whether the set-based path takes it (False: the engine reads it, with the same result)
SHAPES = {
    "byte-order mark": ("\ufeff" + csv_text(*ROWS), True),
    "CRLF line ends": (csv_text(*ROWS).replace("\n", "\r\n"), True),
    "blank lines at the end": (csv_text(*ROWS) + "\n\n", True),
    "CRLF blank lines at the end": (csv_text(*ROWS).replace("\n", "\r\n") + "\r\n\r\n", True),
    "a blank line between rows": (csv_text(ROWS[0], "", ROWS[1]), False),
    "no line end at the end": (csv_text(*ROWS).rstrip("\n"), True),
    "columns in another order, capitalised": (
        "At,Action,Member,Customer,Partner\n2026-11-02T08:00:00Z,ASSIGN,ana,north,acme\n", True),
    "quoted cells, a comma in a name": (csv_text('"acme","north","Smith, Ann","assign","2026-11-02T08:00:00Z"'), True),
    "spaces around the cells": (csv_text(" acme , north , ana , assign , 2026-11-02T08:00:00Z "), True),
    "a database's instant (space, +00)": (_one("2026-11-02 08:00:00+00"), True),
    "an instant without seconds": (_one("2026-11-02T08:00Z"), True),
    "an offset without a colon": (_one("2026-11-02T10:30:00+0230"), True),
    "an offset of hours": (_one("2026-11-02T10:00:00+02"), True),
    "lower-case t and z": (_one("2026-11-02t08:00:00z"), True),
    "microseconds and an offset": (_one("2026-11-02T08:00:00.123456-05:00"), True),
    "nanoseconds": (_one("2026-11-02T08:00:00.123456789Z"), False),
    "an instant without a zone": (_one("2026-11-02 08:00:00"), False),
    "a date alone": (_one("2026-11-02"), False),
    "hour 24": (_one("2026-11-02T24:00:00Z"), False),
    "hour 24 in a database's form": (_one("2026-11-02 24:00:00+00"), False),
    "a name in another script": (csv_text("acme,north,José Ñúñez 😀,assign,2026-11-02T08:00:00Z"), True),
    "an apostrophe before a name": (csv_text("acme,north,'=ana,assign,2026-11-02T08:00:00Z"), False),
}


@on_postgres
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_files_of_every_shape_read_the_same_both_ways(acme, tmp_path, shape):
    """The shapes the world sends: the same seats or the same errors both ways, and the usual ones (blank lines
    at the end, a database's or a PSA's instants) on the set-based path, not left to the engine's pace."""
    text, staged_path = SHAPES[shape]
    path = tmp_path / "night.csv"
    path.write_bytes(text.encode("utf-8"))
    by_engine, staged, engine_tables, staged_tables = both_ways(path)
    _same(by_engine, staged)
    assert staged_tables == engine_tables
    assert staged.staged == staged_path, (staged.ok, [str(e) for e in staged.errors])


@on_postgres
def test_the_set_based_path_reports_the_rows_read_and_each_step(acme, tmp_path, monkeypatch):
    """import_csv's bar and the admin's import page move while the file goes in by COPY (rows and bytes read, chunk
    by chunk), then name each step of the work in SQL; a file left to the engine says it is read row by row."""
    monkeypatch.setattr(copy_staging, "CHUNK", 64)
    path = tmp_path / "night.csv"
    path.write_text(csv_text(*(f"other,west,m{n},assign,2026-11-02T08:{n:02d}:00Z" for n in range(30))))
    counts, steps = [], []
    summary = run_import_file("seat-events", path, actor=ACTOR, on_progress=lambda *c: counts.append(c),
                              on_step=steps.append)
    assert summary.staged and summary.created == 30
    assert len(counts) > 10 and counts == sorted(counts) and counts[-1] == (30, path.stat().st_size)
    assert steps == ["checking and writing", "finding customers and members", "checking the seat rules",
                     "writing the seats"]
    steps.clear()
    path.write_text(csv_text("other,west,nobody,unassign,2026-11-03T08:00:00Z"))
    assert not run_import_file("seat-events", path, actor=ACTOR, on_step=steps.append).ok
    assert steps[-1] == "reading row by row"

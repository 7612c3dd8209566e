"""Adversarial cases for the seat-events import's set-based path (partners.seat_staging) against the engine
(partners.seat_import), the reference: each file is imported both ways over the same history and must give the
same seats, members, audit rows, alerts and counts, or the same `row N: column: reason` errors (billing-rules 9.3,
9.4, 3.2). Cases the property test of partners/tests/test_seat_staging.py does not reach: instants at the history's
last instant, offsets across a UTC midnight and month boundary, several partners, --partner, --dry-run, the
fingerprint after an edit, member names that differ only by case or normalisation, many seats at one instant, and
the text the set-based path reads otherwise than the engine."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime

import pytest
from django.db import IntegrityError, connection, transaction

import billing.core.copy_staging as copy_staging
from billing.core.importing import run_import_file
from partners.models import Customer, Member, SeatAssignment, SeatFileImported, SeatPurchase, UtilizationAlert
from partners.tests import test_seat_staging as base
from partners.tests.factories import ServiceFactory
from partners.tests.test_seat_staging import ACTOR, HEADER, _engine, _same, _tables, csv_text

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: the set-based path is PostgreSQL's; SQLite reads row by row")]
acme = base.acme  # the fixture: acme (north, cap 3; south) with 4 committed seats, 5 from November; other (west)


def _alerts():
    return sorted(UtilizationAlert.objects.values_list("service_id", "kind", "active_seats", "committed_seats",
                                                       "cleared_at"), key=repr)


def _compare(path, **options):
    """Both ways over the same state (each rolled back): (engine summary, set-based summary), after checking that the
    counts, errors, seats, members, audit rows and alerts agree."""
    options = {"source": "seats.csv", "actor": ACTOR, **options}
    with transaction.atomic():
        by_engine = _engine(path, **options)
        engine_state = (_tables(), _alerts())
        transaction.set_rollback(True)
    with transaction.atomic():
        staged = run_import_file("seat-events", path, **options)
        staged_state = (_tables(), _alerts())
        transaction.set_rollback(True)
    _same(by_engine, staged)
    assert staged_state == engine_state
    return by_engine, staged


def _history(tmp_path, *rows: str, name="history.csv"):
    path = tmp_path / name
    path.write_text(csv_text(*rows))
    summary = _engine(path, source=name, actor=ACTOR)
    assert summary.ok, [str(e) for e in summary.errors]


def _file(tmp_path, *rows: str, name="night.csv"):
    path = tmp_path / name
    path.write_text(csv_text(*rows))
    return path


def _fill_north(tmp_path):
    """north (cap 3) full since October: ana, ben, cy."""
    _history(tmp_path, "acme,north,ana,assign,2026-10-01T09:00:00Z", "acme,north,ben,assign,2026-10-01T09:00:00Z",
             "acme,north,cy,assign,2026-10-02T09:00:00Z")


# --- the seat rules at one instant -------------------------------------------------------------------------------
@pytest.mark.parametrize(("rows", "ok"), [
    (["acme,north,ana,unassign,2026-11-02T08:00:00Z", "acme,north,dee,assign,2026-11-02T08:00:00Z"], True),
    (["acme,north,dee,assign,2026-11-02T08:00:00Z", "acme,north,ana,unassign,2026-11-02T08:00:00Z"], False),
    # the same instant written with two offsets: file order decides, not the text
    (["acme,north,ana,unassign,2026-11-02T09:00:00+01:00", "acme,north,dee,assign,2026-11-02T08:00:00Z"], True),
    (["acme,north,dee,assign,2026-11-02T03:00:00-05:00", "acme,north,ana,unassign,2026-11-02T08:00:00Z"], False),
    # a seat opened and closed at one instant still counts against the cap at that instant
    (["acme,north,dee,assign,2026-11-02T08:00:00Z", "acme,north,dee,unassign,2026-11-02T08:00:00Z"], False),
    (["acme,north,ana,unassign,2026-11-02T08:00:00Z", "acme,north,dee,assign,2026-11-02T08:00:00Z",
      "acme,north,dee,unassign,2026-11-02T08:00:00Z", "acme,north,eve,assign,2026-11-02T08:00:00Z"], True),
])
def test_an_unassign_and_an_assign_at_one_instant_cross_the_cap_in_file_order(acme, tmp_path, rows, ok):
    """north is full (cap 3): at one instant a seat freed first makes room for the next row, a seat freed after it
    does not, whatever offset each instant is written with."""
    _fill_north(tmp_path)
    by_engine, staged = _compare(_file(tmp_path, *rows))
    assert by_engine.ok is ok
    assert staged.staged is ok  # a clean file is not left to the engine; a broken one is


def test_a_member_whose_seat_the_history_opened_is_unassigned_and_assigned_again_at_one_instant(acme, tmp_path):
    """ana's seat of 1 October is ended and a new one begun at the same instant: her old seat rebuilt with its end
    (and named in the audit as replaced), the new one open, on the set-based path."""
    _fill_north(tmp_path)
    _, staged = _compare(_file(tmp_path, "acme,north,ana,unassign,2026-11-02T08:00:00Z",
                               "acme,north,ana,assign,2026-11-02T08:00:00Z"))
    assert staged.staged and staged.created == 2
    _, staged = _compare(_file(tmp_path, "acme,north,ana,assign,2026-11-02T08:00:00Z",
                               "acme,north,ana,unassign,2026-11-02T08:00:00Z", name="reversed.csv"))
    assert not staged.ok and "already holds an active seat" in str(staged.errors[0])


# --- the history's last instant (T0 == H) -----------------------------------------------------------------------
@pytest.mark.parametrize(("rows", "ok", "staged"), [
    # before the history's last instant, at a removal already imported (which comes first at its instant): dee fits
    # then, but cy's seat already imported at H no longer does
    (["acme,north,dee,assign,2026-10-05T17:00:00Z"], False, False),
    # at H, an assign already imported: it comes after the file's rows at that instant
    (["acme,north,eve,assign,2026-10-06T08:00:00Z"], False, False),
    (["acme,north,ana,unassign,2026-10-06T08:00:00Z", "acme,north,eve,assign,2026-10-06T08:00:00Z"], True, False),
    # duplicates of the history (its last event among them) and new events after H: the set-based path
    (["acme,north,cy,assign,2026-10-06T08:00:00Z", "acme,north,cy,unassign,2026-10-07T08:00:00Z"], True, True),
    (["acme,north,cy,assign,2026-10-06T08:00:00Z", "acme,north,ben,unassign,2026-10-05T17:00:00Z",
      "acme,north,ana,unassign,2026-10-06T08:00:01Z", "acme,north,dee,assign,2026-10-06T08:00:01Z"], True, True),
])
def test_events_at_the_history_s_last_instant_agree_both_ways(acme, tmp_path, rows, ok, staged):
    """north (cap 3): ana and ben from 1 October, zed from 2 October, ben removed 5 October 17:00, cy from 6 October
    08:00 (the history's last instant H, in a second file). An event at or before H is merged as the engine merges
    it; duplicates of the history with new events after H take the set-based path."""
    _history(tmp_path, "acme,north,ana,assign,2026-10-01T09:00:00Z", "acme,north,ben,assign,2026-10-01T09:00:00Z",
             "acme,north,zed,assign,2026-10-02T09:00:00Z", "acme,north,ben,unassign,2026-10-05T17:00:00Z")
    _history(tmp_path, "acme,north,cy,assign,2026-10-06T08:00:00Z", name="h2.csv")
    by_engine, by_stage = _compare(_file(tmp_path, *rows))
    assert (by_engine.ok, by_stage.staged) == (ok, staged), [str(e) for e in by_engine.errors]


# --- commitments by the UTC day ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("at", "ok"), [
    ("2026-10-31T23:30:00-01:00", True),  # 1 November 00:30 UTC: the purchase of 20 October is in force (5 seats)
    ("2026-11-01T00:30:00+01:00", False),  # 31 October 23:30 UTC: 4 seats, all held
    ("2026-11-01T00:00:00Z", True),
    ("2026-10-31T23:59:59.999999Z", False),
    ("2026-11-01 01:00:00+0100", True),
    ("2026-11-01T00:59+01", False),
])
def test_a_commitment_is_judged_on_the_utc_day_of_an_instant_written_with_an_offset(acme, tmp_path, at, ok):
    """acme's commitment is 4 seats without overage, 5 from 1 November (a purchase of 20 October): four seats held,
    a fifth is allowed from 1 November 00:00 UTC only, whatever the offset of the file's instant."""
    _history(tmp_path, *(f"acme,south,m{n},assign,2026-10-10T09:00:0{n}Z" for n in range(4)))
    by_engine, staged = _compare(_file(tmp_path, f"acme,south,m9,assign,{at}"))
    assert by_engine.ok is ok and staged.staged is ok


def test_a_customer_commitment_and_a_purchase_at_a_month_boundary_agree_both_ways(acme, tmp_path):
    """A customer-level commitment of 1 seat (overage off) on south, plus a seat bought at 00:00 on 1 November
    (effective 1 December, not 1 November): the second seat is refused through November, allowed in December."""
    south = Customer.objects.get(slug="south")
    service = ServiceFactory(partner=acme, customer=south, code="south-seats", committed_quantity=1,
                             overage_enabled=False, start_date=date(2026, 1, 1))
    SeatPurchase.objects.create(service=service, seats=1, purchased_at=datetime(2026, 11, 1, tzinfo=UTC))
    _history(tmp_path, "acme,south,ana,assign,2026-10-10T09:00:00Z")
    for n, (at, ok) in enumerate([("2026-11-30T23:59:59Z", False), ("2026-12-01T00:00:00Z", True),
                                  ("2026-11-30T19:30:00-05:00", True), ("2026-12-01T04:59:59+05:00", False)]):
        by_engine, staged = _compare(_file(tmp_path, f"acme,south,ben,assign,{at}", name=f"f{n}.csv"))
        assert (by_engine.ok, staged.staged) == (ok, ok), at


# --- several partners, --partner, --dry-run -----------------------------------------------------------------------
def test_a_file_of_two_partners_one_reaching_into_its_history_agrees_both_ways(acme, tmp_path):
    """acme's events come after its history, other's reach into its own: the whole file is the engine's, with the
    same seats as if each partner's part were read alone."""
    _history(tmp_path, "acme,north,ana,assign,2026-10-01T09:00:00Z", "other,west,wes,assign,2026-10-01T09:00:00Z",
             "other,west,wes,unassign,2026-10-20T09:00:00Z")
    _, staged = _compare(_file(tmp_path, "acme,north,ana,unassign,2026-11-02T08:00:00Z",
                               "other,west,wil,assign,2026-10-10T09:00:00Z",
                               "acme,north,ben,assign,2026-11-02T08:00:00Z"))
    assert staged.ok and not staged.staged
    # both after their histories: the set-based path
    _, staged = _compare(_file(tmp_path, "acme,north,ana,unassign,2026-11-02T08:00:00Z",
                               "other,west,wil,assign,2026-10-20T09:00:00Z",  # H of other: its removal
                               "other,west,wes,assign,2026-10-20T09:00:01Z", name="after.csv"))
    assert staged.ok and not staged.staged  # other's first event is at its H: the engine's
    _, staged = _compare(_file(tmp_path, "acme,north,ana,unassign,2026-11-02T08:00:00Z",
                               "other,west,wil,assign,2026-10-20T09:00:01Z", name="later.csv"))
    assert staged.ok and staged.staged


@pytest.mark.parametrize("partner", ["acme", "other", "nobody"])
def test_the_partner_option_agrees_both_ways(acme, tmp_path, partner):
    """import_csv --partner: a file of that partner alone is imported, a row of another one is a row error."""
    _history(tmp_path, "acme,north,ana,assign,2026-10-01T09:00:00Z")
    _compare(_file(tmp_path, "acme,north,ana,unassign,2026-11-02T08:00:00Z",
                   "acme,south,ben,assign,2026-11-02T08:00:00Z"), partner=partner)
    _compare(_file(tmp_path, "acme,north,ana,unassign,2026-11-02T08:00:00Z",
                   "other,west,wes,assign,2026-11-02T08:00:00Z", name="mixed.csv"), partner=partner)


def test_a_dry_run_agrees_both_ways_and_writes_nothing(acme, tmp_path):
    _fill_north(tmp_path)
    before = _tables()
    _, staged = _compare(_file(tmp_path, "acme,north,ana,unassign,2026-11-02T08:00:00Z",
                               "acme,south,dee,assign,2026-11-02T08:00:00Z"), dry_run=True)
    assert staged.staged and staged.dry_run and staged.created == 2
    assert _tables() == before and not SeatFileImported.objects.exists()


# --- the fingerprint of a file imported before --------------------------------------------------------------------
@pytest.mark.parametrize("edit", ["delete", "update", "save", "new seat"])
def test_the_same_file_after_a_seat_was_edited_outside_the_import_agrees_with_the_engine(acme, tmp_path, edit):
    """A file the set-based path wrote, then a seat of its partner edited behind the import's back (a shell's
    queryset update or delete, the admin's save, a live assign): the same bytes again are read in full, with the
    engine's result, not waved through as every row unchanged."""
    night = _file(tmp_path, "acme,north,ana,assign,2026-11-02T08:00:00Z", "acme,south,cy,assign,2026-11-02T09:00:00Z",
                  "acme,north,ana,unassign,2026-11-03T08:00:00Z")
    assert run_import_file("seat-events", night, source="night.csv", actor=ACTOR).staged
    seats = SeatAssignment.objects.filter(member__name="cy")
    if edit == "delete":
        seats.delete()
    elif edit == "update":
        seats.update(assigned_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    elif edit == "save":
        seat = seats.get()
        seat.removed_at = datetime(2026, 11, 4, tzinfo=UTC)
        seat.save()
    else:
        _history(tmp_path, "acme,south,dee,assign,2026-11-05T09:00:00Z", name="live.csv")
    assert not SeatFileImported.objects.exists()
    by_engine, staged = _compare(night, source="night.csv")
    assert (staged.created, staged.unchanged) == (by_engine.created, by_engine.unchanged)


# --- member names -------------------------------------------------------------------------------------------------
def test_member_names_that_differ_by_case_or_unicode_normalisation_are_different_members_both_ways(acme, tmp_path):
    """The member is keyed by its name as written: Ana and ana, and José in NFC and NFD, are four members; a name
    with spaces around it (quoted) is the name without them."""
    nfc, nfd = unicodedata.normalize("NFC", "José"), unicodedata.normalize("NFD", "José")
    assert nfc != nfd
    _history(tmp_path, "acme,south,ana,assign,2026-10-01T09:00:00Z", f"acme,south,{nfc},assign,2026-10-01T09:00:00Z")
    path = tmp_path / "names.csv"
    rows = ["acme,south,Ana,assign,2026-11-02T08:00:00Z", f"acme,south,{nfd},assign,2026-11-02T08:00:00Z",
            'acme,south," ana ",unassign,2026-11-03T08:00:00Z', f"acme,south,{nfc},unassign,2026-11-03T08:00:00Z"]
    path.write_text(csv_text(*rows, "acme,south,ANA,unassign,2026-11-04T08:00:00Z"))  # ANA has no seat: a row error
    by_engine, _ = _compare(path)
    assert not by_engine.ok and [e.row for e in by_engine.errors] == [6]
    path.write_text(csv_text(*rows))
    by_engine, staged = _compare(path)
    assert by_engine.ok and staged.staged
    names = set(Member.objects.filter(customer__slug="south").values_list("name", flat=True))
    assert names == {"ana", nfc}  # the imports above were rolled back


# --- many seats at one instant -------------------------------------------------------------------------------------
def test_hundreds_of_seats_at_one_instant_agree_both_ways(acme, tmp_path):
    """other has no cap and no commitment: 600 seats assigned at one instant, 300 of them removed at another, and
    300 of the history's ended at the first, on the set-based path, as the engine writes them."""
    _history(tmp_path, *(f"other,west,h{n:03},assign,2026-10-01T09:00:00Z" for n in range(300)))
    rows = [f"other,west,h{n:03},unassign,2026-11-02T08:00:00Z" for n in range(300)]
    rows += [f"other,west,m{n:03},assign,2026-11-02T08:00:00Z" for n in range(600)]
    rows += [f"other,west,m{n:03},unassign,2026-11-03T08:00:00Z" for n in range(0, 600, 2)]
    _, staged = _compare(_file(tmp_path, *rows))
    assert staged.staged and staged.created == 1200


def test_a_cap_reached_at_one_instant_by_many_members_agrees_both_ways(acme, tmp_path):
    """west capped at 250: 250 seats at one instant fit, the 251st is the engine's row error (its row named)."""
    Customer.objects.filter(slug="west").update(seat_cap=250)
    rows = [f"other,west,m{n:03},assign,2026-11-02T08:00:00Z" for n in range(250)]
    _, staged = _compare(_file(tmp_path, *rows))
    assert staged.staged
    by_engine, staged = _compare(_file(tmp_path, *rows, "other,west,late,assign,2026-11-02T08:00:00Z",
                                       name="over.csv"))
    assert [e.row for e in by_engine.errors] == [252] and not staged.staged


# --- text the set-based path must read as the engine reads it --------------------------------------------------------
@pytest.mark.parametrize("action", ["ASSİGN", "assİgn"])
def test_an_action_with_a_dotted_capital_i_is_refused_both_ways(acme, tmp_path, action):
    """ChoiceWidget lower-cases with str.lower(): 'ASSİGN'.lower() is 'assi̇gn', not an action."""
    assert action.lower() not in ("assign", "unassign")
    by_engine, _ = _compare(_file(tmp_path, f"acme,north,ana,{action},2026-11-02T08:00:00Z"))
    assert not by_engine.ok and "unknown action" in str(by_engine.errors[0])


def test_a_space_before_a_comma_across_two_chunks_is_trimmed_as_the_engine_trims_it(acme, tmp_path, monkeypatch):
    """The file is read in CHUNK bytes (1 MiB): here cut right after the space that ends 'ana ' (the file's only
    space), as a nightly file of a few megabytes may be."""
    head = f"{HEADER}\nacme,north,ana "
    path = tmp_path / "night.csv"
    path.write_bytes(f"{head},assign,2026-11-02T08:00:00Z\n".encode())
    monkeypatch.setattr(copy_staging, "CHUNK", len(head.encode()))
    _compare(path)


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 7, 11, 13, 17, 23, 31, 37, 41, 47, 53, 59])
def test_spaces_around_cells_cut_anywhere_are_trimmed_as_the_engine_trims_them(acme, tmp_path, monkeypatch, cut):
    """The same file of spaces around cells (and names with spaces inside), read in chunks of every size: the
    engine's members, or the engine reads it."""
    path = tmp_path / "night.csv"
    path.write_bytes(csv_text("acme,north, ana lopez ,assign,2026-11-02T08:00:00Z",
                              "acme,south,ben , Assign ,2026-11-02T08:00:00Z").encode())
    monkeypatch.setattr(copy_staging, "CHUNK", cut)
    _compare(path)


def test_a_seat_ended_by_a_queryset_update_keeps_its_date_and_still_counts_until_its_removal(acme, tmp_path):
    """A shell's `SeatAssignment.objects.filter(...).update(removed_at=...)` alone is refused by the database (the
    dates are the instants' UTC dates: partners 0027); with its date it ends ana's seat on 10 November. north's cap
    is 1: on 5 November ana still holds the seat, so ben's is refused both ways."""
    Customer.objects.filter(slug="north").update(seat_cap=1)
    _history(tmp_path, "acme,north,ana,assign,2026-10-01T09:00:00Z")
    seats = SeatAssignment.objects.filter(member__name="ana")
    with pytest.raises(IntegrityError, match="seat_dates_are_the_instants_utc_dates"), transaction.atomic():
        seats.update(removed_at=datetime(2026, 11, 10, tzinfo=UTC))
    seats.update(removed_at=datetime(2026, 11, 10, tzinfo=UTC), end_date=date(2026, 11, 10))
    by_engine, _ = _compare(_file(tmp_path, "acme,north,ben,assign,2026-11-05T00:00:00Z"))
    assert not by_engine.ok and "seat cap of 1 reached" in str(by_engine.errors[0])


def test_a_header_cell_with_a_line_break_in_quotes_reads_the_same_both_ways(acme, tmp_path):
    """COPY's HEADER skips the header record, quoted line break and all, as the csv module reads it."""
    path = tmp_path / "night.csv"
    path.write_bytes(b'"partner\n",customer,member,action,at\nacme,north,ana,assign,2026-11-02T08:00:00Z\n')
    _, staged = _compare(path)
    assert staged.staged and staged.created == 1


def test_a_member_id_a_spreadsheet_rewrote_in_scientific_notation_is_refused_both_ways(acme, tmp_path):
    """A PSA's numeric member id opened and saved in Excel becomes 6.94826E+14: another name, never the member's.
    Both ways refuse the row by its member cell, with the reason (billing-rules 9.3, import-formats 7), and write
    nothing."""
    path = _file(tmp_path, "acme,south,694826000000123,assign,2026-11-02T08:00:00Z",
                 "acme,south,6.94826E+14,assign,2026-11-02T08:00:00Z")
    by_engine, _ = _compare(path)
    assert not by_engine.ok and [(e.row, e.column) for e in by_engine.errors] == [(3, "member")]
    assert "scientific notation" in by_engine.errors[0].reason

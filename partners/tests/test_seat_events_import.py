"""`import_csv seat-events` (billing-rules 3.1, 3.2, 8.1, 9.4): events merged into the seat history and replayed in
order of their instant, every rule judged as of each event's instant, all or nothing.

Rejected files are checked as in test_imports: exit 1, exactly the expected `row N: column: reason`
lines, and a database identical to the one before (the bad row comes last, after a full batch).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.core import mail

from partners.models import AuditLog, Customer, Member, Method, SeatAssignment, SeatEventStage
from partners.tests.factories import (
    CustomerFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    SeatPurchaseFactory,
    ServiceFactory,
)
from partners.tests.test_imports import assert_file_fault, assert_imported, assert_rejected, csv_text, db_state

pytestmark = pytest.mark.django_db

HEADER = "partner,customer,member,action,at"
# ann and bob hold seats at north, cat at south; ann leaves on the 10th
GOOD = [
    "acme,north,ann,assign,2026-04-01T09:00:00Z",
    "acme,north,bob,assign,2026-04-02T09:00:00Z",
    "acme,south,cat,assign,2026-04-03T09:00:00Z",
    "acme,north,ann,unassign,2026-04-10T17:00:00Z",
]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def seats() -> list[tuple[str, str, datetime, datetime | None]]:
    """The seat history as (customer, member, assigned_at, removed_at), in time order."""
    return list(
        SeatAssignment.objects.order_by("assigned_at", "member__name")
        .values_list("customer__slug", "member__name", "assigned_at", "removed_at")
    )


@pytest.fixture
def acme(db):
    partner = PartnerFactory(slug="acme", name="Acme MSP")
    CustomerFactory(partner=partner, slug="north", name="North")
    CustomerFactory(partner=partner, slug="south", name="South")
    other = PartnerFactory(slug="globex", name="Globex")
    CustomerFactory(partner=other, slug="east", name="East")
    return partner


@pytest.fixture
def events(csv_file):
    """Write a seat-events file from rows (after the header)."""
    counter = iter(range(1000))
    return lambda *rows: csv_file(f"seat-events-{next(counter)}.csv", csv_text(HEADER, *rows))


def seat_service(partner, *, committed: int, overage: bool = False, customer=None, code="seats",
                 start=date(2026, 1, 1)):
    return ServiceFactory(partner=partner, customer=customer, code=code, method=Method.SEAT_DAYS,
                          committed_quantity=committed, overage_enabled=overage, start_date=start)


# --- one error class per case: four good rows (a batch and a bit), then the bad row 6 ------------------
ROW_ERRORS = [
    pytest.param("ghost,north,dan,assign,2026-04-12T09:00:00Z", "partner", "unknown partner 'ghost'",
                 id="unknown-partner"),
    pytest.param("acme,west,dan,assign,2026-04-12T09:00:00Z", "customer", "unknown customer 'west' of partner acme",
                 id="unknown-customer"),
    pytest.param("acme,east,dan,assign,2026-04-12T09:00:00Z", "customer", "unknown customer 'east' of partner acme",
                 id="customer-of-another-partner"),
    pytest.param("acme,north,dan,assign,2026-04-12T09:00:00", "at", "has no time zone", id="naive-instant"),
    pytest.param("acme,north,dan,assign,2026-04-12", "at", "has no time zone", id="date-not-instant"),
    pytest.param("acme,north,dan,assign,2026-04-31T09:00:00Z", "at", "expected an ISO 8601 instant",
                 id="bad-instant"),
    pytest.param("acme,north,dan,assign,2099-01-01T00:00:00Z", "at", "2099-01-01T00:00:00Z is in the future",
                 id="future-instant"),
    pytest.param("acme,north,dan,remove,2026-04-12T09:00:00Z", "action", "unknown action 'remove'",
                 id="unknown-action"),
    pytest.param("acme,north,,assign,2026-04-12T09:00:00Z", "member", "is required", id="member-required"),
    pytest.param("acme,north,dan,unassign,2026-04-12T09:00:00Z", "action",
                 "unassign without an active seat at 2026-04-12T09:00:00Z", id="unassign-never-assigned"),
    pytest.param("acme,north,ann,unassign,2026-04-11T09:00:00Z", "action",
                 "unassign without an active seat at 2026-04-11T09:00:00Z", id="unassign-twice"),
    pytest.param("acme,north,ann,unassign,2026-03-31T09:00:00Z", "action",
                 "unassign without an active seat at 2026-03-31T09:00:00Z", id="unassign-before-assign"),
    pytest.param("acme,south,ann,unassign,2026-04-05T09:00:00Z", "action",
                 "unassign without an active seat", id="unassign-at-the-other-customer"),
    pytest.param("acme,north,bob,assign,2026-04-05T09:00:00Z", "member",
                 "already holds an active seat in this customer (since 2026-04-02T09:00:00Z)", id="double-assign"),
]


@pytest.mark.parametrize(("bad_row", "column", "reason"), ROW_ERRORS)
def test_a_bad_last_row_is_reported_and_nothing_is_written(acme, cli, events, bad_row, column, reason):
    """billing-rules 8.1, 9.6: the bad row is reported as `row 6: column: reason`, exit 1, and none of the good rows
    (nor any member, audit row or staging row) is written."""
    assert_rejected(cli, "seat-events", events(*GOOD, bad_row), [(6, column, reason)])
    # without the bad row, the file imports: the error really is that row's
    assert_imported(cli, "seat-events", events(*GOOD))
    assert len(seats()) == 3


def test_every_bad_row_is_reported(acme, cli, events):
    """billing-rules 8.1: every bad row is reported, whichever batch it is in and whatever its kind of fault."""
    path = events(
        "acme,north,ann,assign,2026-04-01T09:00:00Z",
        "acme,north,ann,assign,2026-04-02T09:00:00Z",      # row 3: double assign
        "acme,west,bob,assign,2026-04-02T09:00:00Z",       # row 4: unknown customer
        "acme,north,bob,unassign,2026-04-03T09:00:00Z",    # row 5: no seat
        "acme,north,cat,assign,2026-04-03T09:00:00",       # row 6: naive instant
        "acme,north,ann,unassign,2026-04-04T09:00:00Z",
    )
    assert_rejected(cli, "seat-events", path, [
        (3, "member", "already holds an active seat"),
        (4, "customer", "unknown customer 'west'"),
        (5, "action", "unassign without an active seat"),
        (6, "at", "has no time zone"),
    ])


# --- seat caps (billing-rules 3.2) -----------------------------------------------------------------------------
def test_a_cap_breach_is_a_row_error(acme, cli, events):
    """billing-rules 3.2: an assignment past the customer's seat cap is denied, from imports too, as of its instant."""
    Customer.objects.filter(slug="north").update(seat_cap=2)
    assert_rejected(cli, "seat-events", events(*GOOD, "acme,north,dan,assign,2026-04-05T09:00:00Z"), [
        (6, "member", "seat cap of 2 reached (2 seats active); raise the cap first at 2026-04-05T09:00:00Z"),
    ])


def test_the_cap_is_judged_as_of_each_instant(acme, cli, events):
    """billing-rules 3.2, 9.4: after ann leaves on the 10th, north has room again: the same assignment later is
    valid."""
    Customer.objects.filter(slug="north").update(seat_cap=2)
    assert_imported(cli, "seat-events", events(*GOOD, "acme,north,dan,assign,2026-04-11T09:00:00Z"))
    assert [(m, a) for _, m, a, _ in seats()][-1] == ("dan", at("2026-04-11T09:00:00Z"))


def test_file_order_breaks_ties_of_one_instant(acme, cli, events):
    """billing-rules 9.4, decision (e): rows of one instant are applied in file order: leaving then joining fits a
    cap of 1, joining then leaving does not."""
    Customer.objects.filter(slug="north").update(seat_cap=1)
    start = "acme,north,ann,assign,2026-04-01T09:00:00Z"
    leave = "acme,north,ann,unassign,2026-04-10T09:00:00Z"
    join = "acme,north,bob,assign,2026-04-10T09:00:00Z"
    assert_rejected(cli, "seat-events", events(start, join, leave), [(3, "member", "seat cap of 1 reached")])
    assert_imported(cli, "seat-events", events(start, leave, join))
    assert seats() == [
        ("north", "ann", at("2026-04-01T09:00:00Z"), at("2026-04-10T09:00:00Z")),
        ("north", "bob", at("2026-04-10T09:00:00Z"), None),
    ]


# --- the commitment (billing-rules 3.2) ------------------------------------------------------------------------
def test_a_commitment_breach_without_overage_is_a_row_error(acme, cli, events):
    """billing-rules 3.2: with overage disabled, an assignment when the partner's active seats already equal the
    commitment of a partner-level service is denied."""
    seat_service(acme, committed=3)
    assert_rejected(cli, "seat-events", events(*GOOD, "acme,south,dan,assign,2026-04-05T09:00:00Z"), [
        (6, "member", "commitment of 3 seats on seats reached and overage is disabled"),
    ])


def test_a_commitment_breach_is_allowed_with_overage(acme, cli, events):
    """billing-rules 3.2: with overage enabled the same assignment is allowed (the excess is overage)."""
    seat_service(acme, committed=3, overage=True)
    assert_imported(cli, "seat-events", events(*GOOD, "acme,south,dan,assign,2026-04-05T09:00:00Z"))
    assert len(seats()) == 4


def test_a_customer_level_commitment_counts_that_customer_only(acme, cli, events):
    """billing-rules 3.1-3.2: a customer-level service's commitment is judged on that customer's seats."""
    seat_service(acme, committed=1, customer=Customer.objects.get(slug="south"))
    assert_rejected(cli, "seat-events", events(*GOOD, "acme,south,dan,assign,2026-04-05T09:00:00Z"), [
        (6, "member", "commitment of 1 seats on seats reached"),
    ])
    # a third seat at north is outside its scope
    assert_imported(cli, "seat-events", events(*GOOD, "acme,north,dan,assign,2026-04-05T09:00:00Z"))


def test_the_commitment_is_judged_as_of_each_instant(acme, cli, events):
    """billing-rules 3.1-3.2, 6.2: a purchase made in April raises the commitment from 1 May: a fourth seat on
    30 April is denied, one on 1 May at 00:00 is allowed; a seat freed earlier makes room."""
    service = seat_service(acme, committed=3)
    SeatPurchaseFactory(service=service, seats=1, purchased_at=at("2026-04-15T12:00:00Z"))
    assert_rejected(cli, "seat-events", events(*GOOD[:3], "acme,south,dan,assign,2026-04-30T23:59:59Z"), [
        (5, "member", "commitment of 3 seats on seats reached"),
    ])
    assert_imported(cli, "seat-events", events(*GOOD[:3], "acme,south,dan,assign,2026-05-01T00:00:00Z"))
    # ann leaves on the 10th in GOOD: another seat right after fits the commitment of 3
    SeatAssignment.objects.all().delete()
    assert_imported(cli, "seat-events", events(*GOOD, "acme,south,eve,assign,2026-04-10T17:00:00Z"))


def test_the_commitment_applies_only_while_the_service_runs(acme, cli, events):
    """billing-rules 3.1-3.2: a service starting in May does not limit April's seats."""
    seat_service(acme, committed=1, start=date(2026, 5, 1))
    assert_imported(cli, "seat-events", events(*GOOD[:3]))
    assert_rejected(cli, "seat-events", events("acme,south,dan,assign,2026-05-02T09:00:00Z"), [
        (2, "member", "commitment of 1 seats on seats reached"),
    ])


# --- order, history, duplicates ------------------------------------------------------------------------
def test_rows_out_of_order_are_applied_by_instant(acme, cli, events):
    """billing-rules 9.4: rows are applied in order of their instant, so a file listed backwards is valid; offsets
    are converted to UTC."""
    assert_imported(cli, "seat-events", events(
        "acme,north,ann,unassign,2026-04-10T19:00:00+02:00",
        "acme,south,cat,assign,2026-04-03T09:00:00Z",
        "acme,north,bob,assign,2026-04-02T09:00:00Z",
        "acme,north,ann,assign,2026-04-01T09:00:00Z",
    ))
    assert seats() == [
        ("north", "ann", at("2026-04-01T09:00:00Z"), at("2026-04-10T17:00:00Z")),
        ("north", "bob", at("2026-04-02T09:00:00Z"), None),
        ("south", "cat", at("2026-04-03T09:00:00Z"), None),
    ]
    ann = SeatAssignment.objects.get(member__name="ann")
    assert (ann.start_date, ann.end_date) == (date(2026, 4, 1), date(2026, 4, 10))


def test_the_same_name_at_two_customers_is_two_members(acme, cli, events):
    """billing-rules 9.2: a member is keyed by (partner, customer, member): ann at north and ann at south are two
    people."""
    assert_imported(cli, "seat-events", events(
        "acme,north,ann,assign,2026-04-01T09:00:00Z",
        "acme,south,ann,assign,2026-04-01T09:00:00Z",
    ))
    assert Member.objects.filter(name="ann").count() == 2
    assert [c for c, *_ in seats()] == ["north", "south"]


def test_an_unassign_between_history_events_is_merged(acme, cli, events):
    """billing-rules 9.4: a second file is merged into the history already imported: an unassign (and a new
    assign) between existing events splits the seat, and other members' seats are left as they were."""
    assert_imported(cli, "seat-events", events(
        "acme,north,ann,assign,2026-04-01T09:00:00Z",
        "acme,north,bob,assign,2026-04-05T09:00:00Z",
        "acme,north,bob,unassign,2026-04-25T09:00:00Z",
    ))
    bob_seat = SeatAssignment.objects.get(member__name="bob").pk
    out = assert_imported(cli, "seat-events", events(
        "acme,north,ann,assign,2026-04-20T09:00:00Z",
        "acme,north,ann,unassign,2026-04-15T09:00:00Z",
    ))
    assert "imported 2 rows: 2 created, 0 updated, 0 unchanged" in out
    assert seats() == [
        ("north", "ann", at("2026-04-01T09:00:00Z"), at("2026-04-15T09:00:00Z")),
        ("north", "bob", at("2026-04-05T09:00:00Z"), at("2026-04-25T09:00:00Z")),
        ("north", "ann", at("2026-04-20T09:00:00Z"), None),
    ]
    assert SeatAssignment.objects.get(member__name="bob").pk == bob_seat
    assert SeatEventStage.objects.count() == 0


def test_events_before_the_history_are_merged(acme, cli, events):
    """billing-rules 9.4: events older than everything imported so far are merged in as well."""
    SeatAssignmentFactory(member__customer=Customer.objects.get(slug="north"), member__name="ann",
                          assigned_at=at("2026-04-01T09:00:00Z"))
    assert_imported(cli, "seat-events", events(
        "acme,north,ann,assign,2026-03-01T09:00:00Z",
        "acme,north,ann,unassign,2026-03-20T09:00:00Z",
    ))
    assert seats() == [
        ("north", "ann", at("2026-03-01T09:00:00Z"), at("2026-03-20T09:00:00Z")),
        ("north", "ann", at("2026-04-01T09:00:00Z"), None),
    ]


@pytest.mark.parametrize(("rows", "expected"), [
    pytest.param(["acme,north,bob,unassign,2026-04-10T09:00:00Z"],
                 [(2, "at", "the seat removed at 2026-04-25T09:00:00Z would already be ended")],
                 id="early-unassign-then-history-unassign"),
    pytest.param(["acme,north,ann,assign,2026-04-10T09:00:00Z"],
                 [(2, "member", "already holds an active seat in this customer (since 2026-04-01T09:00:00Z)")],
                 id="assign-while-history-seat-open"),
    pytest.param(["acme,north,bob,assign,2026-04-01T09:00:00Z"],
                 [(2, "at", "the member is assigned again at 2026-04-05T09:00:00Z while this seat is still active")],
                 id="assign-before-history-assign"),
    pytest.param(["acme,north,bob,unassign,2026-04-30T09:00:00Z"],
                 [(2, "action", "unassign without an active seat at 2026-04-30T09:00:00Z")],
                 id="unassign-after-history-unassign"),
])
def test_a_file_that_breaks_the_history_is_refused(acme, cli, events, rows, expected):
    """billing-rules 9.4: the merged history must be valid at every instant, or the rows that break it are errors
    (and the history stays as it was)."""
    assert_imported(cli, "seat-events", events(
        "acme,north,ann,assign,2026-04-01T09:00:00Z",
        "acme,north,bob,assign,2026-04-05T09:00:00Z",
        "acme,north,bob,unassign,2026-04-25T09:00:00Z",
    ))
    assert_rejected(cli, "seat-events", events(*rows), expected)


def test_an_event_before_the_history_that_breaks_the_cap_later_is_refused(acme, cli, events):
    """billing-rules 3.2, 9.4: with a cap of 2, a new seat on the 3rd fits (only ann holds one), but makes bob's
    seat already imported on the 5th the third one: the merged history breaks the cap, so the row is
    an error."""
    Customer.objects.filter(slug="north").update(seat_cap=2)
    assert_imported(cli, "seat-events", events(
        "acme,north,ann,assign,2026-04-01T09:00:00Z",
        "acme,north,bob,assign,2026-04-05T09:00:00Z",
    ))
    assert_rejected(cli, "seat-events", events("acme,north,dan,assign,2026-04-03T09:00:00Z"), [
        (2, "member", "seat cap of 2 reached"),
    ])


def test_an_event_before_the_history_that_breaks_the_commitment_later_is_refused(acme, cli, events):
    """billing-rules 3.2, 9.4: likewise for a commitment without overage: the new seat fits on its own instant but
    makes a seat already imported exceed the commitment."""
    seat_service(acme, committed=2)
    assert_imported(cli, "seat-events", events(
        "acme,north,ann,assign,2026-04-01T09:00:00Z",
        "acme,south,bob,assign,2026-04-05T09:00:00Z",
    ))
    assert_rejected(cli, "seat-events", events("acme,north,dan,assign,2026-04-03T09:00:00Z"), [
        (2, "member", "commitment of 2 seats on seats reached"),
    ])


def test_an_exact_duplicate_row_in_the_file_is_a_no_op(acme, cli, events):
    """billing-rules 9.3: an exact duplicate row (here in a later batch) changes nothing; it is not a double assign."""
    out = assert_imported(cli, "seat-events", events(*GOOD, GOOD[0], GOOD[3]))
    assert "imported 6 rows: 4 created, 0 updated, 2 unchanged" in out
    assert len(seats()) == 3


def test_reimporting_a_file_changes_nothing(acme, cli, events):
    """billing-rules 8.1, 6.11: re-importing the same seat-events file is a no-op: same seats (same rows), no new
    audit entry, and it says so."""
    path = events(*GOOD)
    assert "imported 4 rows: 4 created" in assert_imported(cli, "seat-events", path)
    before = db_state()
    out = assert_imported(cli, "seat-events", path)
    assert "imported 4 rows: 0 created, 0 updated, 4 unchanged" in out
    assert db_state() == before


def test_a_file_partly_imported_already_adds_only_the_new_rows(acme, cli, events):
    """billing-rules 9.3, 6.11: rows already imported are no-ops, the others are merged."""
    assert_imported(cli, "seat-events", events(*GOOD[:2]))
    out = assert_imported(cli, "seat-events", events(*GOOD))
    assert "imported 4 rows: 2 created, 0 updated, 2 unchanged" in out
    assert len(seats()) == 3


def test_dry_run_writes_nothing_and_says_what_it_would_do(acme, cli, events):
    """billing-rules 8.1: --dry-run runs every check and writes nothing (no member, seat, audit or alert)."""
    seat_service(acme, committed=2, overage=True)
    before = db_state()
    out = assert_imported(cli, "seat-events", events(*GOOD), "--dry-run")
    assert "seat-events: would import 4 rows: 4 created, 0 updated, 0 unchanged (dry run: nothing written)" in out
    assert db_state() == before


def test_a_bom_and_any_column_order(acme, cli, tmp_path):
    """billing-rules 9.1: a UTF-8 BOM and any column order are accepted."""
    path = tmp_path / "seat-events.csv"
    path.write_bytes(csv_text("AT,Member,Action,Customer,Partner",
                              "2026-04-01T09:00:00Z,Zoë,assign,north,acme").encode("utf-8-sig"))
    assert_imported(cli, "seat-events", path)
    assert seats() == [("north", "Zoë", at("2026-04-01T09:00:00Z"), None)]


def test_the_import_is_audited_per_customer(acme, cli, events):
    """billing-rules 3.2: seat changes write an audit row in the same transaction."""
    assert_imported(cli, "seat-events", events(*GOOD))
    audits = {a.object_repr: a.after for a in AuditLog.objects.filter(action="seat.import")}
    assert {k: (v["assigned"], v["unassigned"]) for k, v in audits.items()} == {"north": (2, 1), "south": (1, 0)}


def test_importing_history_sends_only_the_alerts_the_state_now_calls_for(acme, cli, events,
                                                                         django_capture_on_commit_callbacks):
    """billing-rules 3.3: alerts judge the state now: history that crossed 90% and overage in the past, but is at
    1 of 2 seats now, sends nothing; one that ends in overage sends one warning and one overage email."""
    seat_service(acme, committed=2, overage=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert_imported(cli, "seat-events", events(*GOOD[:3], "acme,north,ann,unassign,2026-04-10T17:00:00Z",
                                                   "acme,north,bob,unassign,2026-04-11T17:00:00Z"))
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        assert_imported(cli, "seat-events", events("acme,north,dan,assign,2026-04-12T09:00:00Z",
                                                   "acme,north,eve,assign,2026-04-12T10:00:00Z"))
    assert sorted("overage" in m.subject for m in mail.outbox) == [False, True]


def test_file_faults_of_seat_events(acme, cli, csv_file):
    """billing-rules 8.1: the file-level faults of the other kinds hold for seat-events (more in test_imports)."""
    path = csv_file("e.csv", "partner,customer,member,at\nacme,north,ann,2026-04-01T09:00:00Z\n")
    assert_file_fault(cli, "seat-events", path, "missing column(s): action")

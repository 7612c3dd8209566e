"""A seat history imports the same whatever files it was split into (billing-rules 9.4: events merge into
the history already imported, applied in order of their instant)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.core.importing import run_import_text
from conftest import examples
from partners.models import AuditLog, SeatAssignment
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

BASE = datetime(2026, 3, 1, 8, tzinfo=UTC)
HEADER = "partner,customer,member,action,at\n"


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def events_file(rows) -> str:
    return HEADER + "".join(f"acme,{c},{m},{a},{stamp(at)}\n" for c, m, a, at in rows)


def seats():
    return sorted(SeatAssignment.objects.values_list("customer__slug", "member__name", "assigned_at", "removed_at"))


@pytest.fixture
def acme(db):
    partner = PartnerFactory(slug="acme")
    CustomerFactory(partner=partner, slug="c1")
    CustomerFactory(partner=partner, slug="c2")
    return partner


def test_reassign_at_the_instant_a_later_file_ends_the_seat(acme):
    """History: ana assigned at 10:00. A later file adds 09:00-10:00 before it: valid, the seats touch."""
    at10 = BASE.replace(hour=10)
    assert run_import_text("seat-events", events_file([("c1", "ana", "assign", at10)])).ok
    summary = run_import_text("seat-events", events_file([
        ("c1", "ana", "assign", BASE.replace(hour=9)), ("c1", "ana", "unassign", at10)]))
    assert summary.ok, summary.errors
    assert [(a, r) for _, _, a, r in seats()] == [(BASE.replace(hour=9), at10), (at10, None)]


def test_removals_already_imported_free_the_commitment_before_assigns_at_the_same_instant(acme):
    """Commitment 2 without overage: ana leaves at 12:00 as bob joins; a later file adds dan at 07:00."""
    ServiceFactory(partner=acme, code="seats", committed_quantity=2, overage_enabled=False)
    noon = BASE.replace(hour=12)
    assert run_import_text("seat-events", events_file([
        ("c1", "ana", "assign", BASE), ("c1", "bob", "assign", noon)])).ok
    assert run_import_text("seat-events", events_file([("c1", "ana", "unassign", noon)])).ok
    summary = run_import_text("seat-events", events_file([("c2", "dan", "assign", BASE.replace(hour=7))]))
    assert summary.ok, summary.errors
    assert len(seats()) == 3


def test_unassign_and_reassign_at_one_instant_apply_in_file_order(acme):
    """billing-rules 9.4: file order breaks ties, also for one member leaving and rejoining at one instant."""
    at = BASE + timedelta(days=2)
    summary = run_import_text("seat-events", events_file([
        ("c1", "ana", "assign", BASE), ("c1", "ana", "unassign", at), ("c1", "ana", "assign", at)]))
    assert summary.ok, summary.errors
    assert [(a, r) for _, _, a, r in seats()] == [(BASE, at), (at, None)]
    reversed_order = run_import_text("seat-events", events_file([
        ("c1", "bo", "assign", BASE), ("c1", "bo", "assign", at), ("c1", "bo", "unassign", at)]))
    assert [str(e) for e in reversed_order.errors] == [
        "row 3: member: already holds an active seat in this customer (since 2026-03-01T08:00:00Z)"]


def test_the_import_is_audited_once_per_customer_with_the_seats_it_ended(acme):
    """billing-rules (ax): one seat.import entry per customer, naming the file; a seat already recorded that the
    file ends is listed as it was (the rebuilt row gets a new id); the seats written name the file as their source."""
    assert run_import_text("seat-events", events_file([("c1", "ana", "assign", BASE)])).ok
    open_seat = SeatAssignment.objects.get()
    summary = run_import_text("seat-events", events_file([
        ("c1", "ana", "unassign", BASE + timedelta(days=3)), ("c1", "bo", "assign", BASE + timedelta(days=3)),
        ("c2", "cy", "assign", BASE + timedelta(days=4))]), source="nightly.csv")
    assert summary.ok, summary.errors
    entries = AuditLog.objects.filter(action="seat.import").order_by("id")
    assert [(e.object_repr, e.after["assigned"], e.after["unassigned"]) for e in entries] == [
        ("c1", 1, 0), ("c1", 1, 1), ("c2", 1, 0)]
    last = entries[1].after
    assert last["replaced"] == [{"id": open_seat.pk, "member": "ana", "assigned_at": BASE.isoformat(),
                                 "removed_at": None}]
    assert entries[2].after["replaced"] == []
    assert not AuditLog.objects.filter(action__in=["seat.import.seat", "seat.import.replaced"]).exists()
    assert last["file"] == SeatAssignment.objects.filter(member__name="bo").get().source == "nightly.csv"


instants = st.integers(min_value=0, max_value=6).map(lambda h: BASE + timedelta(hours=h * 6))


@st.composite
def histories(draw):
    """Non-overlapping seats per member (they may touch: removed and re-assigned at one instant)."""
    intervals = []
    for customer, member in (("c1", "ana"), ("c1", "ben"), ("c2", "ana"), ("c2", "cy")):
        points = sorted(draw(st.lists(instants, min_size=0, max_size=4)))
        for start, end in zip(points[0::2], points[1::2], strict=False):
            intervals.append((customer, member, start, end))
        if len(points) % 2 and draw(st.booleans()):
            intervals.append((customer, member, points[-1], None))
    # drop zero-length pairs that would sit at the instant another seat of the member starts
    files = draw(st.lists(st.integers(0, 2), min_size=len(intervals), max_size=len(intervals)))
    return intervals, files


@pytest.mark.django_db
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=histories())
def test_any_split_of_a_valid_history_imports_to_the_same_seats(data):
    intervals, files = data
    intervals = [iv for iv in intervals if iv[3] is None or iv[3] > iv[2]]
    expected = sorted((c, m, a, r) for c, m, a, r in intervals)

    class Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            partner = PartnerFactory(slug="acme")
            CustomerFactory(partner=partner, slug="c1")
            CustomerFactory(partner=partner, slug="c2")
            for part in range(3):
                rows = []
                for (customer, member, start, end), file_no in zip(intervals, files, strict=False):
                    if file_no == part:
                        rows.append((customer, member, "assign", start))
                        if end is not None:
                            rows.append((customer, member, "unassign", end))
                if rows:
                    summary = run_import_text("seat-events", events_file(rows))
                    assert summary.ok, (summary.errors, intervals, files)
            assert seats() == expected
            raise Rollback
    except Rollback:
        pass

"""Committed seats in force on a day, one rule (billing-rules 3.1, 6.2, 3.11; issue 18, item 2):
partners.seating.committed_seats_on is the rule, pure; partners.selectors.committed_seats reads it for many
services (the committed quantity in force that day from the terms history, plus the purchases effective by
then). The live seat checks, the seat-events import, the admin, the portal, the API and billing all give the
same number, and a commitment changed with an effective date counts from that date only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.contrib import admin
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.actor import Actor
from billing.core.periods import Period, next_month_start
from billing.portal.selectors import commitment_by_day, seat_summaries
from conftest import examples
from invoicing.rating import rate_partner_month
from invoicing.selectors import seat_periods
from partners.admin.services import ServiceAdmin
from partners.models import Method, Service
from partners.seating import SeatRuleError, committed_seats_on
from partners.selectors import commitments_in_force, committed_seats
from partners.services import seat_assign, terms_change_record
from partners.terms import values_of
from partners.tests.factories import CustomerFactory, PartnerFactory, SeatPurchaseFactory, ServiceFactory
from partners.tests.test_imports import assert_imported, assert_rejected

ACTOR = Actor(label="test")
FAST = settings(max_examples=examples(200), deadline=None, database=None)


# --- the rule, pure ----------------------------------------------------------------------------------------
def test_the_worked_example_of_seat_days_basic():
    """billing-rules 3.1: 4 seats committed, 2 bought on 2026-04-20 at 16:00 UTC take effect on 1 May."""
    purchases = [(date(2026, 5, 1), 2)]
    assert committed_seats_on(date(2026, 4, 1), committed_quantity=4, purchases=purchases) == 4
    assert committed_seats_on(date(2026, 4, 30), committed_quantity=4, purchases=purchases) == 4
    assert committed_seats_on(date(2026, 5, 1), committed_quantity=4, purchases=purchases) == 6
    assert committed_seats_on(date(2026, 7, 15), committed_quantity=4, purchases=purchases) == 6


def test_no_commitment_counts_zero_and_purchases_still_count():
    assert committed_seats_on(date(2026, 4, 1), committed_quantity=None, purchases=[]) == 0
    assert committed_seats_on(date(2026, 4, 1), committed_quantity=0, purchases=[(date(2026, 4, 1), 3)]) == 3


instants = st.datetimes(min_value=datetime(2025, 11, 1), max_value=datetime(2026, 12, 31, 23, 59),
                        timezones=st.just(UTC))


@FAST
@given(committed=st.one_of(st.none(), st.integers(0, 500)),
       bought=st.lists(st.tuples(instants, st.integers(1, 50)), max_size=8),
       day=st.dates(min_value=date(2025, 10, 1), max_value=date(2027, 2, 1)))
def test_a_purchase_counts_from_the_month_after_the_one_it_was_made_in(committed, bought, day):
    """billing-rules 6.2, against a reference written from the words of the contract: a purchase counts on a
    day of a later calendar month than its UTC date's (a purchase at 00:00 on a 1st counts from the next 1st)."""
    purchases = [(next_month_start(at), seats) for at, seats in bought]  # SeatPurchase.effective_date
    expected = (committed or 0) + sum(seats for at, seats in bought
                                      if (at.year, at.month) < (day.year, day.month))
    assert committed_seats_on(day, committed_quantity=committed, purchases=purchases) == expected
    later = day + timedelta(days=1)
    assert committed_seats_on(later, committed_quantity=committed, purchases=purchases) >= expected


# --- every reader gives the same number, with dated terms ----------------------------------------------------
def _commitment_changed(service: Service, committed: int, effective: date) -> None:
    """Change the service's commitment from `effective` on, as the admin and the imports record it."""
    before = values_of(service)
    service.committed_quantity = committed
    service.save()
    terms_change_record(obj=service, before=before, effective=effective)


@pytest.fixture
def dated(db):
    """2 seats committed from January, no overage; +1 seat bought on 15 May (in force from 1 June); the
    commitment raised to 3 from 10 June (its own field says 3 already: the latest terms)."""
    partner = PartnerFactory(slug="dated")
    north = CustomerFactory(partner=partner, slug="north", name="North")
    service = ServiceFactory(partner=partner, code="seats", method=Method.SEAT_DAYS, committed_quantity=2,
                             overage_enabled=False, start_date=date(2026, 1, 1))
    SeatPurchaseFactory(service=service, seats=1, purchased_at=datetime(2026, 5, 15, 10, tzinfo=UTC))
    _commitment_changed(service, 3, date(2026, 6, 10))
    return {"partner": partner, "north": north, "service": Service.objects.get(pk=service.pk)}


EXPECTED = {date(2026, 5, 31): 2, date(2026, 6, 1): 3, date(2026, 6, 9): 3, date(2026, 6, 10): 4,
            date(2026, 7, 1): 4}


def test_committed_seats_reads_the_commitment_in_force_that_day(dated):
    service = dated["service"]
    for day, expected in EXPECTED.items():
        assert committed_seats([service], day) == {service.pk: expected}, day
        assert [c.committed for c in commitments_in_force(partner_ids=[service.partner_id], day=day)[
            service.partner_id]] == [expected]


def test_the_portal_chart_and_cards_agree(dated):
    service = dated["service"]
    days = sorted(EXPECTED)
    assert commitment_by_day(service, days) == [EXPECTED[d] for d in days]
    [summary] = seat_summaries(partner_id=service.partner_id, day=date(2026, 6, 9))
    assert summary.committed == 3


def test_billing_bills_the_commitment_in_force_on_the_usage_months_first(dated):
    """billing-rules 3.1, 3.11: June's usage is billed at the seats in force on 1 June, 2 + 1 bought; the
    admin's "recent periods" (seat_periods) shows what billing charges."""
    service = dated["service"]
    lines = [line for line in rate_partner_month(partner=dated["partner"], month=Period(2026, 7))
             if line.service.pk == service.pk]
    assert {line.details["committed"] for line in lines} == {3} == {committed_seats([service], date(2026, 6, 1))[
        service.pk]}
    june, july = seat_periods(services=[service], first=Period(2026, 6), last=Period(2026, 7))
    assert (june.committed, july.committed) == (3, 4)


def test_the_admin_shows_the_commitment_in_force_today(dated):
    service = dated["service"]
    page = ServiceAdmin(Service, admin.site)
    with time_machine.travel(datetime(2026, 6, 9, 12, tzinfo=UTC), tick=False):
        assert ">3, no overage<" in page.committed_now(service)
        page.annotate_page(None, [service])
        assert service.page_committed == 3
    with time_machine.travel(datetime(2026, 6, 10, 12, tzinfo=UTC), tick=False):
        assert ">4, no overage<" in page.committed_now(Service.objects.get(pk=service.pk))


def test_a_live_assignment_is_judged_on_the_commitment_in_force_today(dated):
    """billing-rules 3.2: a commitment raised from tomorrow does not admit a seat today."""
    north = dated["north"]
    with time_machine.travel(datetime(2026, 6, 9, 12, tzinfo=UTC), tick=True):
        for name in ("ann", "bob", "cat"):
            seat_assign(customer=north, member_name=name, actor=ACTOR)
        with pytest.raises(SeatRuleError, match="commitment of 3 seats on seats reached"):
            seat_assign(customer=north, member_name="dan", actor=ACTOR)
    with time_machine.travel(datetime(2026, 6, 10, 12, tzinfo=UTC), tick=True):
        seat_assign(customer=north, member_name="dan", actor=ACTOR)


def test_the_seat_events_import_judges_each_event_on_the_commitment_of_its_date(dated, cli, csv_file):
    """billing-rules decision (b): each new event is checked against the commitment in force on its date."""
    header = "partner,customer,member,action,at\n"
    early = csv_file("early.csv", header + "".join(
        f"dated,north,{name},assign,2026-06-05T09:00:0{n}Z\n" for n, name in enumerate(["ann", "bob", "cat", "dan"])))
    late = csv_file("late.csv", header + "".join(
        f"dated,north,{name},assign,2026-06-12T09:00:0{n}Z\n" for n, name in enumerate(["ann", "bob", "cat", "dan"])))
    with time_machine.travel(datetime(2026, 7, 15, 12, tzinfo=UTC), tick=True):
        assert_rejected(cli, "seat-events", early, [(5, "member", "commitment of 3 seats on seats reached")])
        assert_imported(cli, "seat-events", late)

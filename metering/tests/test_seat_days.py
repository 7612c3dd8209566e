"""Seat-day metering (billing-rules 3.1, 6.1, 6.2, 6.10): the set-based SQL in metering.selectors against the pure
day-by-day reference, the billing-rules 3.1 cases one by one, and the statements report."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from djmoney.money import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.core.periods import Period, parse_instant
from billing.core.reporting import ReportOptions
from conftest import examples
from invoicing.selectors import seat_periods
from metering.reports import StatementsReport
from metering.selectors import seat_days, seat_days_by_customer, seat_days_by_month
from metering.tests.reference import seat_days_reference
from partners.models import SeatAssignment
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    SeatPurchaseFactory,
    ServiceFactory,
)

APRIL = Period(2026, 4)
MAY = Period(2026, 5)


def at(text: str) -> datetime:
    return parse_instant(text)


def seat(member, assigned: str, removed: str | None = None) -> SeatAssignment:
    return SeatAssignmentFactory(member=member, assigned_at=at(assigned), removed_at=at(removed) if removed else None)


def customer_seat_days(customer, period: Period = APRIL) -> int:
    return seat_days(partner_id=customer.partner_id, customer_id=customer.pk, first=period.first, last=period.last)


def reference(history, first: date, last: date) -> int:
    """The pure reference over (member, assigned instant, removed instant or None), on UTC dates."""
    return seat_days_reference(
        [(member, start.date(), end.date() if end else None) for member, start, end in history], first, last
    )


# --- (a) the SQL agrees with the reference on random histories ---------------------------------

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW_DAYS = 153  # 2026-03-01 .. 2026-07-31: the dates queried below

seconds_of_day = st.one_of(st.just(0), st.just(86_399), st.integers(0, 86_399))
# days after the previous instant: 0 (same date: same-day pairs, remove and re-assign), a few, or many
day_gaps = st.one_of(st.just(0), st.integers(0, 3), st.integers(0, 45))


@st.composite
def member_history(draw):
    """Alternating assign/remove instants for one member: never two seats at once, at most one open."""
    day = draw(st.integers(0, 90))
    second = draw(seconds_of_day)
    instants = [DAY0 + timedelta(days=day, seconds=second)]
    for _ in range(draw(st.integers(0, 7))):
        gap = draw(day_gaps)
        candidate = draw(seconds_of_day)
        second = max(second, candidate) if gap == 0 else candidate
        day += gap
        instants.append(DAY0 + timedelta(days=day, seconds=second))
    pairs = [(instants[i], instants[i + 1] if i + 1 < len(instants) else None) for i in range(0, len(instants), 2)]
    if pairs[-1][1] is not None and draw(st.booleans()):
        pairs.append((pairs[-1][1] + timedelta(seconds=draw(st.integers(0, 86_400 * 20))), None))  # open seat
    return pairs


@st.composite
def query_range(draw):
    first = DAY0.date() + timedelta(days=draw(st.integers(-5, WINDOW_DAYS)))
    return first, first + timedelta(days=draw(st.integers(0, 120)))


@pytest.fixture
def world(db):
    """Partner A with two customers (two members each, a member name repeated across them), partner B
    with one member: B's seats must never leak into A's numbers."""
    partner_a, partner_b = PartnerFactory(slug="alpha"), PartnerFactory(slug="beta")
    c1, c2 = CustomerFactory(partner=partner_a, slug="c1"), CustomerFactory(partner=partner_a, slug="c2")
    c3 = CustomerFactory(partner=partner_b, slug="c3")
    members = [
        MemberFactory(customer=c1, name="ann"), MemberFactory(customer=c1, name="bob"),
        MemberFactory(customer=c2, name="ann"), MemberFactory(customer=c2, name="cid"),
        MemberFactory(customer=c3, name="ann"),
    ]
    return partner_a, partner_b, [c1, c2, c3], members


class Rollback(Exception):
    pass


@pytest.mark.django_db
@settings(max_examples=examples(60), deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(histories=st.lists(member_history(), min_size=5, max_size=5), span=query_range())
def test_sql_seat_days_agree_with_the_reference(world, histories, span):
    """Random assignment histories (removals at 00:00, same-day assign+remove, re-assign on the removal date,
    open seats, another partner): seat_days_by_customer / seat_days_by_month / seat_days equal the
    day-by-day reference (billing-rules 3.1, 6.10)."""
    partner_a, partner_b, customers, members = world
    first, last = span
    try:
        with transaction.atomic():
            history = []
            for member, pairs in zip(members, histories, strict=True):
                for assigned, removed in pairs:
                    SeatAssignment(partner=member.customer.partner, customer=member.customer, member=member,
                                   assigned_at=assigned, removed_at=removed, source="test").save()
                    history.append((member, assigned, removed))

            def ref(first, last, *, customer=None, partner=None, member=None):
                return reference([h for h in history if (customer is None or h[0].customer_id == customer.pk)
                                  and (partner is None or h[0].customer.partner_id == partner.pk)
                                  and (member is None or h[0] is member)], first, last)

            # per customer: seat-days and active users (members with at least one seat-day)
            expected = {}
            for customer in customers:
                days = ref(first, last, customer=customer)
                users = sum(1 for m in members if m.customer_id == customer.pk and ref(first, last, member=m))
                assert (days == 0) == (users == 0)
                if days:
                    expected[customer.pk] = (days, users)
            a_ids = {c.pk for c in customers if c.partner_id == partner_a.pk}
            assert seat_days_by_customer(partner_ids=[partner_a.pk], first=first, last=last) == {
                k: v for k, v in expected.items() if k in a_ids
            }
            assert seat_days_by_customer(partner_ids={partner_a.pk, partner_b.pk}, first=first, last=last) == expected

            # per month: partner-level scope and each customer-level scope
            months = list(_months(first, last))
            for partner, customer in [(partner_a, None), (partner_b, None), *[(c.partner, c) for c in customers]]:
                want = {}
                for period in months:
                    days = ref(max(first, period.first), min(last, period.last), customer=customer, partner=partner)
                    if days:
                        want[period.first] = days
                got = seat_days_by_month(partner_id=partner.pk, customer_id=customer.pk if customer else None,
                                         first=first, last=last)
                assert got == want
                assert seat_days(partner_id=partner.pk, customer_id=customer.pk if customer else None,
                                 first=first, last=last) == ref(first, last, customer=customer, partner=partner)
            raise Rollback
    except Rollback:
        pass
    assert not SeatAssignment.objects.exists()


def _months(first: date, last: date):
    period = Period.of(first)
    while period.first <= last:
        yield period
        period = period.next()


# --- (b) one named test per billing-rules 3.1 case -----------------------------------------------------

@pytest.mark.django_db
def test_removal_at_midnight_counts_that_day():
    """A seat removed at 00:00 UTC counts that date: 10, 11 and 12 April = 3; a removal at 00:00+02:00 on
    the 12th is 22:00 UTC on the 11th, so 10 and 11 = 2 (billing-rules 3.1)."""
    utc_member, offset_member = MemberFactory(), MemberFactory()
    seat(utc_member, "2026-04-10T09:00:00Z", "2026-04-12T00:00:00Z")
    seat(offset_member, "2026-04-10T09:00:00Z", "2026-04-12T00:00:00+02:00")
    assert customer_seat_days(utc_member.customer) == 3
    assert customer_seat_days(offset_member.customer) == 2
    assert reference([(utc_member, at("2026-04-10T09:00:00Z"), at("2026-04-12T00:00:00Z"))],
                     APRIL.first, APRIL.last) == 3


@pytest.mark.django_db
def test_same_day_assign_and_remove_counts_once():
    """Assigned and removed on one date counts that date once, even twice over or for no time at all
    (billing-rules 3.1)."""
    member, instant_member = MemberFactory(), MemberFactory()
    seat(member, "2026-04-10T09:00:00Z", "2026-04-10T10:00:00Z")
    seat(member, "2026-04-10T15:00:00Z", "2026-04-10T17:00:00Z")
    seat(instant_member, "2026-04-20T00:00:00Z", "2026-04-20T00:00:00Z")
    assert customer_seat_days(member.customer) == 1
    assert customer_seat_days(instant_member.customer) == 1
    assert seat_days_by_customer(partner_ids=[member.customer.partner_id], first=APRIL.first, last=APRIL.last) == {
        member.customer_id: (1, 1)
    }


@pytest.mark.django_db
def test_removed_and_reassigned_same_date_counts_once():
    """Removed at noon on 15 April and re-assigned at 14:00: April has 30 seat-days, not 31 (billing-rules 3.1)."""
    member = MemberFactory()
    seat(member, "2026-04-01T09:00:00Z", "2026-04-15T12:00:00Z")
    seat(member, "2026-04-15T14:00:00Z")
    assert customer_seat_days(member.customer) == 30
    assert seat_days_by_customer(partner_ids=[member.customer.partner_id], first=APRIL.first, last=APRIL.last) == {
        member.customer_id: (30, 1)
    }


@pytest.mark.django_db
def test_open_assignment_covers_to_period_end():
    """An open seat from 20 April covers 20..30 April (11) and all of May (31), and nothing past the range
    asked; a seat assigned in May counts nothing in April (billing-rules 3.1)."""
    member = MemberFactory()
    later = MemberFactory(customer=member.customer)
    seat(member, "2026-04-20T08:00:00Z")
    seat(later, "2026-05-03T08:00:00Z")
    customer = member.customer
    assert customer_seat_days(customer, APRIL) == 11
    assert seat_days_by_month(partner_id=customer.partner_id, customer_id=customer.pk, first=APRIL.first,
                              last=MAY.last) == {APRIL.first: 11, MAY.first: 31 + 29}
    assert seat_days(partner_id=customer.partner_id, customer_id=None, first=APRIL.first,
                     last=date(2026, 4, 25)) == 6


@pytest.mark.django_db
def test_dates_outside_service_start_and_end_not_billed():
    """A service from 10 to 20 April bills only those dates: a seat open since March (11 dates) plus one from
    18 to 25 April (18..20 = 3): 14 seat-days, 14/30 x 20.00 = 9.33. The statement counts every date:
    30 + 8 = 38 (billing-rules 3.1, 6.10)."""
    partner = PartnerFactory()
    customer = CustomerFactory(partner=partner)
    service = ServiceFactory(partner=partner, start_date=date(2026, 4, 10), end_date=date(2026, 4, 20))
    seat(MemberFactory(customer=customer), "2026-03-15T09:00:00Z")
    seat(MemberFactory(customer=customer), "2026-04-18T09:00:00Z", "2026-04-25T09:00:00Z")

    [april] = seat_periods(services=[service], first=APRIL, last=MAY)
    assert april.period == APRIL
    assert april.seat_days == 14
    assert april.price.minimum == 0
    assert april.price.subtotal == Decimal("9.33")

    [row] = StatementsReport().rows(ReportOptions(period=APRIL, partner=partner.slug))
    assert (row["seat_days"], row["active_users"], row["seat_months"]) == (38, 2, Decimal("1.2667"))


@pytest.mark.django_db
def test_partial_month_minimum():
    """Service from 16 April, committed 3 at 20.00: April's minimum is 3 x 15/30 = 1.5 seat-months = 30.00
    over 11 seat-days (20..30); May's is 3 full seat-months = 60.00 over 31 seat-days (billing-rules 3.1, 6.2)."""
    partner = PartnerFactory()
    service = ServiceFactory(partner=partner, start_date=date(2026, 4, 16), committed_quantity=3)
    seat(MemberFactory(customer=CustomerFactory(partner=partner)), "2026-04-20T09:00:00Z")

    april, may = seat_periods(services=[service], first=APRIL, last=MAY)
    assert (april.seat_days, april.committed, april.price.minimum) == (11, 3, Decimal("1.5"))
    assert [(line.line_type, line.quantity, line.amount) for line in april.price.lines] == [
        ("usage", Decimal("1.5"), Decimal("30.00"))
    ]
    assert (may.seat_days, may.price.minimum, may.price.subtotal) == (31, Decimal(3), Decimal("60.00"))


@pytest.mark.django_db
def test_seat_purchase_takes_effect_next_month():
    """3 seats bought on 20 April take effect on 1 May: committed 2 in April (40.00), 5 in May (100.00)
    (billing-rules 3.1, 3.2, 6.2)."""
    partner = PartnerFactory()
    service = ServiceFactory(partner=partner, start_date=date(2026, 4, 1), committed_quantity=2)
    purchase = SeatPurchaseFactory(service=service, seats=3, purchased_at=at("2026-04-20T16:00:00Z"))
    assert purchase.effective_date == date(2026, 5, 1)

    april, may = seat_periods(services=[service], first=APRIL, last=MAY)
    assert (april.committed, april.price.subtotal) == (2, Decimal("40.00"))
    assert (may.committed, may.price.subtotal) == (5, Decimal("100.00"))


@pytest.mark.django_db
def test_seat_purchase_at_midnight_on_first_counts_from_following_month():
    """Bought at 2026-04-30T23:59:59Z: from May. At 2026-05-01T00:00Z, or at 2026-04-30T23:30-02:00
    (01:30 UTC on 1 May): from June. Committed 2 / 3 / 10 for April / May / June (billing-rules 6.2)."""
    partner = PartnerFactory()
    service = ServiceFactory(partner=partner, start_date=date(2026, 4, 1), committed_quantity=2)
    last_second = SeatPurchaseFactory(service=service, seats=1, purchased_at=at("2026-04-30T23:59:59Z"))
    midnight = SeatPurchaseFactory(service=service, seats=3, purchased_at=at("2026-05-01T00:00:00Z"))
    offset = SeatPurchaseFactory(service=service, seats=4, purchased_at=at("2026-04-30T23:30:00-02:00"))
    assert [p.effective_date for p in (last_second, midnight, offset)] == [
        date(2026, 5, 1), date(2026, 6, 1), date(2026, 6, 1)
    ]
    periods = seat_periods(services=[service], first=APRIL, last=Period(2026, 6))
    assert [(p.period, p.committed) for p in periods] == [(APRIL, 2), (MAY, 3), (Period(2026, 6), 10)]
    assert [p.price.subtotal for p in periods] == [Decimal("40.00"), Decimal("60.00"), Decimal("200.00")]


@pytest.mark.django_db
def test_overage_price():
    """Committed 2 at 20.00, overage 25.00, three members all April (90 seat-days = 3 seat-months):
    minimum 40.00 + overage 1 x 25.00 = 65.00 (billing-rules 3.1, 6.1)."""
    partner = PartnerFactory()
    customer = CustomerFactory(partner=partner)
    service = ServiceFactory(partner=partner, committed_quantity=2, overage_price=Money(Decimal("25.00"), "USD"))
    for _ in range(3):
        seat(MemberFactory(customer=customer), "2026-04-01T00:00:00Z")
    [april] = seat_periods(services=[service], first=APRIL, last=APRIL)
    assert april.seat_days == 90
    assert [(line.line_type, line.quantity, line.unit_price, line.amount) for line in april.price.lines] == [
        ("minimum", Decimal(2), Decimal("20.00"), Decimal("40.00")),
        ("overage", Decimal(1), Decimal("25.00"), Decimal("25.00")),
    ]
    assert april.price.subtotal == Decimal("65.00")


@pytest.mark.django_db
def test_no_commitment():
    """No commitment: the overage price is ignored and 3 seat-months cost 3 x 20.00 = 60.00 (billing-rules 3.1)."""
    partner = PartnerFactory()
    customer = CustomerFactory(partner=partner)
    service = ServiceFactory(partner=partner, committed_quantity=None, overage_price=Money(Decimal("25.00"), "USD"))
    for _ in range(3):
        seat(MemberFactory(customer=customer), "2026-04-01T00:00:00Z")
    [april] = seat_periods(services=[service], first=APRIL, last=APRIL)
    assert [(line.line_type, line.quantity, line.unit_price, line.amount) for line in april.price.lines] == [
        ("usage", Decimal(3), Decimal("20.00"), Decimal("60.00"))
    ]


@pytest.mark.django_db
def test_customer_level_service_meters_its_customer_only():
    """A customer-level service meters that customer; a partner-level one all the partner's customers,
    never another partner's (billing-rules 3.1)."""
    partner = PartnerFactory()
    mine, other = CustomerFactory(partner=partner), CustomerFactory(partner=partner)
    seat(MemberFactory(customer=mine), "2026-04-01T00:00:00Z")
    seat(MemberFactory(customer=other), "2026-04-11T00:00:00Z")
    seat(MemberFactory(customer=CustomerFactory()), "2026-04-01T00:00:00Z")  # another partner
    own = ServiceFactory(partner=partner, customer=mine)
    everyone = ServiceFactory(partner=partner)
    by_service = {p.service.pk: p.seat_days for p in seat_periods(services=[own, everyone], first=APRIL, last=APRIL)}
    assert by_service == {own.pk: 30, everyone.pk: 30 + 20}


@pytest.mark.django_db
def test_seat_example_april_and_may():
    """The worked example: committed 4 at 20.00 (overage 25.00) plus 2 seats bought in April. April: 93
    seat-days -> 4 seat-months = 80.00. May: 238 seat-days, committed 6 -> 120.00 + 41.94 = 161.94
    (billing-rules 3.1, 6.1, 6.2)."""
    partner = PartnerFactory()
    customer = CustomerFactory(partner=partner)
    service = ServiceFactory(partner=partner, start_date=date(2026, 4, 1), committed_quantity=4,
                             overage_price=Money(Decimal("25.00"), "USD"))
    SeatPurchaseFactory(service=service, seats=2, purchased_at=at("2026-04-20T16:00:00Z"))
    for _ in range(3):
        seat(MemberFactory(customer=customer), "2026-04-01T08:00:00Z")  # April 90, May 93
    seat(MemberFactory(customer=customer), "2026-04-28T10:00:00Z")  # April 3, May 31
    for _ in range(3):
        seat(MemberFactory(customer=customer), "2026-05-01T00:00:00Z")  # May 93
    seat(MemberFactory(customer=customer), "2026-05-11T10:00:00Z")  # May 21

    april, may = seat_periods(services=[service], first=APRIL, last=MAY)
    assert (april.seat_days, april.committed, april.price.subtotal) == (93, 4, Decimal("80.00"))
    assert [line.line_type for line in april.price.lines] == ["usage"]
    assert (may.seat_days, may.committed) == (238, 6)
    assert [(line.line_type, line.amount) for line in may.price.lines] == [
        ("minimum", Decimal("120.00")), ("overage", Decimal("41.94"))
    ]
    assert may.price.subtotal == Decimal("161.94")


# --- (c) statements ----------------------------------------------------------------------------

def statement_rows(period: Period = APRIL, partner: str | None = None) -> dict[tuple[str, str], dict]:
    return {(r["partner"], r["customer"]): r for r in StatementsReport().rows(ReportOptions(period=period,
                                                                                            partner=partner))}


@pytest.mark.django_db
def test_statement_active_users_are_distinct_members_with_a_seat_day():
    """active_users counts members with at least one seat-day in the period, once each; a seat that ended
    at 23:59 on 31 March is not active in April, one removed at 00:00 on 1 April is (billing-rules 6.10)."""
    partner = PartnerFactory(slug="acme")
    customer = CustomerFactory(partner=partner, slug="tenant")
    twice = MemberFactory(customer=customer)
    seat(twice, "2026-04-01T09:00:00Z", "2026-04-05T10:00:00Z")
    seat(twice, "2026-04-05T12:00:00Z", "2026-04-10T00:00:00Z")  # 1..10 April: 10 seat-days
    seat(MemberFactory(customer=customer), "2026-03-01T09:00:00Z", "2026-03-31T23:59:00Z")  # March only
    seat(MemberFactory(customer=customer), "2026-03-20T09:00:00Z", "2026-04-01T00:00:00Z")  # 1 April
    row = statement_rows(partner="acme")[("acme", "tenant")]
    assert row["period"] == "2026-04"
    assert (row["seat_days"], row["active_users"]) == (11, 2)
    assert row["seat_months"] == Decimal("0.3667")
    march = statement_rows(Period(2026, 3), partner="acme")[("acme", "tenant")]
    assert (march["seat_days"], march["active_users"]) == (31 + 12, 2)


@pytest.mark.django_db
def test_statement_lists_every_customer_with_zeros():
    """Every customer of the partner is listed, zeros included, for any month; --partner narrows
    (billing-rules 10.3, 6.10)."""
    partner, other = PartnerFactory(slug="acme"), PartnerFactory(slug="other")
    for slug in ("a", "b", "c"):
        CustomerFactory(partner=partner, slug=slug)
    CustomerFactory(partner=other, slug="z")
    seat(MemberFactory(customer=partner.customers.get(slug="b")), "2026-04-30T23:00:00Z")

    rows = statement_rows(partner="acme")
    assert sorted(rows) == [("acme", "a"), ("acme", "b"), ("acme", "c")]
    assert [(rows[k]["seat_days"], rows[k]["active_users"]) for k in sorted(rows)] == [(0, 0), (1, 1), (0, 0)]
    zero = rows[("acme", "a")]
    assert (zero["seat_months"], zero["peak_users"], zero["licenses"], zero["peak_assets"]) == (
        Decimal("0.0000"), 0, 0, 0)
    assert sorted(statement_rows()) == [("acme", "a"), ("acme", "b"), ("acme", "c"), ("other", "z")]
    far = statement_rows(Period(2031, 1), partner="acme")
    assert len(far) == 3
    assert far[("acme", "b")]["seat_days"] == 31  # the open seat still runs
    assert far[("acme", "a")]["seat_days"] == 0

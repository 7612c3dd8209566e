"""Caps and commitments hold under concurrent requests (billing-rules 3.2): PostgreSQL row locks."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from billing.core.actor import Actor
from partners.models import SeatAssignment
from partners.seating import SeatRuleError
from partners.services import seat_assign
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

WORKERS = 24


def assign_in_parallel(customer, names):
    barrier = threading.Barrier(len(names))
    outcomes = []
    lock = threading.Lock()

    def work(name):
        try:
            barrier.wait(timeout=30)
            seat_assign(customer=customer, member_name=name, actor=Actor(label="concurrency test"))
            outcome = "ok"
        except SeatRuleError:
            outcome = "denied"
        except Exception as exc:  # anything else is a failure of the test
            outcome = f"error: {exc!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=work, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_assignments_under_a_cap_admit_exactly_the_free_seats():
    customer = CustomerFactory(seat_cap=7)
    seat_assign(customer=customer, member_name="existing", actor=Actor(label="setup"))
    outcomes = assign_in_parallel(customer, [f"m{n}" for n in range(WORKERS)])
    assert sorted(set(outcomes)) == ["denied", "ok"], outcomes
    assert outcomes.count("ok") == 6
    assert SeatAssignment.objects.filter(customer=customer, removed_at__isnull=True).count() == 7


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_assignments_under_a_commitment_without_overage_admit_exactly_the_free_seats():
    partner = PartnerFactory()
    ServiceFactory(partner=partner, committed_quantity=5, overage_enabled=False)
    a, b = CustomerFactory(partner=partner), CustomerFactory(partner=partner)
    outcomes_a, outcomes_b = [], []
    threads = [
        threading.Thread(target=lambda: outcomes_a.extend(assign_in_parallel(a, [f"a{n}" for n in range(12)]))),
        threading.Thread(target=lambda: outcomes_b.extend(assign_in_parallel(b, [f"b{n}" for n in range(12)]))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    outcomes = outcomes_a + outcomes_b
    assert len(outcomes) == 24 and not [o for o in outcomes if o.startswith("error")], outcomes
    assert outcomes.count("ok") == 5
    assert SeatAssignment.objects.filter(partner=partner, removed_at__isnull=True).count() == 5


@pytest.mark.django_db
def test_cap_below_active_seats_is_refused_by_the_model():
    """The model guards the cap itself (billing-rules 3.2), whatever the entry point."""

    customer = CustomerFactory(seat_cap=3)
    for name in ("ana", "ben"):
        seat_assign(customer=customer, member_name=name, actor=Actor(label="t"))
    customer.seat_cap = 1
    with pytest.raises(ValidationError, match="2 seats are active now"):
        customer.save()
    customer.seat_cap = 2
    customer.save()
    customer.refresh_from_db()
    assert customer.seat_cap == 2

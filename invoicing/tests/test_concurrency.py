"""Invoice numbers and billing under concurrent requests (billing-rules 4.2: numbers unique, gapless, assigned at
issue, never reused, safe under concurrent issuing). PostgreSQL only: row locks and real parallel
transactions; each thread has its own connection and closes it."""

from __future__ import annotations

import threading
import time
from datetime import date
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection, transaction
from djmoney.money import Money

from billing.core.actor import Actor
from invoicing.models import Invoice, InvoiceSequence, InvoiceState, OneTimeCharge
from invoicing.services import billing_run, number_take
from partners.models import Method
from partners.tests.factories import PartnerFactory, ServiceFactory

WORKERS = 20
ACTOR = Actor(label="concurrency test")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def in_parallel(work, count: int) -> list:
    """Run work(n) for n in 0..count-1 in threads released together; each outcome, or "error: ..."."""
    barrier = threading.Barrier(count)
    outcomes, lock = [], threading.Lock()

    def run(n):
        try:
            barrier.wait(timeout=30)
            outcome = work(n)
        except Exception as exc:  # anything unexpected is a failure of the test
            outcome = f"error: {exc!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return outcomes


def sequence_at(prefix: str, last: int | None) -> None:
    """The sequence of a prefix as given (None: no row yet, as on a fresh database)."""
    InvoiceSequence.objects.filter(prefix=prefix).delete()
    if last is not None:
        InvoiceSequence.objects.create(prefix=prefix, last=last)


def take(prefix: str, hold: float = 0.01) -> str:
    with transaction.atomic():
        taken = number_take(prefix)
        time.sleep(hold)  # keep the lock a moment, so the others really queue behind it
    return taken


@pytest.fixture
def fake_pdf(monkeypatch):
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: b"%PDF-test")


def test_parallel_number_takes_are_unique_and_gapless():
    """INV at 41: 20 transactions at once take INV-0042 .. INV-0061, each once; the sequence ends at 61."""
    sequence_at("INV", 41)
    outcomes = in_parallel(lambda n: take("INV"), WORKERS)
    assert sorted(outcomes) == [f"INV-{n:04d}" for n in range(42, 62)], outcomes
    assert InvoiceSequence.objects.get(prefix="INV").last == 61


def test_parallel_first_numbers_of_a_prefix_without_a_row_are_unique_and_gapless():
    """No CI row yet (a fresh database): the 20 racing transactions create it once and take
    CI-0001 .. CI-0020."""
    sequence_at("CI", None)
    outcomes = in_parallel(lambda n: take("CI"), WORKERS)
    assert sorted(outcomes) == [f"CI-{n:04d}" for n in range(1, 21)], outcomes
    assert list(InvoiceSequence.objects.filter(prefix="CI").values_list("last", flat=True)) == [20]


def test_a_rolled_back_number_is_given_back():
    """INV at 0: a transaction takes INV-0001 and rolls back; the next one takes INV-0001 again, then
    INV-0002: no gap, nothing reused among committed numbers."""
    sequence_at("INV", 0)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert number_take("INV") == "INV-0001"
        raise RuntimeError("the issue failed")
    assert take("INV") == "INV-0001"
    assert take("INV") == "INV-0002"
    assert InvoiceSequence.objects.get(prefix="INV").last == 2


def test_a_number_given_back_goes_to_the_transaction_waiting_for_it():
    """A takes INV-0001 and holds it; B asks meanwhile and waits; A rolls back: B gets INV-0001."""
    sequence_at("INV", 0)
    a_took = threading.Event()

    def work(n):
        if n == 0:
            try:
                with transaction.atomic():
                    taken = number_take("INV")
                    a_took.set()
                    time.sleep(0.5)
                    raise RuntimeError("rolled back")
            except RuntimeError:
                return f"A rolled back {taken}"
        assert a_took.wait(timeout=30)
        return f"B {take('INV')}"

    outcomes = in_parallel(work, 2)
    assert sorted(outcomes) == ["A rolled back INV-0001", "B INV-0001"], outcomes
    assert InvoiceSequence.objects.get(prefix="INV").last == 1


def test_two_concurrent_billing_runs_for_one_partner_issue_each_invoice_once(fake_pdf):
    """A flat 10.00 from 1 March and a 25.00 one-time charge on 15 April, billed through 1 June by two
    runs at once: the partner's lock makes one issue CI 1 March, 1 April, INV 15 April, CI 1 May,
    1 June (CI-0001..CI-0004, INV-0001) and the other find nothing to do. One email per invoice."""
    partner = PartnerFactory(slug="racer")
    ServiceFactory(partner=partner, code="flat", method=Method.FLAT, unit_price=Money(Decimal("10.00"), "USD"),
                   start_date=date(2026, 3, 1))
    OneTimeCharge.objects.create(partner=partner, description="Dock", quantity=Decimal("1"),
                                 unit_price=Decimal("25.00"), date=date(2026, 4, 15))
    sequence_at("CI", 0)
    sequence_at("INV", 0)

    outcomes = in_parallel(lambda n: [i.number for i in billing_run(through=date(2026, 6, 1), partner_slug="racer",
                                                                        actor=ACTOR)], 2)

    assert sorted(outcomes, key=len) == [[], ["CI-0001", "CI-0002", "INV-0001", "CI-0003", "CI-0004"]], outcomes
    issued = Invoice.objects.filter(partner=partner, state=InvoiceState.ISSUED)
    assert sorted(issued.values_list("number", flat=True)) == ["CI-0001", "CI-0002", "CI-0003", "CI-0004",
                                                               "INV-0001"]
    assert sorted(issued.filter(kind="CI").values_list("month", flat=True)) == [
        "2026-03", "2026-04", "2026-05", "2026-06"]
    assert not Invoice.objects.filter(state=InvoiceState.DRAFT).exists()
    assert sorted(m.attachments[0][0] for m in mail.outbox) == [
        "CI-0001.pdf", "CI-0002.pdf", "CI-0003.pdf", "CI-0004.pdf", "INV-0001.pdf"]


def test_partners_billed_at_once_get_unique_gapless_numbers_whatever_they_issue_first(fake_pdf):
    """Six partners billed in parallel through 1 April (as the daily task fans out): the even ones
    issue a CI first (flat from 1 March, then a one-time charge on 10 March), the odd ones an INV first
    (a one-time charge on 20 February, then the flat's March CI). Every run succeeds; the 12 CIs are
    CI-0001..CI-0012 and the 6 INVs INV-0001..INV-0006, each once."""
    slugs = [f"p{n}" for n in range(6)]
    for n, slug in enumerate(slugs):
        partner = PartnerFactory(slug=slug)
        ServiceFactory(partner=partner, code="flat", method=Method.FLAT, unit_price=Money(Decimal("10.00"), "USD"),
                       start_date=date(2026, 3, 1))
        OneTimeCharge.objects.create(partner=partner, description="Dock", quantity=Decimal("1"),
                                     unit_price=Decimal("25.00"),
                                     date=date(2026, 3, 10) if n % 2 == 0 else date(2026, 2, 20))
    sequence_at("CI", 0)
    sequence_at("INV", 0)

    outcomes = in_parallel(lambda n: len(billing_run(through=date(2026, 4, 1), partner_slug=slugs[n], actor=ACTOR)),
                           len(slugs))

    assert outcomes == [3] * len(slugs), outcomes
    numbers = sorted(Invoice.objects.filter(state=InvoiceState.ISSUED).values_list("number", flat=True))
    assert numbers == sorted([f"CI-{n:04d}" for n in range(1, 13)] + [f"INV-{n:04d}" for n in range(1, 7)])

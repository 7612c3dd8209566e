"""Tasks through a real broker: Redis in CI (REDIS_TEST_URL), skipped with the reason elsewhere.

The rest of the suite runs tasks in-process; this proves the production path: a task queued after
commit travels through Redis to a real worker that does the work. And a broker that cannot be reached
(a closed port, everywhere) leaves a billing run issued, its emails for the daily job.
"""

import logging
import os
import time
from datetime import date
from decimal import Decimal

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from djmoney.money import Money
from kombu import pools

from billing.celery import app
from billing.core.actor import Actor
from invoicing.models import Invoice
from invoicing.services import billing_run
from invoicing.tasks import refresh_payment_statuses_task, send_invoice_task
from partners.models import AlertKind, Method, UtilizationAlert
from partners.tasks import send_utilization_alert_task
from partners.tests.factories import PartnerFactory, ServiceFactory

REDIS_URL = os.environ.get("REDIS_TEST_URL", "")
CLOSED_PORT_URL = "redis://127.0.0.1:9/0"  # discard: nothing listens there

needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set REDIS_TEST_URL (CI does)")


def reset_pool():
    """Start from fresh broker connections: kombu keeps one pool per broker URL in a global registry,
    so the registry is reset (closing its pools) and the app forgets the pools it built on it."""

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


def partners_with_flat_plans(count: int) -> None:
    """Partners billed 100.00 a month from March: CIs of March, April and May through 1 May."""
    for n in range(count):
        partner = PartnerFactory(slug=f"msp-{n}", billing_emails=f"billing@msp-{n}.example")
        ServiceFactory(partner=partner, code="support", method=Method.FLAT, unit_price=Money(Decimal("100.00"), "USD"),
                       start_date=date(2026, 3, 1))


@pytest.fixture
def redis_worker(settings):
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "result_backend")}
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False, result_backend=None)
    reset_pool()
    app.control.purge()  # messages left in Redis by an earlier, interrupted run must not come first
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield app
    finally:
        app.conf.update(**saved)
        reset_pool()


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_alert_email_travels_through_redis_to_a_worker(redis_worker):
    partner = PartnerFactory(billing_emails="ops@msp.example")
    service = ServiceFactory(partner=partner, committed_quantity=1, overage_enabled=True)
    alert = UtilizationAlert.objects.create(service=service, kind=AlertKind.WARNING, active_seats=1,
                                            committed_seats=1, recipients="ops@msp.example")

    send_utilization_alert_task.delay(alert.pk)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        alert.refresh_from_db()
        if alert.emailed_at is not None:
            break
        time.sleep(0.2)
    assert alert.emailed_at is not None, "the worker never sent the alert"
    assert [m.to for m in mail.outbox] == [["ops@msp.example"]]


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_billing_runs_invoice_emails_travel_through_redis_on_one_producer(redis_worker, monkeypatch):
    """The emails of a run's invoices are queued after commit on one producer and a worker sends each."""

    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: f"%PDF {invoice.number}".encode())
    queue, producers = send_invoice_task.apply_async, []

    def recorded(args, **options):
        producers.append(options.get("producer"))
        return queue(args, **options)

    monkeypatch.setattr(send_invoice_task, "apply_async", recorded)
    partners_with_flat_plans(2)
    issued = billing_run(through=date(2026, 5, 1), actor=Actor(label="broker test"))
    assert len(issued) == 6
    assert len(producers) == 6 and producers[0] is not None and len({id(p) for p in producers}) == 1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Invoice.objects.filter(emailed_at__isnull=True).exists():
        time.sleep(0.2)
    assert not Invoice.objects.filter(emailed_at__isnull=True).exists(), "the worker never sent them all"
    assert sorted(m.to[0] for m in mail.outbox) == ["billing@msp-0.example"] * 3 + ["billing@msp-1.example"] * 3


@pytest.fixture
def unreachable_broker(settings):
    """The production path (not eager) with the broker on a port nothing listens on."""
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=CLOSED_PORT_URL, task_always_eager=False)
    reset_pool()
    try:
        yield
    finally:
        app.conf.update(**saved)
        reset_pool()


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_cannot_be_reached_leaves_the_run_issued_and_the_emails_to_the_daily_job(
        unreachable_broker, monkeypatch, caplog):
    """Nothing listens on the broker's port: every invoice stays issued and unsent, and one line says so for
    all of them. Once the broker is back, the daily job sends each (in-process here)."""
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: f"%PDF {invoice.number}".encode())
    partners_with_flat_plans(3)
    with caplog.at_level(logging.ERROR, logger="invoicing.services"):
        issued = billing_run(through=date(2026, 5, 1), actor=Actor(label="broker test"))
    assert len(issued) == 9 and Invoice.objects.filter(emailed_at__isnull=True).count() == 9
    lines = [r.getMessage() for r in caplog.records if r.name == "invoicing.services"]
    assert len(lines) == 1 and lines[0].startswith("could not reach the queue for the emails of 9 invoices")

    app.conf.update(task_always_eager=True)  # the broker is back
    refresh_payment_statuses_task()
    assert not Invoice.objects.filter(emailed_at__isnull=True).exists() and len(mail.outbox) == 9

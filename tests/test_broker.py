"""Tasks through a real broker: Redis in CI (REDIS_TEST_URL), skipped with the reason elsewhere.

The rest of the suite runs tasks in-process; this proves the production path: a task queued after
commit travels through Redis to a real worker that does the work.
"""

import os
import time

import pytest
from django.core import mail

from billing.celery import app
from partners.models import AlertKind, UtilizationAlert
from partners.tests.factories import PartnerFactory, ServiceFactory

REDIS_URL = os.environ.get("REDIS_TEST_URL", "")

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set REDIS_TEST_URL (CI does)")


def reset_pool():
    """Start from fresh broker connections: kombu keeps one pool per broker URL in a global registry,
    so the registry is reset (closing its pools) and the app forgets the pools it built on it."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def redis_worker(settings):
    from celery.contrib.testing.worker import start_worker

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


@pytest.mark.django_db(transaction=True)
def test_alert_email_travels_through_redis_to_a_worker(redis_worker):
    partner = PartnerFactory(billing_emails="ops@msp.example")
    service = ServiceFactory(partner=partner, committed_quantity=1, overage_enabled=True)
    alert = UtilizationAlert.objects.create(service=service, kind=AlertKind.WARNING, active_seats=1,
                                            committed_seats=1, recipients="ops@msp.example")
    from partners.tasks import send_utilization_alert_task

    send_utilization_alert_task.delay(alert.pk)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        alert.refresh_from_db()
        if alert.emailed_at is not None:
            break
        time.sleep(0.2)
    assert alert.emailed_at is not None, "the worker never sent the alert"
    assert [m.to for m in mail.outbox] == [["ops@msp.example"]]

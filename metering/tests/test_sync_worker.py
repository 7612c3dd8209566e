"""The nightly RMM sync through a real broker: Redis in CI (REDIS_TEST_URL), skipped with the
reason elsewhere.

The beat job is queued to Redis, a real worker fans it out per partner, the partner's task fetches the
inventory from the stub RMM over a real socket and applies it, the unit change email leaves through a
second task; then the billing run posts the proration that follows on the next CI (billing-rules 3.7, 6.6).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from decimal import Decimal

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.utils import timezone
from djmoney.money import Money
from kombu import pools

from billing.celery import app
from billing.core.actor import Actor
from billing.core.money import quantize_money
from billing.core.periods import Period, utc_date
from invoicing.models import InvoiceLine
from invoicing.services import billing_run
from metering.models import AgentPresence, RmmIntegration, SyncRun, SyncStatus, UnitChangeNotice
from metering.services import AgentRow, inventory_apply
from metering.tasks import sync_inventories_task
from metering.tests.rmm_stub import StubRmm, agent
from partners.models import Method
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

REDIS_URL = os.environ.get("REDIS_TEST_URL", "")

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set REDIS_TEST_URL (CI does)")

TOKEN = "keystone-token"


def reset_pool():
    """Drop pooled broker connections so the next task opens one to the broker now configured.

    app._pool is kombu's process-wide pool for the broker URL: closing it alone would leave that closed
    pool registered, and the next test on the same URL (tests/test_broker.py) would get "Acquire on
    closed pool". kombu.pools.reset() closes and forgets them all."""

    app._pool = None
    app.amqp._producer_pool = None  # built on the old connection pool
    pools.reset()


@contextmanager
def redis_worker(settings):
    """A real worker on Redis for the block only (the billing runs around it stay in-process)."""

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "result_backend")}
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False, result_backend=None)
    reset_pool()
    app.control.purge()  # messages an interrupted earlier run left in the test broker
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield app
    finally:
        app.conf.update(**saved)
        reset_pool()


def wait_for(condition, seconds: float = 90) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.django_db(transaction=True)
def test_nightly_sync_through_redis_then_the_next_ci_prorates_the_change(settings):
    settings.RMM_SYNC_TIMEOUT_SECONDS = 10  # a stalled fetch becomes a failed run well within the wait
    today = utc_date(timezone.now())
    month = Period.of(today)
    partner = PartnerFactory(slug="keystone", name="Keystone MSP", billing_emails="")  # no invoice emails
    acme = CustomerFactory(partner=partner, slug="acme", rmm_organization="ACME")
    service = ServiceFactory(partner=partner, customer=acme, code="agents", name="Agents", method=Method.PER_ASSET,
                             unit_price=Money("10.00", "USD"), start_date=month.previous().first,
                             notification_emails="ops@keystone.example")
    inventory_apply(partner=partner, as_of=month.previous().first, actor=Actor(label="test"), agents={
        f"acme-{i}": AgentRow(f"acme-{i}", f"PC-{i}", "ACME", "WS") for i in range(1, 4)})
    billing_run(through=today)  # last month's and this month's CIs, at 3 units

    with StubRmm() as rmm:
        RmmIntegration.objects.create(partner=partner, kind="json", base_url=rmm.url, api_token=TOKEN)
        rmm.account(TOKEN, [agent(f"acme-{i}", "ACME", "WS") for i in range(1, 6)])
        with redis_worker(settings):
            sync_inventories_task.delay()
            assert wait_for(lambda: SyncRun.objects.exclude(status=SyncStatus.RUNNING).exists()), \
                f"no sync finished: {list(SyncRun.objects.values('status', 'started_at', 'error'))}"
            assert wait_for(lambda: UnitChangeNotice.objects.filter(emailed_at__isnull=False).exists()), \
                f"the unit change email never left: {list(SyncRun.objects.values('status', 'error'))}, " \
                f"{list(UnitChangeNotice.objects.values())}"
        # read twice, until two reads agree (the feed's pages are numbered: common.OffsetPaged)
        assert rmm.pages_served(TOKEN) == [f"/api/v1/agents?page={n}" for n in (1, 2, 3)] * 2

    run = SyncRun.objects.get()
    assert (run.status, run.trigger, run.as_of, run.added, run.error) == (SyncStatus.OK, "nightly", today, 2, "")
    in_force = AgentPresence.objects.filter(partner=partner, present_until__isnull=True)
    assert sorted(in_force.values_list("agent__agent_id", "present_from")) == [
        *[(f"acme-{i}", month.previous().first) for i in range(1, 4)], ("acme-4", today), ("acme-5", today)]
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["ops@keystone.example"], f"[Keystone MSP] Agents: RMM units 3 -> 5 from {today}")]

    next_ci = month.next().first
    billing_run(through=next_ci)
    lines = InvoiceLine.objects.filter(invoice__issue_date=next_ci, service=service).order_by("line_type")
    days_left = (month.last - today).days + 1
    expected = quantize_money(Decimal(2) * Decimal("10.00") * days_left / month.days, "USD")
    assert [(line.line_type, line.period, line.quantity, line.effective_date, line.amount) for line in lines] == [
        ("proration", str(month), Decimal(2), today, expected),
        ("recurring", str(month.next()), Decimal(5), None, Decimal("50.00")),
    ]

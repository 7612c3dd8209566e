"""Review of the scheduled jobs and their workers as an operator runs them (H8): late and repeated deliveries,
a database or SMTP server that stalls or blinks, the beat's clock, and what the admin shows.

Tasks run in-process (eager) here, with dates set by time_machine; a late delivery is a task run on a later
day than the one its arguments were queued with, as a worker restarted after an outage runs what Redis kept.
tests/test_review_jobs.py, tests/test_broker.py and invoicing/tests/test_scheduled_jobs.py are not repeated.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import socket
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.mail import get_connection
from django.db import OperationalError, connection
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry
from djmoney.money import Money
from kombu import pools

import metering.sync as sync_module
from billing.celery import app
from billing.core.actor import Actor
from billing.core.periods import utc_date
from invoicing.models import BillingRun, Invoice
from invoicing.rebilling.invoices import customer_invoice_emails_enqueue
from invoicing.services import run as run_module
from invoicing.tasks import bill_partners_task, run_daily_billing_task
from metering.models import AgentPresence, RmmIntegration, SyncRun, SyncStatus
from metering.services import AgentRow, inventory_apply
from metering.sync import inventory_sync
from metering.tasks import sync_partner_inventory_task
from metering.tests.rmm_stub import agent
from partners.models import Method
from partners.tests.factories import PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

TOKEN = "keystone-token"


def rmm_partner(rmm, slug: str = "keystone", token: str = TOKEN):
    """A partner whose integration reads the JSON feed of the stub RMM (removal guard off: small inventories)."""
    partner = PartnerFactory(slug=slug, name=f"{slug.title()} MSP")
    RmmIntegration.objects.create(partner=partner, kind="json", base_url=rmm.url, api_token=token,
                                  removal_guard_percent=100)
    return partner


def recorded(partner, as_of: date, agent_ids: list[str]) -> None:
    inventory_apply(partner=partner, as_of=as_of, actor=Actor(label="review"),
                    agents={a: AgentRow(a, f"PC-{a}", "ACME", "") for a in agent_ids})


# --- a nightly sync delivered late ------------------------------------------------------------------------
def test_a_sync_task_delivered_days_late_does_not_backdate_what_it_finds(rmm):
    """billing-rules 3.7: the nightly sync 'fetches the partner's whole inventory ... and applies it as of the
    day it runs (UTC)'; a change takes effect on the date it was detected, never earlier.

    The 02:00 job of 1 May queued the partner's task (as_of 2026-05-01) and the workers died; restarted on
    3 May, the worker runs it. The RMM now has 5 agents where 3 were in force: the 2 new ones were detected on
    3 May. Backdating them to 1 May bills them from the 1st: with May's CI already issued with 3 units, June's
    CI gets a proration of 2 x 10.00 x 31/31 = 20.00 instead of 2 x 10.00 x 29/31 = 18.71."""
    partner = rmm_partner(rmm)
    ServiceFactory(partner=partner, code="agents", method=Method.PER_ASSET, unit_price=Money("10.00", "USD"),
                   start_date=date(2026, 4, 1))
    recorded(partner, date(2026, 4, 1), ["a0", "a1", "a2"])
    rmm.account(TOKEN, [agent(f"a{i}") for i in range(5)])
    with time_machine.travel(datetime(2026, 5, 3, 9, 30, tzinfo=UTC), tick=False):
        sync_partner_inventory_task.apply(args=(partner.pk, "2026-05-01"))
    backdated = AgentPresence.objects.filter(partner=partner, agent__agent_id__in=["a3", "a4"],
                                             present_from__lt=date(2026, 5, 3))
    assert list(backdated.values_list("agent__agent_id", "present_from")) == []


# --- the database blinks while a partner's sync runs ----------------------------------------------------
@pytest.mark.xfail(strict=True, reason="a per-partner sync task that meets a database outage outside the apply "
                                       "(its first query, or recording the failed apply) dies: no retry, and "
                                       "the run is missing or left 'running'")
@pytest.mark.parametrize("when", [
    "as the task starts",
    # a failed save marks the test's own transaction for rollback: this case runs outside one
    pytest.param("after the fetch, for two queries", marks=pytest.mark.django_db(transaction=True)),
])
def test_a_database_blip_during_a_partners_sync_is_retried(rmm, monkeypatch, when):
    """operations 4 (the tasks' table): sync_partner_inventory_task is 'tried again on a transient RMM or
    database fault: RMM_SYNC_RETRIES times'; operations 5: 'a run is ok exactly when its inventory is written'.
    The database goes away for a moment (a PostgreSQL restart: 'server closed the connection unexpectedly'):

    - as the task starts: its first query fails; the task dies with the OperationalError, unretried, and no
      sync run shows it in the admin;
    - after the fetch (minutes of paging), for two queries: the apply fails, which is retryable, but recording
      that failure fails too, so the task dies unretried and its run stays 'running' (until the next night
      calls it 'abandoned: the process ... stopped', which is not what happened).

    Either way the partner is not synced that night. The database answers again at once: a retry would sync."""
    partner = rmm_partner(rmm)
    rmm.account(TOKEN, [agent(f"a{i}") for i in range(3)])
    down = {"queries": 1 if when == "as the task starts" else 0}
    failed = []

    if when != "as the task starts":
        real_connector_for = sync_module.connector_for

        class DropsAfterFetch:
            def __init__(self, connector):
                self.connector = connector

            def fetch_inventory(self, integration):
                rows = self.connector.fetch_inventory(integration)
                down["queries"] = 2  # the connection is lost while the RMM was being read
                return rows

        monkeypatch.setattr(sync_module, "connector_for", lambda i: DropsAfterFetch(real_connector_for(i)))

    def blip(execute, sql, params, many, context):
        if down["queries"]:
            down["queries"] -= 1
            failed.append(sql)
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with time_machine.travel(datetime(2026, 5, 10, 2, 0, 5, tzinfo=UTC), tick=False), \
            connection.execute_wrapper(blip):
        result = sync_partner_inventory_task.apply(args=(partner.pk, "2026-05-10"), throw=False)
    assert failed  # the outage happened
    runs = list(SyncRun.objects.filter(partner=partner).order_by("pk").values_list("status", flat=True))
    assert (result.state, runs[-1:], SyncStatus.RUNNING in runs) == ("SUCCESS", [SyncStatus.OK], False), \
        (result.result, runs)
    assert AgentPresence.objects.filter(partner=partner).count() == 3


# --- what the sync runs list tells the operator -----------------------------------------------------------
def _problem_cells(page: str) -> dict[str, str]:
    """The sync runs list's error cells, by the error text they show."""
    cells = re.findall(r'<td class="field-problem">(.*?)</td>', page, re.S)
    return {re.sub(r"<[^>]+>", "", cell).split(" (retried)")[0].strip(): cell for cell in cells}


def test_the_sync_runs_list_says_retried_only_where_a_retry_follows(client, settings):
    """operations 5: 'In the sync runs list, a transient fault's error is marked (retried)', 'Only the nightly job
    retries: a manual run with such an error is not retried', and with RMM_SYNC_RETRIES = 3 a partner gets at most
    4 tries. An operator reading '(retried)' on the 4th failed attempt, or on a failed Sync now, waits for a retry
    that never comes instead of acting."""
    settings.RMM_SYNC_RETRIES = 3
    partner = PartnerFactory(slug="down")
    integration = RmmIntegration.objects.create(partner=partner, kind="json", base_url="https://rmm.down.example",
                                                api_token="t")
    runs = {"nightly attempt 3": ("nightly", 3), "nightly attempt 4": ("nightly", 4), "manual sync now": ("manual", 1)}
    for error, (trigger, attempt) in runs.items():
        SyncRun.objects.create(partner=partner, integration=integration, as_of=date(2026, 5, 10), trigger=trigger,
                       attempt=attempt, status=SyncStatus.FAILED, retryable=True,
                       error=f"https://rmm.down.example: HTTP 503 on page 1 ({error})")
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")
    client.force_login(admin)
    cells = _problem_cells(client.get(reverse("admin:metering_syncrun_changelist")).content.decode())
    shown = {name: "(retried)" in cell for name in runs for key, cell in cells.items() if f"({name})" in key}
    assert shown == {"nightly attempt 3": True, "nightly attempt 4": False, "manual sync now": False}


# --- the broker down when a run's customer invoices are issued ---------------------------------------------
@pytest.fixture
def unreachable_broker():
    """The production path (not eager) with the broker on a port nothing listens on (as tests/test_broker.py)."""
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url="redis://127.0.0.1:9/0", task_always_eager=False)
    _reset_pool()
    try:
        yield
    finally:
        app.conf.update(**saved)
        _reset_pool()


def _reset_pool():
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


def test_customer_invoice_emails_with_the_broker_down_give_up_at_once_and_log_once(unreachable_broker, caplog):
    """operations 3 (step 7, 'Keep Redis up'): when Redis cannot be reached as a commit's emails are queued, the
    documents stay issued, the failure is logged once for all the invoices of the commit, and the daily job
    sends them (billing-rules 4.10; the partners' own invoices do exactly that, tests/test_broker.py). The
    customer invoices of a rebilling partner (billing-rules 12.5) are queued after the run's commit by
    customer_invoice_emails_enqueue: one broker attempt per invoice, with kombu's publish retries (about 0.6 s
    each against a refused port, a TCP timeout each against a host that is down), and one traceback each. A
    partner with 300 customers holds the billing task for minutes and floods the log with 300 tracebacks."""
    ids = [101, 102, 103]  # issued customer invoices of one commit (the task is never reached)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="invoicing.rebilling"):
        customer_invoice_emails_enqueue(ids)
    took = time.monotonic() - started
    lines = [r.getMessage() for r in caplog.records if r.name == "invoicing.rebilling"]
    assert len(lines) == 1, f"{len(lines)} error lines in {took:.1f} s: {lines}"


# --- time limits: nothing may hold a worker for ever -----------------------------------------------------
class StalledServer:
    """A TCP server that accepts connections and then says nothing (an SMTP relay that hangs, a tarpit) or
    trickles its bytes one at a time (`trickle`: an HTTP answer sent a byte every `every` seconds)."""

    def __init__(self, head: bytes = b"", trickle: bytes = b"", every: float = 0.1):
        self.head, self.trickle, self.every = head, trickle, every
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.trickle:
                threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        try:
            conn.recv(65536)
            conn.sendall(self.head)
            for i in range(len(self.trickle)):
                if self.stop.wait(self.every):
                    return
                conn.sendall(self.trickle[i:i + 1])
            conn.close()
        except OSError:
            pass

    def close(self):
        self.stop.set()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self.sock.close()


def test_a_stalled_smtp_server_does_not_hold_the_worker_for_ever(settings):
    """billing-rules 4.10 and operations 4: an invoice or alert email that fails is tried again (5 times) and
    the 06:00 job sends what never left. That needs the send to fail: with an SMTP relay that accepts the
    connection and never answers (a hung relay, a tarpit), smtplib waits for ever because the settings give no
    EMAIL_TIMEOUT and Celery no task time limit. The worker (prefetch 1) is stuck, holding the invoice's row
    lock (invoice_email_send sends inside its transaction), and the billing and sync jobs queued behind it
    never run. The connection the settings build to such a server must give up on its own."""
    server = StalledServer()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    outcome: list[object] = []

    def send():
        try:
            get_connection("django.core.mail.backends.smtp.EmailBackend", fail_silently=False).open()
            outcome.append("answered")
        except (OSError, smtplib.SMTPException) as exc:
            outcome.append(exc)

    worker = threading.Thread(target=send, daemon=True)
    try:
        worker.start()
        configured = settings.EMAIL_TIMEOUT if getattr(settings, "EMAIL_TIMEOUT", None) else None
        limit = app.conf.task_soft_time_limit or app.conf.task_time_limit
        worker.join(min(60, configured + 2) if configured else 1.5)
        stuck = worker.is_alive()
    finally:
        server.close()  # the server hangs up: the thread ends either way
        worker.join(5)
    assert not stuck or limit, (
        f"the SMTP connection still waits after {configured or 1.5} s (EMAIL_TIMEOUT={configured}, "
        f"task_time_limit={app.conf.task_time_limit}, task_soft_time_limit={app.conf.task_soft_time_limit})")


def test_an_rmm_that_trickles_its_answer_is_cut_off_by_the_request_timeout(settings):
    """operations 2 and 5: RMM_SYNC_TIMEOUT_SECONDS is 'seconds each HTTP request to a REST RMM may take' and
    'each request times out after RMM_SYNC_TIMEOUT_SECONDS' (`…: no answer within 30 s (page N)`, retried).
    httpx's timeout is per socket read, so an answer sent a byte at a time never trips it: with a timeout of
    0.25 s, a 13-byte page sent a byte every 0.05 s takes 0.65 s per read and the sync succeeds after reading
    the feed twice; a 20 MiB page at one byte a second (under the 30 s default) would take 8 months, and no task
    time limit stops it. The request should fail as 'no answer within 0.25 s', retryable."""
    body = b'{"agents":[]}'
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    server = StalledServer(head=head, trickle=body, every=0.05)
    partner = PartnerFactory(slug="slowrmm")
    RmmIntegration.objects.create(partner=partner, kind="json", base_url=f"http://127.0.0.1:{server.port}",
                                  api_token="t", removal_guard_percent=100)
    settings.RMM_SYNC_TIMEOUT_SECONDS = 0.25
    try:
        started = time.monotonic()
        run = inventory_sync(partner=partner, as_of=utc_date(timezone.now()), actor=Actor(label="review"),
                             trigger="nightly")
        took = time.monotonic() - started
    finally:
        server.close()
    assert (run.status, run.retryable) == (SyncStatus.FAILED, True), (run.status, run.error, f"{took:.1f} s")
    assert took < 0.7, f"the request ran {took:.1f} s with a 0.25 s timeout"


# --- things that hold -------------------------------------------------------------------------------------
def test_beat_fires_the_billing_run_at_three_utc_across_a_daylight_saving_change():
    """billing-rules 1 and operations 4: the schedules are crontabs in UTC. On the nights the United States
    (8 March 2026) and Europe (29 March 2026) move their clocks, beat's database scheduler still finds the
    billing run due at 03:00 UTC, not an hour early or late."""
    app.loader.import_default_modules()
    task = PeriodicTask.objects.get(task="invoicing.tasks.run_daily_billing_task")
    for day in (8, 29):
        task.last_run_at = datetime(2026, 3, day - 1, 3, 0, 1, tzinfo=UTC)
        entry = ModelEntry(task, app=app)
        with time_machine.travel(datetime(2026, 3, day, 2, 59, 50, tzinfo=UTC), tick=False):
            due, wait = entry.is_due()
            assert not due and 5 <= wait <= 15
        with time_machine.travel(datetime(2026, 3, day, 3, 0, 1, tzinfo=UTC), tick=False):
            assert entry.is_due()[0]


def flat_partners(*slugs: str) -> None:
    for slug in slugs:
        partner = PartnerFactory(slug=slug)
        ServiceFactory(partner=partner, code="support", method=Method.FLAT,
                       unit_price=Money(Decimal("100.00"), "USD"), start_date=date(2026, 3, 1))


def test_catch_up_after_days_of_downtime_bills_each_month_once_with_gapless_numbers():
    """billing-rules 4.9 (it catches up; idempotent) and 4.2: beat and the workers were down from 28 April to
    4 May. The first daily job after the restart issues the May CI dated 1 May for each partner; the same job
    delivered again (a second beat tick kept by Redis) issues nothing; numbers stay gapless."""
    flat_partners("alpha", "bravo")
    with time_machine.travel(datetime(2026, 4, 27, 3, tzinfo=UTC), tick=False):
        run_daily_billing_task()
    before = set(Invoice.objects.values_list("number", flat=True))
    assert len(before) == 4  # March and April, two partners
    with time_machine.travel(datetime(2026, 5, 4, 3, tzinfo=UTC), tick=False):
        run_daily_billing_task()
        run_daily_billing_task()
    may = Invoice.objects.exclude(number__in=before)
    assert sorted((i.partner.slug, i.issue_date, i.total) for i in may) == [
        ("alpha", date(2026, 5, 1), Decimal("100.00")), ("bravo", date(2026, 5, 1), Decimal("100.00"))]
    numbers = sorted(int(n.split("-")[1]) for n in Invoice.objects.values_list("number", flat=True))
    assert numbers == list(range(1, 7))


def test_a_billing_task_that_meets_a_database_outage_is_retried_and_bills_once(monkeypatch):
    """operations 4: bill_partners_task is tried again on a database outage; billing-rules 4.9: nothing twice.
    The first try's partner transaction fails with an OperationalError; the retry bills it, once."""
    flat_partners("alpha")
    real = run_module._partners_bill
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    monkeypatch.setattr(run_module, "_partners_bill", flaky)
    partner_id = PartnerFactory(slug="alpha").pk
    with time_machine.travel(datetime(2026, 5, 1, 3, tzinfo=UTC), tick=False):
        result = bill_partners_task.apply(args=([partner_id], "2026-05-01"), throw=False)
    assert result.state == "SUCCESS", result.result
    assert sorted(Invoice.objects.values_list("number", flat=True)) == ["CI-0001", "CI-0002", "CI-0003"]
    assert list(BillingRun.objects.order_by("pk").values_list("status", flat=True)) == ["failed", "succeeded"]

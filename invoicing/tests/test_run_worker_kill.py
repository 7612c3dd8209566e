"""A Celery worker killed while it bills a partner: PostgreSQL and Redis, as in CI.

The daily job's fan-out (one bill_partners_task per partner, as BILLING_TASK_PARTNERS=1 queues it)
is queued to Redis and a real worker process (`celery worker --pool solo`) bills the partners in
turn. As in test_billing_kill.py, a trigger makes charlie's transaction wait on an advisory lock the
test holds, after charlie has written lines and taken numbers; the test then kills the worker with
SIGKILL. PostgreSQL rolls charlie back; alpha and bravo stand. A new worker bills delta, whose task
was still queued; charlie's task died unacknowledged with the worker, and the next fan-out (what the
next daily run does) bills it. The result equals one clean run: the same exports, gapless numbers,
nothing twice.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from celery import group
from django.db import models, transaction

from billing.celery import app
from invoicing.models import Invoice, InvoiceState
from invoicing.services import billing_run
from invoicing.tasks import BILLING_QUEUE, bill_partners_task
from invoicing.tests.test_run_faults import SLUGS, THROUGH, WorkerDied, build, exports
from invoicing.tests.test_run_kill import (
    ACTOR,
    PAUSE_KEY,
    assert_nothing_of,
    database_url,
    no_pause,
    numbers_taken_now,
    pause_charlie_at_its_second_invoice,
    sql,
    wait_for,
    waiting_backend,
)
from metering.tests.test_sync_worker import reset_pool
from partners.models import AuditLog, Partner

REDIS_URL = os.environ.get("REDIS_TEST_URL", "")
PROJECT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set REDIS_TEST_URL (CI does)"),
]


def numbered_by_document(exported: dict[tuple, list[str]]) -> dict[tuple, list[str]]:
    """The exports with each invoice number replaced by its partner, kind and date: delta, billed before
    charlie here, takes the numbers a clean run gives charlie (both stay gapless, checked apart)."""
    names = {number: f"{slug}/{kind}/{day}/{pk}" for number, slug, kind, day, pk in
             Invoice.objects.exclude(number=None).values_list("number", "partner__slug", "kind", "issue_date", "pk")}
    order = {pk: n for n, pk in enumerate(Invoice.objects.order_by("partner__slug", "issue_date", "pk")
                                          .values_list("pk", flat=True))}
    pattern = re.compile(r"\b(?:CI|INV|CN)-\d{4}\b")

    def name(match):
        slug, kind, day, pk = names[match.group()].split("/")
        return f"{slug}/{kind}/{day}/{order[int(pk)]}"

    return {report: [rows[0], *sorted(pattern.sub(name, row) for row in rows[1:])]
            for report, rows in exported.items()}


def worker_log(tmp_path: Path) -> Path:
    return tmp_path / "worker.log"


def start_worker(tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "billing.settings.base",
           "CELERY_BROKER_URL": REDIS_URL, "CELERY_TASK_ALWAYS_EAGER": "false", "MEDIA_ROOT": str(tmp_path / "media"),
           "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "billing", "worker", "--pool", "solo", "-Q", "billing",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "warning"],
        cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=worker_log(tmp_path).open("a"))


def charlie_waiting(worker: subprocess.Popen, tmp_path: Path) -> int:
    """The server process of charlie's transaction once it waits on the lock, or a failure that says what
    the worker wrote and what was billed (for a run that hangs)."""

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.poll() is None:
        backend = waiting_backend()
        if backend:
            return backend
        time.sleep(0.2)
    billed = dict(Invoice.objects.values_list("partner__slug").annotate(n=models.Count("id")))
    log = worker_log(tmp_path).read_text()[-4000:]
    pytest.fail(f"charlie's task never waited on the lock (worker exit {worker.poll()}); invoices {billed}; "
                f"queue {app.conf.broker_url}; worker log:\n{log}")


def fan_out() -> None:
    """What the daily job queues with BILLING_TASK_PARTNERS=1: a batch of one partner per task, in order."""

    ids = list(Partner.objects.order_by("slug").values_list("pk", flat=True))
    group(bill_partners_task.s([pk], THROUGH.isoformat()) for pk in ids).apply_async(queue=BILLING_QUEUE)


@pytest.fixture
def redis_broker():
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "result_backend")}
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False, result_backend=None)
    reset_pool()
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    try:
        yield broker
    finally:
        broker.flushdb()  # charlie's unacknowledged message must not come back in a later test
        app.conf.update(**saved)
        reset_pool()


def stop(worker: subprocess.Popen | None) -> None:
    if worker is not None and worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=30)


def test_a_worker_killed_inside_a_partner_leaves_no_partial_invoice_and_the_next_fan_out_completes(
        cli, tmp_path, redis_broker):
    for slug in SLUGS:
        build(slug, emails=False)
    with pytest.raises(WorkerDied), transaction.atomic():  # the clean run, to compare with, rolled back
        assert len(billing_run(through=THROUGH, actor=ACTOR)) == 24
        clean = numbered_by_document(exports(cli))
        raise WorkerDied("roll the clean run back")

    worker = second = None
    pause_charlie_at_its_second_invoice(Partner.objects.get(slug="charlie"))
    try:
        sql("SELECT pg_advisory_lock(%s)", [PAUSE_KEY])
        worker = start_worker(tmp_path)
        fan_out()
        backend = charlie_waiting(worker, tmp_path)
        assert Invoice.objects.filter(partner__slug__in=["alpha", "bravo"], state=InvoiceState.ISSUED).count() == 12
        assert_nothing_of("charlie")

        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL
        sql("SELECT pg_advisory_unlock(%s)", [PAUSE_KEY])
        wait_for(lambda: not sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backend]),
                 "the killed worker's session to end")
        assert_nothing_of("charlie")
        assert numbers_taken_now() == {"CI": 8, "INV": 4}  # charlie's CI-0009 and CI-0010 given back
        no_pause()

        second = start_worker(tmp_path)  # delta's task was still queued: the new worker bills it
        wait_for(lambda: Invoice.objects.filter(partner__slug="delta").count() == 6, "delta to be billed",
                 seconds=120, process=second)
        assert_nothing_of("charlie")  # its task died with the worker, unacknowledged
        fan_out()  # the next daily run
        wait_for(lambda: Invoice.objects.filter(partner__slug="charlie").count() == 6, "charlie to be billed",
                 seconds=120, process=second)
        wait_for(lambda: redis_broker.llen("billing") == 0, "the queue to drain", process=second)
    finally:
        stop(worker)
        stop(second)
        no_pause()

    assert numbered_by_document(exports(cli)) == clean
    for prefix, count in (("CI", 16), ("INV", 8)):
        assert sorted(Invoice.objects.filter(kind=prefix).values_list("number", flat=True)) == [
            f"{prefix}-{n:04d}" for n in range(1, count + 1)]
    assert AuditLog.objects.filter(action="invoice.issue").count() == 24
    assert billing_run(through=THROUGH, actor=ACTOR) == []

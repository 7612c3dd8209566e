"""A billing process killed in the middle of a partner. PostgreSQL only.

A real `python manage.py run_billing` runs in a subprocess against the test database (its data committed:
a transactional test). The test makes it stop at a known point with no hook in the product: a trigger
on the audit table takes a PostgreSQL advisory lock that the test holds, once the third partner
(charlie) has written and numbered its second invoice. The process then waits inside charlie's open
transaction, with lines written and numbers taken; the test checks that, kills it with SIGKILL, and
lets PostgreSQL end the orphaned session, which rolls the transaction back.

The run bills partners in batches of two (BILLING_BATCH_PARTNERS): charlie's transaction is also
delta's. Then: alpha and bravo (their batch committed before) stand, charlie and delta have nothing, no
number was consumed; a second `run_billing` completes, and the result equals one clean run (the same exports,
numbers gapless, one CI per partner and month, nothing twice). Partners as in test_billing_faults.py,
without billing emails (the subprocess renders no PDF).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import OperationalError, connection, transaction

from billing.core.actor import Actor
from invoicing.models import ChildInvoice, Invoice, InvoiceLine, InvoiceSequence, InvoiceState
from invoicing.services import billing_run
from invoicing.tests.test_run_faults import SLUGS, THROUGH, WorkerDied, build, exports
from partners.models import AuditLog, Partner

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PROJECT = Path(__file__).resolve().parents[2]
PAUSE_KEY = 8_000_001  # the advisory lock the test holds while the process must wait
ACTOR = Actor(label="kill test")


def database_url() -> str:
    """The pytest test database (test_<name>), for the subprocess's DATABASE_URL."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="") + (f":{quote(s['PASSWORD'], safe='')}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def run_billing(tmp_path: Path) -> subprocess.Popen:
    # batches of two partners: alpha and bravo commit together, then charlie and delta are billed in one
    # transaction, which the kill cuts off (a killed batch leaves nothing of any of its partners)
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "billing.settings.test",
           "MEDIA_ROOT": str(tmp_path / "media"), "BILLING_BATCH_PARTNERS": "2"}
    return subprocess.Popen([sys.executable, "manage.py", "run_billing", "--through", THROUGH.isoformat()],
                            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sql(statement: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def pause_charlie_at_its_second_invoice(charlie: Partner) -> None:
    """A trigger: charlie's second `invoice.issue` audit row waits for the advisory lock (its invoices'
    lines are written and their numbers taken by then, all inside its one transaction)."""
    table = AuditLog._meta.db_table
    sql(f"""
        CREATE FUNCTION billing_faults_pause() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.action = 'invoice.issue' AND NEW.partner_id = {int(charlie.pk)} AND (
                SELECT count(*) FROM {table} WHERE action = 'invoice.issue' AND partner_id = NEW.partner_id
            ) >= 2 THEN
                PERFORM pg_advisory_xact_lock({PAUSE_KEY});
            END IF;
            RETURN NEW;
        END $$""")
    sql(f"CREATE TRIGGER billing_faults_pause AFTER INSERT ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION billing_faults_pause()")


def no_pause() -> None:
    sql(f"DROP TRIGGER IF EXISTS billing_faults_pause ON {AuditLog._meta.db_table}")
    sql("DROP FUNCTION IF EXISTS billing_faults_pause()")
    sql("SELECT pg_advisory_unlock_all()")


def wait_for(condition, what: str, seconds: float = 60, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"run_billing ended ({process.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def waiting_backend() -> int | None:
    rows = sql("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
               "AND wait_event_type = 'Lock' AND wait_event = 'advisory'")
    return rows[0][0] if rows else None


def numbers_taken_now() -> dict[str, int]:
    return dict(InvoiceSequence.objects.filter(last__gt=0).values_list("prefix", "last"))


def assert_nothing_of(slug: str) -> None:
    assert not Invoice.objects.filter(partner__slug=slug).exists()
    assert not InvoiceLine.objects.filter(invoice__partner__slug=slug).exists()
    assert not ChildInvoice.objects.filter(invoice__partner__slug=slug).exists()
    assert not AuditLog.objects.filter(partner__slug=slug, action__startswith="invoice.").exists()


def test_a_billing_process_killed_inside_a_partner_leaves_no_partial_invoice_and_the_rerun_completes(
        cli, tmp_path):
    for slug in SLUGS:
        build(slug, emails=False)
    with pytest.raises(WorkerDied), transaction.atomic():  # the clean run, to compare with, rolled back
        assert len(billing_run(through=THROUGH, actor=ACTOR)) == 24
        clean = exports(cli)
        raise WorkerDied("roll the clean run back")
    assert not Invoice.objects.exists()

    process = None
    pause_charlie_at_its_second_invoice(Partner.objects.get(slug="charlie"))
    try:
        sql("SELECT pg_advisory_lock(%s)", [PAUSE_KEY])
        process = run_billing(tmp_path)
        backend = wait_for(waiting_backend, "charlie's transaction to wait on the lock", process=process)

        # the process is inside charlie's transaction: alpha and bravo committed, charlie's rows invisible
        assert Invoice.objects.filter(partner__slug__in=["alpha", "bravo"], state=InvoiceState.ISSUED).count() == 12
        assert_nothing_of("charlie")
        assert numbers_taken_now() == {"CI": 8, "INV": 4}
        # ... yet it has written lines and holds the numbering row (it took CI-0009 to CI-0016)
        locked = sql("SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                     "WHERE l.pid = %s AND l.mode = 'RowExclusiveLock'", [backend])
        assert {InvoiceLine._meta.db_table, Invoice._meta.db_table} <= {name for (name,) in locked}
        with pytest.raises(OperationalError, match="could not obtain lock"), transaction.atomic():
            sql(f"SELECT last FROM {InvoiceSequence._meta.db_table} WHERE prefix = 'CI' FOR UPDATE NOWAIT")

        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
        sql("SELECT pg_advisory_unlock(%s)", [PAUSE_KEY])
        # its server session finds the client gone and ends, rolling the transaction back
        wait_for(lambda: not sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backend]),
                 "the killed process's session to end")
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        no_pause()

    assert Invoice.objects.filter(partner__slug__in=["alpha", "bravo"], state=InvoiceState.ISSUED).count() == 12
    assert_nothing_of("charlie")
    assert_nothing_of("delta")
    assert numbers_taken_now() == {"CI": 8, "INV": 4}  # the numbers of charlie and delta given back

    rerun = run_billing(tmp_path)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert out.strip().splitlines()[-1] == "12 invoice(s) issued"

    assert exports(cli) == clean
    for prefix, count in (("CI", 16), ("INV", 8)):
        assert sorted(Invoice.objects.filter(kind=prefix).values_list("number", flat=True)) == [
            f"{prefix}-{n:04d}" for n in range(1, count + 1)]
    assert numbers_taken_now() == {"CI": 16, "INV": 8}
    for slug in SLUGS:
        assert sorted(Invoice.objects.filter(partner__slug=slug, kind="CI").values_list("month", flat=True)) == [
            "2026-03", "2026-04", "2026-05", "2026-06"]
    assert AuditLog.objects.filter(action="invoice.issue").count() == 24
    assert billing_run(through=THROUGH, actor=ACTOR) == []
    assert billing_run(through=date(2026, 6, 30), actor=ACTOR) == []

"""The scheduled jobs: beat entries created by migrations, the daily billing fan-out in batches of partners,
and the daily payment-status refresh (run in-process here; tests/test_broker.py covers Redis)."""

from datetime import UTC, datetime

import pytest
import time_machine
from django_celery_beat.models import PeriodicTask

from billing.celery import app
from invoicing import tasks
from invoicing.models import Invoice, PaymentStatus
from invoicing.tasks import refresh_payment_statuses_task, run_daily_billing_task
from tests.examples import replay

pytestmark = pytest.mark.django_db


def test_beat_entries_exist_and_name_real_tasks():
    app.loader.import_default_modules()
    entries = dict(PeriodicTask.objects.values_list("task", "enabled"))
    for task in ("invoicing.tasks.run_daily_billing_task", "invoicing.tasks.refresh_payment_statuses_task",
                 "partners.tasks.evaluate_utilization_alerts_task"):
        assert entries.get(task) is True
        assert task in app.tasks


def test_daily_billing_fans_out_per_partner_and_is_idempotent(data_dir):
    replay(data_dir / "seat-days-basic", upto_billing=False)
    replay(data_dir / "per-host-and-licenses", upto_billing=False)
    with time_machine.travel(datetime(2026, 5, 1, 0, 30, tzinfo=UTC), tick=False):
        assert run_daily_billing_task() == 2
        numbers = sorted(Invoice.objects.values_list("number", flat=True))
        assert run_daily_billing_task() == 2
    assert sorted(Invoice.objects.values_list("number", flat=True)) == numbers
    # brightdesk: April and May; tidewater: March, April and May, and the hosting first month
    assert numbers == ["CI-0001", "CI-0002", "CI-0003", "CI-0004", "CI-0005", "INV-0001"]


@pytest.mark.parametrize("per_task", [1, 25])
def test_daily_billing_gives_each_task_a_batch_of_partners(data_dir, settings, monkeypatch, per_task):
    replay(data_dir / "seat-days-basic", upto_billing=False)
    replay(data_dir / "per-host-and-licenses", upto_billing=False)
    settings.BILLING_TASK_PARTNERS = per_task
    batches = []
    real = tasks.bill_partners_task.s

    def signature(ids, through, requested_by=""):
        batches.append(ids)
        return real(ids, through, requested_by)

    monkeypatch.setattr(tasks.bill_partners_task, "s", signature)
    with time_machine.travel(datetime(2026, 5, 1, 0, 30, tzinfo=UTC), tick=False):
        assert run_daily_billing_task() == 2
    assert [len(batch) for batch in batches] == ([1, 1] if per_task == 1 else [2])
    assert Invoice.objects.filter(kind="CI").count() == 5  # the same invoices either way


def test_daily_refresh_marks_unpaid_invoices_overdue(data_dir):
    """Issued on 1 June, CI-0001 and CI-0002 are past due at once; CI-0003 becomes overdue after 1 July."""
    with time_machine.travel(datetime(2026, 6, 1, 12, tzinfo=UTC), tick=False):
        replay(data_dir / "seat-days-basic")
    statuses = dict(Invoice.objects.values_list("number", "payment_status"))
    assert statuses == {"CI-0001": PaymentStatus.OVERDUE, "CI-0002": PaymentStatus.OVERDUE,
                        "CI-0003": PaymentStatus.OPEN}
    with time_machine.travel(datetime(2026, 7, 1, 6, tzinfo=UTC), tick=False):
        assert refresh_payment_statuses_task() == 0  # due today: not yet overdue
    with time_machine.travel(datetime(2026, 7, 2, 6, tzinfo=UTC), tick=False):
        assert refresh_payment_statuses_task() == 1
    assert Invoice.objects.get(number="CI-0003").payment_status == PaymentStatus.OVERDUE

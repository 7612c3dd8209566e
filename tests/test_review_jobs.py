"""Review of the scheduled jobs as a production operator sees them (eager tasks, dates by time_machine)."""

from __future__ import annotations

import contextlib
import smtplib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from django.core.mail import EmailMessage
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from invoicing.models import BillingRun, Invoice
from invoicing.rebilling.models import CustomerBillingProfile, CustomerInvoice, RebillingProfile
from invoicing.tasks import refresh_payment_statuses_task, run_daily_billing_task
from partners import services as partner_services
from partners.models import Customer, Partner, UtilizationAlert
from partners.tasks import evaluate_utilization_alerts_task
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    SeatPurchaseFactory,
    ServiceFactory,
)
from tests.examples import replay

pytestmark = pytest.mark.django_db

REBILL = Path(__file__).resolve().parent.parent / "invoicing" / "rebilling" / "tests" / "data" / "company-a"


# --- the 1st of a month: 23:59:59 on the last day vs 00:00:01 on the 1st ------------------------------------
def _snapshot():
    return sorted(Invoice.objects.values_list("number", "kind", "issue_date", "total"))


def test_boundary_runs_equal_one_run_after_midnight(data_dir):
    replay(data_dir / "seat-days-basic", upto_billing=False)
    with time_machine.travel(datetime(2026, 4, 30, 23, 59, 59, tzinfo=UTC), tick=False):
        run_daily_billing_task()
    before_midnight = _snapshot()
    assert all(issue_date.month == 4 for _, _, issue_date, _ in before_midnight)
    with time_machine.travel(datetime(2026, 5, 1, 0, 0, 1, tzinfo=UTC), tick=False):
        run_daily_billing_task()
        run_daily_billing_task()  # a beat tick delivered twice
    after = _snapshot()
    assert len({n for n, *_ in after}) == len(after)
    assert any(issue_date.month == 5 for _, _, issue_date, _ in after)


def test_a_request_time_zone_does_not_move_the_billing_day(data_dir):
    """A process whose active time zone is not UTC (e.g. activated by middleware) still bills the UTC day."""
    replay(data_dir / "seat-days-basic", upto_billing=False)
    with time_machine.travel(datetime(2026, 5, 1, 3, 0, tzinfo=UTC), tick=False):
        timezone.activate("America/Los_Angeles")  # 20:00 on 30 April there
        try:
            run_daily_billing_task()
        finally:
            timezone.deactivate()
    assert any(issue_date.isoformat() == "2026-05-01" for _, _, issue_date, _ in _snapshot())


# --- invoice emails: a failing SMTP server ------------------------------------------------------------------
def _smtp_down(*args, **kwargs):
    raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def test_our_invoice_email_lost_to_smtp_is_sent_by_the_daily_job_once(data_dir, mailoutbox, committed,
                                                                       monkeypatch):
    replay(data_dir / "seat-days-basic", upto_billing=False)
    Partner.objects.update(billing_emails="ap@brightdesk.example")
    with monkeypatch.context() as m:
        m.setattr(EmailMessage, "send", _smtp_down)
        with committed(), time_machine.travel(datetime(2026, 5, 1, 3, tzinfo=UTC), tick=False):
            run_daily_billing_task()
    issued = Invoice.objects.issued()
    assert issued.exists() and not issued.filter(emailed_at__isnull=False).exists()
    assert not mailoutbox
    with time_machine.travel(datetime(2026, 5, 1, 6, tzinfo=UTC), tick=False):
        refresh_payment_statuses_task()
        refresh_payment_statuses_task()  # delivered twice
    numbers = sorted(issued.values_list("number", flat=True))
    sent = sorted(n for m in mailoutbox for n in numbers if f"invoice {n}," in m.subject)
    assert sent == numbers  # each once
    assert not Invoice.objects.issued().filter(emailed_at__isnull=True).exists()


@pytest.fixture
def lakeside(cli):
    with time_machine.travel(datetime(2026, 3, 1, 6, tzinfo=UTC), tick=False):
        for kind, name in [("partners", "partners.csv"), ("customers", "customers.csv"),
                           ("services", "services.csv"), ("resale-prices", "resale-prices.csv")]:
            result = cli("import_csv", kind, str(REBILL / name))
            assert result.status == 0, result.err
    partner = Partner.objects.get(slug="lakeside")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="LAKE",
                                    legal_name="Lakeside Networks LLC", address="1 Shore Road\nDuluth MN 55802",
                                    tax_id="US-41-1234567", payment_terms_days=30, email_invoices=True,
                                    email="accounts@lakeside.example")
    CustomerBillingProfile.objects.create(customer=Customer.objects.get(slug="company-a"),
                                          legal_name="Company A Inc.", address="9 Hill Street\nSt Paul MN",
                                          tax_id="US-77-7654321", billing_emails="ap@company-a.example")
    return partner


def test_customer_invoice_email_lost_to_smtp_is_sent_later(cli, lakeside, mailoutbox, committed, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(EmailMessage, "send", _smtp_down)
        with committed(), time_machine.travel(datetime(2026, 3, 10, 6, tzinfo=UTC), tick=False):
            result = cli("run_billing", "--through", "2026-03-10")
            assert result.status == 0, result.err
    invoice = CustomerInvoice.objects.get(number="LAKE-0001")
    assert invoice.emailed_at is None and not mailoutbox
    # the SMTP server is back; the daily jobs run on the following days
    for day in (10, 11, 12):
        with committed(), time_machine.travel(datetime(2026, 3, day, 6, 0, 5, tzinfo=UTC), tick=False):
            refresh_payment_statuses_task()
            evaluate_utilization_alerts_task()
    assert [m.to for m in mailoutbox if "LAKE-0001" in m.subject] == [["ap@company-a.example"]]


def test_a_customer_invoice_unsent_for_more_than_a_week_is_left_to_the_clerk(cli, lakeside, mailoutbox, committed,
                                                                            monkeypatch):
    """The catch-up sends the customer invoices of the last 7 days only (invoicing.rebilling.invoices
    UNSENT_EMAIL_DAYS): a partner turning the emails on must not mail its customers months-old invoices."""
    with monkeypatch.context() as m:
        m.setattr(EmailMessage, "send", _smtp_down)
        with committed(), time_machine.travel(datetime(2026, 3, 10, 6, tzinfo=UTC), tick=False):
            assert cli("run_billing", "--through", "2026-03-10").status == 0
    with committed(), time_machine.travel(datetime(2026, 3, 18, 6, 0, 5, tzinfo=UTC), tick=False):
        refresh_payment_statuses_task()
    assert not [m for m in mailoutbox if "LAKE-0001" in m.subject]
    assert CustomerInvoice.objects.get(number="LAKE-0001").emailed_at is None


# --- utilization alerts -------------------------------------------------------------------------------------
def _full_service(slug: str):
    partner = PartnerFactory(slug=slug, billing_emails=f"billing@{slug}.example")
    service = ServiceFactory(partner=partner, committed_quantity=10)
    customer = CustomerFactory(partner=partner)
    for _ in range(10):
        SeatAssignmentFactory(member=MemberFactory(customer=customer),
                              assigned_at=datetime(2026, 4, 1, 9, tzinfo=UTC))
    return service


def test_an_open_alert_is_not_sent_again_every_day(mailoutbox, committed):
    _full_service("acme")
    with committed(), time_machine.travel(datetime(2026, 4, 10, 0, 15, tzinfo=UTC), tick=False):
        evaluate_utilization_alerts_task()
    assert len(mailoutbox) == 1
    for day in (11, 12, 13):
        with committed(), time_machine.travel(datetime(2026, 4, day, 0, 15, tzinfo=UTC), tick=False):
            evaluate_utilization_alerts_task()
            evaluate_utilization_alerts_task()  # delivered twice
    assert len(mailoutbox) == 1
    assert UtilizationAlert.objects.count() == 1


def test_one_refused_alert_does_not_block_the_other_pending_alerts(mailoutbox, monkeypatch):
    # both alerts are raised while the broker is down: recorded, unsent
    monkeypatch.setattr(partner_services, "_enqueue_alert_email", lambda pk: None)
    with time_machine.travel(datetime(2026, 4, 10, 9, tzinfo=UTC), tick=False):
        good = _full_service("good")
        partner_services.alerts_evaluate(partner_ids=[good.partner_id])
    with time_machine.travel(datetime(2026, 4, 10, 10, tzinfo=UTC), tick=False):
        bad = _full_service("bad")
        partner_services.alerts_evaluate(partner_ids=[bad.partner_id])
    assert UtilizationAlert.objects.filter(emailed_at__isnull=True).count() == 2
    real = partner_services.send_mail

    def send_mail(subject, body, sender, recipients, **kw):
        if any("bad" in r for r in recipients):
            raise smtplib.SMTPRecipientsRefused({r: (550, b"mailbox unavailable") for r in recipients})
        return real(subject, body, sender, recipients, **kw)

    monkeypatch.setattr(partner_services, "send_mail", send_mail)
    with (time_machine.travel(datetime(2026, 4, 11, 0, 15, tzinfo=UTC), tick=False),
          contextlib.suppress(smtplib.SMTPException)):
        evaluate_utilization_alerts_task()
    assert UtilizationAlert.objects.get(service=good).emailed_at is not None
    assert [m.to for m in mailoutbox] == [["billing@good.example"]]


def test_alert_email_retried_after_smtp_outage_is_sent_once(mailoutbox, committed, monkeypatch):
    real = partner_services.send_mail
    monkeypatch.setattr(partner_services, "send_mail", _smtp_down)
    with committed(), time_machine.travel(datetime(2026, 4, 10, 9, tzinfo=UTC), tick=False):
        service = _full_service("acme")
        partner_services.alerts_evaluate(partner_ids=[service.partner_id])
    alert = UtilizationAlert.objects.get()
    assert alert.emailed_at is None
    monkeypatch.setattr(partner_services, "send_mail", real)
    with committed(), time_machine.travel(datetime(2026, 4, 11, 0, 15, tzinfo=UTC), tick=False):
        evaluate_utilization_alerts_task()
        evaluate_utilization_alerts_task()
    assert len(mailoutbox) == 1
    alert.refresh_from_db()
    assert alert.emailed_at is not None


def test_purchase_taking_effect_on_the_1st_clears_the_alert_at_0015(mailoutbox, committed):
    service = _full_service("acme")
    with committed(), time_machine.travel(datetime(2026, 4, 10, 0, 15, tzinfo=UTC), tick=False):
        evaluate_utilization_alerts_task()
    SeatPurchaseFactory(service=service, seats=10, purchased_at=datetime(2026, 4, 20, 16, tzinfo=UTC))
    with committed(), time_machine.travel(datetime(2026, 4, 30, 23, 59, 59, tzinfo=UTC), tick=False):
        evaluate_utilization_alerts_task()
    assert UtilizationAlert.objects.get().cleared_at is None  # the purchase is not in force yet
    with committed(), time_machine.travel(datetime(2026, 5, 1, 0, 15, tzinfo=UTC), tick=False):
        evaluate_utilization_alerts_task()
    assert UtilizationAlert.objects.get().cleared_at is not None
    assert len(mailoutbox) == 1



def test_beat_schedule_matches_operations_section_4():
    rows = {t.task: (t.name, t.crontab.hour, t.crontab.minute, str(t.crontab.timezone), t.enabled)
            for t in PeriodicTask.objects.select_related("crontab")}
    assert rows["partners.tasks.evaluate_utilization_alerts_task"][1:] == ("0", "15", "UTC", True)
    assert rows["metering.tasks.sync_inventories_task"][1:] == ("2", "0", "UTC", True)
    assert rows["invoicing.tasks.run_daily_billing_task"] == (
        "Billing run (daily, a task per batch of partners)", "3", "0", "UTC", True)
    assert rows["invoicing.tasks.refresh_payment_statuses_task"][1:] == ("6", "0", "UTC", True)


def test_the_task_run_is_recorded_for_the_admin(data_dir):
    replay(data_dir / "seat-days-basic", upto_billing=False)
    with time_machine.travel(datetime(2026, 5, 1, 3, tzinfo=UTC), tick=False):
        run_daily_billing_task()
    run = BillingRun.objects.get()
    assert run.source == "task" and run.status == "succeeded" and run.document_count == Invoice.objects.count()
    assert str(run.through) == "2026-05-01" and "billing task" in run.actor_label

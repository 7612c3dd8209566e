"""The admin's billing page (issue 19, item 6): a clerk previews a billing run (drafts, with the true-ups and
first-month prorations they carry, and who would be held), runs it once per form sent, and reads the runs that
went before with what each issued, who started it and which partner failed. `run_billing` and the daily task
record their runs too (`invoicing.services.runs.billing_run_recorded`).

Acme (USD, no tax): seats seat_days 20.00 a seat-month for customer Birch from 1 April 2026 (one seat from 1 April),
billed through 1 May (CI-0001: April on the May CI). Then a seat from 16 April recorded late (a true-up of +10.00
for April on the June CI) and a backup flat 31.00 from 20 May (a first-month INV dated 20 May: 12 of 31 days).
Through 1 June: the June CI (CI-0002) and the backup's first-month INV (INV-0001).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import OperationalError
from django.utils import timezone
from djmoney.money import Money

from billing.core.actor import Actor
from billing.core.periods import utc_date
from invoicing import tasks
from invoicing.choices import InvoiceState, LineType, RunSource, RunStatus
from invoicing.models import BillingRun, CompanyProfile, Invoice, InvoiceLine, InvoiceSequence
from invoicing.services import BillingError, billing_run, billing_run_recorded, run
from partners.models import AuditLog, Method, Partner
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    ServiceFactory,
)
from tests.test_access import AUDITOR, CLERK, _login, admin_url, apply_group_migrations

pytestmark = pytest.mark.django_db
ACTOR = Actor(label="billing page test")
START = admin_url(BillingRun, "start")
LIST = admin_url(BillingRun)
PROFILE = {"legal_name": "Northbridge Billing Ltd", "address": "14 Harbour Street", "tax_id": "GB 123"}


class WorkerDied(Exception):
    pass


def partner_with_history(slug: str = "acme") -> Partner:
    """A partner billed through 1 May whose next run makes a true-up (a seat recorded late) and a first-month
    proration (a service from 20 May)."""
    partner = PartnerFactory(slug=slug, billing_address="1 Main Street")
    customer = CustomerFactory(partner=partner, slug=f"{slug}-birch", name=f"Birch of {slug}")
    ServiceFactory(partner=partner, customer=customer, code=f"{slug}-seats", start_date=date(2026, 4, 1))
    SeatAssignmentFactory(member=MemberFactory(customer=customer, name="ann"),
                          assigned_at=datetime(2026, 4, 1, tzinfo=UTC))
    billing_run(through=date(2026, 5, 1), partner_ids=[partner.pk], actor=ACTOR)
    SeatAssignmentFactory(member=MemberFactory(customer=customer, name="bob"),
                          assigned_at=datetime(2026, 4, 16, tzinfo=UTC))
    ServiceFactory(partner=partner, customer=customer, code=f"{slug}-backup", method=Method.FLAT,
                   unit_price=Money(D("31.00"), "USD"), start_date=date(2026, 5, 20))
    return partner


def flat_partner(slug: str, **fields) -> Partner:
    partner = PartnerFactory(slug=slug, billing_address=fields.pop("billing_address", "1 Main Street"), **fields)
    ServiceFactory(partner=partner, code=f"{slug}-flat", method=Method.FLAT, unit_price=Money(D("10.00"), "USD"),
                   start_date=date(2026, 5, 1))
    return partner


@pytest.fixture
def clerk(client):
    apply_group_migrations()
    return _login(client, CLERK)


@pytest.fixture
def auditor(client):
    apply_group_migrations()
    return _login(client, AUDITOR)


def start(client, *, through="2026-06-01", partner=None, preview=False, token="tok-1"):
    data = {"through": through, "partner": partner.pk if partner else "", "once_token": token,
            "_preview" if preview else "_run": "x"}
    return client.post(START, data)


def issued_numbers() -> list[str]:
    return sorted(Invoice.objects.issued().values_list("number", flat=True))


def fault_for(monkeypatch, slug: str) -> None:
    """Rating a month of `slug` raises (a partner whose billing fails), in a batch and alone."""
    rate = run.rate_partners_month

    def dying(*, partners, **kwargs):
        if slug in {p.slug for p in partners}:
            raise WorkerDied(f"the worker died while rating {slug}")
        return rate(partners=partners, **kwargs)

    monkeypatch.setattr(run, "rate_partners_month", dying)


# --- the page -------------------------------------------------------------------------------------
def test_the_page_says_when_there_are_no_runs_and_offers_the_form(clerk):
    page = clerk.get(LIST)
    text = page.content.decode()
    assert page.status_code == 200
    assert "No billing runs yet" in text
    assert 'name="_preview"' in text and 'name="_run"' in text and 'name="once_token"' in text
    assert page.context["start_form"]["through"].value() == datetime.now(UTC).date()  # today, UTC


def test_a_preview_shows_the_drafts_with_their_true_up_and_first_month_lines_and_issues_nothing(clerk):
    partner = partner_with_history()
    before, sequences = issued_numbers(), list(InvoiceSequence.objects.values_list("prefix", "last"))

    response = start(clerk, preview=True)
    preview = BillingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == admin_url(BillingRun, "change", preview.pk)
    assert preview.draft and preview.status == RunStatus.SUCCEEDED and preview.source == RunSource.ADMIN
    assert preview.started_by == clerk.user and preview.counts == {"CI": 1, "INV": 1}
    assert issued_numbers() == before  # nothing issued, no number taken
    assert list(InvoiceSequence.objects.values_list("prefix", "last")) == sequences
    drafts = Invoice.objects.drafts().filter(partner=partner)
    assert sorted(drafts.values_list("kind", "issue_date")) == [("CI", date(2026, 6, 1)), ("INV", date(2026, 5, 20))]

    page = clerk.get(response["Location"])
    text = page.content.decode()
    assert page.status_code == 200
    assert 'data-line-type="true_up"' in text and 'data-line-type="first_month"' in text
    assert "1 true-up" in text and "1 first-month proration" in text
    true_up = InvoiceLine.objects.get(invoice__in=drafts, line_type=LineType.TRUE_UP)
    assert true_up.amount == D("10.00") and true_up.description in text
    assert "draft #" in text and 'value="Run billing (issue invoices)"' in text


def test_running_issues_and_the_run_page_lists_what_it_issued_and_who_started_it(clerk):
    partner_with_history()
    response = start(clerk)
    billing = BillingRun.objects.get()
    assert response.status_code == 302
    assert not billing.draft and billing.status == RunStatus.SUCCEEDED and billing.started_by == clerk.user
    assert [d["number"] for d in billing.documents] == ["INV-0001", "CI-0002"]  # date order: 20 May, 1 June
    assert billing.counts == {"CI": 1, "INV": 1} and billing.finished_at is not None
    labels = set(AuditLog.objects.filter(action="invoice.issue", object_id__in=[d["id"] for d in billing.documents])
                 .values_list("actor", "actor_label"))
    assert labels == {(clerk.user.pk, clerk.user.username)}  # audited with the clerk's name

    page = clerk.get(response["Location"]).content.decode()
    for number in ("INV-0001", "CI-0002"):
        invoice = Invoice.objects.get(number=number)
        assert f'href="{admin_url(Invoice, "change", invoice.pk)}"' in page
    assert clerk.user.username in page and "succeeded" in page

    listing = clerk.get(LIST).content.decode()
    assert "Run #" in listing and "2 CI" not in listing and "1 CI, 1 INV" in listing


def test_the_form_sent_twice_runs_once(clerk):
    partner_with_history()
    first = start(clerk, token="double-click")
    second = start(clerk, token="double-click")
    assert first.status_code == second.status_code == 302
    assert second["Location"] == first["Location"]
    assert BillingRun.objects.count() == 1
    assert issued_numbers() == ["CI-0001", "CI-0002", "INV-0001"]


def test_a_partner_that_fails_is_recorded_and_the_others_are_billed(clerk, monkeypatch):
    alpha, bravo, charlie = flat_partner("alpha"), flat_partner("bravo"), flat_partner("charlie")
    fault_for(monkeypatch, "bravo")
    response = start(clerk, through="2026-05-01")
    billing = BillingRun.objects.get()
    assert response.status_code == 302
    assert billing.status == RunStatus.PARTLY_FAILED
    assert billing.failures == [{"partner": "bravo", "reason": "WorkerDied: the worker died while rating bravo"}]
    assert Invoice.objects.issued().filter(partner__in=[alpha, charlie]).count() == 2
    assert not Invoice.objects.filter(partner=bravo).exists()
    page = clerk.get(response["Location"]).content.decode()
    assert "Not billed" in page and "the worker died while rating bravo" in page
    assert billing.problem_count == 1


def test_a_partner_held_for_its_billing_address_is_listed_and_the_others_are_billed(clerk, settings):
    settings.INVOICE_LEGAL_DETAILS_REQUIRED = True
    CompanyProfile.objects.create(**PROFILE)
    alpha, bravo = flat_partner("alpha"), flat_partner("bravo", billing_address="")

    preview = clerk.get(start(clerk, through="2026-05-01", preview=True, token="p")["Location"]).content.decode()
    assert "Would not be billed" in preview and "partner &#x27;bravo&#x27; has no billing address" in preview
    assert Invoice.objects.drafts().filter(partner=bravo).exists()  # a preview drafts it all the same

    response = start(clerk, through="2026-05-01", token="r")
    billing = BillingRun.objects.filter(draft=False).get()
    assert billing.status == RunStatus.PARTLY_FAILED
    assert billing.held == [{"partner": "bravo",
                             "reason": "partner 'bravo' has no billing address (its page in the admin)"}]
    assert Invoice.objects.issued().filter(partner=alpha).count() == 1
    assert not Invoice.objects.issued().filter(partner=bravo).exists()
    page = clerk.get(response["Location"]).content.decode()
    assert "Not billed" in page and "has no billing address" in page


def test_without_the_company_s_legal_details_the_run_fails_and_bills_nothing(clerk, settings):
    settings.INVOICE_LEGAL_DETAILS_REQUIRED = True
    flat_partner("alpha")
    response = start(clerk, through="2026-05-01")
    billing = BillingRun.objects.get()
    assert response.status_code == 302 and billing.status == RunStatus.FAILED
    assert not Invoice.objects.exists()
    assert "the company profile has no legal name, address, tax ID" in billing.held[0]["reason"]
    assert "the company profile has no legal name" in clerk.get(response["Location"]).content.decode()


def test_one_partner_only(clerk):
    alpha, bravo = flat_partner("alpha"), flat_partner("bravo")
    start(clerk, through="2026-05-01", partner=alpha)
    billing = BillingRun.objects.get()
    assert billing.partner == alpha and billing.scope == "partner alpha"
    assert Invoice.objects.filter(partner=alpha).count() == 1 and not Invoice.objects.filter(partner=bravo).exists()


def test_a_bad_date_is_shown_on_the_form_and_nothing_runs(clerk):
    response = start(clerk, through="not a date")
    assert response.status_code == 200 and response.context["start_form"].errors["through"]
    assert not BillingRun.objects.exists()


def test_a_day_after_today_may_be_previewed_but_not_issued(clerk):
    partner_with_history()
    before = issued_numbers()
    tomorrow = (utc_date(timezone.now()) + timedelta(days=1)).isoformat()
    response = start(clerk, through=tomorrow)
    assert response.status_code == 200
    assert "after today" in " ".join(response.context["start_form"].errors["through"])
    assert not BillingRun.objects.exists() and issued_numbers() == before
    assert start(clerk, through=tomorrow, preview=True, token="tok-2").status_code == 302
    assert BillingRun.objects.get().draft and issued_numbers() == before


# --- permissions ----------------------------------------------------------------------------------
def test_an_auditor_reads_the_runs_but_cannot_preview_or_run(auditor):
    flat_partner("alpha")
    billing = billing_run_recorded(through=date(2026, 5, 1), source=RunSource.COMMAND, actor=ACTOR, draft=True)
    listing = auditor.get(LIST)
    assert listing.status_code == 200
    assert 'name="_run"' not in listing.content.decode() and "Preview #" in listing.content.decode()
    page = auditor.get(admin_url(BillingRun, "change", billing.pk))
    assert page.status_code == 200 and 'name="_run"' not in page.content.decode()
    for preview in (True, False):
        assert start(auditor, through="2026-05-01", preview=preview, token=f"t{preview}").status_code == 403
    assert BillingRun.objects.count() == 1 and not Invoice.objects.issued().exists()


def test_the_clerk_may_run_billing_and_the_auditor_may_not():
    apply_group_migrations()
    clerk = set(Group.objects.get(name=CLERK).permissions.values_list("codename", flat=True))
    auditor = set(Group.objects.get(name=AUDITOR).permissions.values_list("codename", flat=True))
    assert {"run_billing", "view_billingrun"} <= clerk
    assert "view_billingrun" in auditor and "run_billing" not in auditor


# --- the command and the task record their runs ------------------------------------------------------
def test_run_billing_records_its_run(cli):
    partner_with_history()
    result = cli("run_billing", "--through", "2026-06-01")
    assert result.status == 0 and result.out.splitlines()[-1] == "2 invoice(s) issued"
    billing = BillingRun.objects.get()
    assert billing.source == RunSource.COMMAND and billing.actor_label == "run_billing --through 2026-06-01"
    assert billing.started_by is None and billing.scope == "all partners"
    assert [d["number"] for d in billing.documents] == ["INV-0001", "CI-0002"]


def test_run_billing_names_a_failing_partner_after_billing_the_others(cli, monkeypatch):
    flat_partner("alpha"), flat_partner("bravo")
    fault_for(monkeypatch, "alpha")
    result = cli("run_billing", "--through", "2026-05-01")
    assert result.status == 1
    assert "partner 'alpha' failed: WorkerDied: the worker died while rating alpha" in result.err
    assert "bravo" in result.out and issued_numbers() == ["CI-0001"]
    assert BillingRun.objects.get().status == RunStatus.PARTLY_FAILED


def test_the_daily_task_records_its_run():
    flat_partner("alpha"), flat_partner("bravo")
    with time_machine.travel(datetime(2026, 5, 1, 0, 30, tzinfo=UTC), tick=False):
        assert tasks.run_daily_billing_task(requested_by="alice (admin, run by hand)") == 2
    billing = BillingRun.objects.get()
    assert billing.source == RunSource.TASK and billing.through == date(2026, 5, 1)
    assert billing.scope == "all partners" and billing.status == RunStatus.SUCCEEDED
    assert billing.actor_label == "billing task, asked by alice (admin, run by hand)"
    assert sorted(d["number"] for d in billing.documents) == ["CI-0001", "CI-0002"]


def test_a_batch_task_names_its_partners():
    alpha, _, charlie = flat_partner("alpha"), flat_partner("bravo"), flat_partner("charlie")
    assert tasks.bill_partners_task([alpha.pk, charlie.pk], "2026-05-01") == ["CI-0001", "CI-0002"]
    assert BillingRun.objects.get().scope == "2 partner(s): alpha, charlie"


def test_a_database_outage_is_recorded_then_raised_for_the_task_to_retry(monkeypatch):
    flat_partner("alpha")

    def outage(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(run, "rate_partners_month", outage)
    with pytest.raises(OperationalError):
        billing_run_recorded(through=date(2026, 5, 1), source=RunSource.TASK, actor=ACTOR,
                             reraise=(OperationalError,))
    billing = BillingRun.objects.get()
    assert billing.status == RunStatus.FAILED and "OperationalError" in billing.failures[0]["reason"]


def test_an_unknown_partner_records_nothing():
    with pytest.raises(BillingError, match="unknown partner 'nobody'"):
        billing_run_recorded(through=date(2026, 5, 1), source=RunSource.COMMAND, actor=ACTOR, partner_slug="nobody")
    assert not BillingRun.objects.exists()


def test_billing_run_without_a_failed_list_still_raises_for_a_failing_partner(monkeypatch):
    """The entry point's contract stands for its other callers: the first partner that fails alone raises."""
    flat_partner("alpha")
    fault_for(monkeypatch, "alpha")
    with pytest.raises(WorkerDied):
        billing_run(through=date(2026, 5, 1), actor=ACTOR)
    failed: list = []
    assert billing_run(through=date(2026, 5, 1), actor=ACTOR, failed=failed) == []
    assert [(pk, type(exc)) for pk, exc in failed] == [(Partner.objects.get(slug="alpha").pk, WorkerDied)]
    assert InvoiceState.ISSUED not in set(Invoice.objects.values_list("state", flat=True))

"""Billing partners in batches (BILLING_BATCH_PARTNERS) gives exactly what billing them one at a time
gives: the same invoices, numbers, statements, children, lines, audit rows and emails queued.

The data is the benchmark's generator at a small size: every billing method, seat histories, usage,
suspensions, RMM inventories, seat purchases and one-time charges. The months of history are billed
in two runs (a catch-up of several months, then one more month) with a payment recorded between them,
so that statements carry payments and the catch-up writes several months in one batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from billing.core.actor import Actor
from billing.core.money import money_sum
from billing.core.periods import Period
from invoicing.models import ChildInvoice, Invoice, InvoiceKind, InvoiceLine, InvoiceSequence
from invoicing.selectors import statement_sources
from invoicing.services import billing_run, ledger, payment_record, run
from partners.models import AuditLog, Method, Service

pytestmark = pytest.mark.django_db
ACTOR = Actor(label="batch test")
NOW = Period.of(datetime.now(UTC).date())
FIRST = NOW.shift(-3)


class RolledBack(Exception):
    pass


@pytest.fixture
def generated():
    call_command("generate_data", partners=9, customers=3, members=4, months=3, seed=7, agents=90,
                 first=str(FIRST), prefix="bat")
    assert set(Service.objects.values_list("method", flat=True)) == set(Method.values)


def ordered(rows) -> list:
    return sorted(rows, key=lambda row: [str(value) for value in row])  # drafts have no number: None


def snapshot(queued: list[int]) -> dict:
    numbers = dict(Invoice.objects.values_list("pk", "number"))
    return {
        "invoices": ordered(Invoice.objects.values_list(
            "number", "partner__slug", "kind", "state", "payment_status", "issue_date", "due_date", "month",
            "customer_id", "tax_rate", "subtotal", "tax_amount", "total", "previous_balance",
            "payments_and_credits", "other_invoices", "amount_due")),
        "children": ordered(ChildInvoice.objects.values_list("invoice__number", "customer_id", "due_date",
                                                            "subtotal")),
        "lines": ordered(
            (row[0], *row[1:-1], sorted(row[-1].items()))
            for row in InvoiceLine.objects.values_list(
                "invoice__number", "child__customer_id", "service_id", "customer_id", "line_type", "period",
                "quantity", "unit_price", "amount", "description", "taxable", "effective_date", "key", "position",
                "posting", "details")),
        "audit": ordered((a.action, a.partner_id, a.object_repr, sorted((a.after or {}).items()))
                        for a in AuditLog.objects.filter(action__startswith="invoice.")),
        "sequences": sorted(InvoiceSequence.objects.values_list("prefix", "last")),
        "queued": sorted(numbers[pk] for pk in queued),
    }


def bill_history(batch: int, settings, monkeypatch, *, draft: bool = False) -> dict:
    """Bill the history with batches of `batch` partners, take the snapshot, roll it all back."""
    settings.BILLING_BATCH_PARTNERS = batch
    queued: list[int] = []
    monkeypatch.setattr(ledger, "invoice_emails_enqueue", queued.extend)
    with pytest.raises(RolledBack), transaction.atomic():
        first = billing_run(through=NOW.shift(-1).first, actor=ACTOR)  # months at once
        assert len({i.month for i in first if i.kind == "CI"}) >= 2
        for invoice in Invoice.objects.filter(kind=InvoiceKind.CI, state="issued").order_by("number")[::2]:
            payment_record(invoice=invoice, amount=Decimal("10.00"), paid_on=invoice.issue_date + timedelta(days=3),
                           actor=ACTOR, reference=f"pay {invoice.number}")
        billing_run(through=NOW.first, draft=draft, actor=ACTOR)  # one more month
        for _, callback, _ in connection.run_on_commit:  # the emails it would queue on commit
            callback()
        taken = snapshot(queued)
        raise RolledBack
    monkeypatch.undo()
    return taken


def test_batches_of_any_size_bill_exactly_as_one_partner_at_a_time(generated, settings, monkeypatch):
    one_by_one = bill_history(1, settings, monkeypatch)
    assert len(one_by_one["invoices"]) > 30 and len(one_by_one["lines"]) > 150  # the comparison is not vacuous
    assert {row[2] for row in one_by_one["invoices"]} == {"CI", "INV"}
    assert any(row[14] for row in one_by_one["invoices"])  # payments reached statements
    for batch in (2, 4, 250):
        assert bill_history(batch, settings, monkeypatch) == one_by_one, f"batches of {batch}"


def test_drafts_in_batches_are_those_of_one_partner_at_a_time(generated, settings, monkeypatch):
    one_by_one = bill_history(1, settings, monkeypatch, draft=True)
    assert any(row[3] == "draft" for row in one_by_one["invoices"])
    assert bill_history(250, settings, monkeypatch, draft=True) == one_by_one


def test_a_batch_that_fails_is_billed_again_one_partner_at_a_time(generated, settings, monkeypatch):
    """A fault in one partner's rating: the batch is rolled back, the partners before it are billed
    alone and stand, and the run stops at the faulty partner."""
    settings.BILLING_BATCH_PARTNERS = 250
    slugs = sorted(set(Service.objects.values_list("partner__slug", flat=True)))
    faulty = slugs[4]
    rate = run.rate_partners_month
    calls = []

    def failing(*, partners, month, billed, aside=False):
        calls.append([p.slug for p in partners])
        if faulty in {p.slug for p in partners}:
            raise RuntimeError(f"rating {faulty} failed")
        return rate(partners=partners, month=month, billed=billed, aside=aside)

    monkeypatch.setattr(run, "rate_partners_month", failing)
    with pytest.raises(RuntimeError, match=f"rating {faulty} failed"):
        billing_run(through=NOW.first, actor=ACTOR)
    assert faulty in calls[0] and len(calls[0]) > 1  # the batch came first
    billed = set(Invoice.objects.values_list("partner__slug", flat=True))
    assert billed == set(slugs[:4])
    assert not Invoice.objects.filter(state="draft").exists()


def test_the_listed_statement_adds_up_to_the_figures_the_run_stored(generated, settings):
    """The run computes CI statements for many CIs in one statement (`statement_figures`); an invoice's
    page and PDF list the same documents through `statement_sources`. Both follow one rule: for every
    CI of the last run, the listed payments, credit notes and documents add up to its stored figures."""

    settings.BILLING_BATCH_PARTNERS = 250
    for month in (NOW.shift(-2), NOW.shift(-1), NOW):  # payments each month: earlier ones are on earlier CIs
        billing_run(through=month.first, actor=ACTOR)
        if month != NOW:
            for invoice in Invoice.objects.filter(kind=InvoiceKind.CI, month=str(month)).order_by("number"):
                payment_record(invoice=invoice, amount=Decimal("10.00"), paid_on=month.first + timedelta(days=3),
                               actor=ACTOR, reference=f"pay {invoice.number}")
    checked = 0
    for ci in Invoice.objects.filter(kind=InvoiceKind.CI, month=str(NOW)):
        previous, paid, documents = statement_sources(ci)
        assert ci.previous_balance == (previous.amount_due if previous else 0), ci
        credits = money_sum(d.total for d in documents if d.kind == InvoiceKind.CN)
        assert ci.payments_and_credits == money_sum(p.amount for p in paid) - credits, ci
        assert ci.other_invoices == money_sum(d.total for d in documents if d.kind != InvoiceKind.CN), ci
        checked += bool(ci.payments_and_credits)
    assert checked  # payments reached some statements: the comparison is not vacuous

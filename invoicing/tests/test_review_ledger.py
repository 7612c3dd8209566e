"""A review of the ledger as a billing clerk in the admin and a partner's accountant see it (billing-rules 4.1-4.8,
5; billing-rules 4): CIs with their children, INVs, the statement printed on each CI, payments, credit notes, payment
statuses and the overdue job, numbering, issued invoices that never change, the admin's tools driven with CSRF on,
the audit rows of every money change, and the exports against the ledger to the cent.

Tests marked xfail(strict=True) are findings: each fails on the code as it is and passes once the bug is fixed.
Amounts are worked out by hand in the docstrings."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from billing.core.importing import run_import_text
from billing.core.models import IdempotentRequest
from invoicing import pdf as invoice_pdf
from invoicing.models import (
    ChildInvoice,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceSequence,
    IssuedInvoiceError,
    LineType,
    Payment,
    PaymentStatus,
)
from invoicing.selectors import balance_at, invoice_document, open_amount
from invoicing.services import (
    BillingError,
    billing_run,
    credit_note_issue,
    invoice_issue_draft,
    invoice_statuses_refresh,
    ledger,
    partner_balance,
    payment_record,
)
from invoicing.services import run as run_module
from invoicing.tasks import refresh_payment_statuses_task
from invoicing.tests.test_ledger import ACTOR, bill, charge, on, pay, service, statement
from partners.models import AuditLog, Customer, Method
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    UserFactory,
)
from tests.examples import export, replay

pytestmark = pytest.mark.django_db
D = Decimal


# --- helpers --------------------------------------------------------------------------------------
@pytest.fixture
def world():
    """Tax 10%, partner terms 30 days. Harbour (14 days) has a customer-level flat 100.00, Quay (no terms of its
    own: the partner's 30) a customer-level flat 40.00, and there is a partner-level flat 50.00; all from 1 April.
    The April CI: children Harbour 100.00 (due 15 April), Quay 40.00 (due 1 May), partner services 50.00 (due
    1 May); subtotal 190.00, tax 19.00, total 209.00, due on the earliest child's date, 15 April."""
    partner = PartnerFactory(slug="review", tax_rate=D("10"), payment_terms_days=30)
    harbour = CustomerFactory(partner=partner, slug="harbour", name="Harbour", payment_terms_days=14)
    quay = CustomerFactory(partner=partner, slug="quay", name="Quay")
    april = {"start_date": date(2026, 4, 1)}
    service(partner, "h-flat", Method.FLAT, "100.00", customer=harbour, **april)
    service(partner, "q-flat", Method.FLAT, "40.00", customer=quay, **april)
    service(partner, "p-flat", Method.FLAT, "50.00", **april)
    return partner


@pytest.fixture
def april_ci(world):
    with on("2026-04-01"):
        [ci] = bill(world, "2026-04-01")
    return ci


class Clerk:
    """A staff user with a browser-like client: CSRF checked, every form read from its page before it is sent."""

    def __init__(self):
        self.client = Client(enforce_csrf_checks=True)
        self.user = UserFactory(username="reviewclerk", is_staff=True, is_superuser=True)
        self.client.force_login(self.user)

    def get(self, url):
        return self.client.get(url)

    def send(self, page_url, data, *, post_url=None, follow=False, page_method="get"):
        page = self.client.get(page_url) if page_method == "get" else self._post(page_url, data)
        assert page.status_code == 200, page.status_code
        html = page.content.decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        once = re.search(r'name="once_token" value="([^"]*)"', html)
        fields = {"csrfmiddlewaretoken": token, **({"once_token": once.group(1)} if once else {}), **data}
        return self.client.post(post_url or page_url, fields, follow=follow)

    def _post(self, url, data):
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"',
                          self.client.get(url).content.decode()).group(1)
        return self.client.post(url, {"csrfmiddlewaretoken": token, **data})

    def action(self, action, invoices, **extra):
        """An action of the invoice list: the list page's CSRF token; a confirmation page's own form if any."""
        changelist = reverse("admin:invoicing_invoice_changelist")
        data = {"action": action, "_selected_action": [i.pk for i in invoices]}
        first = self._post(changelist, data)
        if not extra:
            return first
        html = first.content.decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        once = re.search(r'name="once_token" value="([^"]*)"', html).group(1)
        return self.client.post(changelist, {"csrfmiddlewaretoken": token, "once_token": once, **data, **extra},
                                follow=True)


def tool(invoice, name):
    return reverse(f"admin:invoicing_invoice_{name}", args=[invoice.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def audit_actions() -> list[tuple[str, str]]:
    return sorted(AuditLog.objects.values_list("action", "object_repr"))


def frozen(invoice) -> tuple:
    invoice = Invoice.objects.get(pk=invoice.pk)
    head = tuple(getattr(invoice, f) for f in ("number", "state", "issue_date", "due_date", "subtotal", "tax_amount",
                                                "total", "previous_balance", "payments_and_credits",
                                                "other_invoices", "amount_due"))
    return head, sorted(invoice.lines.values_list("pk", "amount", "description")), sorted(
        invoice.children.values_list("pk", "due_date", "subtotal"))


# --- CI, children, INV and the statement ------------------------------------------------------------
def test_a_ci_has_a_child_per_customer_and_one_for_partner_services_and_is_due_on_the_earliest(april_ci):
    ci = april_ci
    children = {(c.customer.slug if c.customer_id else None): (c.due_date, c.subtotal) for c in ci.children.all()}
    assert children == {"harbour": (date(2026, 4, 15), D("100.00")), "quay": (date(2026, 5, 1), D("40.00")),
                        None: (date(2026, 5, 1), D("50.00"))}
    assert (ci.number, ci.issue_date, ci.due_date) == ("CI-0001", date(2026, 4, 1), date(2026, 4, 15))
    assert (ci.subtotal, ci.tax_amount, ci.total) == (D("190.00"), D("19.00"), D("209.00"))
    assert ci.lines.filter(line_type=LineType.TAX).count() == 1  # tax once for all the children


def test_the_statement_counts_partial_and_over_payments_credits_and_a_late_inv_once(world, april_ci):
    """April CI 209.00 (amount due 209.00). On 10 April a 20.00 router for Harbour (INV: 20.00 + 2.00 = 22.00,
    due 24 April). 100.00 paid on the April CI on 5 April (partial); 30.00 paid on the router on 12 April (over
    by 8.00: paid). On 20 April Quay's line is credited: -40.00 and -4.00 = -44.00 (CN-0001).
    May CI (209.00): previous 209.00, payments and credits 100 + 30 + 44 = 174.00, INVs 22.00:
    209.00 - 174.00 + 22.00 + 209.00 = 266.00 = the balance on 30 April (209 + 22 - 44 - 130 = 57.00) + 209.00."""
    charge(world, "Router", "1", "20.00", "2026-04-10")
    with on("2026-04-10"):
        [router] = bill(world, "2026-04-10")
    assert (router.kind, router.total) == ("INV", D("22.00"))
    with on("2026-04-12"):
        pay(april_ci, "100.00", "2026-04-05")
        pay(router, "30.00", "2026-04-12")
    april_ci.refresh_from_db()
    router.refresh_from_db()
    assert april_ci.payment_status == PaymentStatus.PARTIALLY_PAID
    assert router.payment_status == PaymentStatus.PAID and open_amount(router) == D("0")
    quay_line = april_ci.lines.get(service__code="q-flat")
    with on("2026-04-20"):
        note = credit_note_issue(invoice=april_ci, lines=[quay_line], actor=ACTOR, reason="Quay left")
    assert (note.number, note.issue_date, note.total, note.payment_status) == (
        "CN-0001", date(2026, 4, 20), D("-44.00"), PaymentStatus.PAID)
    with on("2026-05-01"):
        [may] = bill(world, "2026-05-01")
    assert statement(may) == (D("209.00"), D("174.00"), D("22.00"), D("209.00"), D("266.00"))
    assert may.amount_due == balance_at(world, date(2026, 4, 30), known_at=may.issued_at) + may.total
    assert invoice_document(may)["statement_reconciles"]
    assert partner_balance(world) == D("266.00")
    april_ci.refresh_from_db()
    assert april_ci.payment_status == PaymentStatus.OVERDUE  # 100 + 44 < 209, due 15 April
    assert open_amount(april_ci) == D("65.00")


def test_a_payment_on_a_void_invoice_keeps_it_void_and_counts_on_the_next_ci(world, april_ci):
    with on("2026-04-03"):
        credit_note_issue(invoice=april_ci, actor=ACTOR, reason="wrong partner")
        pay(april_ci, "209.00", "2026-04-03")
    april_ci.refresh_from_db()
    assert april_ci.payment_status == PaymentStatus.VOID and open_amount(april_ci) == D("0")
    with on("2026-05-01"):
        [may] = bill(world, "2026-05-01")
    # 209 - (209 paid + 209 credited) + 209 = 0.00: the payment stays on the account
    assert statement(may) == (D("209.00"), D("418.00"), D("0"), D("209.00"), D("0.00"))


# --- payments: what is refused, on which field, writing nothing ----------------------------------------------
@pytest.mark.parametrize(("amount", "paid_on", "field", "error"), [
    ("10.001", "2026-04-05", "amount", "no more than 2 decimal places"),
    ("-5", "2026-04-05", "amount", "a payment is a positive amount"),
    ("0", "2026-04-05", "amount", "a payment is a positive amount"),
    ("0.00", "2026-04-05", "amount", "a payment is a positive amount"),
    ("10", "2026-04-11", "paid_on", "2026-04-11 is in the future"),
    ("10", "2026-03-31", "paid_on", "2026-03-31 is before the issue date of CI-0001 (2026-04-01)"),
    ("", "2026-04-05", "amount", "This field is required."),
    ("10", "", "paid_on", "This field is required."),
])
def test_the_admin_payment_form_names_the_field_and_writes_nothing(april_ci, amount, paid_on, field, error):
    clerk = Clerk()
    audited = AuditLog.objects.count()
    with on("2026-04-10"):
        response = clerk.send(tool(april_ci, "payment"), {"amount": amount, "paid_on": paid_on, "reference": "x"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field] and error in errors[field][0]
    assert not Payment.objects.exists() and AuditLog.objects.count() == audited
    assert not IdempotentRequest.objects.exists()
    assert Invoice.objects.get(pk=april_ci.pk).payment_status == PaymentStatus.OPEN


def test_the_admin_records_a_payment_with_csrf_audits_it_and_refuses_a_post_without_the_token(april_ci):
    clerk = Clerk()
    with on("2026-04-10"):
        bare = clerk.client.post(tool(april_ci, "payment"), {"amount": "10", "paid_on": "2026-04-05"})
        assert bare.status_code == 403 and not Payment.objects.exists()
        response = clerk.send(tool(april_ci, "payment"), {"amount": "100.00", "paid_on": "2026-04-05",
                                                          "reference": "ACH 1"}, follow=True)
    assert messages_of(response) == ["Payment of 100.00 USD recorded; CI-0001 is partially paid."]
    payment = Payment.objects.get()
    row = AuditLog.objects.get(action="payment.record")
    assert row.object_id == str(payment.pk) and row.after == {"invoice": "CI-0001", "amount": "100.00",
                                                              "paid_on": "2026-04-05", "reference": "ACH 1"}
    assert row.actor == clerk.user and row.partner_id == april_ci.partner_id


def test_a_payment_of_a_credit_note_or_a_draft_is_refused_on_the_page_and_writes_nothing(world, april_ci):
    clerk = Clerk()
    with on("2026-04-10"):
        note = credit_note_issue(invoice=april_ci, lines=[april_ci.lines.get(service__code="q-flat")], actor=ACTOR)
        response = clerk.send(tool(note, "payment"), {"amount": "10", "paid_on": "2026-04-10"})
        assert "CN-0001 is a credit note: a credit note is not paid" in response.content.decode()
        [draft] = billing_run(through=date(2026, 5, 1), partner_slug=world.slug, draft=True, actor=ACTOR)
        response = clerk.send(tool(draft, "payment"), {"amount": "10", "paid_on": "2026-04-10"})
        assert "is a draft: payments are recorded against issued invoices" in response.content.decode()
        with pytest.raises(BillingError, match="a credit note is not paid"):
            payment_record(invoice=note, amount=D("1"), paid_on=date(2026, 4, 10), actor=ACTOR)
    assert not Payment.objects.exists()


def test_a_payment_in_yen_takes_no_decimal_places(db):
    partner = PartnerFactory(slug="tokyo", currency="JPY", tax_rate=D("10"))
    service(partner, "flat", Method.FLAT, "1000", start_date=date(2026, 4, 1))
    with on("2026-04-01"):
        [ci] = bill(partner, "2026-04-01")
    assert (ci.total, ci.tax_amount) == (D("1100"), D("100"))
    clerk = Clerk()
    with on("2026-04-10"):
        response = clerk.send(tool(ci, "payment"), {"amount": "1000.5", "paid_on": "2026-04-05"})
        assert response.context["form"].errors["amount"] == ["at most 0 decimal places (JPY)"]
        clerk.send(tool(ci, "payment"), {"amount": "1100", "paid_on": "2026-04-05"})
    assert Invoice.objects.get(pk=ci.pk).payment_status == PaymentStatus.PAID


# --- credit notes through the admin ---------------------------------------------------------------
def test_crediting_chosen_lines_then_the_whole_invoice_in_the_admin(april_ci):
    """Harbour's 100.00 line: CN-0001 -100.00 - 10.00 = -110.00 (the CI is then partially paid); the whole-invoice
    action credits what is left, Quay 40.00 and partner 50.00 with the tax not yet credited (19.00 - 10.00):
    CN-0002 -99.00. Together -209.00: the CI is void. A credit note of a credit note is refused, by name."""
    clerk = Clerk()
    harbour = april_ci.lines.get(service__code="h-flat")
    with on("2026-04-10"):
        response = clerk.send(tool(april_ci, "credit_lines"), {"lines": [harbour.pk], "reason": "Harbour dispute"})
        assert response.status_code == 302
        first = Invoice.objects.get(kind=InvoiceKind.CN)
        assert (first.number, first.total, first.tax_amount) == ("CN-0001", D("-110.00"), D("-10.00"))
        assert Invoice.objects.get(pk=april_ci.pk).payment_status == PaymentStatus.PARTIALLY_PAID
        response = clerk.action("credit_whole_invoice", [april_ci, first], confirm="yes", reason="closing")
    assert messages_of(response) == [
        "1 credited in full (CI-0001 by CN-0002) (1 failed: CN-0001: credit notes correct issued invoices)"]
    second = Invoice.objects.get(number="CN-0002")
    assert (second.subtotal, second.tax_amount, second.total) == (D("-90.00"), D("-9.00"), D("-99.00"))
    assert Invoice.objects.get(pk=april_ci.pk).payment_status == PaymentStatus.VOID
    assert partner_balance(april_ci.partner) == D("0.00")
    credits = AuditLog.objects.filter(action="invoice.credit").order_by("pk")
    assert [(r.object_repr, r.after["total"], r.after["reason"]) for r in credits] == [
        ("CN-0001", "-110.00", "Harbour dispute"), ("CN-0002", "-99.00", "closing")]
    assert AuditLog.objects.filter(action="invoice.issue", object_repr__startswith="CN-").count() == 2


def test_a_credit_note_of_a_childs_lines_names_its_customer_in_the_export(april_ci):
    harbour = april_ci.lines.get(service__code="h-flat")
    with on("2026-04-10"):
        credit_note_issue(invoice=april_ci, lines=[harbour], actor=ACTOR, reason="x")
    rows = [r for r in export("invoice-lines") if r["kind"] == "CN"]
    assert [(r["customer"], r["line_type"], r["amount"], r["status"]) for r in rows] == [
        ("harbour", "credit", "-100.00", "paid"), ("", "tax", "-10.00", "paid")]
    assert rows[0]["description"] == f"Credit for CI-0001: {harbour.description}"


def test_the_credit_confirmation_needs_a_reason_and_writes_nothing_without_it(april_ci):
    clerk = Clerk()
    response = clerk.action("credit_whole_invoice", [april_ci], confirm="yes", reason="  ")
    assert "A reason is required." in response.content.decode()
    assert not Invoice.objects.filter(kind=InvoiceKind.CN).exists()
    assert not AuditLog.objects.filter(action="invoice.credit").exists()


# --- payment status and the overdue job ---------------------------------------------------------------
def test_the_daily_job_turns_open_and_partly_settled_invoices_overdue_from_the_day_after(world, april_ci):
    """The April CI is due 15 April: a 44.00 credit alone makes it partially paid; on 15 April it is still that;
    on 16 April the job makes it overdue. The credit note stays paid, a void invoice stays void."""
    with on("2026-04-10"):
        credit_note_issue(invoice=april_ci, lines=[april_ci.lines.get(service__code="q-flat")], actor=ACTOR)
    assert Invoice.objects.get(pk=april_ci.pk).payment_status == PaymentStatus.PARTIALLY_PAID
    assert invoice_statuses_refresh(today=date(2026, 4, 15)) == 0
    with on("2026-04-16"):
        assert refresh_payment_statuses_task() == 1
    assert Invoice.objects.get(pk=april_ci.pk).payment_status == PaymentStatus.OVERDUE
    assert Invoice.objects.get(kind=InvoiceKind.CN).payment_status == PaymentStatus.PAID


# --- issued invoices never change -------------------------------------------------------------------
def test_an_issued_invoice_refuses_every_edit_through_the_admin_and_the_orm(april_ci):
    clerk = Clerk()
    before = frozen(april_ci)
    line = april_ci.lines.exclude(line_type=LineType.TAX).first()
    change = reverse("admin:invoicing_invoice_change", args=[april_ci.pk])
    assert clerk.send(change, {"total": "1.00"}).status_code == 403
    line_change = reverse("admin:invoicing_invoiceline_change", args=[line.pk])
    assert clerk.send(line_change, {"amount": "1.00"}).status_code == 403
    assert clerk.get(reverse("admin:invoicing_invoice_delete", args=[april_ci.pk])).status_code == 403
    attempts = [
        lambda: Invoice.objects.filter(pk=april_ci.pk).update(total=D("1.00")),
        lambda: Invoice.objects.filter(pk=april_ci.pk).delete(),
        lambda: InvoiceLine.objects.filter(pk=line.pk).update(amount=D("1.00")),
        lambda: InvoiceLine.objects.bulk_update([InvoiceLine(pk=line.pk, amount=D("1"))], ["amount"]),
        lambda: ChildInvoice.objects.filter(invoice=april_ci).update(subtotal=D("1.00")),
        lambda: Invoice.objects.get(pk=april_ci.pk).delete(),
    ]
    for attempt in attempts:
        with pytest.raises(IssuedInvoiceError), transaction.atomic():
            attempt()
    invoice = Invoice.objects.get(pk=april_ci.pk)
    invoice.total = D("1.00")
    with pytest.raises(IssuedInvoiceError, match="CI-0001 is issued and cannot change; issue a credit note"):
        invoice.save()
    line.amount = D("1.00")
    with pytest.raises(IssuedInvoiceError):
        line.save()
    assert frozen(april_ci) == before


def test_regenerating_the_pdf_keeps_the_figures_and_stores_the_next_version(april_ci, monkeypatch, settings,
                                                                             tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    monkeypatch.setattr(invoice_pdf, "render_invoice_pdf", lambda invoice: b"%PDF-1.7 " + invoice.number.encode())
    before = frozen(april_ci)
    response = Clerk().action("regenerate_pdf", [april_ci])
    assert response.status_code == 302
    stored = Invoice.objects.get(pk=april_ci.pk)
    assert (stored.pdf_version, stored.pdf.name) == (1, "invoices/CI-0001-v1.pdf")
    assert frozen(april_ci) == before


# --- exports against the ledger -------------------------------------------------------------------
def test_the_exports_agree_with_the_ledger_to_the_cent(data_dir):
    """seat-days-basic replayed, the May overage credited, 50.00 paid on CI-0001: every document's
    invoice-lines rows add up to its total and its tax row to its tax; each period's row of `periods` is its CI's
    lines of that service and period, and its actual seat-months the statements' seat-months of the month."""
    replay(data_dir / "seat-days-basic")
    ci3 = Invoice.objects.get(number="CI-0003")
    credit_note_issue(invoice=ci3, lines=[ci3.lines.get(line_type=LineType.OVERAGE)], actor=ACTOR, reason="r")
    payment_record(invoice=Invoice.objects.get(number="CI-0001"), amount=D("50.00"), paid_on=date(2026, 4, 20),
                   actor=ACTOR)
    lines = export("invoice-lines")
    for invoice in Invoice.objects.issued():
        rows = [r for r in lines if r["invoice_number"] == invoice.number]
        assert sum(D(r["amount"]) for r in rows) == invoice.total, invoice.number
        assert [D(r["amount"]) for r in rows if r["line_type"] == "tax"] == [invoice.tax_amount]
        assert {r["status"] for r in rows} == {invoice.payment_status}
    for row in export("periods"):
        ci = Invoice.objects.get(number=row["invoice_number"])
        on_ci = [r for r in lines if r["invoice_number"] == ci.number and r["service"] == row["service"]
                 and r["period"] == row["period"]]
        assert sum(D(r["amount"]) for r in on_ci) == D(row["subtotal"])
        assert row["payment_status"] == ci.payment_status
        months = sum(D(r["seat_months"]) for r in export("statements", "--period", row["period"]))
        assert months == D(row["actual_seat_months"])


# --- numbering under concurrency (PostgreSQL) ----------------------------------------------------------
def in_parallel(*works) -> list:
    barrier, outcomes, lock = threading.Barrier(len(works)), {}, threading.Lock()

    def run(n, work):
        try:
            barrier.wait(timeout=30)
            outcome = work()
        except Exception as exc:
            outcome = f"error: {exc!r}"
        finally:
            connection.close()
        with lock:
            outcomes[n] = outcome

    threads = [threading.Thread(target=run, args=(n, w)) for n, w in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return [outcomes[n] for n in range(len(works))]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_clerks_crediting_at_once_while_other_partners_are_billed_get_gapless_numbers(monkeypatch):
    """North and south have an April CI each; east and west none yet. At once: two clerks credit north's CI in
    full, a third credits south's, and two runs bill east and west through 1 April. One of the two duplicate
    credits is refused ("already credited in full"); the CNs are CN-0001 and CN-0002, the new CIs CI-0003 and
    CI-0004, each once."""
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: b"%PDF-test")
    cis = []
    for slug in ("north", "south", "east", "west"):
        partner = PartnerFactory(slug=slug)
        service(partner, "flat", Method.FLAT, "10.00", start_date=date(2026, 4, 1))
        if slug in ("north", "south"):
            [ci] = billing_run(through=date(2026, 4, 1), partner_slug=slug, actor=ACTOR)
            cis.append(ci)

    def credit(invoice):
        return lambda: credit_note_issue(invoice=invoice, actor=ACTOR, reason="dup").number

    def run(slug):
        return lambda: [i.number for i in billing_run(through=date(2026, 4, 1), partner_slug=slug, actor=ACTOR)]

    outcomes = in_parallel(credit(cis[0]), credit(cis[0]), credit(cis[1]), run("east"), run("west"))
    refused = [o for o in outcomes[:2] if str(o).startswith("error")]
    assert len(refused) == 1 and "already credited in full" in refused[0], outcomes
    assert sorted(Invoice.objects.filter(kind="CN").values_list("number", flat=True)) == ["CN-0001", "CN-0002"]
    assert sorted(Invoice.objects.filter(kind="CI").values_list("number", flat=True)) == [
        "CI-0001", "CI-0002", "CI-0003", "CI-0004"]
    assert InvoiceSequence.objects.get(prefix="CN").last == 2


@pytest.fixture
def run_paused(monkeypatch):
    """Makes the next billing run pause 1.5 s once it holds its partners' locks (it reads their meters); the event
    is set when it does."""
    locked, original = threading.Event(), run_module.first_months

    def slow_first_months(ids):
        found = original(ids)
        locked.set()
        time.sleep(1.5)
        return found

    monkeypatch.setattr(run_module, "first_months", slow_first_months)
    yield locked
    monkeypatch.setattr(run_module, "first_months", original)


# === findings ========================================================================================
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_payment_recorded_during_a_billing_run_is_counted_on_a_later_ci(monkeypatch, request):
    """Flat 100.00 from October: CI Oct, CI Nov (amount due 200.00). The December run locks the partner and rates;
    meanwhile a clerk records 50.00 on the November CI, dated 20 November: its row is stamped then, and its
    commit waits for the partner's lock (the deferred foreign-key check). The December CI, issued a moment later,
    cannot see it (300.00 due). The January CI then leaves it out as "already counted on the previous CI":
    amount due 400.00, while the account is 350.00. Expected: it counts on the January CI (payments and credits
    50.00, 350.00 due)."""
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: b"%PDF-test")
    partner = PartnerFactory(slug="race", payment_terms_days=30)
    service(partner, "flat", Method.FLAT, "100.00", start_date=date(2026, 10, 1))
    with on("2026-12-01"):
        billing_run(through=date(2026, 11, 1), partner_slug="race", actor=ACTOR)
        november = Invoice.objects.get(partner=partner, month="2026-11")
        locked = request.getfixturevalue("run_paused")

        def run():
            return [i.number for i in billing_run(through=date(2026, 12, 1), partner_slug="race", actor=ACTOR)]

        def pay_during_run():
            assert locked.wait(20)
            return payment_record(invoice=november, amount=D("50.00"), paid_on=date(2026, 11, 20), actor=ACTOR).pk

        outcomes = in_parallel(run, pay_during_run)
    assert outcomes[0] == ["CI-0003"] and isinstance(outcomes[1], int), outcomes
    december = Invoice.objects.get(partner=partner, month="2026-12")
    assert december.payments_and_credits == D("0.00")  # it could not see it
    with on("2027-01-01"):
        billing_run(through=date(2027, 1, 1), partner_slug="race", actor=ACTOR)
    january = Invoice.objects.get(partner=partner, month="2027-01")
    assert statement(january) == (D("300.00"), D("50.00"), D("0"), D("100.00"), D("350.00"))
    assert january.amount_due == partner_balance(partner)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_credit_note_issued_during_the_partners_billing_run_waits_and_both_succeed(monkeypatch, run_paused):
    """Flat 10.00 from April: CI-0001 of April. The May run holds the partner; a clerk credits CI-0001 meanwhile.
    Expected: one waits for the other; CN-0001 and CI-0002 are both issued. Found: PostgreSQL kills one of them
    with "deadlock detected" (a 500 for the clerk, or a failed billing batch)."""
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: b"%PDF-test")
    partner = PartnerFactory(slug="lockstep")
    service(partner, "flat", Method.FLAT, "10.00", start_date=date(2026, 4, 1))
    with on("2026-05-01"):
        [april] = billing_run(through=date(2026, 4, 1), partner_slug="lockstep", actor=ACTOR)

        def run():
            return [i.number for i in billing_run(through=date(2026, 5, 1), partner_slug="lockstep", actor=ACTOR)]

        def credit_during_run():
            assert run_paused.wait(20)
            return credit_note_issue(invoice=april, actor=ACTOR, reason="during the run").number

        outcomes = in_parallel(run, credit_during_run)
    assert outcomes == [["CI-0002"], "CN-0001"], outcomes


def test_a_line_of_an_issued_invoice_cannot_be_moved_off_it(world, april_ci):
    with on("2026-04-02"):
        [draft] = billing_run(through=date(2026, 5, 1), partner_slug=world.slug, draft=True, actor=ACTOR)
    before = frozen(april_ci)
    line = april_ci.lines.get(service__code="h-flat")
    line.invoice, line.child = draft, None
    with pytest.raises(IssuedInvoiceError), transaction.atomic():
        line.save()
    line = InvoiceLine.objects.get(pk=line.pk)
    line.invoice_id = draft.pk
    with pytest.raises(IssuedInvoiceError), transaction.atomic():
        line.delete()
    assert frozen(april_ci) == before


def test_no_line_can_be_added_to_an_issued_invoice_in_bulk(april_ci):
    before = frozen(april_ci)
    with pytest.raises(IssuedInvoiceError), transaction.atomic():
        InvoiceLine.objects.bulk_create([InvoiceLine(invoice=april_ci, line_type=LineType.ONE_TIME, period="2026-04",
                                                     amount=D("5.00"), description="added after issue")])
    assert frozen(april_ci) == before


def test_a_payment_counted_on_an_issued_ci_cannot_be_edited(world, april_ci):
    with on("2026-04-20"):
        payment = pay(april_ci, "100.00", "2026-04-20")
    with on("2026-05-01"):
        [may] = bill(world, "2026-05-01")
    assert invoice_document(may)["statement_reconciles"]
    payment.amount = D("1.00")
    with pytest.raises(Exception), transaction.atomic():  # noqa: B017 - any refusal will do
        payment.save()
    with pytest.raises(Exception), transaction.atomic():  # noqa: B017
        Payment.objects.filter(pk=payment.pk).delete()
    assert invoice_document(may)["statement_reconciles"]


@pytest.fixture
def negative_true_up():
    """Seats at 20.00 and a 30.00 portal, tax 10%. April: a seat all month and a second from 16 April: the May CI
    bills 45 seat-days, 1.5 seat-months, 30.00. The second seat is then deleted: the June CI (30.00 portal, 20.00
    May seats, -10.00 April true-up, tax 4.00) totals 44.00."""
    partner = PartnerFactory(slug="neg", tax_rate=D("10"))
    customer = CustomerFactory(partner=partner, slug="c1")
    service(partner, "seats", Method.SEAT_DAYS, "20.00", start_date=date(2026, 4, 1))
    service(partner, "portal", Method.FLAT, "30.00", start_date=date(2026, 4, 1))
    SeatAssignmentFactory(member=MemberFactory(customer=customer), assigned_at=datetime(2026, 4, 1, tzinfo=UTC))
    extra = SeatAssignmentFactory(member=MemberFactory(customer=customer),
                                  assigned_at=datetime(2026, 4, 16, tzinfo=UTC),
                                  removed_at=datetime(2026, 5, 1, tzinfo=UTC))
    with on("2026-05-01"):
        bill(partner, "2026-05-01")
    extra.delete()
    with on("2026-06-01"):
        [june] = bill(partner, "2026-06-01")
    assert june.total == D("44.00")
    return june


def test_a_negative_line_is_not_credited_into_a_charge(negative_true_up):
    june = negative_true_up
    line = june.lines.get(line_type=LineType.TRUE_UP)
    assert line.amount == D("-10.00")
    with on("2026-06-02"):
        try:
            note = credit_note_issue(invoice=june, lines=[line], actor=ACTOR, reason="x")
        except BillingError:
            note = None
    assert note is None or note.total <= 0
    june.refresh_from_db()
    assert open_amount(june) <= june.total


def test_the_credit_lines_page_says_why_a_line_cannot_be_credited(april_ci):
    clerk = Clerk()
    harbour = april_ci.lines.get(service__code="h-flat")
    tax = april_ci.lines.get(line_type=LineType.TAX)
    page_url = tool(april_ci, "credit_lines")
    with on("2026-04-10"):
        stale = clerk.get(page_url).content.decode()  # a second clerk's page, opened before the first credit
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', stale).group(1)
        once = re.search(r'name="once_token" value="([^"]*)"', stale).group(1)
        assert clerk.send(page_url, {"lines": [harbour.pk], "reason": "first"}).status_code == 302
        again = clerk.client.post(page_url, {"csrfmiddlewaretoken": token, "once_token": once,
                                             "lines": [harbour.pk], "reason": "second"})
        taxed = clerk.send(page_url, {"lines": [tax.pk], "reason": "tax"})
    assert Invoice.objects.filter(kind=InvoiceKind.CN).count() == 1
    assert "a chosen line of CI-0001 is already credited" in again.content.decode()
    assert "a chosen line is not a charge of CI-0001" in taxed.content.decode()


def test_the_payment_page_shows_what_is_still_open(april_ci):
    clerk = Clerk()
    with on("2026-04-10"):
        clerk.send(tool(april_ci, "payment"), {"amount": "100.00", "paid_on": "2026-04-05", "reference": "a"})
        page = clerk.get(tool(april_ci, "payment")).content.decode()
    assert Invoice.objects.get(pk=april_ci.pk).payment_status == PaymentStatus.PARTIALLY_PAID
    assert "109.00" in page


def test_late_usage_changes_the_statements_never_the_invoices_nor_the_periods(data_dir):
    """billing-rules 5: seat-days-basic replayed; a seat for all of April at Pinecrest is recorded afterwards.
    The April statement gains 30 seat-days (1.0000 seat-month); CI-0002's lines and the April row of `periods`
    (as invoiced: actual 3.1000, 80.00) do not change."""
    replay(data_dir / "seat-days-basic")
    lines_before = export("invoice-lines")
    periods_before = export("periods", "--period", "2026-04")
    statements_before = {r["customer"]: r for r in export("statements", "--period", "2026-04")}
    pinecrest = Customer.objects.get(slug="pinecrest")
    SeatAssignmentFactory(member=MemberFactory(customer=pinecrest), assigned_at=datetime(2026, 4, 1, tzinfo=UTC),
                          removed_at=datetime(2026, 5, 1, tzinfo=UTC))
    statements_after = {r["customer"]: r for r in export("statements", "--period", "2026-04")}
    assert int(statements_after["pinecrest"]["seat_days"]) == int(statements_before["pinecrest"]["seat_days"]) + 30
    assert statements_after["oakridge"] == statements_before["oakridge"]
    assert export("invoice-lines") == lines_before
    assert export("periods", "--period", "2026-04") == periods_before
    assert periods_before[0]["actual_seat_months"] == "3.1000" and periods_before[0]["subtotal"] == "80.00"


# --- the fixes, further -----------------------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_payment_imported_during_a_billing_run_is_counted_on_a_later_ci(monkeypatch, request):
    """As a payment recorded in the admin during the run: the payments import locks the partner as the run does,
    before it stamps its payments, so the 50.00 imported while the December run bills the partner counts on the
    January CI (300.00 - 50.00 + 100.00 = 350.00)."""
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: b"%PDF-test")
    partner = PartnerFactory(slug="race-import", payment_terms_days=30)
    service(partner, "flat", Method.FLAT, "100.00", start_date=date(2026, 10, 1))
    with on("2026-12-01"):
        billing_run(through=date(2026, 11, 1), partner_slug=partner.slug, actor=ACTOR)
        november = Invoice.objects.get(partner=partner, month="2026-11")
        locked = request.getfixturevalue("run_paused")

        def run():
            return [i.number for i in billing_run(through=date(2026, 12, 1), partner_slug=partner.slug,
                                                  actor=ACTOR)]

        def import_during_run():
            assert locked.wait(20)
            summary = run_import_text("payments", f"invoice_number,amount,paid_on,reference\n"
                                                  f"{november.number},50.00,2026-11-20,bank\n")
            return summary.ok

        outcomes = in_parallel(run, import_during_run)
    assert outcomes == [["CI-0003"], True], outcomes
    assert Invoice.objects.get(partner=partner, month="2026-12").payments_and_credits == D("0.00")
    with on("2027-01-01"):
        billing_run(through=date(2027, 1, 1), partner_slug=partner.slug, actor=ACTOR)
    january = Invoice.objects.get(partner=partner, month="2027-01")
    assert statement(january) == (D("300.00"), D("50.00"), D("0"), D("100.00"), D("350.00"))
    assert january.amount_due == partner_balance(partner)


def test_no_line_is_moved_onto_an_issued_invoice_in_bulk_nor_a_child_added(world, april_ci):
    with on("2026-04-02"):
        [draft] = billing_run(through=date(2026, 5, 1), partner_slug=world.slug, draft=True, actor=ACTOR)
    before = frozen(april_ci)
    with pytest.raises(IssuedInvoiceError), transaction.atomic():
        InvoiceLine.objects.filter(invoice=draft).update(invoice=april_ci)
    with pytest.raises(IssuedInvoiceError), transaction.atomic():
        InvoiceLine.objects.filter(invoice=draft).update(invoice_id=april_ci.pk)
    with pytest.raises(IssuedInvoiceError), transaction.atomic():
        ChildInvoice.objects.bulk_create([ChildInvoice(invoice=april_ci, due_date=date(2026, 5, 1))])
    assert frozen(april_ci) == before
    # a draft's lines still move and are still added
    InvoiceLine.objects.bulk_create([InvoiceLine(invoice=draft, line_type=LineType.ONE_TIME, period="2026-05",
                                                 amount=D("5.00"), description="a draft takes lines")])


def test_a_recorded_payment_is_refused_every_edit_and_a_staff_user_who_recorded_it_can_still_go(april_ci):
    clerk = Clerk()
    with on("2026-04-10"):
        clerk.send(tool(april_ci, "payment"), {"amount": "100.00", "paid_on": "2026-04-05", "reference": "a"})
    payment = Payment.objects.get()
    for attempt in (lambda: Payment.objects.filter(pk=payment.pk).update(amount=D("1.00")),
                    lambda: Payment.objects.bulk_update([Payment(pk=payment.pk, amount=D("1"))], ["amount"]),
                    lambda: Payment.objects.get(pk=payment.pk).delete(),
                    lambda: Payment.objects.all().delete()):
        with pytest.raises(ValidationError, match="a recorded payment never changes"), transaction.atomic():
            attempt()
    assert Payment.objects.get().amount == D("100.00")
    clerk.user.delete()  # Django clears recorded_by below the query set: no amount changes
    assert Payment.objects.get().recorded_by is None


def test_a_negative_line_is_refused_by_name_not_offered_and_goes_with_the_whole_invoice(negative_true_up):
    """The June CI (44.00) has a -10.00 April true-up: chosen alone it is refused as not a charge, the page does
    not offer it (and says so when it is posted); the whole invoice's credit takes it with the rest, -44.00."""
    june = negative_true_up
    line = june.lines.get(line_type=LineType.TRUE_UP)
    with on("2026-06-02"), pytest.raises(BillingError, match=f"a chosen line is not a charge of {june.number}"):
        credit_note_issue(invoice=june, lines=[line], actor=ACTOR, reason="x")
    clerk = Clerk()
    with on("2026-06-02"):
        page = clerk.get(tool(june, "credit_lines")).content.decode()
        assert f'value="{line.pk}"' not in page and "not a charge: credited only with the whole invoice" in page
        posted = clerk.send(tool(june, "credit_lines"), {"lines": [line.pk], "reason": "x"})
        assert f"a chosen line is not a charge of {june.number}" in posted.content.decode()
        posted = clerk.send(tool(june, "credit_lines"), {"lines": ["abc"], "reason": "x"})
        assert f"a chosen line is not a charge of {june.number}" in posted.content.decode()
        assert not Invoice.objects.filter(kind=InvoiceKind.CN).exists()
        note = credit_note_issue(invoice=june, actor=ACTOR, reason="all")
    assert note.total == -june.total == D("-44.00")
    assert Invoice.objects.get(pk=june.pk).payment_status == PaymentStatus.VOID


def test_the_payment_page_shows_the_remainder_in_the_amount_help_too(april_ci):
    clerk = Clerk()
    with on("2026-04-10"):
        clerk.send(tool(april_ci, "payment"), {"amount": "100.00", "paid_on": "2026-04-05", "reference": "a"})
        response = clerk.get(tool(april_ci, "payment"))
    assert response.context["form"].fields["amount"].help_text == "in USD; 109.00 still open on this invoice"
    assert "209.00 USD, 109.00 USD still open on it" in " ".join(response.content.decode().split())


def test_the_payment_page_shows_no_row_for_its_hidden_token(april_ci):
    """The form's one-time token is a hidden input, sent once: no 'Once token' row on the page."""
    page = Clerk().get(tool(april_ci, "payment")).content.decode()
    assert page.count('name="once_token"') == 1
    assert "Once token" not in page


def test_the_payment_page_says_what_credit_notes_took_off(april_ci):
    """A credit note, not a payment, left the April CI partially paid: the page says so, not only 'No payment'."""
    credit_note_issue(invoice=april_ci, lines=[april_ci.lines.exclude(line_type=LineType.TAX).first()], actor=ACTOR)
    page = " ".join(Clerk().get(tool(april_ci, "payment")).content.decode().split())
    assert "No payment recorded against it yet." in page
    assert "Its credit notes took" in page and "USD off." in page


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_draft_issued_by_hand_during_the_partners_billing_run_waits_and_is_refused_by_name(monkeypatch,
                                                                                             run_paused):
    """Flat 10.00 from April: CI-0001, then a draft of May. The May run holds the partner (and throws that draft
    away); a clerk issues the draft meanwhile. Issuing waits for the partner's lock as the run takes it, then finds
    the draft gone and says so; no deadlock, the run issues CI-0002."""
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: b"%PDF-test")
    partner = PartnerFactory(slug="drafted")
    service(partner, "flat", Method.FLAT, "10.00", start_date=date(2026, 4, 1))
    with on("2026-05-01"):
        billing_run(through=date(2026, 4, 1), partner_slug=partner.slug, actor=ACTOR)
        [draft] = billing_run(through=date(2026, 5, 1), partner_slug=partner.slug, draft=True, actor=ACTOR)
        run_paused.clear()  # set by the draft run: the next is the one to wait for

        def run():
            return [i.number for i in billing_run(through=date(2026, 5, 1), partner_slug=partner.slug, actor=ACTOR)]

        def issue_during_run():
            assert run_paused.wait(20)
            return invoice_issue_draft(invoice=draft, actor=ACTOR).number

        outcomes = in_parallel(run, issue_during_run)
    assert outcomes[0] == ["CI-0002"] and "no longer there" in outcomes[1], outcomes
    assert sorted(Invoice.objects.issued().values_list("number", flat=True)) == ["CI-0001", "CI-0002"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_billing_run_started_while_a_draft_is_being_issued_waits_for_it(monkeypatch):
    """The other order: a clerk issues the May draft and, while it takes its number, the May run starts. The run
    waits for the partner's lock, which the issue took first, and then finds May issued: nothing to bill. Without
    the partner's lock first, the issue held the draft and the sequences while the run held the partner and
    waited to delete the draft: "deadlock detected"."""
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: b"%PDF-test")
    partner = PartnerFactory(slug="issuing")
    service(partner, "flat", Method.FLAT, "10.00", start_date=date(2026, 4, 1))
    with on("2026-05-01"):
        billing_run(through=date(2026, 4, 1), partner_slug=partner.slug, actor=ACTOR)
        [draft] = billing_run(through=date(2026, 5, 1), partner_slug=partner.slug, draft=True, actor=ACTOR)
        numbering, original = threading.Event(), ledger.numbers_take

        def slow_numbers_take(kinds):
            numbers = original(kinds)
            numbering.set()
            time.sleep(1.5)
            return numbers

        monkeypatch.setattr(ledger, "numbers_take", slow_numbers_take)

        def issue():
            return invoice_issue_draft(invoice=draft, actor=ACTOR).number

        def run_during_issue():
            assert numbering.wait(20)
            return [i.number for i in billing_run(through=date(2026, 5, 1), partner_slug=partner.slug, actor=ACTOR)]

        outcomes = in_parallel(issue, run_during_issue)
    assert outcomes == ["CI-0002", []], outcomes

"""Invoices, payments and one-time charges in the admin, through Django's test client.

Data comes from replaying tests/data/seat-days-basic (imports, then run_billing through 2026-06-01):
partner brightdesk (USD, 10% tax) with CI-0001 (33.00), CI-0002 (121.00) and CI-0003 (211.13), each
with one child invoice (the partner-level services). Issued invoices never change: the pages are
read-only and every change goes through invoicing.services.
"""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse
from openpyxl import load_workbook

from invoicing import pdf as invoice_pdf
from invoicing.admin.payments import InvoicePaymentForm
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceState, LineType, OneTimeCharge, Payment
from invoicing.reports import InvoiceLinesReport
from partners.models import AuditLog, Partner
from partners.tests.factories import UserFactory
from tests.examples import export, replay

pytestmark = pytest.mark.django_db

FROZEN_FIELDS = ("number", "state", "issue_date", "due_date", "total", "amount_due", "subtotal", "tax_amount",
                 "previous_balance", "payments_and_credits", "other_invoices", "partner_id", "customer_id")


def url(model, action="changelist", *args):
    return reverse(f"admin:invoicing_{model}_{action}", args=args)


def tool(invoice, name):
    return reverse(f"admin:invoicing_invoice_{name}", args=[invoice.pk])


def frozen(invoice) -> tuple:
    invoice = Invoice.objects.get(pk=invoice.pk)
    return tuple(getattr(invoice, f) for f in FROZEN_FIELDS), list(invoice.lines.values_list("pk", "amount"))


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def clerk(client):
    user = UserFactory(username="clerk", is_staff=True, is_superuser=True)
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def billed(data_dir):
    replay(data_dir / "seat-days-basic")
    return {number: Invoice.objects.get(number=number) for number in ("CI-0001", "CI-0002", "CI-0003")}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


# --- pages open ---------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["invoice", "payment", "onetimecharge"])
def test_changelists_open(clerk, billed, model):
    assert clerk.get(url(model)).status_code == 200


@pytest.mark.parametrize("query", ["?q=CI-0002", "?q=brightdesk", "?kind__exact=CI&state__exact=issued",
                                   "?payment_status__exact=overdue", "?issue_date__year=2026&issue_date__month=5"])
def test_invoice_list_filters_and_search(clerk, billed, query):
    response = clerk.get(url("invoice") + query)
    assert response.status_code == 200
    assert "CI-0002" in response.content.decode()


def test_invoice_list_shows_amounts_status_and_pdf_link(clerk, billed):
    page = clerk.get(url("invoice")).content.decode()
    assert "211.13" in page and "BrightDesk MSP" in page
    assert ">overdue</span>" in page  # due dates in the past, unpaid
    assert tool(billed["CI-0003"], "pdf") in page


@pytest.mark.parametrize("model", ["payment", "onetimecharge"])
def test_add_pages_open(clerk, billed, model):
    assert clerk.get(url(model, "add")).status_code == 200


# --- the invoice page is read-only --------------------------------------------------------------
def test_issued_invoice_page_is_read_only(clerk, billed):
    invoice = billed["CI-0003"]
    response = clerk.get(url("invoice", "change", invoice.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert not response.context["adminform"].form.fields  # every field read-only
    assert 'name="_save"' not in page
    for label in ("Previous balance", "Payments and credits", "Individual invoices", "Amount due",
                  "child invoices", "partner-level services", "Download PDF", "Download XLSX",
                  "Record a payment", "Credit chosen lines"):
        assert label.lower() in page.lower(), label
    assert "1.6774" in page and "41.94" in page  # the overage line: quantity to 4 places, amount
    assert "Helpdesk seats 2026-05: committed minimum" in page


def test_posting_a_change_to_an_issued_invoice_changes_nothing(clerk, billed):
    invoice = billed["CI-0002"]
    before = frozen(invoice)
    response = clerk.post(url("invoice", "change", invoice.pk), {
        "due_date": "2030-01-01", "total": "1.00", "amount_due": "0", "number": "CI-9999",
        "lines-TOTAL_FORMS": "0", "lines-INITIAL_FORMS": "0",
    })
    assert response.status_code == 403
    assert frozen(invoice) == before


def test_no_add_and_no_delete_of_issued_invoices(clerk, billed):
    invoice = billed["CI-0001"]
    assert clerk.get(url("invoice", "add")).status_code == 403
    assert clerk.get(url("invoice", "delete", invoice.pk)).status_code == 403
    assert clerk.post(url("invoice", "delete", invoice.pk), {"post": "yes"}).status_code == 403
    response = clerk.get(url("invoice"))
    assert "delete_selected" not in response.context["action_form"].fields["action"].choices.__repr__()
    assert Invoice.objects.filter(pk=invoice.pk).exists()


# --- downloads ----------------------------------------------------------------------------------
def test_pdf_download(clerk, billed):
    response = clerk.get(tool(billed["CI-0002"], "pdf"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert 'filename="CI-0002.pdf"' in response["Content-Disposition"]
    assert response.content.startswith(b"%PDF")


def test_xlsx_download_has_the_invoice_lines(clerk, billed):
    response = clerk.get(tool(billed["CI-0003"], "xlsx"))
    assert response.status_code == 200
    assert "spreadsheetml" in response["Content-Type"]
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == list(InvoiceLinesReport.columns)
    got = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [r["line_type"] for r in got] == ["recurring", "minimum", "overage", "tax"]
    overage = got[2]
    assert (overage["invoice_number"], overage["service"], overage["period"]) == ("CI-0003", "seats", "2026-05")
    assert Decimal(str(overage["quantity"])) == Decimal("1.6774")
    assert Decimal(str(overage["amount"])) == Decimal("41.94")
    # the same lines as the invoice-lines report of export_report
    reported = [r for r in export("invoice-lines") if r["invoice_number"] == "CI-0003"]
    assert [(r["line_type"], Decimal(r["amount"])) for r in reported] == [
        (r["line_type"], Decimal(str(r["amount"]))) for r in got
    ]


def test_downloads_need_staff(client, billed):
    invoice = billed["CI-0001"]
    tools = ["pdf", "xlsx", "payment", "credit_lines"]
    for name in tools:  # anonymous
        response = client.get(tool(invoice, name))
        assert response.status_code == 302 and "/admin/login/" in response["Location"], name
    client.force_login(UserFactory(username="partner-user", is_staff=False))
    for name in tools:
        response = client.get(tool(invoice, name))
        assert response.status_code == 302 and "/admin/login/" in response["Location"], name


def test_tools_need_the_invoice_change_permission(client, billed):
    """Paying and crediting change money: the change permission. Downloads only read (an
    Auditor with the view permission reads the PDF and the lines)."""
    user = UserFactory(username="viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client.force_login(user)
    invoice = billed["CI-0001"]
    assert client.get(url("invoice", "change", invoice.pk)).status_code == 200
    for name in ["payment", "credit_lines"]:
        assert client.get(tool(invoice, name)).status_code == 403, name
    assert client.get(tool(invoice, "xlsx")).status_code == 200
    user.user_permissions.add(Permission.objects.get(codename="change_invoice"))
    client.force_login(user)
    assert client.get(tool(invoice, "xlsx")).status_code == 200


# --- recording a payment ------------------------------------------------------------------------
def test_record_a_payment(clerk, billed):
    invoice = billed["CI-0001"]
    assert clerk.get(tool(invoice, "payment")).status_code == 200
    response = clerk.post(tool(invoice, "payment"),
                          {"amount": "33.00", "paid_on": "2026-04-20", "reference": "BANK-7781"}, follow=True)
    assert response.status_code == 200
    payment = Payment.objects.get(invoice=invoice)
    assert (payment.amount, payment.paid_on, payment.reference) == (Decimal("33.00"), date(2026, 4, 20), "BANK-7781")
    assert payment.recorded_by == clerk.user and payment.source == "admin"
    assert Invoice.objects.get(pk=invoice.pk).payment_status == "paid"
    assert AuditLog.objects.filter(action="payment.record", object_id=str(payment.pk)).exists()
    assert LogEntry.objects.filter(object_id=str(payment.pk)).exists()
    assert any("recorded; CI-0001 is paid" in m for m in messages_of(response))


def test_a_partial_payment_leaves_the_invoice_partly_paid(clerk, billed):
    invoice = billed["CI-0003"]
    clerk.post(tool(invoice, "payment"), {"amount": "10.00", "paid_on": "2026-06-05", "reference": ""})
    assert Invoice.objects.get(pk=invoice.pk).payment_status == "overdue"  # partly paid, past its due date
    assert Payment.objects.filter(invoice=invoice).count() == 1


@pytest.mark.parametrize(("amount", "paid_on", "error"), [
    ("-5", "2026-04-20", "a payment is a positive amount"),  # the service's refusal, on the form
    ("0", "2026-04-20", "a payment is a positive amount"),
    ("abc", "2026-04-20", "Enter a number."),
    ("10.005", "2026-04-20", "no more than 2 decimal places"),
    ("10", "2026-03-01", "2026-03-01 is before the issue date of CI-0001 (2026-04-01)"),
    ("10", "2099-01-01", "is in the future"),
])
def test_a_bad_payment_shows_a_form_error_and_writes_nothing(clerk, billed, amount, paid_on, error):
    invoice = billed["CI-0001"]
    response = clerk.post(tool(invoice, "payment"), {"amount": amount, "paid_on": paid_on, "reference": "x"})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert response.context["form"].errors
    assert not Payment.objects.exists()
    assert not AuditLog.objects.filter(action="payment.record").exists()
    assert Invoice.objects.get(pk=invoice.pk).payment_status == "overdue"


def test_the_same_payment_twice_is_a_form_error(clerk, billed):
    invoice = billed["CI-0001"]
    data = {"amount": "5.00", "paid_on": "2026-04-20", "reference": "dup"}
    clerk.post(tool(invoice, "payment"), data)
    response = clerk.post(tool(invoice, "payment"), data)
    assert response.status_code == 200
    assert "already recorded" in response.content.decode()
    assert Payment.objects.count() == 1


def test_payment_admin_adds_through_the_service_and_is_read_only(clerk, billed):
    invoice = billed["CI-0002"]
    response = clerk.post(url("payment", "add"),
                          {"invoice": invoice.pk, "amount": "121.00", "paid_on": "2026-05-10", "reference": "r1"})
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert Invoice.objects.get(pk=invoice.pk).payment_status == "paid"
    assert AuditLog.objects.filter(action="payment.record").count() == 1
    assert clerk.get(url("payment", "change", payment.pk)).status_code == 200
    response = clerk.post(url("payment", "change", payment.pk), {"amount": "1.00"})
    assert response.status_code == 403
    assert Payment.objects.get().amount == Decimal("121.00")
    assert clerk.get(url("payment") + "?q=r1").status_code == 200
    # a draft or a credit note is refused on the form
    response = clerk.post(url("payment", "add"),
                          {"invoice": invoice.pk, "amount": "-1", "paid_on": "2026-05-10", "reference": "r2"})
    assert response.status_code == 200 and "a payment is a positive amount" in response.content.decode()
    assert Payment.objects.count() == 1


# --- credit notes -------------------------------------------------------------------------------
def test_credit_whole_invoice_action_asks_then_credits(clerk, billed):
    invoice = billed["CI-0001"]
    before = frozen(invoice)
    data = {"action": "credit_whole_invoice", "_selected_action": [invoice.pk]}
    confirm = clerk.post(url("invoice"), data)
    assert confirm.status_code == 200
    assert "cannot be undone" in confirm.content.decode()
    assert not Invoice.objects.filter(kind=InvoiceKind.CN).exists()
    response = clerk.post(url("invoice"), {**data, "confirm": "yes", "reason": "billed the wrong portal"},
                          follow=True)
    note = Invoice.objects.get(kind=InvoiceKind.CN)
    assert note.number == "CN-0001" and note.credits_id == invoice.pk and note.total == Decimal("-33.00")
    assert Invoice.objects.get(pk=invoice.pk).payment_status == "void"
    assert frozen(invoice) == before
    assert any(m.startswith("1 credited in full") for m in messages_of(response))
    assert AuditLog.objects.get(action="invoice.credit").after["reason"] == "billed the wrong portal"


def test_credit_whole_invoice_reports_failures(clerk, billed):
    invoice = billed["CI-0001"]
    data = {"action": "credit_whole_invoice", "_selected_action": [invoice.pk], "confirm": "yes", "reason": "x"}
    clerk.post(url("invoice"), data)
    note = Invoice.objects.get(kind=InvoiceKind.CN)
    response = clerk.post(url("invoice"), {**data, "_selected_action": [invoice.pk, note.pk]}, follow=True)
    text = " ".join(messages_of(response))
    assert "0 credited in full (2 failed:" in text
    assert "already credited" in text and "credit notes correct issued invoices" in text
    assert Invoice.objects.filter(kind=InvoiceKind.CN).count() == 1


def test_credit_whole_invoice_sent_twice_from_its_page_answers_as_the_first(clerk, billed):
    """The confirmation page carries a one-time token: a double click credits once and the second answer is the
    first's (back to the list), not a page of failures."""

    invoice = billed["CI-0001"]
    data = {"action": "credit_whole_invoice", "_selected_action": [invoice.pk]}
    page = clerk.post(url("invoice"), data).content.decode()
    token = re.search(r'name="once_token" value="([0-9a-f]{32})"', page).group(1)
    confirm = {**data, "confirm": "yes", "reason": "twice", "once_token": token}
    first, second = clerk.post(url("invoice"), confirm), clerk.post(url("invoice"), confirm)
    assert (first.status_code, second.status_code) == (302, 302) and first["Location"] == second["Location"]
    assert Invoice.objects.filter(kind=InvoiceKind.CN).count() == 1
    assert "failed" not in " ".join(messages_of(clerk.get(second["Location"])))


def test_credit_chosen_lines(clerk, billed):
    invoice = billed["CI-0003"]
    overage = invoice.lines.get(line_type=LineType.OVERAGE)
    page = clerk.get(tool(invoice, "credit_lines"))
    assert page.status_code == 200
    assert f'value="{overage.pk}"' in page.content.decode()
    response = clerk.post(tool(invoice, "credit_lines"), {"lines": [overage.pk], "reason": "overage waived"})
    assert response.status_code == 302
    note = Invoice.objects.get(kind=InvoiceKind.CN)
    credit = note.lines.exclude(line_type=LineType.TAX)
    assert [(c.key, c.amount) for c in credit] == [(f"credit:{overage.pk}", Decimal("-41.94"))]
    assert note.lines.get(line_type=LineType.TAX).amount == Decimal("-4.19")
    assert note.total == Decimal("-46.13")
    assert Invoice.objects.get(pk=invoice.pk).payment_status != "void"
    # the credited line cannot be chosen again
    page = clerk.get(tool(invoice, "credit_lines")).content.decode()
    assert f'value="{overage.pk}"' not in page and "credited by CN-0001" in page


def test_credit_chosen_lines_needs_a_line(clerk, billed):
    invoice = billed["CI-0003"]
    response = clerk.post(tool(invoice, "credit_lines"), {"reason": "nothing"})
    assert response.status_code == 200
    assert "choose at least one line to credit" in response.content.decode()
    assert not Invoice.objects.filter(kind=InvoiceKind.CN).exists()


# --- drafts, PDFs, statuses ---------------------------------------------------------------------
def test_issue_drafts_action_numbers_them_in_date_order(clerk, data_dir, cli):
    replay(data_dir / "seat-days-basic", upto_billing=False)
    assert cli("run_billing", "--through", "2026-06-01", "--draft").status == 0
    drafts = list(Invoice.objects.drafts().order_by("issue_date"))
    assert len(drafts) == 3 and all(d.number is None for d in drafts)
    page = clerk.get(url("invoice")).content.decode()
    assert "draft #" in page
    response = clerk.post(url("invoice"), {"action": "issue_drafts",
                                           "_selected_action": [d.pk for d in reversed(drafts)]}, follow=True)
    assert any(m.startswith("3 issued: CI-0001, CI-0002, CI-0003") for m in messages_of(response))
    assert [Invoice.objects.get(pk=d.pk).number for d in drafts] == ["CI-0001", "CI-0002", "CI-0003"]
    assert not Invoice.objects.drafts().exists()
    response = clerk.post(url("invoice"), {"action": "issue_drafts", "_selected_action": [drafts[0].pk]},
                          follow=True)
    assert any("0 issued (1 failed: CI-0001: already issued)" in m for m in messages_of(response))


def test_issue_drafts_sent_twice_from_one_page_issues_once(clerk, data_dir, cli):
    replay(data_dir / "seat-days-basic", upto_billing=False)
    cli("run_billing", "--through", "2026-04-01", "--draft")
    draft = Invoice.objects.drafts().get()
    page = clerk.get(url("invoice")).content.decode()
    token = re.search(r'name="once_token" value="([0-9a-f]{32})"', page).group(1)
    data = {"action": "issue_drafts", "_selected_action": [draft.pk], "once_token": token}
    first, second = clerk.post(url("invoice"), data), clerk.post(url("invoice"), data)
    assert (first.status_code, second.status_code) == (302, 302)
    assert Invoice.objects.get(pk=draft.pk).number == "CI-0001"
    assert AuditLog.objects.filter(action="invoice.issue").count() == 1
    assert "already issued" not in " ".join(messages_of(clerk.get(second["Location"])))


def test_a_draft_can_be_deleted(clerk, data_dir, cli):
    replay(data_dir / "seat-days-basic", upto_billing=False)
    cli("run_billing", "--through", "2026-04-01", "--draft")
    draft = Invoice.objects.drafts().get()
    assert clerk.get(url("invoice", "change", draft.pk)).status_code == 200
    assert clerk.post(url("invoice", "delete", draft.pk), {"post": "yes"}).status_code == 302
    assert not Invoice.objects.exists()


def test_regenerate_pdf_stores_the_next_version(clerk, billed, media, monkeypatch):
    monkeypatch.setattr(invoice_pdf, "render_invoice_pdf", lambda invoice: b"%PDF-1.7 " + invoice.number.encode())
    invoice = billed["CI-0002"]
    before = frozen(invoice)
    data = {"action": "regenerate_pdf", "_selected_action": [invoice.pk]}
    response = clerk.post(url("invoice"), data, follow=True)
    assert any(m.startswith("1 PDF(s) regenerated") for m in messages_of(response))
    clerk.post(url("invoice"), data)
    stored = Invoice.objects.get(pk=invoice.pk)
    assert stored.pdf_version == 2 and stored.pdf.name == "invoices/CI-0002-v2.pdf"
    assert (media / "invoices" / "CI-0002-v2.pdf").read_bytes() == b"%PDF-1.7 CI-0002"
    assert frozen(invoice) == before
    # the download serves the stored file
    monkeypatch.setattr(invoice_pdf, "render_invoice_pdf", lambda invoice: pytest.fail("rendered again"))
    assert clerk.get(tool(invoice, "pdf")).content == b"%PDF-1.7 CI-0002"


def test_refresh_payment_status(clerk, billed):
    invoice = billed["CI-0001"]  # due 2026-05-01, unpaid: overdue now
    Invoice.objects.filter(pk=invoice.pk).update(payment_status="open")  # as if the daily job had not run
    response = clerk.post(url("invoice"), {"action": "refresh_payment_status", "_selected_action": [invoice.pk]},
                          follow=True)
    assert any(m.startswith("1 refreshed, 1 changed") for m in messages_of(response))
    assert Invoice.objects.get(pk=invoice.pk).payment_status == "overdue"


# --- one-time charges ---------------------------------------------------------------------------
def test_one_time_charges_are_editable_until_billed(clerk, billed, cli):
    partner = Partner.objects.get(slug="brightdesk")
    charge = OneTimeCharge.objects.create(partner=partner, description="Firewall", quantity=Decimal("1"),
                                          unit_price=Decimal("400"), date=date(2026, 5, 12))
    form = {"partner": partner.pk, "customer": "", "description": "Firewall appliance", "quantity": "1",
            "unit_price": "450.00", "date": "2026-05-12", "taxable": "on"}
    assert "not billed yet" in clerk.get(url("onetimecharge")).content.decode()
    assert clerk.post(url("onetimecharge", "change", charge.pk), form).status_code == 302
    assert OneTimeCharge.objects.get(pk=charge.pk).unit_price == Decimal("450.00")
    assert AuditLog.objects.filter(action="one_time_charge.update").exists()

    assert cli("run_billing", "--through", "2026-06-01").status == 0
    inv = Invoice.objects.get(kind=InvoiceKind.INV, state=InvoiceState.ISSUED)
    assert InvoiceLine.objects.filter(invoice=inv, key=f"one_time:{charge.pk}").exists()
    page = clerk.get(url("onetimecharge")).content.decode()
    assert inv.number in page
    assert "billed" in clerk.get(url("onetimecharge") + "?billed=yes").content.decode()
    assert clerk.post(url("onetimecharge", "change", charge.pk), {**form, "unit_price": "1"}).status_code == 403
    assert clerk.post(url("onetimecharge", "delete", charge.pk), {"post": "yes"}).status_code == 403
    assert OneTimeCharge.objects.get(pk=charge.pk).unit_price == Decimal("450.00")


def test_one_time_charge_form_rules(clerk, billed):
    partner = Partner.objects.get(slug="brightdesk")
    response = clerk.post(url("onetimecharge", "add"), {
        "partner": partner.pk, "customer": "", "description": "Rebate", "quantity": "0", "unit_price": "-5",
        "date": "2099-01-01", "taxable": "on",
    })
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"quantity", "unit_price", "date"}
    assert not OneTimeCharge.objects.exists()


def test_one_time_charges_have_an_import_button(clerk, billed):
    page = clerk.get(url("onetimecharge")).content.decode()
    assert url("onetimecharge", "import") in page
    assert clerk.get(url("onetimecharge", "import")).status_code == 200


def test_payment_amount_places_follow_the_invoice_currency():
    invoice = Invoice(currency="JPY", issue_date=date(2026, 4, 1), amount_due=Decimal("5000"), number="INV-0001",
                      state=InvoiceState.ISSUED)
    form = InvoicePaymentForm({"amount": "10.5", "paid_on": "2026-04-02"}, invoice=invoice)
    # the import's rule and message (invoicing.services.payment_refusals, billing-rules 4.8)
    assert form.errors == {"amount": ["at most 0 decimal places (JPY)"]}
    assert InvoicePaymentForm({"amount": "10", "paid_on": "2026-04-02"}, invoice=invoice).is_valid()


def test_payment_autocomplete_offers_only_payable_invoices(clerk, billed):
    clerk.post(tool(billed["CI-0001"], "credit_lines"),
               {"lines": list(billed["CI-0001"].lines.exclude(line_type=LineType.TAX).values_list("pk", flat=True)),
                "reason": "test"})
    assert Invoice.objects.filter(number="CN-0001").exists()
    response = clerk.get(reverse("admin:autocomplete"), {"app_label": "invoicing", "model_name": "payment",
                                                         "field_name": "invoice", "term": "-0001"})
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["CI-0001"]

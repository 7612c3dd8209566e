"""Customer invoices (issue 20, item 3; billing-rules 12.4-12.9): the partner's invoices to its own customers,
issued by the same billing run after the partner's documents.

- the seed's example end to end through the command line: Company A, 10 hosts at 15.00 from 10 March billed
  101.64 for March, 150.00 on 1 April, and 25 hosts from 25 April billed 375.00 on 1 May (data/company-a);
- numbering per partner, gapless, with the partner's prefix; a rerun issues nothing twice;
- rebilling off: no customer invoice; a customer without a resale price: not billed, listed;
- issued invoices never change; a whole credit note; drafts for review;
- the PDF (the partner as issuer, the customer as recipient), the XLSX, render_invoice, the email.
"""

from __future__ import annotations

import importlib
import io
import shutil
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
import time_machine
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse
from openpyxl import load_workbook

from billing.core.actor import Actor
from invoicing.choices import InvoiceState, LineType
from invoicing.models import IssuedInvoiceError
from invoicing.rebilling.choices import CustomerInvoiceKind, UnbilledReason
from invoicing.rebilling.invoices import customer_credit_note_issue, customer_invoice_issue_draft
from invoicing.rebilling.models import (
    CustomerBillingProfile,
    CustomerInvoice,
    CustomerInvoiceLine,
    RebillingProfile,
    UnbilledCharge,
)
from invoicing.rebilling.reports import customer_invoice_xlsx
from invoicing.services import BillingError
from partners.choices import AuditAction
from partners.models import AuditLog, Customer, Partner
from partners.tests.factories import UserFactory
from tests.examples import expected_rows, export

pytestmark = pytest.mark.django_db

D = Decimal
DATA = Path(__file__).parent / "data" / "company-a"
ACTOR = Actor(label="test")


def imported(cli, kind: str, name: str):
    result = cli("import_csv", kind, str(DATA / name))
    assert result.status == 0, result.err


def billed(cli, through: str) -> str:
    with time_machine.travel(datetime.fromisoformat(through).replace(hour=6, tzinfo=UTC), tick=False):
        result = cli("run_billing", "--through", through)
    assert result.status == 0, result.err
    return result.out


@pytest.fixture
def lakeside(cli):
    """The seed's Company A (per_host hosts from 10 March, 15.00 a host in the default list; our price 10.00) and
    Company B (a flat support plan with no resale price), for a partner with rebilling on."""
    with time_machine.travel(datetime(2026, 3, 1, 6, tzinfo=UTC), tick=False):
        for kind, name in [("partners", "partners.csv"), ("customers", "customers.csv"),
                           ("services", "services.csv"), ("resale-prices", "resale-prices.csv")]:
            imported(cli, kind, name)
    partner = Partner.objects.get(slug="lakeside")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="LAKE",
                                    legal_name="Lakeside Networks LLC", address="1 Shore Road\nDuluth MN 55802",
                                    tax_id="US-41-1234567", payment_terms_days=30)
    CustomerBillingProfile.objects.create(customer=Customer.objects.get(slug="company-a"),
                                          legal_name="Company A Inc.", address="9 Hill Street\nSt Paul MN",
                                          tax_id="US-77-7654321", billing_emails="ap@company-a.example")
    return partner


def the_seed_billed(cli):
    billed(cli, "2026-03-10")
    billed(cli, "2026-04-01")
    with time_machine.travel(datetime(2026, 4, 20, 6, tzinfo=UTC), tick=False):
        imported(cli, "customers", "host-limit-april.csv")  # 25 hosts from 25 April
    billed(cli, "2026-05-01")


def test_the_seeds_example_through_the_command_line(cli, lakeside):
    """The acceptance of issue 20: 101.64 for March (4.84 a day x 21 days), 150.00 on 1 April, 375.00 on 1 May,
    each with the host limit in force recorded; the partner paid us 67.83, 100.00 and 250.00 for the same."""
    the_seed_billed(cli)
    rows = export("customer-invoice-lines", "--partner", "lakeside")
    assert rows == expected_rows(DATA, "expected-customer-invoice-lines.csv")
    assert [r["amount"] for r in rows] == ["101.64", "150.00", "375.00"]
    ours = export("invoice-lines", "--partner", "lakeside")
    assert [(r["service"], r["amount"]) for r in ours if r["service"] == "hosts"] == [
        ("hosts", "67.83"), ("hosts", "100.00"), ("hosts", "250.00")]
    details = list(CustomerInvoiceLine.objects.order_by("invoice__number").values_list("details", flat=True))
    assert [(d["host_limit"], d["host_limit_on"]) for d in details] == [
        (10, "2026-03-10"), (10, "2026-04-01"), (25, "2026-05-01")]
    may = export("customer-invoice-lines", "--month", "2026-05")
    assert [r["invoice_number"] for r in may] == ["LAKE-0003"]


def test_a_customer_without_a_resale_price_is_not_billed_but_listed(cli, lakeside):
    """Company B's support plan has no resale price: never billed at a price the partner did not set."""
    the_seed_billed(cli)
    assert not CustomerInvoice.objects.filter(customer__slug="company-b").exists()
    listed = UnbilledCharge.objects.filter(customer__slug="company-b").order_by("period")
    assert [(c.service.code, c.period, c.reason) for c in listed] == [
        ("support", month, UnbilledReason.NO_PRICE) for month in ("2026-03", "2026-04", "2026-05")]


def test_numbering_per_partner_gapless_and_a_rerun_issues_nothing_twice(cli, lakeside):
    the_seed_billed(cli)
    billed(cli, "2026-05-01")  # again
    billed(cli, "2026-05-10")
    numbers = list(CustomerInvoice.objects.order_by("number").values_list("number", flat=True))
    assert numbers == ["LAKE-0001", "LAKE-0002", "LAKE-0003"]
    assert UnbilledCharge.objects.count() == 3


def test_rebilling_off_issues_no_customer_invoice(cli, lakeside):
    RebillingProfile.objects.filter(partner=lakeside).update(enabled=False)
    the_seed_billed(cli)
    assert not CustomerInvoice.objects.exists()
    assert not UnbilledCharge.objects.exists()


def test_a_preview_drafts_no_customer_invoice(cli, lakeside):
    with time_machine.travel(datetime(2026, 4, 1, 6, tzinfo=UTC), tick=False):
        result = cli("run_billing", "--through", "2026-04-01", "--draft")
    assert result.status == 0, result.err
    assert not CustomerInvoice.objects.exists()


def test_issued_customer_invoices_never_change(cli, lakeside):
    the_seed_billed(cli)
    invoice = CustomerInvoice.objects.get(number="LAKE-0002")
    invoice.total = D("1.00")
    with pytest.raises(IssuedInvoiceError):
        invoice.save()
    with pytest.raises(IssuedInvoiceError):
        CustomerInvoice.objects.filter(pk=invoice.pk).update(total=D("1.00"))
    with pytest.raises(IssuedInvoiceError):
        CustomerInvoice.objects.filter(pk=invoice.pk).delete()
    with pytest.raises(IssuedInvoiceError):
        invoice.delete()
    line = invoice.lines.get()
    line.amount = D("1.00")
    with pytest.raises(IssuedInvoiceError):
        line.save()
    with pytest.raises(IssuedInvoiceError):
        CustomerInvoiceLine.objects.filter(invoice=invoice).update(amount=D("1.00"))
    with pytest.raises(IssuedInvoiceError):
        CustomerInvoiceLine.objects.filter(invoice=invoice).delete()
    CustomerInvoice.objects.filter(pk=invoice.pk).update(emailed_at=datetime(2026, 4, 2, tzinfo=UTC))  # allowed


def test_a_credit_note_for_a_whole_customer_invoice(cli, lakeside):
    """Tax included, exactly: the customer's tax rate is on its profile."""
    CustomerBillingProfile.objects.filter(customer__slug="company-a").update(tax_rate=D("8.25"))
    the_seed_billed(cli)
    invoice = CustomerInvoice.objects.get(number="LAKE-0002")
    assert (invoice.subtotal, invoice.tax_amount, invoice.total) == (D("150.00"), D("12.38"), D("162.38"))
    with time_machine.travel(datetime(2026, 4, 3, 9, tzinfo=UTC), tick=False):
        note = customer_credit_note_issue(invoice=invoice, actor=ACTOR, reason="hosts never used")
    assert note.number == "LAKE-CN-0001"
    assert (note.kind, note.issue_date, note.credits) == (CustomerInvoiceKind.CREDIT_NOTE, date(2026, 4, 3), invoice)
    assert (note.subtotal, note.tax_amount, note.total) == (D("-150.00"), D("-12.38"), D("-162.38"))
    assert sorted(note.lines.values_list("line_type", "amount")) == [
        (LineType.CREDIT, D("-150.00")), (LineType.TAX, D("-12.38"))]
    with pytest.raises(BillingError, match="already credited"):
        customer_credit_note_issue(invoice=invoice, actor=ACTOR)
    with pytest.raises(BillingError, match="correct issued customer invoices"):
        customer_credit_note_issue(invoice=note, actor=ACTOR)
    rows = export("customer-invoice-lines", "--partner", "lakeside")
    assert [(r["invoice_number"], r["kind"], r["amount"]) for r in rows if r["invoice_number"].startswith("LAKE-CN")] \
        == [("LAKE-CN-0001", "credit_note", "-150.00"), ("LAKE-CN-0001", "credit_note", "-12.38")]


def test_drafts_for_review_are_numbered_when_issued(cli, lakeside):
    RebillingProfile.objects.filter(partner=lakeside).update(review_drafts=True)
    billed(cli, "2026-03-10")
    billed(cli, "2026-04-01")
    drafts = list(CustomerInvoice.objects.order_by("issue_date"))
    assert [(d.state, d.number) for d in drafts] == [(InvoiceState.DRAFT, None)] * 2
    assert export("customer-invoice-lines") == []
    with pytest.raises(BillingError, match="earlier drafts first"):
        customer_invoice_issue_draft(invoice=drafts[1], actor=ACTOR)
    customer_invoice_issue_draft(invoice=drafts[0], actor=ACTOR)
    customer_invoice_issue_draft(invoice=drafts[1], actor=ACTOR)
    assert list(CustomerInvoice.objects.order_by("issue_date").values_list("number", flat=True)) == [
        "LAKE-0001", "LAKE-0002"]
    with pytest.raises(BillingError, match="already issued"):
        customer_invoice_issue_draft(invoice=drafts[1], actor=ACTOR)
    billed(cli, "2026-04-01")  # a rerun neither drafts again nor touches them
    assert CustomerInvoice.objects.count() == 2


def pdf_text(content: bytes) -> str:
    """A PDF read back as text by `pdftotext` (pypdf where poppler is missing)."""
    if shutil.which("pdftotext"):
        out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=content, capture_output=True, check=True)
        return out.stdout.decode()
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


def test_the_pdf_shows_the_partner_as_issuer_and_the_customer_as_recipient(cli, lakeside, tmp_path):
    the_seed_billed(cli)
    output = tmp_path / "LAKE-0001.pdf"
    result = cli("render_invoice", "LAKE-0001", "--output", str(output))
    assert result.status == 0, result.err
    text = pdf_text(output.read_bytes())
    for words in ["Lakeside Networks LLC", "1 Shore Road", "Tax ID US-41-1234567", "Company A Inc.", "9 Hill Street",
                  "Tax ID US-77-7654321", "LAKE-0001", "Meeting hosts first month from 2026-03-10", "101.64",
                  "(host limit on 2026-03-10)", "NEW CHARGES"]:
        assert words in text, words
    assert "PREVIOUS BALANCE" not in text.upper()  # Customer Billing off: new charges only
    assert "Northbridge" not in text


def test_the_xlsx_of_a_customer_invoice(cli, lakeside):
    the_seed_billed(cli)
    book = load_workbook(io.BytesIO(customer_invoice_xlsx(CustomerInvoice.objects.get(number="LAKE-0003"))))
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0][:3] == ("invoice_number", "kind", "status")
    assert [(r[0], r[7], r[12]) for r in rows[1:]] == [("LAKE-0003", "hosts", 375)]


def test_issued_invoices_are_emailed_to_the_customer_when_the_partner_wants(cli, lakeside, mailoutbox, committed):
    RebillingProfile.objects.filter(partner=lakeside).update(email_invoices=True, email="accounts@lakeside.example")
    mailoutbox.clear()
    with committed():
        billed(cli, "2026-03-10")
    sent = [m for m in mailoutbox if "LAKE-0001" in m.subject]
    assert len(sent) == 1
    assert sent[0].to == ["ap@company-a.example"]
    assert sent[0].reply_to == ["accounts@lakeside.example"]
    assert [name for name, _, _ in sent[0].attachments] == ["LAKE-0001.pdf", "LAKE-0001-lines.xlsx"]
    assert CustomerInvoice.objects.get(number="LAKE-0001").emailed_at is not None


def test_no_email_unless_the_partner_wants_it(cli, lakeside, mailoutbox, committed):
    with committed():
        billed(cli, "2026-03-10")
    assert not [m for m in mailoutbox if "LAKE" in m.subject]


def test_each_partner_numbers_its_own_customer_invoices(cli, lakeside, csv_file):
    """A second partner with rebilling on starts at its own 0001; the issues are audited, each with its number."""
    with time_machine.travel(datetime(2026, 3, 1, 6, tzinfo=UTC), tick=False):
        for kind, text in [
            ("partners", "slug,name,currency,tax_rate,payment_terms_days\nharbor,Harbor IT,USD,0,30\n"),
            ("customers", "partner,slug,name,host_limit\nharbor,dock,Dock Co,4\n"),
            ("services", "partner,customer,code,name,method,unit_price,start_date\n"
                         "harbor,dock,hosts,Hosts,per_host,9.00,2026-03-01\n"),
            ("resale-prices", "partner,customer,service,markup_percent,effective_from\n"
                              "harbor,,hosts,50,2026-03-01\n"),
        ]:
            result = cli("import_csv", kind, str(csv_file(f"{kind}.csv", text)))
            assert result.status == 0, result.err
    RebillingProfile.objects.create(partner=Partner.objects.get(slug="harbor"), enabled=True, number_prefix="HBR")
    the_seed_billed(cli)
    rows = export("customer-invoice-lines", "--partner", "harbor")
    # 4 hosts at our 9.00 plus 50%: 13.50 a host, 54.00 a month
    assert [(r["invoice_number"], r["unit_price"], r["amount"]) for r in rows] == [
        ("HBR-0001", "13.50", "54.00"), ("HBR-0002", "13.50", "54.00"), ("HBR-0003", "13.50", "54.00")]
    assert [r["invoice_number"] for r in export("customer-invoice-lines", "--partner", "lakeside")] == [
        "LAKE-0001", "LAKE-0002", "LAKE-0003"]
    audited = AuditLog.objects.filter(action=AuditAction.CUSTOMER_INVOICE_ISSUE).order_by("pk")
    assert sorted(a.after["number"] for a in audited) == [
        "HBR-0001", "HBR-0002", "HBR-0003", "LAKE-0001", "LAKE-0002", "LAKE-0003"]


def test_a_partner_level_service_is_split_per_customer_by_its_meter(cli, csv_file):
    """A partner-level peak-users service: each customer is charged for its own peak (billing-rules 12.6); a
    partner-level flat plan has no quantity per customer and is listed, not billed."""
    with time_machine.travel(datetime(2026, 3, 31, 6, tzinfo=UTC), tick=False):
        for kind, text in [
            ("partners", "slug,name,currency,tax_rate,payment_terms_days\nharbor,Harbor IT,USD,0,30\n"),
            ("customers", "partner,slug,name\nharbor,c1,One\nharbor,c2,Two\n"),
            ("services", "partner,customer,code,name,method,meter,unit_price,start_date\n"
                         "harbor,,users,Users,peak,users,2.00,2026-03-01\n"
                         "harbor,,support,Support,flat,,45.00,2026-03-01\n"),
            ("resale-prices", "partner,customer,service,unit_price,effective_from\n"
                              "harbor,,users,3.00,2026-03-01\nharbor,,support,60.00,2026-03-01\n"),
            ("tenant-usage", "partner,customer,date,users_count,storage_bytes,messages_count\n"
                             "harbor,c1,2026-03-01,5,0,\nharbor,c2,2026-03-01,8,0,\nharbor,c2,2026-03-15,12,0,\n"),
        ]:
            result = cli("import_csv", kind, str(csv_file(f"{kind}.csv", text)))
            assert result.status == 0, result.err
    RebillingProfile.objects.create(partner=Partner.objects.get(slug="harbor"), enabled=True, number_prefix="HBR")
    billed(cli, "2026-04-01")
    rows = export("customer-invoice-lines")
    assert [(r["customer"], r["service"], r["period"], r["quantity"], r["amount"]) for r in rows] == [
        ("c1", "users", "2026-03", "5.0000", "15.00"), ("c2", "users", "2026-03", "12.0000", "36.00")]
    listed = UnbilledCharge.objects.order_by("period")
    assert [(c.customer_id, c.service.code, c.period, c.reason) for c in listed] == [
        (None, "support", "2026-03", UnbilledReason.NOT_SPLIT), (None, "support", "2026-04", UnbilledReason.NOT_SPLIT)]


# --- the admin --------------------------------------------------------------------------------------------------
@pytest.fixture
def staff(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_the_admin_shows_customer_invoices_read_only_with_their_pdf_and_lines(cli, lakeside, staff):
    the_seed_billed(cli)
    invoice = CustomerInvoice.objects.get(number="LAKE-0001")
    listed = staff.get(reverse("admin:rebilling_customerinvoice_changelist"))
    assert listed.status_code == 200 and "LAKE-0003" in listed.content.decode()
    page = staff.get(reverse("admin:rebilling_customerinvoice_change", args=[invoice.pk])).content.decode()
    assert "Meeting hosts first month from 2026-03-10" in page and "101.64" in page
    pdf = staff.get(reverse("admin:rebilling_customerinvoice_pdf", args=[invoice.pk]))
    assert pdf["Content-Type"] == "application/pdf" and "Lakeside Networks LLC" in pdf_text(pdf.content)
    xlsx = staff.get(reverse("admin:rebilling_customerinvoice_xlsx", args=[invoice.pk]))
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert staff.get(reverse("admin:rebilling_customerinvoice_add")).status_code == 403
    delete = reverse("admin:rebilling_customerinvoice_delete", args=[invoice.pk])
    assert staff.post(delete, {"post": "yes"}).status_code == 403
    unbilled = staff.get(reverse("admin:rebilling_unbilledcharge_changelist")).content.decode()
    assert "No resale price for the customer" in unbilled


def test_a_clerks_change_of_a_rebilling_profile_is_audited(lakeside, staff):
    profile = RebillingProfile.objects.get(partner=lakeside)
    url = reverse("admin:rebilling_rebillingprofile_change", args=[profile.pk])
    form = {"partner": lakeside.pk, "enabled": "on", "number_prefix": "LKN", "payment_terms_days": 14,
            "legal_name": "Lakeside Networks LLC", "address": "1 Shore Road", "tax_id": "US-41-1234567"}
    response = staff.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditLog.objects.get(action=AuditAction.REBILLING_PROFILE_UPDATE)
    assert (entry.before["number_prefix"], entry.after["number_prefix"]) == ("LAKE", "LKN")
    assert entry.partner == lakeside
    refused = staff.post(url, form | {"number_prefix": "CI"})
    assert refused.status_code == 200 and "our own invoices" in refused.content.decode()


def test_a_clerks_new_customer_billing_profile_is_audited(lakeside, staff):
    customer = Customer.objects.get(slug="company-b")
    response = staff.post(reverse("admin:rebilling_customerbillingprofile_add"), {
        "customer": customer.pk, "legal_name": "Company B GmbH", "tax_rate": "19", "billing_emails": "ap@b.example"})
    assert response.status_code == 302
    entry = AuditLog.objects.get(action=AuditAction.CUSTOMER_BILLING_PROFILE_CREATE)
    assert entry.after["tax_rate"] == "19" and entry.partner == lakeside


def test_a_clerk_credits_an_invoice_in_full_and_issues_drafts_from_the_admin(cli, lakeside, client):
    importlib.import_module("invoicing.rebilling.migrations.0003_customer_invoices").apply_to_groups(django_apps)
    clerk = UserFactory(username="clerk", is_staff=True)
    clerk.groups.add(Group.objects.get(name="Billing clerk"))
    client.force_login(clerk)
    RebillingProfile.objects.filter(partner=lakeside).update(review_drafts=True)
    billed(cli, "2026-04-01")
    url = reverse("admin:rebilling_customerinvoice_changelist")
    drafts = list(CustomerInvoice.objects.order_by("issue_date").values_list("pk", flat=True))
    response = client.post(url, {"action": "issue_drafts", "_selected_action": drafts}, follow=True)
    assert "2 issued: LAKE-0001, LAKE-0002" in response.content.decode()
    first = CustomerInvoice.objects.get(number="LAKE-0001")
    response = client.post(url, {"action": "credit_in_full", "_selected_action": [first.pk]}, follow=True)
    assert "1 credited: LAKE-0001" in response.content.decode()
    assert CustomerInvoice.objects.get(credits=first).number == "LAKE-CN-0001"
    response = client.post(url, {"action": "credit_in_full", "_selected_action": [first.pk]}, follow=True)
    assert "LAKE-0001 is already credited" in response.content.decode()


# --- numbers under concurrent issuing (PostgreSQL: row locks, parallel transactions) -----------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_of_one_partner_take_unique_gapless_numbers():
    """12 drafts of one partner issued at once from a fresh sequence (no row yet): LAKE-0001 .. LAKE-0012, each
    once; a rolled-back issue gives its number back."""
    from invoicing.tests.test_concurrency import in_parallel  # noqa: PLC0415 (PostgreSQL only)
    from partners.tests.factories import CustomerFactory, PartnerFactory  # noqa: PLC0415

    partner = PartnerFactory(slug="lakeside")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="LAKE")
    customer = CustomerFactory(partner=partner)
    drafts = [CustomerInvoice.objects.create(partner=partner, customer=customer, month="2026-04",
                                             issue_date=date(2026, 4, 1), due_date=date(2026, 5, 1), currency="USD")
              for _ in range(12)]
    with pytest.raises(RuntimeError), transaction.atomic():
        customer_invoice_issue_draft(invoice=drafts[0], actor=ACTOR)
        raise RuntimeError("rolled back")
    outcomes = in_parallel(lambda n: customer_invoice_issue_draft(invoice=drafts[n], actor=ACTOR).number, 12)
    assert sorted(outcomes) == [f"LAKE-{n:04d}" for n in range(1, 13)], outcomes


# --- the run's output, our cost, own items from a usage-record meter (billing-rules 12.5, 12.11, 12.12) ----------
def test_run_billing_names_the_customer_invoices_it_issued_and_what_it_could_not_rebill(cli, lakeside):
    out = billed(cli, "2026-03-10")
    assert "LAKE-0001  customer invoice from lakeside to company-a 2026-03-10 total 101.64 USD" in out
    out = billed(cli, "2026-04-01")
    assert "LAKE-0002  customer invoice from lakeside to company-a 2026-04-01 total 150.00 USD" in out
    assert "1 charge(s) not on a customer invoice" in out  # company-b's support plan has no resale price


def test_each_customer_line_keeps_what_we_charged_the_partner_for_it(cli, lakeside):
    """The margin's other half: our 67.83, 100.00 and 250.00 for the hosts the customer is billed 101.64,
    150.00 and 375.00 for."""
    the_seed_billed(cli)
    lines = CustomerInvoiceLine.objects.order_by("invoice__number")
    assert [(line.amount, line.cost) for line in lines] == [
        (D("101.64"), D("67.83")), (D("150.00"), D("100.00")), (D("375.00"), D("250.00"))]


def test_an_own_item_with_a_call_minutes_meter_bills_the_customers_calls_of_the_month_before(cli, lakeside,
                                                                                           tmp_path):
    """An own item priced per minute, its quantity the customer's outbound minutes of April (61 s and 60 s
    calls: 2 + 1 minutes, each call rounded up), on the invoice that follows the CI of May."""
    from invoicing.rebilling.models import ResaleItem, ResalePrice  # noqa: PLC0415

    item = ResaleItem.objects.create(partner=lakeside, code="calls-out", name="Outbound calls", unit="minute",
                                     meter="call_minutes:outbound:*")
    ResalePrice.objects.create(partner=lakeside, item=item, mode="unit", unit_price=D("0.05"),
                               effective_from=date(2026, 3, 1))
    calls = tmp_path / "calls.csv"
    calls.write_text("partner,customer,record_id,user,started_at,duration_seconds,direction,destination\n"
                     "lakeside,company-a,c1,101,2026-04-30T23:59:59Z,61,outbound,international\n"
                     "lakeside,company-a,c2,102,2026-04-02T10:00:00Z,60,Outbound,mobile\n"
                     "lakeside,company-a,c3,103,2026-04-02T11:00:00Z,600,inbound,local\n"
                     "lakeside,company-a,c4,103,2026-05-01T00:00:00Z,600,outbound,local\n")
    billed(cli, "2026-03-10")
    billed(cli, "2026-04-01")
    with time_machine.travel(datetime(2026, 5, 1, 5, tzinfo=UTC), tick=False):
        result = cli("import_csv", "call-usage", str(calls))
        assert result.status == 0, result.err
    billed(cli, "2026-05-01")
    may = CustomerInvoice.objects.get(number="LAKE-0003")
    line = may.lines.get(item=item)
    assert (line.period, line.quantity, line.amount, line.cost) == ("2026-04", D("3"), D("0.15"), None)
    assert line.description == "Outbound calls 2026-04: 3 minutes (call_minutes:outbound:*)"
    assert may.total == D("150.15")
    april = CustomerInvoice.objects.get(number="LAKE-0002")
    assert not april.lines.filter(item=item).exists()  # March had no calls


def test_a_credit_note_for_chosen_lines_then_the_rest_gives_back_exactly_the_tax(cli, lakeside):
    """Credit notes for chosen lines (billing-rules 12.7, as ours 4.5): each line once, its own tax rounded once,
    and the last note takes the tax still uncredited. Each note is a credit transaction of the customer."""
    from invoicing.rebilling.models import CustomerTransaction  # noqa: PLC0415

    CustomerBillingProfile.objects.filter(customer__slug="company-a").update(tax_rate=D("8.25"))
    billed(cli, "2026-03-10")
    billed(cli, "2026-04-01")
    invoice = CustomerInvoice.objects.get(number="LAKE-0002")
    host_line = invoice.lines.get(line_type=LineType.RECURRING)
    CustomerInvoiceLine.objects.bulk_create([CustomerInvoiceLine(
        invoice=CustomerInvoice.objects.create(
            partner=lakeside, customer=invoice.customer, month="2026-04", issue_date=date(2026, 4, 1),
            due_date=date(2026, 5, 1), currency="USD", tax_rate=D("8.25"), subtotal=D("0.15"),
            tax_amount=D("0.01"), total=D("0.16")),
        line_type=LineType.USAGE, period="2026-03", quantity=D("3"), unit_price=D("0.05"), amount=D("0.15"),
        description="calls")])  # a draft, never issued: the credit below must refuse its line
    other = CustomerInvoiceLine.objects.get(description="calls")
    with time_machine.travel(datetime(2026, 4, 3, 9, tzinfo=UTC), tick=False):
        with pytest.raises(BillingError, match="not a charge of LAKE-0002"):
            customer_credit_note_issue(invoice=invoice, actor=ACTOR, lines=[other])
        first = customer_credit_note_issue(invoice=invoice, actor=ACTOR, lines=[host_line], reason="two hosts")
        with pytest.raises(BillingError, match="already credited"):
            customer_credit_note_issue(invoice=invoice, actor=ACTOR, lines=[host_line])
        with pytest.raises(BillingError, match="already credited in full"):
            customer_credit_note_issue(invoice=invoice, actor=ACTOR)
    assert first.number == "LAKE-CN-0001"
    assert (first.subtotal, first.tax_amount) == (-invoice.subtotal, -invoice.tax_amount)  # one line: the last
    credits = CustomerTransaction.objects.filter(kind="credit", invoice=first)
    assert [t.amount for t in credits] == [first.total]

"""`import_csv customer-payments` (billing-rules 12.10, import-formats 5.13), as a partner's clerk runs it on a bank
export: a good file records each payment with its transaction and audit row, the same file again records nothing,
and every bad row is named as `row N: column: reason` with nothing written (the bad rows come after batches of good
ones: IMPORT_BATCH_SIZE is 3 under test settings, so only the rollback removes them)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.core.actor import Actor
from conftest import write_csv
from invoicing.choices import LineType
from invoicing.rebilling.choices import TransactionKind
from invoicing.rebilling.invoices import customer_credit_note_issue
from invoicing.rebilling.models import CustomerInvoice, CustomerPayment, CustomerTransaction, RebillingProfile
from invoicing.rebilling.tests.test_accounts import invoice_issued
from partners.choices import AuditAction
from partners.models import AuditLog
from partners.tests.factories import CustomerFactory, PartnerFactory
from tests.import_checks import import_rejected, row_error_lines

pytestmark = pytest.mark.django_db

D = Decimal
TRACKED = (CustomerPayment, CustomerTransaction, AuditLog)
HEADER = "partner,customer,date,amount,currency,reference,method,invoice,note"
GOOD = f"""
{HEADER}
lakeside,company-a,2026-04-15,101.64,USD,BANK-0415,bank transfer,LAKE-0001,the March invoice
lakeside,company-a,2026-05-02,50,,BANK-0502,card,,
lakeside,company-b,2026-05-03,20.00,usd,,cheque,lake-0002,
lakeside,company-b,2026-05-03,20.00,usd,,cheque,lake-0002,
"""


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(datetime(2026, 5, 20, 12, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def world():
    """Lakeside (USD) with Company A (LAKE-0001, credited by LAKE-CN-0001, and LAKE-0003) and Company B
    (LAKE-0002); Harbor, another partner, with its customer Dock."""
    partner = PartnerFactory(slug="lakeside", currency="USD")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="LAKE")
    a = CustomerFactory(partner=partner, slug="company-a")
    b = CustomerFactory(partner=partner, slug="company-b")
    first = invoice_issued(a, date(2026, 3, 10), [(LineType.FIRST_MONTH, D("101.64"))])
    invoice_issued(b, date(2026, 4, 1), [(LineType.RECURRING, D("20.00"))])
    invoice_issued(a, date(2026, 4, 1), [(LineType.RECURRING, D("150.00"))])
    customer_credit_note_issue(invoice=first, actor=Actor(label="test"), reason="test")
    harbor = PartnerFactory(slug="harbor", currency="EUR")
    CustomerFactory(partner=harbor, slug="dock")
    CustomerFactory(partner=harbor, slug="company-a")  # a slug of Lakeside's too: never mixed up
    return {"partner": partner, "a": a, "b": b}


def imported(cli, path, *options) -> str:
    result = cli("import_csv", "customer-payments", str(path), *options)
    assert result.status == 0, result.err
    assert not row_error_lines(result.err)
    return result.out.strip()


def test_a_good_file_records_each_payment_and_the_same_file_again_records_nothing(cli, tmp_path, world):
    path = write_csv(tmp_path, "bank.csv", GOOD)
    before = CustomerTransaction.objects.count()
    assert imported(cli, path) == "customer-payments: imported 4 rows: 3 created, 0 updated, 1 unchanged"
    payments = {(p.customer.slug, p.received_on): p for p in CustomerPayment.objects.select_related("customer")}
    march = payments[("company-a", date(2026, 4, 15))]
    assert (march.amount, march.currency, march.reference, march.method, march.invoice.number, march.note,
            march.source) == (D("101.64"), "USD", "BANK-0415", "bank transfer", "LAKE-0001", "the March invoice",
                              str(path)[-100:])
    assert payments[("company-a", date(2026, 5, 2))].currency == "USD"  # blank: the partner's
    assert payments[("company-b", date(2026, 5, 3))].invoice.number == "LAKE-0002"  # any case
    written = CustomerTransaction.objects.filter(kind=TransactionKind.PAYMENT).order_by("date")
    assert [(t.customer.slug, t.date, t.amount, t.reference) for t in written] == [
        ("company-a", date(2026, 4, 15), D("-101.64"), "BANK-0415"),
        ("company-a", date(2026, 5, 2), D("-50.00"), "BANK-0502"),
        ("company-b", date(2026, 5, 3), D("-20.00"), "LAKE-0002")]  # no reference: the invoice's number
    assert CustomerTransaction.objects.count() == before + 3
    audited = AuditLog.objects.filter(action=AuditAction.CUSTOMER_PAYMENT_RECORD).order_by("pk")
    assert sorted((a.after["customer"], a.after["amount"], a.after["reference"]) for a in audited) == [
        ("company-a", "101.64", "BANK-0415"), ("company-a", "50.00", "BANK-0502"), ("company-b", "20.00", "")]
    assert all(a.partner == world["partner"] and a.actor_label.startswith("import_csv") for a in audited)
    # the bank file again (50 and 50.00 are one amount): nothing recorded twice
    assert imported(cli, path) == "customer-payments: imported 4 rows: 0 created, 0 updated, 4 unchanged"
    again = write_csv(tmp_path, "again.csv", f"""
        {HEADER}
        lakeside,company-a,2026-05-02,50.00,,BANK-0502,card,,
        """)
    assert imported(cli, again) == "customer-payments: imported 1 rows: 0 created, 0 updated, 1 unchanged"
    assert CustomerPayment.objects.count() == 3 and audited.count() == 3
    assert CustomerTransaction.objects.count() == before + 3


def test_a_dry_run_writes_nothing(cli, tmp_path, world):
    result = cli("import_csv", "customer-payments", str(write_csv(tmp_path, "bank.csv", GOOD)), "--dry-run")
    assert result.status == 0, result.err
    assert result.out.startswith("customer-payments: would import 4 rows: 3 created, 0 updated, 1 unchanged")
    assert not CustomerPayment.objects.exists()


def test_every_bad_row_is_named_and_nothing_is_written(cli, tmp_path, world):
    """Two batches of good rows first; then each bad input once."""
    path = write_csv(tmp_path, "bad.csv", f"""
        {HEADER}
        lakeside,company-a,2026-04-15,101.64,USD,G1,,LAKE-0001,
        lakeside,company-a,2026-04-16,1.00,USD,G2,,,
        lakeside,company-a,2026-04-17,1.00,USD,G3,,,
        lakeside,company-b,2026-04-18,1.00,USD,G4,,,
        lakeside,company-b,2026-04-19,1.00,USD,G5,,,
        lakeside,company-b,2026-04-20,1.00,USD,G6,,,
        lakeside,nobody,2026-05-01,10.00,,,,,
        lakeside,dock,2026-05-01,10.00,,,,,
        lakeside,company-a,2026-05-01,-10.00,,,,,
        lakeside,company-a,2026-05-01,0,,,,,
        lakeside,company-a,15/05/2026,10.00,,,,,
        lakeside,company-a,2026-05-21,10.00,,,,,
        lakeside,company-a,2026-05-01,10.00,EUR,,,,
        lakeside,company-b,2026-05-01,10.00,,,,LAKE-0001,
        lakeside,company-a,2026-05-01,10.00,,,,LAKE-CN-0001,
        lakeside,company-a,2026-05-01,"1,234.50",,,,,
        lakeside,company-a,2026-05-01,10.005,,,,,
        lakeside,company-a,2026-05-01,10.00,,,,LAKE-0099,
        nowhere,company-a,2026-05-01,10.00,,,,,
        lakeside,company-a,2026-05-01,10.00,dollars,,,,
        lakeside,company-a,2026-05-02,10.00,,R1,,LAKE-0003,
        lakeside,company-a,2026-05-02,10.00,,R1,,,
        lakeside,company-a,,10.00,,,,,
        """)
    _, lines = import_rejected(cli, "customer-payments", path, tracked=TRACKED)
    assert lines == [
        "row 8: customer: unknown customer 'nobody' of partner lakeside",
        "row 9: customer: 'dock' is not a customer of this partner",
        "row 10: amount: a payment is more than 0 (a mistaken payment is voided, not paid back negative)",
        "row 11: amount: a payment is more than 0 (a mistaken payment is voided, not paid back negative)",
        "row 12: date: expected a date as YYYY-MM-DD, got '15/05/2026'",
        "row 13: date: 2026-05-21 is in the future",
        "row 14: currency: EUR is not lakeside's currency (USD)",
        "row 15: invoice: LAKE-0001 is not an invoice of company-b",
        "row 16: invoice: LAKE-CN-0001 is not an issued invoice",
        "row 17: amount: '1,234.50' is not a plain decimal: write 1234.50, with no thousands separator and a "
        "point before the cents",
        "row 18: amount: 10.005 has more decimals than USD has",
        "row 19: invoice: unknown customer invoice 'LAKE-0099'",
        "row 20: partner: unknown partner 'nowhere'",
        "row 21: currency: 'DOLLARS' is not a currency code (three letters: USD, EUR)",
        "row 23: reference: same customer, date, amount and reference as row 22 with other details: give each "
        "payment its own reference",
        "row 24: date: is required",
    ]


def test_each_bad_row_alone_is_refused(cli, tmp_path, world):
    """One bad row is enough to refuse the file: each of the seed's bad inputs, after a good row."""
    good = "lakeside,company-a,2026-04-15,101.64,USD,G1,,LAKE-0001,"
    for bad, column in [("lakeside,dock,2026-05-01,10.00,,,,,", "customer"),
                        ("lakeside,company-a,2026-05-01,-1,,,,,", "amount"),
                        ("lakeside,company-a,2026-05-01,0.00,,,,,", "amount"),
                        ("lakeside,company-a,2026-5-1,10.00,,,,,", "date"),
                        ("lakeside,company-a,2026-06-01,10.00,,,,,", "date"),
                        ("lakeside,company-a,2026-05-01,10.00,GBP,,,,", "currency"),
                        ("lakeside,company-a,2026-05-01,10.00,,,,LAKE-0002,", "invoice"),
                        ("lakeside,company-a,2026-05-01,10.00,,,,lake-cn-0001,", "invoice")]:
        path = write_csv(tmp_path, "one.csv", f"{HEADER}\n{good}\n{bad}\n")
        _, lines = import_rejected(cli, "customer-payments", path, tracked=TRACKED)
        assert len(lines) == 1 and lines[0].startswith(f"row 3: {column}: "), (bad, lines)


def test_partner_option_refuses_another_partners_rows(cli, tmp_path, world):
    path = write_csv(tmp_path, "bank.csv", f"""
        {HEADER}
        lakeside,company-a,2026-05-02,50.00,,B1,,,
        harbor,dock,2026-05-02,50.00,EUR,B2,,,
        """)
    _, lines = import_rejected(cli, "customer-payments", path, "--partner", "lakeside", tracked=TRACKED)
    assert lines == ["row 3: partner: 'harbor' is not the partner given with --partner (lakeside)"]
    assert imported(cli, path) == "customer-payments: imported 2 rows: 2 created, 0 updated, 0 unchanged"
    dock = CustomerPayment.objects.get(customer__slug="dock")
    assert (dock.partner.slug, dock.currency) == ("harbor", "EUR")


def test_a_customer_slug_of_two_partners_is_the_rows_partners(cli, tmp_path, world):
    path = write_csv(tmp_path, "bank.csv", f"{HEADER}\nlakeside,company-a,2026-05-02,50.00,,B1,,,\n")
    imported(cli, path)
    assert CustomerPayment.objects.get().customer == world["a"]
    assert CustomerInvoice.objects.filter(customer=world["a"]).count() == 3  # LAKE-0001, its credit note, LAKE-0003

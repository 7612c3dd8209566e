"""`import_csv` for one-time-charges and payments (billing-rules 4.1, 4.8, 8.1, 9, 6.5, 6.11), and the billing of
imported one-time charges by `run_billing`, through the command line as a clerk runs them.

Invoices come from replaying tests/data/seat-days-basic (brightdesk, 10% tax, 30-day terms; customers
oakridge with 15-day terms and pinecrest on the partner's terms), which leaves three issued CIs:
CI-0001 (2026-04-01, due 2026-05-01, 33.00), CI-0002 (2026-05-01, due 2026-05-31, 121.00) and CI-0003
(2026-06-01, due 2026-07-01, 211.13).

Rejected files are checked as in partners/tests/test_imports: exit 1, exactly the expected
`row N: column: reason` lines, and every table identical to before the run. The bad row is the last
of a file longer than IMPORT_BATCH_SIZE (3 under test settings), so a full batch of good rows has
been written inside the import's transaction before it.

The clock stands at 2026-06-15 12:00 UTC for every test ("today" for the future checks and for
overdue).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

import invoicing.imports
from billing.core.actor import Actor
from billing.core.importing import run_import_text
from invoicing.models import (
    ChildInvoice,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceSequence,
    InvoiceState,
    LineType,
    OneTimeCharge,
    Payment,
    PaymentStatus,
)
from invoicing.services import credit_note_issue
from partners.models import AuditLog, Customer, Partner, Service
from partners.tests.factories import CustomerFactory, PartnerFactory
from tests.examples import replay
from tests.import_checks import csv_text, import_rejected, row_error_lines, table_rows

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TRACKED = (Partner, Customer, Service, OneTimeCharge, Payment, Invoice, ChildInvoice, InvoiceLine, InvoiceSequence,
           AuditLog)


@pytest.fixture(autouse=True)
def today():
    """Today is 2026-06-15 (the clock ticks, so `auto_now` stamps still move between imports)."""
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def billed(today, data_dir):
    """seat-days-basic imported and billed through 2026-06-01 (CI-0001..CI-0003 issued), and globex, another
    partner, with its customer east."""
    replay(data_dir / "seat-days-basic")
    CustomerFactory(partner=PartnerFactory(slug="globex", name="Globex"), slug="east", name="East")
    assert list(Invoice.objects.order_by("number").values_list("number", flat=True)) == [
        "CI-0001", "CI-0002", "CI-0003"]
    return Partner.objects.get(slug="brightdesk")


# --- helpers -----------------------------------------------------------------------------------------------
def db_state() -> dict[str, list[dict]]:
    return table_rows(TRACKED)


def assert_rejected(cli, kind: str, path, expected: list[str], *options: str):
    """Exit 1, exactly the expected `row N: column: reason` lines in row order, nothing written."""
    result, lines = import_rejected(cli, kind, path, *options, tracked=TRACKED)
    assert lines == expected, result.err
    return result


def assert_imported(cli, kind: str, path, *options: str) -> str:
    result = cli("import_csv", kind, str(path), *options)
    assert result.status == 0, result.err
    assert not row_error_lines(result.err)
    return result.out


def bill(cli, through: str, *options: str) -> str:
    result = cli("run_billing", "--through", through, *options)
    assert result.status == 0, result.err
    return result.out


def status(number: str) -> str:
    return Invoice.objects.get(number=number).payment_status


CHARGES_HEADER = "partner,customer,description,quantity,unit_price,date,taxable"
PAYMENTS_HEADER = "invoice_number,amount,paid_on,reference"
HEADERS = {"one-time-charges": CHARGES_HEADER, "payments": PAYMENTS_HEADER}


@pytest.fixture
def write(csv_file):
    """Write a file of a kind from rows (after the kind's header); each call is a new file."""
    counter = iter(range(1000))
    return lambda kind, *rows, header=None: csv_file(
        f"{kind}-{next(counter)}.csv", csv_text(header or HEADERS[kind], *rows))


CHARGES_GOOD = [
    "brightdesk,oakridge,Laptop,2,899.50,2026-06-02,true",
    "brightdesk,pinecrest,Onboarding,1,250,2026-06-02,",
    "brightdesk,,Setup fee,1,100.00,2026-06-03,false",
    "brightdesk,oakridge,Cable,3.5,0.1234,2026-06-10,yes",
]
PAYMENTS_GOOD = [
    "CI-0001,10.00,2026-04-10,wire 1",
    "CI-0001,5,2026-04-20,",
    "CI-0002,121.00,2026-05-20,wire 2",
    "CI-0003,50.50,2026-06-05,wire 3",
]
GOOD = {"one-time-charges": CHARGES_GOOD, "payments": PAYMENTS_GOOD}
CREDIT = "must not be negative: a credit is a credit note, not a negative charge"

# --- row errors: four good rows (a batch and a bit), then the bad row 6 ----------------------------------------
ROW_ERRORS = [
    # one-time-charges
    pytest.param("one-time-charges", "ghost,,Fee,1,10,2026-06-01,", "partner: unknown partner 'ghost'",
                 id="charges-unknown-partner"),
    pytest.param("one-time-charges", "brightdesk,west,Fee,1,10,2026-06-01,",
                 "customer: unknown customer 'west' of partner brightdesk", id="charges-unknown-customer"),
    pytest.param("one-time-charges", "brightdesk,east,Fee,1,10,2026-06-01,",
                 "customer: unknown customer 'east' of partner brightdesk", id="charges-customer-of-another-partner"),
    pytest.param("one-time-charges", "brightdesk,,,1,10,2026-06-01,", "description: is required",
                 id="charges-description-required"),
    pytest.param("one-time-charges", f"brightdesk,,{'x' * 301},1,10,2026-06-01,",
                 "description: longer than 300 characters", id="charges-description-too-long"),
    pytest.param("one-time-charges", "brightdesk,,Fee,two,10,2026-06-01,", "quantity: not a number: 'two'",
                 id="charges-bad-quantity"),
    pytest.param("one-time-charges", "brightdesk,,Fee,-1,10,2026-06-01,", "quantity: must not be negative",
                 id="charges-negative-quantity"),
    pytest.param("one-time-charges", "brightdesk,,Fee,0,10,2026-06-01,", "quantity: must be more than 0",
                 id="charges-zero-quantity"),
    pytest.param("one-time-charges", "brightdesk,,Fee,0.0000,10,2026-06-01,", "quantity: must be more than 0",
                 id="charges-zero-quantity-with-places"),
    pytest.param("one-time-charges", "brightdesk,,Fee,1.23456,10,2026-06-01,", "quantity: at most 4 decimal places",
                 id="charges-quantity-too-precise"),
    pytest.param("one-time-charges", "brightdesk,,Fee,,10,2026-06-01,", "quantity: is required",
                 id="charges-quantity-required"),
    pytest.param("one-time-charges", "brightdesk,,Fee,1,ten,2026-06-01,", "unit_price: not a number: 'ten'",
                 id="charges-bad-price"),
    pytest.param("one-time-charges", "brightdesk,,Fee,1,NaN,2026-06-01,", "unit_price: not a number: 'NaN'",
                 id="charges-nan-price"),
    pytest.param("one-time-charges", "brightdesk,,Refund,1,-10,2026-06-01,", f"unit_price: {CREDIT}",
                 id="charges-negative-price"),
    pytest.param("one-time-charges", "brightdesk,,Fee,1,10.00001,2026-06-01,",
                 "unit_price: at most 4 decimal places", id="charges-price-too-precise"),
    pytest.param("one-time-charges", "brightdesk,,Fee,1,1e11,2026-06-01,",
                 "unit_price: too large: at most 10 digits before the decimal point", id="charges-price-too-large"),
    pytest.param("one-time-charges", "brightdesk,,Fee,9999999999,9999999999,2026-06-01,",
                 "unit_price: quantity x unit_price = 99999999980000000001.00 USD is too large for one invoice",
                 id="charges-amount-too-large"),
    pytest.param("one-time-charges", "brightdesk,,Fee,1000000,1000000,2026-06-01,",
                 "unit_price: quantity x unit_price = 1000000000000.00 USD is too large for one invoice",
                 id="charges-amount-just-too-large"),
    pytest.param("one-time-charges", "brightdesk,,Fee,1,10,2026-02-30,",
                 "date: expected a date as YYYY-MM-DD, got '2026-02-30'", id="charges-bad-date"),
    pytest.param("one-time-charges", "brightdesk,,Fee,1,10,15/06/2026,",
                 "date: expected a date as YYYY-MM-DD, got '15/06/2026'", id="charges-date-format"),
    pytest.param("one-time-charges", "brightdesk,,Fee,1,10,2026-06-16,", "date: 2026-06-16 is in the future",
                 id="charges-future-date"),
    pytest.param("one-time-charges", "brightdesk,,Fee,1,10,,", "date: is required", id="charges-date-required"),
    pytest.param("one-time-charges", "brightdesk,,Fee,1,10,2026-06-01,maybe",
                 "taxable: not a boolean: 'maybe' (true/false, yes/no, 1/0)", id="charges-bad-boolean"),
    # payments
    pytest.param("payments", "CI-0099,10,2026-06-01,", "invoice_number: unknown invoice 'CI-0099'",
                 id="payments-unknown-invoice"),
    pytest.param("payments", "INV-0001,10,2026-06-01,", "invoice_number: unknown invoice 'INV-0001'",
                 id="payments-unknown-inv"),
    pytest.param("payments", "INV-0100,10,2026-06-12,",
                 "invoice_number: INV-0100 is a draft: payments are recorded against issued invoices",
                 id="payments-draft"),
    pytest.param("payments", "CN-0001,10,2026-06-12,",
                 "invoice_number: CN-0001 is a credit note: a credit note is not paid", id="payments-credit-note"),
    pytest.param("payments", ",10,2026-06-01,", "invoice_number: is required", id="payments-number-required"),
    pytest.param("payments", "CI-0003,ten,2026-06-05,", "amount: not a number: 'ten'", id="payments-bad-number"),
    pytest.param("payments", "CI-0003,1.2.3,2026-06-05,", "amount: not a number: '1.2.3'",
                 id="payments-bad-number-two-points"),
    pytest.param("payments", "CI-0003,-5,2026-06-05,", "amount: must not be negative", id="payments-negative"),
    pytest.param("payments", "CI-0003,0,2026-06-05,", "amount: must be more than 0", id="payments-zero"),
    pytest.param("payments", "CI-0003,0.00,2026-06-05,", "amount: must be more than 0", id="payments-zero-cents"),
    pytest.param("payments", "CI-0003,10.001,2026-06-05,", "amount: at most 2 decimal places (USD)",
                 id="payments-too-many-places"),
    pytest.param("payments", "CI-0003,1e12,2026-06-05,",
                 "amount: too large: at most 12 digits before the decimal point", id="payments-too-large"),
    pytest.param("payments", "CI-0003,,2026-06-05,", "amount: is required", id="payments-amount-required"),
    pytest.param("payments", "CI-0003,10,2026-13-01,", "paid_on: expected a date as YYYY-MM-DD, got '2026-13-01'",
                 id="payments-bad-date"),
    pytest.param("payments", "CI-0003,10,2026-06-05T10:00:00Z,",
                 "paid_on: expected a date as YYYY-MM-DD, got '2026-06-05T10:00:00Z'", id="payments-instant"),
    pytest.param("payments", "CI-0003,10,2026-06-16,", "paid_on: 2026-06-16 is in the future",
                 id="payments-future-date"),
    pytest.param("payments", "CI-0003,10,2026-05-31,",
                 "paid_on: 2026-05-31 is before the issue date of CI-0003 (2026-06-01)",
                 id="payments-before-issue-date"),
    pytest.param("payments", f"CI-0003,10,2026-06-05,{'r' * 201}", "reference: longer than 200 characters",
                 id="payments-reference-too-long"),
]


@pytest.fixture
def oddities(billed):
    """CN-0001 (crediting CI-0003's portal line) and a draft INV that carries a number (a draft is normally
    unnumbered, so a clerk can only name one that was numbered by hand)."""
    ci3 = Invoice.objects.get(number="CI-0003")
    credit_note_issue(invoice=ci3, lines=[ci3.lines.get(line_type=LineType.RECURRING)], actor=Actor(label="test"))
    Invoice.objects.create(partner=billed, kind=InvoiceKind.INV, number="INV-0100", state=InvoiceState.DRAFT,
                           issue_date=date(2026, 6, 10), due_date=date(2026, 7, 10), currency="USD")
    assert Invoice.objects.filter(number="CN-0001", kind=InvoiceKind.CN).exists()


@pytest.mark.parametrize(("kind", "bad_row", "line"), ROW_ERRORS)
def test_a_bad_last_row_is_reported_and_nothing_is_written(oddities, cli, write, kind, bad_row, line):
    """billing-rules 8.1, 9.6: the bad last row (after a full batch of good ones) is `row 6: column: reason`,
    exit 1, and not even the good rows are written (nor any payment status changed)."""
    assert_rejected(cli, kind, write(kind, *GOOD[kind], bad_row), [f"row 6: {line}"])
    # the same file without the bad row imports: the error really is that row's
    out = assert_imported(cli, kind, write(kind, *GOOD[kind]))
    assert "imported 4 rows: 4 created, 0 updated, 0 unchanged" in out


def test_every_bad_row_is_reported_across_batches(billed, cli, write):
    rows = [
        "brightdesk,,Fee,1,10,2026-06-01,",
        "ghost,,Fee,1,10,2026-06-01,",
        "brightdesk,,Fee,0,-1,2026-06-01,",
        "brightdesk,,Fee,1,10,2026-06-01,",
        "brightdesk,west,Fee,1,10,2026-07-01,",
        "brightdesk,,Fee 2,1,10,2026-06-01,",
    ]
    assert_rejected(cli, "one-time-charges", write("one-time-charges", *rows), [
        "row 3: partner: unknown partner 'ghost'",
        "row 4: quantity: must be more than 0",
        f"row 4: unit_price: {CREDIT}",
        "row 6: customer: unknown customer 'west' of partner brightdesk",
    ])
    rows = ["CI-0001,10,2026-04-10,", "CI-0003,10,2026-05-01,", "ci-0009,1,2026-06-01,", "CI-0002,10,2026-05-02,",
            "CI-0002,10.123,2026-06-30,"]
    assert_rejected(cli, "payments", write("payments", *rows), [
        "row 3: paid_on: 2026-05-01 is before the issue date of CI-0003 (2026-06-01)",
        "row 4: invoice_number: unknown invoice 'ci-0009'",
        "row 6: amount: at most 2 decimal places (USD)",
        "row 6: paid_on: 2026-06-30 is in the future",
    ])


def test_a_missing_column_is_one_line(billed, cli, write):
    path = write("payments", "CI-0001,10,2026-04-10", header="invoice_number,amount,reference")
    before = db_state()
    result = cli("import_csv", "payments", str(path))
    assert result.status == 1
    assert [line for line in result.err.splitlines() if line.strip()] == [
        f"CommandError: {path}: missing column(s): paid_on (header: invoice_number, amount, reference)"]
    assert db_state() == before


# --- one-time charges ---------------------------------------------------------------------------------------------
def test_charges_are_stored_with_their_defaults_and_audited(billed, cli, write):
    out = assert_imported(cli, "one-time-charges", write("one-time-charges", *CHARGES_GOOD))
    assert "one-time-charges: imported 4 rows: 4 created, 0 updated, 0 unchanged" in out
    charges = {c.description: c for c in OneTimeCharge.objects.select_related("customer")}
    assert {d: (c.customer.slug if c.customer else None, c.quantity, c.unit_price, c.date, c.taxable)
            for d, c in charges.items()} == {
        "Laptop": ("oakridge", Decimal("2"), Decimal("899.5"), date(2026, 6, 2), True),
        "Onboarding": ("pinecrest", Decimal("1"), Decimal("250"), date(2026, 6, 2), True),  # taxable by default
        "Setup fee": (None, Decimal("1"), Decimal("100"), date(2026, 6, 3), False),
        "Cable": ("oakridge", Decimal("3.5"), Decimal("0.1234"), date(2026, 6, 10), True),
    }
    assert all(c.partner.slug == "brightdesk" and c.source.endswith(".csv") for c in charges.values())
    audits = AuditLog.objects.filter(action="one_time_charge.create")
    assert sorted(a.object_id for a in audits) == sorted(str(c.pk) for c in charges.values())
    laptop = audits.get(object_id=str(charges["Laptop"].pk))
    assert laptop.partner.slug == "brightdesk"
    assert laptop.object_type == "invoicing.OneTimeCharge"
    assert {k: v for k, v in laptop.after.items() if k != "file"} == {
        "customer": "oakridge", "description": "Laptop", "quantity": "2", "unit_price": "899.5", "currency": "USD",
        "date": "2026-06-02", "taxable": True}


def test_taxable_column_may_be_left_out(billed, cli, write):
    path = write("one-time-charges", "brightdesk,pinecrest,Onboarding,1,250,2026-06-02",
                 header="partner,customer,description,quantity,unit_price,date")
    assert_imported(cli, "one-time-charges", path)
    assert OneTimeCharge.objects.get().taxable is True


def test_a_charge_dated_today_and_a_free_item_are_accepted(billed, cli, write):
    assert_imported(cli, "one-time-charges", write("one-time-charges", "brightdesk,,Spare mouse,1,0,2026-06-15,"))
    assert OneTimeCharge.objects.get().unit_price == 0


def test_an_exact_duplicate_charge_row_is_a_no_op(billed, cli, write):
    rows = [*CHARGES_GOOD, CHARGES_GOOD[0], "brightdesk,oakridge,Laptop,2.00,899.5000,2026-06-02,yes"]
    out = assert_imported(cli, "one-time-charges", write("one-time-charges", *rows))
    assert "imported 6 rows: 4 created, 0 updated, 2 unchanged" in out
    assert OneTimeCharge.objects.filter(description="Laptop").count() == 1
    assert AuditLog.objects.filter(action="one_time_charge.create").count() == 4


def test_two_different_rows_are_two_charges(billed, cli, write):
    """No key beyond the whole row: the same item on the same day with another quantity (or customer, or tax
    flag) is another charge."""
    rows = ["brightdesk,oakridge,Laptop,2,899.50,2026-06-02,true",
            "brightdesk,oakridge,Laptop,1,899.50,2026-06-02,true",
            "brightdesk,pinecrest,Laptop,2,899.50,2026-06-02,true",
            "brightdesk,oakridge,Laptop,2,899.50,2026-06-02,false"]
    assert "4 created" in assert_imported(cli, "one-time-charges", write("one-time-charges", *rows))
    assert OneTimeCharge.objects.filter(description="Laptop").count() == 4


def test_reimporting_a_charges_file_changes_nothing(billed, cli, write):
    path = write("one-time-charges", *CHARGES_GOOD)
    assert_imported(cli, "one-time-charges", path)
    before = db_state()
    out = assert_imported(cli, "one-time-charges", path)
    assert "imported 4 rows: 0 created, 0 updated, 4 unchanged" in out
    assert db_state() == before


def test_charges_dry_run_writes_nothing(billed, cli, write):
    before = db_state()
    out = assert_imported(cli, "one-time-charges", write("one-time-charges", *CHARGES_GOOD), "--dry-run")
    assert "one-time-charges: would import 4 rows: 4 created, 0 updated, 0 unchanged" in out
    assert db_state() == before


def test_charges_of_another_partner_than_the_option_are_refused(billed, cli, write):
    assert_rejected(cli, "one-time-charges", write("one-time-charges", *CHARGES_GOOD), [
        f"row {n}: partner: 'brightdesk' is not the partner given with --partner (globex)" for n in range(2, 6)
    ], "--partner", "globex")


# --- one-time charges billed by run_billing (billing-rules 4.1, 6.5) --------------------------------------------------
def one_time_invoices() -> dict[str, Invoice]:
    """The INVs by the description of their one-time line."""
    lines = InvoiceLine.objects.filter(line_type=LineType.ONE_TIME, invoice__kind=InvoiceKind.INV)
    return {line.description: line.invoice for line in lines.select_related("invoice")}


def test_each_charge_is_billed_on_its_own_inv_dated_the_charge_date(billed, cli, write):
    assert_imported(cli, "one-time-charges", write("one-time-charges", *CHARGES_GOOD))
    out = bill(cli, "2026-06-15")
    assert "4 invoice(s) issued" in out
    invoices = one_time_invoices()
    assert sorted(i.number for i in invoices.values()) == ["INV-0001", "INV-0002", "INV-0003", "INV-0004"]
    assert Invoice.objects.filter(kind=InvoiceKind.INV).count() == 4  # one per charge, no CI for June again
    # (issue date, due date, customer, subtotal, tax, total); oakridge pays in 15 days, pinecrest on the partner's 30
    assert {d: (i.issue_date, i.due_date, i.customer.slug if i.customer else None, i.subtotal, i.tax_amount, i.total,
                i.state, i.payment_status) for d, i in invoices.items()} == {
        "Laptop": (date(2026, 6, 2), date(2026, 6, 17), "oakridge", Decimal("1799.00"), Decimal("179.90"),
                   Decimal("1978.90"), "issued", "open"),
        "Onboarding": (date(2026, 6, 2), date(2026, 7, 2), "pinecrest", Decimal("250.00"), Decimal("25.00"),
                       Decimal("275.00"), "issued", "open"),
        "Setup fee": (date(2026, 6, 3), date(2026, 7, 3), None, Decimal("100.00"), Decimal("0.00"),
                      Decimal("100.00"), "issued", "open"),
        "Cable": (date(2026, 6, 10), date(2026, 6, 25), "oakridge", Decimal("0.43"), Decimal("0.04"),
                  Decimal("0.47"), "issued", "open"),
    }
    for description, invoice in invoices.items():
        printed = f"{invoice.number:10} INV brightdesk           {invoice.issue_date} due {invoice.due_date} " \
                  f"total {invoice.total} USD"
        assert printed in out, (description, out)
    # the lines: the charge (rounded once from quantity x unit_price) and the tax line, 0.00 when not taxable
    cable = invoices["Cable"]
    assert list(cable.lines.values_list("line_type", "period", "quantity", "unit_price", "amount", "taxable",
                                        "key")) == [
        ("one_time", "2026-06", Decimal("3.5"), Decimal("0.1234"), Decimal("0.43"), True,
         f"one_time:{OneTimeCharge.objects.get(description='Cable').pk}"),
        ("tax", "2026-06", None, Decimal("10"), Decimal("0.04"), False, ""),
    ]
    setup = invoices["Setup fee"]
    assert list(setup.lines.values_list("line_type", "amount", "taxable")) == [
        ("one_time", Decimal("100.00"), False), ("tax", Decimal("0.00"), False)]


def test_two_charges_on_the_same_day_are_two_invs(billed, cli, write):
    """billing-rules 6.5: one INV per one-time-charge row, even on the same day for the same customer."""
    path = write("one-time-charges", "brightdesk,oakridge,Laptop,1,899.50,2026-06-02,",
                 "brightdesk,oakridge,Dock,1,150,2026-06-02,")
    assert "2 created" in assert_imported(cli, "one-time-charges", path)
    bill(cli, "2026-06-15")
    invoices = one_time_invoices()
    assert invoices["Laptop"] != invoices["Dock"]
    assert [(i.issue_date, i.customer.slug, i.lines.count()) for i in invoices.values()] == [
        (date(2026, 6, 2), "oakridge", 2), (date(2026, 6, 2), "oakridge", 2)]


def test_a_charge_after_the_through_date_waits_for_a_later_run(billed, cli, write):
    assert_imported(cli, "one-time-charges", write("one-time-charges", *CHARGES_GOOD))
    out = bill(cli, "2026-06-05")
    assert "3 invoice(s) issued" in out
    assert "Cable" not in one_time_invoices()
    assert "1 invoice(s) issued" in bill(cli, "2026-06-15")
    assert one_time_invoices()["Cable"].issue_date == date(2026, 6, 10)


def test_run_billing_again_bills_nothing_twice(billed, cli, write):
    assert_imported(cli, "one-time-charges", write("one-time-charges", *CHARGES_GOOD))
    bill(cli, "2026-06-15")
    before = db_state()
    assert "nothing to bill" in bill(cli, "2026-06-15")
    assert db_state() == before


def test_a_billed_charge_is_never_changed_by_an_import(billed, cli, write):
    """Re-importing a billed charge is a no-op (no second INV); a 'corrected' row is a new charge, billed on its own
    INV, and the billed charge and its INV stay as they were (a wrong charge is corrected by a credit note)."""
    path = write("one-time-charges", *CHARGES_GOOD)
    assert_imported(cli, "one-time-charges", path)
    bill(cli, "2026-06-15")
    charges = list(OneTimeCharge.objects.order_by("pk").values())
    before = db_state()
    assert "0 created, 0 updated, 4 unchanged" in assert_imported(cli, "one-time-charges", path)
    assert db_state() == before
    assert "nothing to bill" in bill(cli, "2026-06-15")
    corrected = write("one-time-charges", "brightdesk,oakridge,Laptop,2,849.50,2026-06-02,true")
    assert "1 created" in assert_imported(cli, "one-time-charges", corrected)
    assert list(OneTimeCharge.objects.order_by("pk").values())[:4] == charges
    assert "1 invoice(s) issued" in bill(cli, "2026-06-15")
    assert InvoiceLine.objects.filter(line_type=LineType.ONE_TIME, description="Laptop").count() == 2


def test_a_jpy_partner_charges_and_payments_have_no_minor_unit(today, cli, write):
    PartnerFactory(slug="yen", name="Yen MSP", currency="JPY", tax_rate=Decimal("10"), payment_terms_days=14)
    assert_imported(cli, "one-time-charges", write("one-time-charges", "yen,,Router,3,3333.3333,2026-06-01,"))
    bill(cli, "2026-06-15")
    invoice = Invoice.objects.get(number="INV-0001")
    assert (invoice.subtotal, invoice.tax_amount, invoice.total, invoice.due_date) == (
        Decimal("10000"), Decimal("1000"), Decimal("11000"), date(2026, 6, 15))
    assert_rejected(cli, "payments", write("payments", "INV-0001,11000.5,2026-06-02,"),
                    ["row 2: amount: at most 0 decimal places (JPY)"])
    assert_imported(cli, "payments", write("payments", "INV-0001,11000.00,2026-06-02,"))
    assert status("INV-0001") == PaymentStatus.PAID


# --- payments ----------------------------------------------------------------------------------------------------
def test_payments_are_recorded_and_audited(billed, cli, write):
    out = assert_imported(cli, "payments", write("payments", *PAYMENTS_GOOD))
    assert "payments: imported 4 rows: 4 created, 0 updated, 0 unchanged" in out
    payments = Payment.objects.values_list("invoice__number", "amount", "paid_on", "reference", "partner__slug")
    assert sorted(payments) == [
        ("CI-0001", Decimal("5.00"), date(2026, 4, 20), "", "brightdesk"),
        ("CI-0001", Decimal("10.00"), date(2026, 4, 10), "wire 1", "brightdesk"),
        ("CI-0002", Decimal("121.00"), date(2026, 5, 20), "wire 2", "brightdesk"),
        ("CI-0003", Decimal("50.50"), date(2026, 6, 5), "wire 3", "brightdesk"),
    ]
    audits = AuditLog.objects.filter(action="payment.record")
    assert sorted(a.object_id for a in audits) == sorted(str(pk) for pk in Payment.objects.values_list("pk", flat=True))
    wire = audits.get(object_id=str(Payment.objects.get(reference="wire 2").pk))
    assert wire.partner.slug == "brightdesk" and wire.object_type == "invoicing.Payment"
    assert {k: v for k, v in wire.after.items() if k != "file"} == {
        "invoice": "CI-0002", "amount": "121.00", "paid_on": "2026-05-20", "reference": "wire 2"}


def test_payment_statuses_follow_the_payments(billed, cli, write):
    """Today is 2026-06-15: CI-0001 (33.00) and CI-0002 (121.00) are past due, CI-0003 (211.13) is due 2026-07-01."""
    assert_imported(cli, "payments", write("payments",
                                           "CI-0001,20.00,2026-04-10,a",  # partial and past due
                                           "CI-0002,121.00,2026-05-20,b",  # full
                                           "CI-0003,100.00,2026-06-05,c",  # partial, not yet due
                                           "CI-0001,10.00,2026-05-10,d"))  # the next batch: still short by 3.00
    assert (status("CI-0001"), status("CI-0002"), status("CI-0003")) == (
        PaymentStatus.OVERDUE, PaymentStatus.PAID, PaymentStatus.PARTIALLY_PAID)
    assert_imported(cli, "payments", write("payments",
                                           "CI-0001,50.00,2026-06-01,e",  # overpaid: paid
                                           "CI-0003,111.13,2026-06-15,f"))  # the rest, today: paid
    assert (status("CI-0001"), status("CI-0003")) == (PaymentStatus.PAID, PaymentStatus.PAID)


def test_an_overpayment_in_one_row_makes_the_invoice_paid(billed, cli, write):
    assert_imported(cli, "payments", write("payments", "CI-0003,500,2026-06-10,"))
    assert status("CI-0003") == PaymentStatus.PAID


def test_a_payment_on_the_issue_date_is_accepted(billed, cli, write):
    assert_imported(cli, "payments", write("payments", "CI-0003,10,2026-06-01,"))
    assert status("CI-0003") == PaymentStatus.PARTIALLY_PAID


def test_an_exact_duplicate_payment_row_is_a_no_op(billed, cli, write):
    rows = [*PAYMENTS_GOOD, PAYMENTS_GOOD[2], "ci-0002,121,2026-05-20,wire 2"]
    out = assert_imported(cli, "payments", write("payments", *rows))
    assert "imported 6 rows: 4 created, 0 updated, 2 unchanged" in out
    assert Payment.objects.filter(invoice__number="CI-0002").count() == 1
    assert AuditLog.objects.filter(action="payment.record").count() == 4


def test_payments_differing_in_any_column_are_two_payments(billed, cli, write):
    rows = ["CI-0003,10,2026-06-05,", "CI-0003,10,2026-06-05,wire 9", "CI-0003,10,2026-06-06,",
            "CI-0003,11,2026-06-05,"]
    assert "4 created" in assert_imported(cli, "payments", write("payments", *rows))
    assert Payment.objects.count() == 4


def test_reimporting_a_payments_file_changes_nothing(billed, cli, write):
    path = write("payments", *PAYMENTS_GOOD)
    assert_imported(cli, "payments", path)
    before = db_state()
    out = assert_imported(cli, "payments", path)
    assert "imported 4 rows: 0 created, 0 updated, 4 unchanged" in out
    assert db_state() == before


def test_payments_dry_run_writes_nothing(billed, cli, write):
    before = db_state()
    out = assert_imported(cli, "payments", write("payments", *PAYMENTS_GOOD), "--dry-run")
    assert "payments: would import 4 rows: 4 created, 0 updated, 0 unchanged" in out
    assert db_state() == before


def test_payments_of_another_partner_than_the_option_are_refused(billed, cli, write):
    assert_rejected(cli, "payments", write("payments", "CI-0001,10,2026-04-10,"), [
        "row 2: invoice_number: CI-0001 is an invoice of partner brightdesk, not of the partner given with "
        "--partner (globex)"], "--partner", "globex")
    assert_imported(cli, "payments", write("payments", "CI-0001,10,2026-04-10,"), "--partner", "brightdesk")


def test_a_payment_of_an_imported_charges_inv(billed, cli, write):
    """The whole path: a charge imported, billed on an INV, and the INV paid by an import."""
    assert_imported(cli, "one-time-charges",
                    write("one-time-charges", "brightdesk,oakridge,Laptop,1,899.50,2026-06-02,"))
    bill(cli, "2026-06-15")
    assert_rejected(cli, "payments", write("payments", "INV-0001,989.45,2026-06-01,"),
                    ["row 2: paid_on: 2026-06-01 is before the issue date of INV-0001 (2026-06-02)"])
    assert_imported(cli, "payments", write("payments", "INV-0001,989.45,2026-06-03,"))
    assert status("INV-0001") == PaymentStatus.PAID


# --- scale: queries grow with batches (and touched invoices), not with rows ------------------------------------
def queries_for(kind: str, rows: list[str]) -> tuple[int, int]:
    """(reads and updates, inserts) of one import; bulk inserts are chunked by SQLite's parameter limit."""
    with CaptureQueriesContext(connection) as captured:
        summary = run_import_text(kind, csv_text(HEADERS[kind], *rows))
    assert summary.ok, summary.errors
    inserts = sum(1 for q in captured.captured_queries if q["sql"].startswith("INSERT"))
    return len(captured) - inserts, inserts


@pytest.mark.parametrize("kind", ["one-time-charges", "payments"])
def test_query_count_does_not_grow_with_rows(billed, settings, kind):
    settings.IMPORT_BATCH_SIZE = 10_000
    if kind == "one-time-charges":
        few = queries_for(kind, [f"brightdesk,{c},Item,1,10,2026-06-0{n + 1}," for n, c in
                                 enumerate(["oakridge", "pinecrest", ""])])
        many = queries_for(kind, [f"brightdesk,{['oakridge', 'pinecrest', ''][n % 3]},Item {n},{n + 1},10,"
                                  f"2026-06-{1 + n % 14:02d},{n % 2}" for n in range(300)])
    else:
        few = queries_for(kind, ["CI-0001,1,2026-06-01,", "CI-0002,1,2026-06-01,", "CI-0003,1,2026-06-01,"])
        many = queries_for(kind, [f"CI-000{1 + n % 3},{n + 2},2026-06-{1 + n % 14:02d},ref {n}" for n in range(300)])
    assert many[0] == few[0], (few, many)
    assert many[1] <= few[1] + 12, (few, many)


def test_a_payments_file_locks_all_its_partners_at_once_before_writing(billed, cli, write, monkeypatch):
    """A file paying two partners, read in batches of 3 (tests' IMPORT_BATCH_SIZE): both partners are locked in
    one call, in one order, before any payment is written, as the billing run locks its batch (billing-rules
    4.6). Locked batch by batch, such a file and a run of the same two partners could deadlock."""
    assert_imported(cli, "one-time-charges", write("one-time-charges", "globex,east,Setup,1,100,2026-06-02,"))
    bill(cli, "2026-06-15")
    globex_inv = Invoice.objects.get(partner__slug="globex").number
    calls = []
    real = invoicing.imports.partners_lock

    def spy(partner_ids):
        calls.append((sorted(Partner.objects.filter(pk__in=partner_ids).values_list("slug", flat=True)),
                      Payment.objects.count()))
        return real(partner_ids)

    monkeypatch.setattr(invoicing.imports, "partners_lock", spy)
    rows = [*PAYMENTS_GOOD, f"{globex_inv},40,2026-06-03,", f"{globex_inv.lower()},60,2026-06-04,"]
    assert "6 created" in assert_imported(cli, "payments", write("payments", *rows))
    assert calls == [(["brightdesk", "globex"], 0)]
    assert Payment.objects.filter(partner__slug="globex").count() == 2

"""Customers' accounts with their partners (issue 20, item 4; billing-rules 12.8, 12.10): transactions, balances,
payments and the account summary of Customer Billing.

- random histories of invoices (issued through the services, backdated a few days too, Customer Billing on or
  off), payments (backdated too, some against an invoice), credit notes and voids, checked against a plain
  Python account: the balance at any date is the sum of the transactions dated then or before; the
  `customer-transactions` export's balance column is the running balance at each row (with --month too); an
  invoice issued with Customer Billing on keeps the account as it stood (amount due, previous balance, credits,
  payments), which adds up;
- Customer Billing on and off through the command line, on the Company A world of test_customer_invoices
  (data/company-a) with a payment imported (data/customer-billing): the PDF of 1 May shows the account, or only
  the new charges (the figures of docs/rebilling.md, section 8);
- transactions are never changed or deleted.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from billing.core.actor import Actor
from billing.core.money import money_sum, tax_on
from billing.core.periods import Period
from conftest import examples
from invoicing.choices import LineType
from invoicing.models import IssuedInvoiceError
from invoicing.rebilling.accounts import (
    customer_balance,
    customer_balances,
    customer_payment_record,
    customer_payment_void,
)
from invoicing.rebilling.choices import CustomerInvoiceKind, TransactionKind
from invoicing.rebilling.invoices import customer_credit_note_issue, customer_invoices_issue
from invoicing.rebilling.models import (
    CustomerBillingProfile,
    CustomerInvoice,
    CustomerInvoiceLine,
    CustomerPayment,
    CustomerTransaction,
    RebillingProfile,
    ResaleItem,
)
from invoicing.rebilling.tests.test_customer_invoices import DATA as COMPANY_A
from invoicing.rebilling.tests.test_customer_invoices import billed, imported, lakeside  # noqa: F401 (a fixture)
from partners.models import Customer, Partner
from partners.tests.factories import CustomerFactory, PartnerFactory
from tests.examples import expected_rows, export

D = Decimal
ACTOR = Actor(label="accounts test")
DATA = Path(__file__).parent / "data" / "customer-billing"
START = date(2026, 3, 1)
ZERO = D("0")


def at(day: date):
    """The clock at noon UTC of `day`: what the services date "today"."""
    return time_machine.travel(datetime(day.year, day.month, day.day, 12, tzinfo=UTC), tick=False)


def invoice_issued(customer: Customer, issue_date: date, charges: list[tuple[str, Decimal]],
                   *, tax_rate: Decimal = ZERO) -> CustomerInvoice:
    """A customer invoice built as the run prices one (lines, the tax once on their sum, billing-rules 12.5) and
    issued through `customer_invoices_issue`: numbered, its transactions written, its account kept when the
    partner's Customer Billing is on."""
    partner = customer.partner
    invoice = CustomerInvoice(partner=partner, customer=customer, month=str(Period.of(issue_date)),
                              issue_date=issue_date, due_date=issue_date + timedelta(days=30),
                              currency=partner.currency, tax_rate=tax_rate)
    lines = [CustomerInvoiceLine(line_type=line_type, period=invoice.month, amount=amount,
                                 description=f"{line_type} charge", position=n)
             for n, (line_type, amount) in enumerate(charges)]
    invoice.subtotal = money_sum(line.amount for line in lines)
    invoice.tax_amount = tax_on(invoice.subtotal, tax_rate, invoice.currency)
    invoice.total = invoice.subtotal + invoice.tax_amount
    if tax_rate:
        lines.append(CustomerInvoiceLine(line_type=LineType.TAX, period=invoice.month, amount=invoice.tax_amount,
                                         description=f"Tax {tax_rate}%", taxable=False, position=len(lines)))
    invoice.save()
    for line in lines:
        line.invoice = invoice
    CustomerInvoiceLine.objects.bulk_create(lines)
    customer_invoices_issue([invoice], actor=ACTOR)
    invoice.refresh_from_db()
    return invoice


# --- the reference: a customer's account in plain Python ----------------------------------------------------------
@dataclass(frozen=True)
class Movement:
    """One transaction as the rules say it is written (billing-rules 12.10), in the order written (`seq`)."""

    seq: int
    customer: int
    date: date
    kind: str
    reference: str
    amount: Decimal
    invoice: int | None = None


class Account:
    """Every customer's movements, appended as the history writes them."""

    def __init__(self):
        self.movements: list[Movement] = []

    def add(self, customer: int, day: date, kind: str, reference: str, amount: Decimal, invoice: int | None = None):
        amount += 0  # a credit of a 0.00 invoice is -0.00 in Python, 0.00 once stored
        self.movements.append(Movement(len(self.movements), customer, day, kind, reference, amount, invoice))

    def invoice(self, invoice: CustomerInvoice, charges: list[tuple[str, Decimal]]) -> None:
        """Its subscription charges, usage charges and taxes: one each, those not zero."""
        sums = {TransactionKind.SUBSCRIPTION: sum((a for t, a in charges if t == LineType.RECURRING), D(0)),
                TransactionKind.USAGE: sum((a for t, a in charges if t == LineType.USAGE), D(0)),
                TransactionKind.TAX: invoice.tax_amount}
        for kind, amount in sums.items():
            if amount:
                self.add(invoice.customer_id, invoice.issue_date, kind, invoice.number, amount, invoice.pk)

    def balance(self, customer: int, day: date | None = None) -> Decimal:
        return sum((m.amount for m in self.movements if m.customer == customer and (day is None or m.date <= day)),
                   D(0))

    def running(self) -> list[tuple[Movement, Decimal]]:
        """Each movement with its customer's balance once it is in: by customer, date, then as written."""
        rows, balances = [], {}
        for m in sorted(self.movements, key=lambda m: (m.customer, m.date, m.seq)):
            balances[m.customer] = balances.get(m.customer, D(0)) + m.amount
            rows.append((m, balances[m.customer]))
        return rows

    def summary(self, invoice: CustomerInvoice, written: int, issued_before: list[CustomerInvoice]) -> dict:
        """The account an invoice prints (billing-rules 12.8), as it stood when it was issued: the first
        `written` movements. Amount due: those dated on or before its date. Credits and payments: those dated
        after the customer's previous invoice, up to its date. Previous balance: the rest."""
        mine = [m for m in self.movements[:written] if m.customer == invoice.customer_id
                and m.date <= invoice.issue_date]
        previous = max((i.issue_date for i in issued_before if i.customer_id == invoice.customer_id
                        and i.kind == CustomerInvoiceKind.INVOICE and i.issue_date <= invoice.issue_date),
                       default=None)
        window = [m for m in mine if previous is None or m.date > previous]
        due = sum((m.amount for m in mine), D(0))
        credits = sum((m.amount for m in window if m.kind == TransactionKind.CREDIT), D(0))
        payments = sum((m.amount for m in window if m.kind in (TransactionKind.PAYMENT, TransactionKind.PAYMENT_VOID)),
                       D(0))
        previous_balance = due - invoice.subtotal - invoice.tax_amount - credits - payments
        return {"previous_balance": previous_balance, "new_charges": invoice.subtotal, "taxes": invoice.tax_amount,
                "credits": credits, "payments": payments, "amount_due": due,
                "since": previous.isoformat() if previous else None}


# --- histories ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Issue:
    customer: int
    charges: tuple[tuple[str, int], ...]  # (line type, cents)
    back: int  # days before today it is dated (the run issues a first month's invoice late)
    billing_on: bool
    wait: int


@dataclass(frozen=True)
class Pay:
    customer: int
    cents: int
    back: int  # days before today it was received (a bank file of last week)
    against: bool  # names the customer's latest invoice
    wait: int


@dataclass(frozen=True)
class Credit:
    pick: int  # which issued invoice not yet credited
    wait: int


@dataclass(frozen=True)
class Void:
    pick: int  # which payment not yet voided
    wait: int


waits = st.integers(0, 6)
steps = st.lists(st.one_of(
    st.builds(Issue, customer=st.integers(0, 1),
              charges=st.lists(st.tuples(st.sampled_from([LineType.RECURRING, LineType.USAGE]),
                                         st.integers(0, 40_000)), min_size=1, max_size=3)
              .filter(lambda charges: any(cents for _, cents in charges)).map(tuple),  # 0.00 in all: a test of its own
              back=st.integers(0, 3), billing_on=st.booleans(), wait=waits),
    st.builds(Pay, customer=st.integers(0, 1), cents=st.integers(1, 40_000), back=st.integers(0, 20),
              against=st.booleans(), wait=waits),
    st.builds(Credit, pick=st.integers(0, 50), wait=waits),
    st.builds(Void, pick=st.integers(0, 50), wait=waits),
), min_size=1, max_size=12)
tax_rates = st.lists(st.sampled_from(["0", "8.25", "19.6"]), min_size=2, max_size=2)


@contextlib.contextmanager
def example_rolled_back():
    """One example's rows live in a savepoint rolled back at its end: examples never see each other's."""
    with transaction.atomic():
        assert not CustomerTransaction.objects.exists(), "rows leaked from an earlier example"
        yield
        transaction.set_rollback(True)


class History:
    """A partner with two customers, played step by step through the services, with the reference beside."""

    def __init__(self, rates: list[str]):
        self.partner = PartnerFactory(slug="acme")
        self.profile = RebillingProfile.objects.create(partner=self.partner, enabled=True, number_prefix="ACME")
        self.customers = [CustomerFactory(partner=self.partner, slug=slug) for slug in ("c0", "c1")]
        self.rates = [D(rate) for rate in rates]
        for customer, rate in zip(self.customers, self.rates, strict=True):
            CustomerBillingProfile.objects.create(customer=customer, tax_rate=rate)
        self.account = Account()
        self.today = START
        self.invoices: list[CustomerInvoice] = []  # issued invoices and credit notes, in the order issued
        self.expected_summaries: dict[int, dict | None] = {}
        self.written_at: dict[int, int] = {}  # invoice pk: movements written once it was issued
        self.payments: list[CustomerPayment] = []

    def play(self, step) -> None:
        self.today += timedelta(days=step.wait)
        with at(self.today):
            getattr(self, type(step).__name__.lower())(step)

    def issue(self, step: Issue) -> None:
        customer = self.customers[step.customer]
        if self.profile.customer_billing != step.billing_on:
            self.profile.customer_billing = step.billing_on
            self.profile.save(update_fields=["customer_billing"])
        charges = [(line_type, D(cents).scaleb(-2)) for line_type, cents in step.charges]
        invoice = invoice_issued(customer, self.today - timedelta(days=step.back), charges,
                                 tax_rate=self.rates[step.customer])
        self.account.invoice(invoice, charges)
        self.written_at[invoice.pk] = len(self.account.movements)
        self.expected_summaries[invoice.pk] = (self.account.summary(invoice, len(self.account.movements),
                                                                    self.invoices) if step.billing_on else None)
        self.invoices.append(invoice)

    def pay(self, step: Pay) -> None:
        customer = self.customers[step.customer]
        theirs = [i for i in self.invoices if i.customer_id == customer.pk and i.kind == CustomerInvoiceKind.INVOICE]
        invoice = theirs[-1] if step.against and theirs else None
        received_on, amount = self.today - timedelta(days=step.back), D(step.cents).scaleb(-2)
        # some with no reference (the transaction then names the invoice), unless one like it has none already
        reference = "" if len(self.payments) % 3 == 0 else f"P{len(self.payments) + 1}"
        if any((p.customer_id, p.received_on, p.amount, p.reference) == (customer.pk, received_on, amount, "")
               for p in self.payments):
            reference = f"P{len(self.payments) + 1}"
        payment = customer_payment_record(payment=CustomerPayment(
            partner=self.partner, customer=customer, invoice=invoice, received_on=received_on, amount=amount,
            currency="USD", reference=reference), actor=ACTOR)
        self.payments.append(payment)
        self.account.add(customer.pk, payment.received_on, TransactionKind.PAYMENT,
                         reference or (invoice.number if invoice else ""), -payment.amount)

    def credit(self, step: Credit) -> None:
        credited = {i.credits_id for i in self.invoices if i.credits_id}
        open_ = [i for i in self.invoices if i.kind == CustomerInvoiceKind.INVOICE and i.pk not in credited]
        if not open_:
            return
        note_ = customer_credit_note_issue(invoice=open_[step.pick % len(open_)], actor=ACTOR, reason="history")
        self.account.add(note_.customer_id, self.today, TransactionKind.CREDIT, note_.number, note_.total, note_.pk)
        self.invoices.append(note_)

    def void(self, step: Void) -> None:
        open_ = [p for p in self.payments if p.voided_at is None]
        if not open_:
            return
        payment = customer_payment_void(payment=open_[step.pick % len(open_)], actor=ACTOR, reason="a mistake")
        self.payments[self.payments.index(payment)] = payment
        self.account.add(payment.customer_id, self.today, TransactionKind.PAYMENT_VOID, payment.reference,
                         payment.amount)

    # -- the properties
    def check(self) -> None:
        self.check_balances()
        self.check_export()
        self.check_summaries()

    def check_balances(self) -> None:
        """The balance at any date is the sum of the customer's transactions dated then or before: at every date
        a transaction has and the day before (the balance is a step function), and today."""
        days = {m.date for m in self.account.movements}
        days |= {d - timedelta(days=1) for d in days} | {START, self.today}
        for day in sorted(days):
            for customer in self.customers:
                assert customer_balance(customer.pk, day) == self.account.balance(customer.pk, day), (customer, day)
            expected = {c.pk: self.account.balance(c.pk, day) for c in self.customers
                        if any(m.customer == c.pk and m.date <= day for m in self.account.movements)}
            assert customer_balances(self.partner.pk, day) == expected, day
        for customer in self.customers:
            assert customer_balance(customer.pk) == self.account.balance(customer.pk)

    def check_export(self) -> None:
        """The export's balance is the running balance at each row; with --month, the rows of the month with
        their balances from the start."""
        slugs = {c.pk: c.slug for c in self.customers}
        expected = [{"partner": "acme", "customer": slugs[m.customer], "date": m.date.isoformat(), "kind": m.kind,
                     "reference": m.reference, "amount": f"{m.amount:.2f}", "currency": "USD",
                     "balance": f"{balance:.2f}"} for m, balance in self.account.running()]
        assert export("customer-transactions", "--partner", "acme") == expected
        months = sorted({str(Period.of(m.date)) for m in self.account.movements})
        if months:
            month = months[len(months) // 2]
            assert export("customer-transactions", "--month", month) == [
                row for row in expected if row["date"].startswith(month)]

    def check_summaries(self) -> None:
        """Each invoice issued with Customer Billing on keeps its account as it stood: the reference's, adding up;
        its amount due is the running balance at its last transaction, and the customer's balance at its date,
        unless a transaction recorded after it was dated before it (a late payment moves the balances after
        its date; an issued invoice never changes)."""
        running = {m.seq: balance for m, balance in self.account.running()}
        for invoice in self.invoices:
            invoice.refresh_from_db()
            if invoice.kind != CustomerInvoiceKind.INVOICE:
                assert invoice.account is None
                continue
            expected = self.expected_summaries[invoice.pk]
            if expected is None:
                assert invoice.account is None, invoice.number
                continue
            account = {k: v if k == "since" else D(v) for k, v in invoice.account.items()}
            assert account == expected, invoice.number
            assert (account["previous_balance"] + account["new_charges"] + account["taxes"] + account["credits"]
                    + account["payments"]) == account["amount_due"]
            assert account["new_charges"] + account["taxes"] == invoice.total
            written = self.written_at[invoice.pk]
            later = self.account.movements[written:]
            if any(m.customer == invoice.customer_id and m.date < invoice.issue_date for m in later):
                continue  # recorded late, dated before it: the account has moved under it since
            own = [m for m in self.account.movements[:written] if m.invoice == invoice.pk]
            if own:
                assert account["amount_due"] == running[own[-1].seq], invoice.number
            if not any(m.customer == invoice.customer_id and m.date == invoice.issue_date for m in later):
                assert account["amount_due"] == customer_balance(invoice.customer_id, invoice.issue_date)


@pytest.mark.django_db
@settings(max_examples=examples(30), deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rates=tax_rates, history=steps)
def test_balances_the_export_and_account_summaries_over_random_histories(rates, history):
    with example_rolled_back():
        played = History(rates)
        for step in history:
            note(f"{played.today + timedelta(days=step.wait)}: {step}")
            played.play(step)
        played.check()


@pytest.mark.django_db
def test_a_free_invoice_after_a_payment_of_the_same_day_owes_what_the_account_owes():
    """An invoice whose charges are all 0 (a customer priced at 0.00) writes no transaction of its own: its amount
    due is still the customer's balance at its date, the day's earlier payment counted."""
    partner = PartnerFactory(slug="acme")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="ACME", customer_billing=True)
    customer = CustomerFactory(partner=partner, slug="c0")
    with at(date(2026, 3, 2)):
        invoice_issued(customer, date(2026, 3, 1), [(LineType.RECURRING, D("100.00"))])
        customer_payment_record(payment=CustomerPayment(partner=partner, customer=customer, amount=D("40.00"),
                                                        received_on=date(2026, 3, 2), currency="USD"), actor=ACTOR)
        free = invoice_issued(customer, date(2026, 3, 2), [(LineType.RECURRING, D("0.00"))])
    assert customer_balance(customer.pk, date(2026, 3, 2)) == D("60.00")
    assert free.account["amount_due"] == "60.00"
    assert (free.account["previous_balance"], free.account["payments"]) == ("100.00", "-40.00")


@pytest.mark.django_db
def test_an_invoice_of_nothing_is_still_the_customers_previous_invoice():
    """The customer read an invoice of 0.00 on 10 March (amount due 60.00: the 40.00 paid on 5 March counted);
    the next invoice shows what happened since: previous balance 60.00, the 10.00 paid on 15 March, not the
    40.00 again."""
    partner = PartnerFactory(slug="acme")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="ACME", customer_billing=True)
    customer = CustomerFactory(partner=partner, slug="c0")
    for day, amount in [(date(2026, 3, 5), D("40.00")), (date(2026, 3, 15), D("10.00"))]:
        with at(day):
            if day.day == 5:
                invoice_issued(customer, date(2026, 3, 1), [(LineType.RECURRING, D("100.00"))])
            else:
                free = invoice_issued(customer, date(2026, 3, 10), [(LineType.RECURRING, D("0.00"))])
            customer_payment_record(payment=CustomerPayment(partner=partner, customer=customer, amount=amount,
                                                            received_on=day, currency="USD"), actor=ACTOR)
    with at(date(2026, 4, 1)):
        april = invoice_issued(customer, date(2026, 4, 1), [(LineType.RECURRING, D("50.00"))])
    assert (D(free.account["amount_due"]), free.account["since"]) == (D("60.00"), "2026-03-01")
    summary = {k: v if k == "since" else D(v) for k, v in april.account.items()}
    assert summary == {"previous_balance": D("60.00"), "new_charges": D("50.00"), "taxes": D("0"),
                       "credits": D("0"), "payments": D("-10.00"), "amount_due": D("100.00"), "since": "2026-03-10"}


# --- Customer Billing on and off through the command line ---------------------------------------------------------
def pdf_words(cli, number: str, tmp_path) -> str:
    output = tmp_path / f"{number}.pdf"
    result = cli("render_invoice", number, "--output", str(output))
    assert result.status == 0, result.err
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(output.read_bytes())).pages)
    return " ".join(text.split()).lower()  # headings are printed in capitals


def figure(text: str, caption: str) -> str | None:
    """The first amount printed after a caption ("previous balance (invoice of 1 apr 2026) 251.64": 251.64)."""
    start = text.find(caption)
    found = re.search(r"-?\d[\d,]*\.\d\d\b", text[start:]) if start >= 0 else None
    return found.group() if found else None


def company_a_with_a_payment(cli) -> None:
    """The seed of test_customer_invoices: LAKE-0001 (101.64, 10 March), LAKE-0002 (150.00, 1 April); then Company
    A pays LAKE-0001 on 15 April (data/customer-billing/payments.csv), its host limit goes to 25, and the run of
    1 May issues LAKE-0003 (375.00)."""
    billed(cli, "2026-03-10")
    billed(cli, "2026-04-01")
    with at(date(2026, 4, 20)):
        result = cli("import_csv", "customer-payments", str(DATA / "payments.csv"))
        assert result.status == 0, result.err
        assert result.out.strip() == "customer-payments: imported 1 rows: 1 created, 0 updated, 0 unchanged"
        imported(cli, "customers", "host-limit-april.csv")
    billed(cli, "2026-05-01")


@pytest.mark.django_db
def test_customer_billing_on_prints_the_account(cli, lakeside, tmp_path):  # noqa: F811 (the imported fixture)
    """docs/rebilling.md, section 8: previous balance 251.64 (LAKE-0001 and LAKE-0002), new charges 375.00,
    payments -101.64 (15 April), amount due 525.00; the export's balance ends at the same 525.00."""
    assert COMPANY_A.is_dir()
    RebillingProfile.objects.filter(partner=lakeside).update(customer_billing=True)
    company_a_with_a_payment(cli)
    may = CustomerInvoice.objects.get(number="LAKE-0003")
    accounts = {i.number: [D(i.account[k]) for k in ("previous_balance", "new_charges", "taxes", "credits",
                                                     "payments", "amount_due")] + [i.account["since"]]
                for i in CustomerInvoice.objects.filter(partner=lakeside)}
    assert accounts == {  # the table of docs/rebilling.md, section 8
        "LAKE-0001": [D("0.00"), D("101.64"), D("0.00"), D("0.00"), D("0.00"), D("101.64"), None],
        "LAKE-0002": [D("101.64"), D("150.00"), D("0.00"), D("0.00"), D("0.00"), D("251.64"), "2026-03-10"],
        "LAKE-0003": [D("251.64"), D("375.00"), D("0.00"), D("0.00"), D("-101.64"), D("525.00"), "2026-04-01"]}
    text = pdf_words(cli, "LAKE-0003", tmp_path)
    assert "account summary" in text, text
    assert [figure(text, caption) for caption in ("previous balance", "new charges", "taxes", "credits", "payments",
                                                  "amount due")] == [
        "251.64", "375.00", "0.00", "0.00", "-101.64", "525.00"], text
    april = pdf_words(cli, "LAKE-0002", tmp_path)
    assert (figure(april, "previous balance"), figure(april, "amount due")) == ("101.64", "251.64"), april
    rows = export("customer-transactions", "--partner", "lakeside")
    assert rows == expected_rows(DATA, "expected-customer-transactions.csv")
    assert rows[-1]["balance"] == "525.00" == str(customer_balance(may.customer_id))
    april_rows = export("customer-transactions", "--month", "2026-04")
    assert [(r["reference"], r["balance"]) for r in april_rows] == [("LAKE-0002", "251.64"), ("BANK-0415", "150.00")]


@pytest.mark.django_db
def test_customer_billing_off_prints_only_the_new_charges(cli, lakeside, tmp_path):  # noqa: F811
    """The same history with Customer Billing off: LAKE-0003 shows its 375.00 and no account; the transactions
    are recorded all the same (the export is the same)."""
    company_a_with_a_payment(cli)
    may = CustomerInvoice.objects.get(number="LAKE-0003")
    assert may.account is None
    text = pdf_words(cli, "LAKE-0003", tmp_path)
    assert (figure(text, "new charges"), figure(text, "total")) == ("375.00", "375.00"), text
    for words in ["previous balance", "payments", "amount due", "account summary", "525.00", "251.64"]:
        assert words not in text, words
    assert export("customer-transactions", "--partner", "lakeside") == expected_rows(
        DATA, "expected-customer-transactions.csv")


# --- the worked examples of docs/rebilling.md ---------------------------------------------------------------------
@pytest.mark.django_db
def test_the_call_minutes_example(cli, lakeside):  # noqa: F811
    """docs/rebilling.md, section 7: Company A's outbound calls of April, 61 s and 60 s, are 2 + 1 = 3 minutes at
    0.05: 0.15 on LAKE-0003 beside the hosts' 150.00, a usage transaction of its own."""
    ResaleItem.objects.create(partner=lakeside, code="calls-out", name="Outbound calls", unit="minute",
                              meter="call_minutes:outbound:*")
    with at(date(2026, 3, 1)):
        imported(cli, "resale-prices", str(DATA / "own-item-prices.csv"))
    billed(cli, "2026-03-10")
    billed(cli, "2026-04-01")
    with at(date(2026, 5, 1)):
        result = cli("import_csv", "call-usage", str(DATA / "calls-april.csv"))
        assert result.status == 0, result.err
    billed(cli, "2026-05-01")
    may = CustomerInvoice.objects.get(number="LAKE-0003")
    assert [(line.description, line.quantity, line.amount) for line in may.lines.order_by("position")] == [
        ("Meeting hosts 2026-05: 10 hosts (host limit on 2026-05-01)", D("10"), D("150.00")),
        ("Outbound calls 2026-04: 3 minutes (call_minutes:outbound:*)", D("3"), D("0.15"))]
    assert may.total == D("150.15")
    assert not CustomerInvoice.objects.get(number="LAKE-0002").lines.filter(item__code="calls-out").exists()
    rows = export("customer-transactions", "--month", "2026-05")
    assert [(r["kind"], r["reference"], r["amount"]) for r in rows] == [
        ("subscription", "LAKE-0003", "150.00"), ("usage", "LAKE-0003", "0.15")]


def test_the_worked_examples_show_the_tested_files():
    """docs/rebilling.md, sections 7 and 8, shows the files these tests import and expect, as they are."""
    page = (Path(__file__).resolve().parents[3] / "docs" / "rebilling.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```csv\n(.*?)```", page, re.S)
    for name in ["own-item-prices.csv", "calls-april.csv", "payments.csv", "expected-customer-transactions.csv"]:
        assert (DATA / name).read_text(encoding="utf-8") in blocks, name
    for figures in ["| Previous balance | 0.00 | 101.64 | 251.64 |", "| New charges | 101.64 | 150.00 | 375.00 |",
                    "| Payments (since the previous invoice) | 0.00 | 0.00 | −101.64 |",
                    "| **Amount due** | **101.64** | **251.64** | **525.00** |"]:
        assert figures in page, figures


@pytest.mark.django_db
def test_transactions_are_never_changed_or_deleted():
    partner = PartnerFactory(slug="acme")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="ACME")
    customer = CustomerFactory(partner=partner)
    with at(date(2026, 3, 2)):
        invoice_issued(customer, date(2026, 3, 1), [(LineType.RECURRING, D("100.00"))])
    row = CustomerTransaction.objects.get()
    with pytest.raises(IssuedInvoiceError):
        CustomerTransaction.objects.filter(pk=row.pk).update(amount=D("1.00"))
    with pytest.raises(IssuedInvoiceError):
        CustomerTransaction.objects.filter(pk=row.pk).delete()
    row.amount = D("1.00")
    with pytest.raises(IssuedInvoiceError):
        row.save()
    with pytest.raises(IssuedInvoiceError):
        row.delete()
    assert CustomerTransaction.objects.get().amount == D("100.00")
    assert Partner.objects.filter(slug="acme").exists()

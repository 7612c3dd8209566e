"""A customer's account with its partner (billing-rules 12.10): transactions, balances and payments, and the
account summary an invoice issued under Customer Billing prints (12.8).

Every issued customer invoice writes its transactions (subscription charges, usage charges, taxes), a credit
note one credit, a payment one payment, a void one void. They are never changed or deleted, so the balance at
any date is the sum of the transactions dated then or before (`customer_balance`), and an account summary kept
with an invoice when it was issued stays true.

The writes lock the customers' rows first (in id order), so two writes to one account never interleave: an
invoice's amount due is the balance once its own transactions are in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import DecimalField, F, Max, Q, Sum, Window
from django.db.models.expressions import RowRange
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.money import quantize_money
from billing.core.periods import utc_date
from invoicing.choices import LineType
from invoicing.models import AMOUNT
from invoicing.rebilling.choices import SUBSCRIPTION_LINE_TYPES, CustomerInvoiceKind, TransactionKind
from invoicing.rebilling.models import CustomerInvoice, CustomerInvoiceLine, CustomerPayment, CustomerTransaction
from invoicing.services.errors import BillingError
from partners.audit import audit_entry, jsonable
from partners.choices import AuditAction
from partners.models import AuditLog, Customer

ZERO = Decimal("0")
PAYMENT_KINDS = (TransactionKind.PAYMENT, TransactionKind.PAYMENT_VOID)
CHARGE_KINDS = (TransactionKind.SUBSCRIPTION, TransactionKind.USAGE, TransactionKind.TAX)


# --- reading ---------------------------------------------------------------------------------------------------
def customer_balance(customer_id: int, at: date | None = None) -> Decimal:
    """What the customer owes its partner at the end of `at` (today's balance without it): the sum of its
    transactions dated then or before. Negative: the customer is in credit."""
    rows = CustomerTransaction.objects.filter(customer_id=customer_id)
    if at is not None:
        rows = rows.filter(date__lte=at)
    return _cents(rows.aggregate(total=Sum("amount"))["total"])


def customer_balances(partner_id: int, at: date | None = None) -> dict[int, Decimal]:
    """{customer id: balance} of the partner's customers with any transaction: one GROUP BY."""
    rows = CustomerTransaction.objects.filter(partner_id=partner_id)
    if at is not None:
        rows = rows.filter(date__lte=at)
    return {customer_id: _cents(total)
            for customer_id, total in rows.order_by().values_list("customer_id").annotate(total=Sum("amount"))}


def _cents(total) -> Decimal:
    """A sum of amounts as the cents it is (SQLite sums decimals as floats; one currency per partner, and every
    currency we bill has at most 2 places, billing-rules 2)."""
    return quantize_money(Decimal(total or 0), "USD")


BALANCE = DecimalField(max_digits=AMOUNT["max_digits"] + 4, decimal_places=AMOUNT["decimal_places"])


def running_balances(transactions, *, since=None):
    """The transactions with `balance`: each customer's balance once the row is in, by date then in the order
    written (the id), as `customer_balance` reads it at a date. A window sum over each customer's rows, in the
    database: a report of millions of rows is never summed in Python. With `since` (a date) only the rows from
    that day on are returned, their balances still counting every earlier row: the rows are kept by their date
    as read from the same window (`day`), so the filter applies after the sum, not before it (a filter on `date`
    would start every balance at 0 on `since`)."""
    order = {"partition_by": [F("customer_id")], "order_by": [F("date").asc(), F("pk").asc()]}
    rows = transactions.annotate(
        balance=Window(Sum("amount"), frame=RowRange(start=None, end=0), output_field=BALANCE, **order))
    if since is None:
        return rows
    return rows.annotate(day=Window(Max("date"), frame=RowRange(start=0, end=0), **order)).filter(day__gte=since)


# --- the transactions of documents ------------------------------------------------------------------------------
def invoice_transactions(invoice: CustomerInvoice, lines: Iterable) -> list[CustomerTransaction]:
    """The unsaved transactions of an issued invoice: its subscription charges, usage charges and taxes (one
    each, those not zero; an invoice of 0.00 one of 0.00), dated its issue date; a credit note's is one credit of
    its (negative) total."""
    common = {"partner_id": invoice.partner_id, "customer_id": invoice.customer_id, "date": invoice.issue_date,
              "reference": invoice.number or "", "currency": invoice.currency, "invoice": invoice}
    if invoice.kind == CustomerInvoiceKind.CREDIT_NOTE:
        credited = invoice.credits.number if invoice.credits_id else ""
        return [CustomerTransaction(kind=TransactionKind.CREDIT, amount=invoice.total,
                                    description=f"Credit note {invoice.number} for {credited}".strip(), **common)]
    sums = {TransactionKind.SUBSCRIPTION: ZERO, TransactionKind.USAGE: ZERO, TransactionKind.TAX: ZERO}
    for line in lines:
        if line.line_type == LineType.TAX:
            kind = TransactionKind.TAX
        elif line.line_type in SUBSCRIPTION_LINE_TYPES:
            kind = TransactionKind.SUBSCRIPTION
        else:
            kind = TransactionKind.USAGE
        sums[kind] += line.amount
    words = {TransactionKind.SUBSCRIPTION: "subscription charges", TransactionKind.USAGE: "usage charges",
             TransactionKind.TAX: "taxes"}
    written = {kind: amount for kind, amount in sums.items() if amount != 0}
    if not written:  # an invoice of 0.00 is still in the account: the next invoice's summary starts after it
        written = {TransactionKind.SUBSCRIPTION if any(line.line_type in SUBSCRIPTION_LINE_TYPES for line in lines)
                   else TransactionKind.USAGE: ZERO}
    return [CustomerTransaction(kind=kind, amount=amount, description=f"Invoice {invoice.number}: {words[kind]}",
                                **common)
            for kind, amount in written.items()]


def lock_accounts(customer_ids: Iterable[int]) -> None:
    """Hold the customers' rows, in id order, for the rest of the transaction: one writer per account."""
    list(Customer.objects.select_for_update().filter(pk__in=sorted(set(customer_ids))).order_by("pk")
         .values_list("pk", flat=True))


def invoices_transactions_record(invoices: list[CustomerInvoice], *, customer_billing: bool) -> None:
    """Write the transactions of invoices being issued, numbered and marked issued in memory but not yet saved
    as issued (the caller saves them, `account` with them: an issued invoice never changes). When Customer
    Billing is on, set each invoice's account summary (`account_summary`) in their order."""
    if not invoices:
        return
    lock_accounts(invoice.customer_id for invoice in invoices)
    lines: dict[int, list] = {invoice.pk: [] for invoice in invoices}
    for line in CustomerInvoiceLine.objects.filter(invoice__in=invoices).only("invoice_id", "line_type", "amount"):
        lines[line.invoice_id].append(line)
    CustomerTransaction.objects.bulk_create(
        [row for invoice in invoices for row in invoice_transactions(invoice, lines[invoice.pk])])
    for invoice in invoices:
        if customer_billing and invoice.kind == CustomerInvoiceKind.INVOICE:
            invoice.account = account_summary(invoice).as_json()


@dataclass(frozen=True)
class AccountSummary:
    """The account as an invoice prints it (billing-rules 12.8): previous balance + new charges + taxes +
    credits + payments = amount due, credits and payments negative (they take from what is owed)."""

    previous_balance: Decimal
    new_charges: Decimal
    taxes: Decimal
    credits: Decimal
    payments: Decimal
    amount_due: Decimal
    since: date | None  # the previous invoice's date: credits and payments are those after it

    def as_json(self) -> dict:
        return {"previous_balance": str(self.previous_balance), "new_charges": str(self.new_charges),
                "taxes": str(self.taxes), "credits": str(self.credits), "payments": str(self.payments),
                "amount_due": str(self.amount_due), "since": self.since.isoformat() if self.since else None}

    @classmethod
    def of_json(cls, data: dict) -> AccountSummary:
        return cls(**{name: Decimal(data[name]) for name in
                      ("previous_balance", "new_charges", "taxes", "credits", "payments", "amount_due")},
                   since=date.fromisoformat(data["since"]) if data.get("since") else None)


def account_summary(invoice: CustomerInvoice) -> AccountSummary:
    """The account at an invoice's issue date, as the customer reads it on the invoice:

    - amount due: the balance at its issue date, its own transactions in: the running balance of the
      customer's transactions (by date, then in the order written) at its last one;
    - new charges and taxes: its own;
    - credits and payments: those dated after the customer's previous invoice (issued before it) up to its date;
    - previous balance: the rest, so the summary always adds up (the balance the previous invoice left, with
      what was recorded since with an earlier date).

    A draft's summary reads the account as it stands, as if issued now (its own charges counted in)."""
    day = invoice.issue_date
    last = invoice.transactions.order_by("-pk").values_list("pk", flat=True).first() if invoice.pk else None
    # what the summary counts: the transactions up to its own last one (by date, then as written); a draft's (or
    # an invoice of nothing, with no transaction): everything to the end of its day, its own total added
    upto = Q(date__lte=day) if last is None else Q(date__lt=day) | Q(date=day, pk__lte=last)
    account = CustomerTransaction.objects.filter(upto, customer_id=invoice.customer_id)
    amount_due = _cents(account.aggregate(total=Sum("amount"))["total"])
    if not invoice.is_issued:
        amount_due += invoice.total
    # the customer's previous invoice: the latest charged before this one's own charges, by date then as written
    # (read from the transactions, so an invoice issued in the same batch counts before its state is saved)
    charges = CustomerTransaction.objects.filter(
        customer_id=invoice.customer_id, kind__in=CHARGE_KINDS, date__lte=invoice.issue_date).exclude(
        invoice_id=invoice.pk)
    if invoice.pk:
        first = invoice.transactions.order_by("pk").values_list("pk", flat=True).first()
        if first is not None:
            charges = charges.filter(Q(date__lt=invoice.issue_date) | Q(pk__lt=first))
    previous = charges.order_by("-date", "-pk").values_list("date", flat=True).first()
    window = account
    if previous is not None:
        window = window.filter(date__gt=previous)
    sums = dict(window.filter(kind__in=[TransactionKind.CREDIT, *PAYMENT_KINDS]).order_by()
                .values_list("kind").annotate(total=Sum("amount")))
    credits = _cents(sums.get(TransactionKind.CREDIT))
    payments = _cents(sums.get(TransactionKind.PAYMENT)) + _cents(sums.get(TransactionKind.PAYMENT_VOID))
    previous_balance = amount_due - invoice.subtotal - invoice.tax_amount - credits - payments
    return AccountSummary(previous_balance=previous_balance, new_charges=invoice.subtotal,
                          taxes=invoice.tax_amount, credits=credits, payments=payments, amount_due=amount_due,
                          since=previous)


# --- payments ----------------------------------------------------------------------------------------------------
def customer_payment_errors(payment: CustomerPayment, *, today: date | None = None) -> dict[str, str]:
    """A payment's errors by field (the import's columns): the customer is the partner's, the amount positive
    with at most the currency's cents, in the partner's currency, not in the future, and the invoice (when
    named) an issued invoice of that customer."""
    errors: dict[str, str] = {}
    partner = payment.partner
    today = today or utc_date(timezone.now())
    if payment.customer_id and payment.customer.partner_id != partner.pk:
        errors["customer"] = f"{payment.customer.slug!r} is not a customer of this partner"
    if payment.amount is None or payment.amount <= 0:
        errors["amount"] = "a payment is more than 0 (a mistaken payment is voided, not paid back negative)"
    elif quantize_money(payment.amount, partner.currency) != payment.amount:
        errors["amount"] = f"{payment.amount} has more decimals than {partner.currency} has"
    if payment.currency and payment.currency != partner.currency:
        errors["currency"] = f"{payment.currency} is not {partner.slug}'s currency ({partner.currency})"
    if payment.received_on and payment.received_on > today:
        errors["date"] = f"{payment.received_on} is in the future"
    if payment.invoice_id:
        invoice = payment.invoice
        if invoice.customer_id != payment.customer_id:
            errors["invoice"] = f"{invoice.number} is not an invoice of {payment.customer.slug}"
        elif not invoice.is_issued or invoice.kind != CustomerInvoiceKind.INVOICE:
            errors["invoice"] = f"{invoice} is not an issued invoice"
    return errors


def _payment_snapshot(payment: CustomerPayment) -> dict:
    return {"customer": payment.customer.slug, "received_on": jsonable(payment.received_on),
            "amount": str(payment.amount), "currency": payment.currency, "reference": payment.reference,
            "invoice": payment.invoice.number if payment.invoice_id else None, "method": payment.method}


def customer_payments_save(payments: list[CustomerPayment], *, actor: Actor) -> tuple[list[CustomerPayment], int]:
    """Record checked payments of one partner (in the caller's transaction): each new one with its payment
    transaction and an audit row; one already recorded (same customer, date, amount and reference) is left as
    it is. Returns (the payments recorded, how many were already there)."""
    if not payments:
        return [], 0
    lock_accounts(p.customer_id for p in payments)
    keys = {(p.customer_id, p.received_on, p.amount, p.reference) for p in payments}
    stored = set(CustomerPayment.objects.filter(customer_id__in={k[0] for k in keys})
                 .values_list("customer_id", "received_on", "amount", "reference"))
    new, seen = [], set()
    for payment in payments:
        key = (payment.customer_id, payment.received_on, payment.amount, payment.reference)
        if key in stored or key in seen:
            continue
        seen.add(key)
        payment.currency = payment.partner.currency
        payment.recorded_by = payment.recorded_by or str(actor)[:200]
        new.append(payment)
    CustomerPayment.objects.bulk_create(new)
    CustomerTransaction.objects.bulk_create(
        CustomerTransaction(partner_id=p.partner_id, customer_id=p.customer_id, date=p.received_on,
                            kind=TransactionKind.PAYMENT, amount=-p.amount, currency=p.currency,
                            reference=p.reference or (p.invoice.number if p.invoice_id else ""),
                            description=f"Payment{f' ({p.method})' if p.method else ''}"
                                        + (f" for {p.invoice.number}" if p.invoice_id else ""),
                            payment=p)
        for p in new)
    AuditLog.objects.bulk_create(
        audit_entry(actor=actor, action=AuditAction.CUSTOMER_PAYMENT_RECORD, obj=p, partner=p.partner,
                    after=_payment_snapshot(p) | {"customer_id": p.customer_id})
        for p in new)
    return new, len(payments) - len(new)


@transaction.atomic
def customer_payment_record(*, payment: CustomerPayment, actor: Actor) -> CustomerPayment:
    """Record one payment (the portal's form): checked, then written as `customer_payments_save` does. A
    payment exactly like one recorded (same customer, date, amount and reference) is refused: give it a
    reference of its own."""
    errors = customer_payment_errors(payment)
    if errors:
        raise BillingError("; ".join(f"{field}: {reason}" for field, reason in errors.items()))
    new, _ = customer_payments_save([payment], actor=actor)
    if not new:
        raise BillingError(f"a payment of {payment.amount} on {payment.received_on} with this reference is "
                           "already recorded for this customer")
    return new[0]


@transaction.atomic
def customer_payment_void(*, payment: CustomerPayment, actor: Actor, reason: str) -> CustomerPayment:
    """Void a mistaken payment: a transaction of today puts its amount back on the account (the balances of
    earlier dates, printed on issued invoices, stay as they were). Once."""
    lock_accounts([payment.customer_id])
    payment = CustomerPayment.objects.select_related("partner", "customer", "invoice").get(pk=payment.pk)
    if payment.voided_at is not None:
        raise BillingError("this payment is already voided")
    if not reason.strip():
        raise BillingError("say why the payment is voided")
    payment.voided_at, payment.void_reason = timezone.now(), reason.strip()[:300]
    CustomerPayment.objects.filter(pk=payment.pk).update(voided_at=payment.voided_at,
                                                         void_reason=payment.void_reason)
    CustomerTransaction.objects.create(
        partner_id=payment.partner_id, customer_id=payment.customer_id, date=utc_date(payment.voided_at),
        kind=TransactionKind.PAYMENT_VOID, amount=payment.amount, currency=payment.currency,
        reference=payment.reference, description=f"Payment of {payment.received_on} voided: {payment.void_reason}",
        payment=payment)
    AuditLog.objects.bulk_create([audit_entry(
        actor=actor, action=AuditAction.CUSTOMER_PAYMENT_VOID, obj=payment, partner=payment.partner,
        before=_payment_snapshot(payment) | {"customer_id": payment.customer_id},
        after={"reason": payment.void_reason, "amount": str(payment.amount), "currency": payment.currency,
               "customer_id": payment.customer_id})])
    return payment

"""The ledger: issuing documents, the statement on a CI, payment statuses, payments and credit notes
(billing-rules 4.4-4.8).

Issuing lives here, not with the run: the run, a draft issued by hand and a credit note all enter the
ledger through the same write (`_issue_all`), which numbers them, sets their payment status and audits them."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.bulk import update_rows
from billing.core.money import ZERO, currency_places, currency_quantum, money_sum, quantize_money
from billing.core.periods import utc_date
from invoicing.documents import issuer_snapshot, recipient_snapshot
from invoicing.models import (
    CompanyProfile,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceState,
    LineType,
    Payment,
    PaymentStatus,
)
from invoicing.pricing import credit_note_tax
from invoicing.selectors import money_total, settlement, statement_figures
from invoicing.services.delivery import invoice_emails_enqueue
from invoicing.services.errors import BillingError
from invoicing.services.numbering import numbers_take
from partners.audit import audit_entry, audit_record
from partners.choices import AuditAction
from partners.models import AuditLog, Partner


# --- the partner's lock ------------------------------------------------------------------------------
def partners_lock(partner_ids) -> dict[int, Partner]:
    """Lock the partners' rows as the billing run does (SELECT ... FOR UPDATE, in primary-key order), in the
    caller's transaction, and return them by id. `partner_ids`: ids, or a query of them.

    Every writer of a partner's ledger takes it first, before any other lock and before it stamps anything:
    the billing run (for its batch), a payment (`payment_record`, the payments import), a credit note, a
    draft issued by hand, a one-time charge changed in the admin, rebilling's customer invoices. So

    - a payment or credit note recorded while a run bills its partner waits for the run to commit, and is then
      recorded after the run's CI was issued: it counts on the next CI (billing-rules 4.6), never on none;
    - the locks are always taken in one order, the partner's, then invoices', then the number sequences'
      (billing-rules 4.2), so a credit note and a run of the same partner never deadlock."""
    return {p.pk: p for p in Partner.objects.select_for_update().filter(pk__in=partner_ids).order_by("pk")}


# --- issuing ---------------------------------------------------------------------------------------
@transaction.atomic
def invoice_issue_draft(*, invoice: Invoice, actor: Actor) -> Invoice:
    """Issue a draft as it stands (the admin's "issue drafts"): numbered now, never changed after. Under the
    partner's lock, taken first (`partners_lock`): a run billing the partner meanwhile deletes its drafts."""
    partners_lock([invoice.partner_id])
    draft, invoice = invoice, Invoice.objects.select_for_update().filter(pk=invoice.pk).first()
    if invoice is None:  # a billing run of the partner threw its drafts away and built them again meanwhile
        raise BillingError(f"{draft} is no longer there: a billing run rebuilt the partner's drafts")
    if invoice.is_issued:
        raise BillingError(f"{invoice.number} is already issued")
    if invoice.kind == InvoiceKind.CI and Invoice.objects.filter(
        partner=invoice.partner, kind=InvoiceKind.CI, state=InvoiceState.ISSUED, month=invoice.month
    ).exists():
        raise BillingError(f"the CI of {invoice.month} is already issued")
    if Invoice.objects.filter(partner=invoice.partner, state=InvoiceState.DRAFT,
                              issue_date__lt=invoice.issue_date).exists():
        raise BillingError("issue the partner's earlier drafts first: invoices are issued in date order")
    if invoice.kind == InvoiceKind.CI:
        _statement(invoice)  # the account as it is now
        invoice.save()
    _issue(invoice, actor=actor)
    return invoice


def _issue(invoice: Invoice, *, actor: Actor) -> None:
    invoice.issued_at = timezone.now()
    _issue_all([invoice], actor=actor)


def company_details_missing(profile: CompanyProfile | None = None) -> list[str]:
    """What of the issuer's legal details stops any invoice being issued (billing-rules 4.13): the company
    profile's legal name, address and tax id, when INVOICE_LEGAL_DETAILS_REQUIRED is on (it is under the
    production settings). `profile`: the one already read, if any."""
    if not settings.INVOICE_LEGAL_DETAILS_REQUIRED:
        return []
    missing = (profile or CompanyProfile.current()).missing()
    return [f"the company profile has no {', '.join(missing)} (Invoicing > Company profile)"] if missing else []


def partner_details_missing(partner) -> list[str]:
    """What of a partner's details stops its invoices being issued: its billing address (billing-rules 4.13)."""
    if not settings.INVOICE_LEGAL_DETAILS_REQUIRED or partner.billing_address.strip():
        return []
    return [f"partner {partner.slug!r} has no billing address (its page in the admin)"]


def _issue_all(invoices: list[Invoice], *, actor: Actor) -> None:
    """Number and issue documents in their order, in a fixed number of queries (`numbers_take`): the one
    write that turns drafts into issued invoices, with their audit rows and, after commit, their emails. Each
    keeps the issuer and the recipient as they stand now; none is issued without their legal details."""
    if not invoices:
        return
    profile = CompanyProfile.current()
    partners = {invoice.partner_id: invoice.partner for invoice in invoices}
    refused = company_details_missing(profile) + [r for p in partners.values() for r in partner_details_missing(p)]
    if refused:
        raise BillingError(f"invoices cannot be issued: {'; '.join(refused)}")
    issuer = issuer_snapshot(profile)
    recipients = {partner_id: recipient_snapshot(partner) for partner_id, partner in partners.items()}
    for invoice in invoices:
        invoice.issuer, invoice.recipient = issuer, recipients[invoice.partner_id]
    today = utc_date(timezone.now())
    for invoice, number in zip(invoices, numbers_take([i.kind for i in invoices]), strict=True):
        invoice.number = number
        invoice.state = InvoiceState.ISSUED
        # nothing is paid or credited on a draft: a credit note is never owed; a backdated invoice may be
        # overdue already, a zero one paid
        invoice.payment_status = status_from(kind=invoice.kind, total=invoice.total, due_date=invoice.due_date,
                                             paid=ZERO, credited=ZERO, today=today)
    update_rows(Invoice, ["number", "state", "issued_at", "payment_status", "issuer", "recipient"],
                [(i.pk, i.number, i.state, i.issued_at, i.payment_status, i.issuer, i.recipient) for i in invoices])
    AuditLog.objects.bulk_create(
        audit_entry(actor=actor, action=AuditAction.INVOICE_ISSUE, obj=invoice, partner=invoice.partner,
                    after={"number": invoice.number, "total": str(invoice.total), "due_date": str(invoice.due_date)})
        for invoice in invoices
    )
    ids = [invoice.pk for invoice in invoices]
    transaction.on_commit(lambda: invoice_emails_enqueue(ids))


# --- the statement on a CI ----------------------------------------------------------------------
def _statement(invoice: Invoice) -> None:
    """The account on a CI (billing-rules 4.6): previous balance, payments and credits since the previous CI,
    individual invoices since, this CI's charges and taxes, and the amount due."""
    _statement_set(invoice, *statement_figures([invoice])[invoice.partner_id])


def _statement_set(invoice: Invoice, previous: Invoice | None, paid: Decimal, credits: Decimal,
                   others: Decimal) -> None:
    """`others`: INVs, and any CI issued late for an earlier month; `credits`: credit notes (negative)."""
    invoice.previous_balance = previous.amount_due if previous else ZERO
    invoice.payments_and_credits = paid - credits
    invoice.other_invoices = others
    invoice.amount_due = (invoice.previous_balance - invoice.payments_and_credits + invoice.other_invoices
                          + invoice.total)


# --- payment statuses ----------------------------------------------------------------------------
def status_from(*, kind: str, total: Decimal, due_date: date, paid: Decimal, credited: Decimal,
                today: date) -> str:
    """Payment status from what was paid and credited (billing-rules 4.7): void once credited in full."""
    if kind == InvoiceKind.CN:
        return PaymentStatus.PAID
    if total > 0 and credited >= total:
        return PaymentStatus.VOID
    if paid + credited >= total:
        return PaymentStatus.PAID
    if due_date < today:
        return PaymentStatus.OVERDUE
    return PaymentStatus.PARTIALLY_PAID if paid + credited > 0 else PaymentStatus.OPEN


def invoice_status(invoice: Invoice, *, today: date | None = None) -> str:
    paid, credited = settlement(invoice)
    return status_from(kind=invoice.kind, total=invoice.total, due_date=invoice.due_date, paid=paid,
                       credited=credited, today=today or utc_date(timezone.now()))


def invoice_status_refresh(invoice: Invoice, *, today: date | None = None) -> Invoice:
    status = invoice_status(invoice, today=today)
    if status != invoice.payment_status:
        invoice.payment_status = status
        invoice.save(update_fields=["payment_status"])
    return invoice


def invoice_statuses_refresh(*, invoices=None, today: date | None = None) -> int:
    """Bring payment statuses up to date in a fixed number of queries (the daily job: open invoices past
    their due date become overdue; imports: the invoices they paid). Returns how many changed."""
    today = today or utc_date(timezone.now())
    if invoices is None:
        invoices = Invoice.objects.issued().exclude(payment_status__in=[PaymentStatus.PAID, PaymentStatus.VOID])
    paid_sum = Payment.objects.filter(invoice=OuterRef("pk")).order_by().values("invoice").annotate(
        s=Sum("amount")).values("s")
    credit_sum = Invoice.objects.filter(credits=OuterRef("pk"), state=InvoiceState.ISSUED).order_by().values(
        "credits").annotate(s=Sum("total")).values("s")
    rows = invoices.filter(state=InvoiceState.ISSUED).annotate(
        paid=Coalesce(Subquery(paid_sum), Value(ZERO), output_field=DecimalField()),
        credited=Coalesce(Subquery(credit_sum), Value(ZERO), output_field=DecimalField()),
    ).values_list("pk", "kind", "currency", "total", "due_date", "paid", "credited", "payment_status")
    moves: dict[str, list[int]] = defaultdict(list)
    for pk, kind, currency, total, due_date, paid, credited, current in rows:
        status = status_from(kind=kind, total=total, due_date=due_date, paid=quantize_money(Decimal(paid), currency),
                             credited=-quantize_money(Decimal(credited), currency), today=today)
        if status != current:
            moves[status].append(pk)
    for status, pks in moves.items():
        Invoice.objects.filter(pk__in=pks).update(payment_status=status)
    return sum(len(pks) for pks in moves.values())


# --- payments ------------------------------------------------------------------------------------
def payment_refusals(*, invoice: Invoice | None, amount: Decimal | None, paid_on: date | None,
                     today: date) -> list[tuple[str, str]]:
    """Why a payment cannot be recorded, as (column, reason) pairs named by the payments import's columns; none
    when it can (billing-rules 4.8, billing-rules decision (ac)). The one place these rules are written: the
    payments import reports them on the row, the admin's payment forms on their fields, `payment_record`
    refuses with the first. Pure: nothing is read but the arguments.

    - only an issued CI or INV is paid: a draft or a credit note is refused on `invoice_number`, alone;
    - the amount is above 0, with at most the invoice currency's decimal places (10.001 USD is refused);
    - `paid_on` is not after `today` (UTC) nor before the invoice's issue date.

    An argument that is None is not known (a form field that did not parse) and is not checked."""
    if invoice is not None:
        number = invoice.number or "this invoice"
        if invoice.state != InvoiceState.ISSUED:
            return [("invoice_number", f"{number} is a draft: payments are recorded against issued invoices")]
        if invoice.kind == InvoiceKind.CN:
            return [("invoice_number", f"{number} is a credit note: a credit note is not paid")]
    refusals = []
    if amount is not None:
        if amount <= 0:
            refusals.append(("amount", "a payment is a positive amount"))
        elif invoice is not None and amount != amount.quantize(currency_quantum(invoice.currency)):
            refusals.append(("amount", f"at most {currency_places(invoice.currency)} decimal places "
                                       f"({invoice.currency})"))
    if paid_on is not None:
        if paid_on > today:
            refusals.append(("paid_on", f"{paid_on} is in the future"))
        elif invoice is not None and paid_on < invoice.issue_date:
            refusals.append(("paid_on", f"{paid_on} is before the issue date of {number} ({invoice.issue_date})"))
    return refusals


@transaction.atomic
def payment_record(*, invoice: Invoice, amount: Decimal, paid_on: date, reference: str = "", actor: Actor,
                   source: str = "admin") -> Payment:
    """Record a payment against an issued CI or INV (billing-rules 4.8), audited, the invoice's status refreshed.
    Under the partner's lock, taken before the payment is stamped `recorded_at` (`partners_lock`): while a
    billing run bills the partner it waits, so it is recorded after the run's CI and counts on the next one."""
    partners_lock([invoice.partner_id])
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)  # one payment at a time per invoice
    refusals = payment_refusals(invoice=invoice, amount=amount, paid_on=paid_on, today=utc_date(timezone.now()))
    if refusals:
        raise BillingError(refusals[0][1])
    payment = Payment.objects.create(partner=invoice.partner, invoice=invoice, amount=amount, paid_on=paid_on,
                                     reference=reference, recorded_by=actor.user, source=source)
    audit_record(actor=actor, action=AuditAction.PAYMENT_RECORD, obj=payment, partner=invoice.partner,
                 after={"invoice": invoice.number, "amount": str(amount), "paid_on": str(paid_on),
                        "reference": reference})
    invoice_status_refresh(invoice)
    return payment


# --- credit notes --------------------------------------------------------------------------------
def lines_to_credit(charge_lines: list, *, already: set[str], lines, number: str) -> list:
    """The charge lines a credit note credits (billing-rules 4.4, 4.5, 12.7), in the invoice's order: every one
    not credited yet (`lines` None), or the chosen `lines` (lines or their ids, as a form posts them), each a
    charge of the invoice not credited yet (`already`: the keys `credit:<line pk>` of the lines its issued credit
    notes hold). The one judge of what may be credited: ours and the customer invoices', the shell's and the
    admin's.

    A line of a negative amount (a true-up or proration down) is not a charge: chosen alone, its "credit" would
    charge the partner. The whole invoice's credit takes it with the rest, so that the credit notes of an
    invoice add up to its total."""
    if lines is None:  # the whole invoice: every line not credited yet
        chosen = [line for line in charge_lines if f"credit:{line.pk}" not in already]
        if not chosen:
            raise BillingError(f"{number} is already credited in full")
        return chosen
    wanted = {getattr(line, "pk", line) for line in lines}
    if wanted - {line.pk for line in charge_lines if line.amount >= 0}:
        raise BillingError(f"a chosen line is not a charge of {number}")
    chosen = [line for line in charge_lines if line.pk in wanted]
    if any(f"credit:{line.pk}" in already for line in chosen):
        raise BillingError(f"a chosen line of {number} is already credited")
    if not chosen:
        raise BillingError("choose at least one line to credit")
    return chosen


@transaction.atomic
def credit_note_issue(*, invoice: Invoice, lines=None, actor: Actor, reason: str = "") -> Invoice:
    """A credit note for a whole issued invoice, or for chosen lines of it (billing-rules 4.4, 4.5: corrections are
    new documents). A whole-invoice credit negates every line and the tax exactly, so the balance
    comes back to what it was; chosen lines carry their own tax, rounded once. `lines`: lines or their ids.

    Under the partner's lock, taken first (`partners_lock`), then the invoice's, then the number sequences'
    (`numbers_take`): the billing run's order, so a credit note issued while a run bills the partner waits for
    it instead of deadlocking, and counts on the next CI."""
    partners_lock([invoice.partner_id])
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if not invoice.is_issued or invoice.kind == InvoiceKind.CN:
        raise BillingError("credit notes correct issued invoices")
    charge_lines = list(invoice.lines.exclude(line_type=LineType.TAX))
    already = set(InvoiceLine.objects.filter(invoice__credits=invoice, invoice__state=InvoiceState.ISSUED,
                                             line_type=LineType.CREDIT).values_list("key", flat=True))
    chosen = lines_to_credit(charge_lines, already=already, lines=lines, number=invoice.number)
    today = utc_date(timezone.now())
    note = Invoice.objects.create(partner=invoice.partner, kind=InvoiceKind.CN, issue_date=today, due_date=today,
                                  currency=invoice.currency, customer=invoice.customer, credits=invoice,
                                  tax_rate=invoice.tax_rate)
    credit_lines = [
        InvoiceLine(invoice=note, service=line.service, customer=line.customer, line_type=LineType.CREDIT,
                    period=line.period, quantity=line.quantity, unit_price=line.unit_price, amount=-line.amount,
                    description=f"Credit for {invoice.number}: {line.description}"[:300], taxable=line.taxable,
                    key=f"credit:{line.pk}", position=n)
        for n, line in enumerate(chosen)
    ]
    subtotal = money_sum(line.amount for line in credit_lines)
    earlier = Invoice.objects.filter(credits=invoice, state=InvoiceState.ISSUED)
    tax = credit_note_tax(
        credited_taxable=money_sum(line.amount for line in credit_lines if line.taxable),
        rate_percent=invoice.tax_rate, currency=invoice.currency, invoice_tax=invoice.tax_amount,
        earlier_credited_tax=money_total(earlier, "tax_amount", invoice.currency),
        last=len(already & {f"credit:{line.pk}" for line in charge_lines}) + len(chosen) == len(charge_lines))
    if invoice.tax_rate > 0:
        credit_lines.append(InvoiceLine(
            invoice=note, line_type=LineType.TAX, period=credit_lines[0].period, unit_price=invoice.tax_rate,
            amount=tax, description=f"Tax {invoice.tax_rate.normalize():f}%", taxable=False,
            position=len(credit_lines)))
    InvoiceLine.objects.bulk_create(credit_lines)
    note.subtotal, note.tax_amount, note.total = subtotal, tax, subtotal + tax
    note.amount_due = note.total
    note.payment_status = PaymentStatus.PAID
    note.save()
    _issue(note, actor=actor)
    audit_record(actor=actor, action=AuditAction.INVOICE_CREDIT, obj=note, partner=invoice.partner,
                 after={"credits": invoice.number, "total": str(note.total), "reason": reason,
                        "lines": [line.pk for line in chosen]})
    invoice_status_refresh(invoice)
    return note

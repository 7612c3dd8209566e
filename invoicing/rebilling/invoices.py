"""Customer invoices (billing-rules 12.4-12.8): the partner's invoices to its own customers, issued by the billing
run right after the partner's own documents, in the partner's transaction (`customer_invoices_bill`, registered
with billing.core.hooks), and the writes around them: issuing a draft, a credit note, numbering, emails and PDFs.

For each document of ours the run issued to a partner with rebilling on (its CI of a month, the INV of a first
month), each customer with a charge on it gets one invoice from the partner, dated as our document: the
quantities of our lines (invoicing.rebilling.charges), priced by the customer's resale price in force (the
month's 1st; a first month's start date) with `resale_amount`, the first month prorated by the service's own
convention, and the customer's tax rate. A charge without a price for the customer is not billed at any price
the partner did not set: it is listed (`UnbilledCharge`). A rerun issues nothing twice: the customer invoices
follow our documents, which are issued once, and the database holds one per customer and document."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.bulk import update_rows
from billing.core.money import money_sum, quantize_money, quantize_quantity, tax_on
from billing.core.periods import Period, utc_date
from invoicing.choices import InvoiceKind, InvoiceState, LineType
from invoicing.models import Invoice
from invoicing.pricing import credit_note_tax, first_month_amount
from invoicing.rebilling.accounts import invoices_transactions_record
from invoicing.rebilling.charges import Charge, customer_charges, metered_item_charges
from invoicing.rebilling.choices import CustomerInvoiceKind, ResaleMode, UnbilledReason
from invoicing.rebilling.documents import issuer_snapshot, recipient_snapshot
from invoicing.rebilling.models import (
    CustomerBillingProfile,
    CustomerInvoice,
    CustomerInvoiceLine,
    CustomerInvoiceSequence,
    RebillingProfile,
    UnbilledCharge,
)
from invoicing.rebilling.pdf import render_customer_invoice_pdf
from invoicing.rebilling.pricing import exact_amount, package_words, shown_unit_price
from invoicing.rebilling.reports import customer_invoice_xlsx
from invoicing.rebilling.selectors import resale_price_lists
from invoicing.services.delivery import emails_enqueue
from invoicing.services.errors import BillingError
from invoicing.services.ledger import lines_to_credit, partners_lock
from partners.audit import audit_entry
from partners.choices import AuditAction
from partners.models import AuditLog, Customer, Partner

logger = logging.getLogger("invoicing.rebilling")


# --- the run ---------------------------------------------------------------------------------------------------
def customer_invoices_bill(*, partner: Partner, documents: list[Invoice], through: date | None = None,
                           actor: Actor) -> list[CustomerInvoice]:
    """The customer invoices that follow the partner's issued `documents` (billing-rules 12.5), written in the
    caller's transaction (the billing run's, after `_issue_all`): issued, or drafts when the partner reviews them
    first. Nothing when the partner's rebilling is off. Returns them in the order written."""
    profile = RebillingProfile.objects.filter(partner=partner, enabled=True).first()
    if profile is None:
        return []
    priced = customer_invoices_price(partner, documents, payment_terms_days=profile.payment_terms_days)
    UnbilledCharge.objects.bulk_create(priced.unbilled)
    for item in priced.unbilled:
        logger.warning("partner %s: %s %s of %s not on a customer invoice: %s", partner.slug, item.service.code,
                       item.period, item.customer.slug if item.customer_id else "the partner",
                       item.get_reason_display())
    invoices = []
    for invoice, lines in priced.invoices:
        invoice.save()
        for position, line in enumerate(lines):
            line.invoice, line.position = invoice, position
        CustomerInvoiceLine.objects.bulk_create(lines)
        invoices.append(invoice)
    if not profile.review_drafts:
        customer_invoices_issue(invoices, actor=actor, profile=profile)
    return invoices


@dataclass
class Priced:
    """What the partner's documents charge its customers, not yet written: one unsaved invoice per customer and
    document with its lines, and the charges no customer invoice carries."""

    invoices: list[tuple[CustomerInvoice, list[CustomerInvoiceLine]]] = field(default_factory=list)
    unbilled: list[UnbilledCharge] = field(default_factory=list)


def customer_invoices_price(partner: Partner, documents: list[Invoice], *, payment_terms_days: int = 30,
                            skip_billed: bool = True) -> Priced:
    """Price the charges of the partner's issued `documents` for its customers (billing-rules 12.5, 12.6, 12.11),
    writing nothing: the run writes the result, the sync-out reads it for partners who bill from their own tools.
    `skip_billed`: leave out the customers a customer invoice already follows a document for."""
    documents = [doc for doc in documents if doc.is_issued and doc.kind in (InvoiceKind.CI, InvoiceKind.INV)]
    if not documents:
        return Priced()
    done = set()
    if skip_billed:
        done = set(CustomerInvoice.objects.filter(source__in=documents, kind=CustomerInvoiceKind.INVOICE)
                   .values_list("source_id", "customer_id"))
    charges, not_split = customer_charges(documents)
    charges += metered_item_charges(partner, documents)
    charges = [c for c in charges if (c.source.pk, c.customer_id) not in done]
    lists = {day: resale_price_lists([partner.pk], day)[partner.pk] for day in sorted({_price_day(c)
                                                                                         for c in charges})}
    customers = Customer.objects.in_bulk({c.customer_id for c in charges})
    billing = {p.customer_id: p for p in CustomerBillingProfile.objects.filter(customer_id__in=list(customers))}
    priced = Priced(unbilled=[
        UnbilledCharge(partner=partner, customer=None, service=n.service, source=n.source, period=str(n.period),
                       line_type=n.line_type, quantity=n.quantity, reason=UnbilledReason.NOT_SPLIT)
        for n in not_split])
    grouped: dict[tuple[int, int], list[tuple[Charge, object]]] = defaultdict(list)
    for charge in charges:
        price = lists[_price_day(charge)].price(charge.customer_id, charge.target)
        if price is None:
            if charge.service is not None:  # an own item without a price is simply not sold to the customer
                priced.unbilled.append(UnbilledCharge(
                    partner=partner, customer=customers[charge.customer_id], service=charge.service,
                    source=charge.source, period=str(charge.period), line_type=charge.line_type,
                    quantity=charge.quantity, reason=UnbilledReason.NO_PRICE))
            continue
        grouped[(charge.source.pk, charge.customer_id)].append((charge, price))
    for (_source_id, customer_id), charged in grouped.items():
        drafted = _customer_invoice(partner, payment_terms_days, customers[customer_id], billing.get(customer_id),
                                    charged)
        if drafted is not None:
            priced.invoices.append(drafted)
    return priced


def _price_day(charge: Charge) -> date:
    """The day whose prices charge it (billing-rules 12.1): the month's 1st; a first month, its start date."""
    return charge.start or charge.period.first


def _customer_invoice(partner: Partner, payment_terms_days: int, customer: Customer,
                      billing: CustomerBillingProfile | None, priced: list):
    """One customer's unsaved invoice for one document of ours, with its lines (None: nothing to charge)."""
    source = priced[0][0].source
    currency = partner.currency
    lines = []
    for charge, price in priced:
        line = _charge_line(charge, price, currency)
        if line is not None:
            lines.append(line)
    if not lines:
        return None
    month = source.month or str(Period.of(source.issue_date))
    invoice = CustomerInvoice(
        partner=partner, customer=customer, kind=CustomerInvoiceKind.INVOICE, month=month,
        issue_date=source.issue_date, due_date=source.issue_date + timedelta(days=payment_terms_days),
        currency=currency, tax_rate=billing.tax_rate if billing else Decimal("0"), source=source)
    _totals(invoice, lines)
    return invoice, lines


def _charge_line(charge: Charge, price, currency: str) -> CustomerInvoiceLine | None:
    """A charge at the customer's price: `resale_amount`'s exact value rounded once, or for a first month the
    monthly exact value prorated by the service's convention (billing-rules 3.8: 150.00 from 10 March, rounded
    daily rate, is 4.84 x 21 = 101.64). `cost` is what we charged the partner for the same quantity."""
    terms, quantity, service, item = price.terms, charge.quantity, charge.service, charge.item
    name = service.name if service is not None else item.name
    monthly = exact_amount(terms, quantity, our_unit_price=charge.our_unit_price)
    if charge.line_type == LineType.FIRST_MONTH:
        amount = first_month_amount(monthly, start=charge.start, convention=service.proration, currency=currency)
        description = f"{name} first month from {charge.start}"
    else:
        amount = quantize_money(monthly, currency)
        description = f"{name} {charge.period}"
    if quantity == 0 and amount == 0:
        return None
    if terms.mode == ResaleMode.PACKAGE:
        description += f" (package: {package_words(terms, currency)})"
    if "host_limit" in charge.details:
        description += f": {charge.details['host_limit']} hosts (host limit on {charge.details['host_limit_on']})"
    if item is not None and item.meter:
        unit = item.unit or "unit"
        shown = quantize_quantity(quantity).normalize()
        description += f": {shown:f} {unit}{'' if shown == 1 or unit.endswith('s') else 's'} ({item.meter})"
    details = dict(charge.details) | {"price": price.pk, "mode": price.mode}
    key_target = f"{service.pk}" if service is not None else f"item{item.pk}"
    return CustomerInvoiceLine(
        service=service, item=item, line_type=charge.line_type, period=str(charge.period), quantity=quantity,
        unit_price=shown_unit_price(terms, quantity, our_unit_price=charge.our_unit_price), amount=amount,
        cost=quantize_money(charge.cost, currency) if charge.cost is not None else None,
        description=description[:300], taxable=service.taxable if service is not None else True, details=details,
        key=f"{charge.line_type}:{key_target}:{charge.period}")


def _totals(invoice: CustomerInvoice, lines: list[CustomerInvoiceLine]) -> None:
    """Subtotal, tax once on the taxable lines at the customer's rate (billing-rules 4.3) and total; the tax is a
    line of its own, as on our invoices."""
    invoice.subtotal = money_sum(line.amount for line in lines)
    taxable = money_sum(line.amount for line in lines if line.taxable)
    invoice.tax_amount = tax_on(taxable, invoice.tax_rate, invoice.currency)
    invoice.total = invoice.subtotal + invoice.tax_amount
    if invoice.tax_rate > 0:
        lines.append(CustomerInvoiceLine(
            line_type=LineType.TAX, period=invoice.month, unit_price=invoice.tax_rate, amount=invoice.tax_amount,
            description=f"Tax {invoice.tax_rate.normalize():f}%", taxable=False))


# --- numbering and issuing -------------------------------------------------------------------------------------
def customer_numbers_take(partner: Partner, prefix: str, kinds: list[str]) -> list[str]:
    """The next numbers of the partner's sequences, one for each kind given in order, under the sequence rows'
    locks (gapless per partner: a rolled-back issue gives its numbers back). Invoices are PREFIX-0001, credit
    notes PREFIX-CN-0001. Only the partner's own rows are locked: partners never wait on each other."""
    wanted = sorted(set(kinds))
    CustomerInvoiceSequence.objects.bulk_create(
        [CustomerInvoiceSequence(partner=partner, kind=kind) for kind in wanted], ignore_conflicts=True)
    rows = {row.kind: row for row in CustomerInvoiceSequence.objects.select_for_update()
            .filter(partner=partner, kind__in=wanted).order_by("kind")}
    numbers = []
    for kind in kinds:
        rows[kind].last += 1
        middle = "CN-" if kind == CustomerInvoiceKind.CREDIT_NOTE else ""
        numbers.append(f"{prefix}-{middle}{rows[kind].last:04d}")
    for row in rows.values():
        CustomerInvoiceSequence.objects.filter(pk=row.pk).update(last=row.last)
    return numbers


@transaction.atomic  # the run's transaction (a savepoint), or its own for any other caller
def customer_invoices_issue(invoices: list[CustomerInvoice], *, actor: Actor,
                            profile: RebillingProfile | None = None, reason: str = "") -> None:
    """Number and issue drafts of one partner in their order: the issuer and recipient kept as they stand now,
    audited, and emailed after the commit when the partner wants it."""
    if not invoices:
        return
    partner = invoices[0].partner
    profile = profile or RebillingProfile.objects.get(partner=partner)
    issuer = issuer_snapshot(profile)
    billing = {p.customer_id: p for p in CustomerBillingProfile.objects.filter(
        customer_id__in={i.customer_id for i in invoices})}
    now = timezone.now()
    numbers = customer_numbers_take(partner, profile.number_prefix, [i.kind for i in invoices])
    for invoice, number in zip(invoices, numbers, strict=True):
        invoice.number, invoice.state, invoice.issued_at = number, InvoiceState.ISSUED, now
        invoice.issuer = issuer
        invoice.recipient = recipient_snapshot(invoice.customer, billing.get(invoice.customer_id))
    invoices_transactions_record(invoices, customer_billing=profile.customer_billing)  # sets each one's account
    update_rows(CustomerInvoice, ["number", "state", "issued_at", "issuer", "recipient", "account"],
                [(i.pk, i.number, i.state, i.issued_at, i.issuer, i.recipient, i.account) for i in invoices])
    action = {CustomerInvoiceKind.INVOICE: AuditAction.CUSTOMER_INVOICE_ISSUE,
              CustomerInvoiceKind.CREDIT_NOTE: AuditAction.CUSTOMER_INVOICE_CREDIT}
    AuditLog.objects.bulk_create(
        audit_entry(actor=actor, action=action[invoice.kind], obj=invoice, partner=partner,
                    after={"number": invoice.number, "customer": invoice.customer.slug, "total": str(invoice.total),
                           "credits": invoice.credits.number if invoice.credits_id else None,
                           **({"reason": reason} if reason else {})})
        for invoice in invoices)
    if profile.email_invoices:
        ids = [invoice.pk for invoice in invoices]
        transaction.on_commit(lambda: customer_invoice_emails_enqueue(ids))


@transaction.atomic
def customer_invoice_issue_draft(*, invoice: CustomerInvoice, actor: Actor) -> CustomerInvoice:
    """Issue a draft the partner reviewed, as it stands, in date order (as our own drafts, billing-rules 4.4)."""
    partners_lock([invoice.partner_id])  # one issuer of the partner's numbers at a time, as the billing run's
    invoice = CustomerInvoice.objects.select_related("partner", "customer").get(pk=invoice.pk)
    if invoice.is_issued:
        raise BillingError(f"{invoice.number} is already issued")
    if CustomerInvoice.objects.filter(partner_id=invoice.partner_id, state=InvoiceState.DRAFT,
                                      issue_date__lt=invoice.issue_date).exists():
        raise BillingError("issue the earlier drafts first: customer invoices are numbered in date order")
    customer_invoices_issue([invoice], actor=actor)
    return invoice


@transaction.atomic
def customer_credit_note_issue(*, invoice: CustomerInvoice, actor: Actor, reason: str = "",
                               lines: list[CustomerInvoiceLine] | None = None) -> CustomerInvoice:
    """A credit note for an issued customer invoice (billing-rules 12.7), as ours (4.5): for every line not
    credited yet (`lines` None), or for chosen lines, each credited once, with their own tax rounded once; the
    note that credits the last lines takes the tax still uncredited, so the notes give back exactly the
    invoice's tax. Numbered in the partner's credit-note sequence, dated today."""
    partners_lock([invoice.partner_id])  # the partner first, then the numbers (as the billing run)
    invoice = CustomerInvoice.objects.select_related("partner", "customer").get(pk=invoice.pk)
    if not invoice.is_issued or invoice.is_credit_note:
        raise BillingError("credit notes correct issued customer invoices")
    charge_lines = list(invoice.lines.exclude(line_type=LineType.TAX).order_by("position", "pk"))
    earlier = CustomerInvoice.objects.filter(credits=invoice, state=InvoiceState.ISSUED)
    already = set(CustomerInvoiceLine.objects.filter(invoice__in=earlier, line_type=LineType.CREDIT)
                  .values_list("key", flat=True))
    chosen = lines_to_credit(charge_lines, already=already, lines=lines, number=invoice.number)
    today = utc_date(timezone.now())
    credit_lines = [
        CustomerInvoiceLine(
            service_id=line.service_id, item_id=line.item_id, line_type=LineType.CREDIT, period=line.period,
            quantity=line.quantity, unit_price=line.unit_price, amount=-line.amount,
            cost=-line.cost if line.cost is not None else None,
            description=f"Credit for {invoice.number}: {line.description}"[:300], taxable=line.taxable,
            details=line.details, position=position, key=f"credit:{line.pk}")
        for position, line in enumerate(chosen)]
    subtotal = money_sum(line.amount for line in credit_lines)
    tax = credit_note_tax(
        credited_taxable=money_sum(line.amount for line in credit_lines if line.taxable),
        rate_percent=invoice.tax_rate, currency=invoice.currency, invoice_tax=invoice.tax_amount,
        earlier_credited_tax=money_sum(note.tax_amount for note in earlier),
        last=len(already) + len(chosen) == len(charge_lines))
    if invoice.tax_rate > 0:
        credit_lines.append(CustomerInvoiceLine(
            line_type=LineType.TAX, period=invoice.month, unit_price=invoice.tax_rate, amount=tax,
            description=f"Tax {invoice.tax_rate.normalize():f}%", taxable=False, position=len(credit_lines)))
    note = CustomerInvoice.objects.create(
        partner=invoice.partner, customer=invoice.customer, kind=CustomerInvoiceKind.CREDIT_NOTE,
        month=invoice.month, issue_date=today, due_date=today, currency=invoice.currency, tax_rate=invoice.tax_rate,
        credits=invoice, subtotal=subtotal, tax_amount=tax, total=subtotal + tax)
    for line in credit_lines:
        line.invoice = note
    CustomerInvoiceLine.objects.bulk_create(credit_lines)
    customer_invoices_issue([note], actor=actor, reason=reason)
    return note


# --- delivery --------------------------------------------------------------------------------------------------
UNSENT_EMAIL_DAYS = 7  # how far back the daily job sends a customer invoice whose email never left


def customer_invoices_unsent_enqueue() -> None:
    """The daily job's catch-up (billing.core.hooks.unsent_emails_enqueue): the customer invoices issued in the last
    UNSENT_EMAIL_DAYS days by a partner that emails them, to a customer with billing emails, whose email never
    left (SMTP down past the task's retries, the broker down at issue). Older ones are left to the clerk: turning
    the emails on must not mail months-old invoices."""
    since = timezone.now() - timedelta(days=UNSENT_EMAIL_DAYS)
    emailing = RebillingProfile.objects.filter(email_invoices=True).values("partner_id")
    unsent = (CustomerInvoice.objects.filter(state=InvoiceState.ISSUED, emailed_at__isnull=True, issued_at__gte=since,
                                             partner_id__in=emailing)
              .values_list("pk", "recipient"))
    customer_invoice_emails_enqueue([pk for pk, recipient in unsent if (recipient or {}).get("emails")])


def customer_invoice_emails_enqueue(invoice_ids: list[int]) -> None:
    """Queue the emails of issued, committed customer invoices as our own invoices' are queued (one producer; a
    broker down logged once, never raised: the invoices stand, and the daily job sends what never left)."""
    # a named cycle: the task sends the email with customer_invoice_email_send, in this module
    from invoicing.rebilling.tasks import send_customer_invoice_task  # noqa: PLC0415

    emails_enqueue(send_customer_invoice_task, invoice_ids, "customer invoice", log=logger)


@transaction.atomic
def customer_invoice_email_send(*, invoice: CustomerInvoice) -> CustomerInvoice:
    """Email an issued customer invoice's PDF (and its lines as XLSX) to the customer's billing emails, once,
    from the partner (its email as Reply-To)."""
    invoice = CustomerInvoice.objects.select_for_update().select_related("partner", "customer").get(pk=invoice.pk)
    if invoice.emailed_at is not None or not invoice.is_issued:
        return invoice
    recipients = (invoice.recipient or {}).get("emails") or []
    if not recipients:
        return invoice
    issuer = invoice.issuer or {}
    title = "credit note" if invoice.is_credit_note else "invoice"
    message = EmailMessage(
        subject=f"{issuer.get('legal_name', invoice.partner.name)}: {title} {invoice.number}",
        body=(f"Please find attached {title} {invoice.number} dated {invoice.issue_date:%d %B %Y}.\n"
              f"Total: {quantize_money(invoice.total, invoice.currency)} {invoice.currency}"
              + ("" if invoice.is_credit_note else f", due by {invoice.due_date:%d %B %Y}") + ".\n"),
        from_email=settings.DEFAULT_FROM_EMAIL, to=recipients,
        reply_to=[issuer["email"]] if issuer.get("email") else None)
    content = render_customer_invoice_pdf(invoice)
    message.attach(f"{invoice.number}.pdf", content, "application/pdf")
    message.attach(f"{invoice.number}-lines.xlsx", customer_invoice_xlsx(invoice),
                   "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    message.send()
    invoice.pdf_version += 1
    invoice.pdf.save(f"{invoice.number}-v{invoice.pdf_version}.pdf", ContentFile(content), save=False)
    invoice.emailed_at = timezone.now()
    invoice.save(update_fields=["pdf", "pdf_version", "emailed_at"])
    return invoice


# --- what a run's output says of them ------------------------------------------------------------------------
def customer_invoices_followed(document_ids: list[int]) -> list[str]:
    """run_billing's and the admin run page's lines (billing.core.hooks): the customer invoices that follow the
    documents, one line each, and how many charges of theirs no customer invoice carries."""
    invoices = (CustomerInvoice.objects.filter(source_id__in=document_ids, kind=CustomerInvoiceKind.INVOICE)
                .select_related("partner", "customer").order_by("partner__slug", "issue_date", "pk"))
    lines = [f"{invoice.number or 'draft':10} customer invoice from {invoice.partner.slug} to "
             f"{invoice.customer.slug} {invoice.issue_date} "
             f"total {quantize_money(invoice.total, invoice.currency)} {invoice.currency}"
             + ("" if invoice.is_issued else " (draft for the partner's review)")
             for invoice in invoices]
    unbilled = UnbilledCharge.objects.filter(source_id__in=document_ids).count()
    if unbilled:
        lines.append(f"{unbilled} charge(s) not on a customer invoice (no resale price, or billed to the partner "
                     "as a whole): Rebilling > Charges not rebilled")
    return lines

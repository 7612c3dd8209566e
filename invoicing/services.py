"""Writes of invoicing: the billing run, numbering, the ledger, payments, credit notes (RULES 4, 5, 9)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.actor import Actor
from billing.money import ZERO, currency_places, money_sum, quantize_money
from billing.periods import Period, periods_between, utc_date
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
from invoicing.rating import ADVANCE, CI, INV, BilledUnits, RatedLine, rate_partner_month
from invoicing.selectors import balance_at, invoice_pdf_detailed, statement_sources
from partners.audit import audit_record
from partners.models import Customer, Method, Partner, Service

logger = logging.getLogger(__name__)
HUNDRED = Decimal(100)


class BillingError(Exception):
    """A billing request that cannot be carried out (one clear line)."""


def money_total(queryset, field: str, currency: str) -> Decimal:
    """A database sum of amounts, exact: SQLite sums decimals as floats, so the sum (of amounts already
    rounded to the currency) is brought back to the currency's places."""
    value = queryset.aggregate(s=Sum(field))["s"]
    return quantize_money(Decimal(value), currency) if value is not None else ZERO


# --- numbering -------------------------------------------------------------------------------------
GATE = InvoiceKind.CI  # the row every number taker locks first


def number_take(kind: str) -> str:
    """The next number of a prefix, taken under the sequence row's lock: unique and gapless, since a
    rolled-back transaction gives its number back.

    Every taker first locks one and the same row (the first prefix's), then its own: numbering is
    serialised, so a partner's run issuing a CI then an INV and another's issuing an INV then a CI
    never wait on each other in a cycle (parallel billing of partners, as the daily task does).
    """
    if InvoiceSequence.objects.filter(prefix__in=[GATE, kind]).count() != len({GATE, kind}):
        InvoiceSequence.objects.bulk_create([InvoiceSequence(prefix=p) for p in {GATE, kind}], ignore_conflicts=True)
    gate = InvoiceSequence.objects.select_for_update().get(prefix=GATE)
    sequence = gate if kind == GATE else InvoiceSequence.objects.select_for_update().get(prefix=kind)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return f"{kind}-{sequence.last:04d}"


# --- the billing run -------------------------------------------------------------------------------
@dataclass
class _Draft:
    """A document being built: its lines, before it is written."""

    kind: str
    issue_date: date
    lines: list[RatedLine]
    month: Period | None = None
    customer: Customer | None = None
    one_time: OneTimeCharge | None = None


def billing_run(*, through: date, partner_slug: str | None = None, draft: bool = False,
                actor: Actor | None = None) -> list[Invoice]:
    """Everything due up to `through` that is not done yet (RULES 5): one transaction per partner."""
    actor = actor or Actor(label="run_billing")
    partners = Partner.objects.order_by("slug")
    if partner_slug:
        partners = partners.filter(slug=partner_slug)
        if not partners.exists():
            raise BillingError(f"unknown partner {partner_slug!r}")
    documents: list[Invoice] = []
    for partner_id in partners.values_list("pk", flat=True):
        documents += partner_bill(partner_id=partner_id, through=through, draft=draft, actor=actor)
    return documents


@transaction.atomic
def partner_bill(*, partner_id: int, through: date, draft: bool = False, actor: Actor) -> list[Invoice]:
    """One partner's billing up to `through`, in one transaction under the partner's lock.

    Invoices are issued in date order: each month's CI (dated its 1st), then the month's INVs by
    date. A month whose CI is issued is not billed again; a charge already on an issued invoice is
    not charged again; drafts are thrown away and built anew.
    """
    partner = Partner.objects.select_for_update().get(pk=partner_id)
    Invoice.objects.filter(partner=partner, state=InvoiceState.DRAFT).delete()
    first = _first_month(partner)
    if first is None:
        return []
    billed_keys = set(
        InvoiceLine.objects.filter(invoice__partner=partner, invoice__state=InvoiceState.ISSUED)
        .exclude(key="").values_list("key", flat=True)
    )
    issued_months = set(
        Invoice.objects.filter(partner=partner, kind=InvoiceKind.CI, state=InvoiceState.ISSUED)
        .values_list("month", flat=True)
    )
    unbilled_starts = _unbilled_first_months(partner, billed_keys)
    charges = list(OneTimeCharge.objects.filter(partner=partner, date__lte=through).select_related("customer")
                   .order_by("date", "pk"))
    created: list[Invoice] = []
    for month in periods_between(first, Period.of(through)):
        pending: list[_Draft] = []
        if str(month) in issued_months and month not in unbilled_starts:
            lines = []  # its CI is issued and no first month in it is unbilled: nothing to rate
        else:
            billed = billed_units(partner=partner, extra=created)
            lines = rate_partner_month(partner=partner, month=month, billed=billed)
        if str(month) not in issued_months:
            ci_lines = [line for line in lines if line.document == CI and line.amount != ZERO]
            if ci_lines:
                pending.append(_Draft(CI, month.first, ci_lines, month=month))
        for line in lines:
            if line.document == INV and line.issue_date <= through and line.key not in billed_keys:
                pending.append(_Draft(INV, line.issue_date, [line], customer=line.customer))
        for charge in charges:
            if month.contains(charge.date) and f"one_time:{charge.pk}" not in billed_keys:
                pending.append(_Draft(INV, charge.date, [], customer=charge.customer, one_time=charge))
        for item in sorted(pending, key=_issue_order):
            created.append(_write(partner, item, draft=draft, actor=actor))
    return created


def _unbilled_first_months(partner: Partner, billed_keys: set[str]) -> set[Period]:
    """The months in which a service billed in advance starts after the 1st and its first-month INV
    is not issued yet: the only lines that rating a month whose CI is issued can still add."""
    billed = {key.split(":")[1] for key in billed_keys if key.startswith("first_month:")}
    starts = Service.objects.filter(partner=partner, method__in=ADVANCE).exclude(start_date__day=1)
    return {Period.of(start) for pk, start in starts.values_list("pk", "start_date") if str(pk) not in billed}


def _issue_order(item: _Draft) -> tuple:
    """Date order (RULES 9.6): the month's CI first on its 1st, then INVs by date, first months before
    one-time charges, each in the order they were recorded."""
    if item.kind == CI:
        return (item.issue_date, 0, 0)
    if item.one_time is not None:
        return (item.issue_date, 2, item.one_time.pk)
    return (item.issue_date, 1, item.lines[0].service.pk)


def _first_month(partner: Partner) -> Period | None:
    starts = list(Service.objects.filter(partner=partner).values_list("start_date", flat=True))
    starts += list(OneTimeCharge.objects.filter(partner=partner).values_list("date", flat=True))
    return Period.of(min(starts)) if starts else None


def billed_units(*, partner: Partner, extra=()) -> dict[tuple[int, Period], BilledUnits]:
    """What was billed of each per_asset service per month: the units of the month's normal line
    (0 when the issued CI had none) or first-month line, and the changes posted since (RULES 9.6)."""
    services = {s.pk: s for s in Service.objects.filter(partner=partner, method=Method.PER_ASSET)}
    if not services:
        return {}
    invoices = list(Invoice.objects.filter(partner=partner, state=InvoiceState.ISSUED, kind__in=[CI, INV]))
    invoices += [i for i in extra if i.state == InvoiceState.DRAFT]
    billed: dict[tuple[int, Period], BilledUnits] = {}
    for invoice in invoices:
        if invoice.kind == CI:
            month = Period.parse(invoice.month)
            for service in services.values():
                if service.start_date <= month.first and (service.end_date is None or service.end_date >= month.first):
                    billed[(service.pk, month)] = BilledUnits(month.first, 0)
    lines = InvoiceLine.objects.filter(invoice__in=invoices, service_id__in=list(services))
    changes = []
    for line in lines.values("service_id", "line_type", "period", "quantity", "effective_date"):
        key = (line["service_id"], Period.parse(line["period"]))
        if line["line_type"] == LineType.RECURRING:
            billed[key] = BilledUnits(key[1].first, int(line["quantity"]))
        elif line["line_type"] == LineType.FIRST_MONTH:
            billed[key] = BilledUnits(line["effective_date"], int(line["quantity"]))
        elif line["line_type"] == LineType.PRORATION:
            changes.append((key, line["effective_date"], int(line["quantity"])))
    for key, effective, delta in changes:
        if key in billed:
            billed[key].changes[effective] = billed[key].changes.get(effective, 0) + delta
            billed[key].postings[effective] = billed[key].postings.get(effective, 0) + 1
    return billed


def _terms(partner: Partner, customer: Customer | None) -> int:
    if customer is not None and customer.payment_terms_days is not None:
        return customer.payment_terms_days
    return partner.payment_terms_days


def _line(invoice, rated: RatedLine, position: int, child=None) -> InvoiceLine:
    return InvoiceLine(
        invoice=invoice, child=child, service=rated.service, customer=rated.customer, line_type=rated.line_type,
        period=str(rated.period), quantity=rated.quantity, unit_price=rated.unit_price, amount=rated.amount,
        description=rated.description[:300], taxable=rated.taxable, effective_date=rated.effective_date,
        key=rated.key, details=rated.details, position=position, posting=rated.posting,
    )


def _write(partner: Partner, item: _Draft, *, draft: bool, actor: Actor) -> Invoice:
    currency = partner.currency
    invoice = Invoice(partner=partner, kind=item.kind, issue_date=item.issue_date, due_date=item.issue_date,
                      currency=currency, month=str(item.month) if item.month else "", customer=item.customer,
                      tax_rate=partner.tax_rate)
    invoice.save()
    lines: list[InvoiceLine] = []
    period = str(item.month or Period.of(item.issue_date))
    if item.kind == CI:
        children: dict[int | None, ChildInvoice] = {}
        for rated in item.lines:
            owner = rated.service.customer if rated.service.customer_id else None
            key = owner.pk if owner else None
            if key not in children:
                children[key] = ChildInvoice(
                    invoice=invoice, customer=owner,
                    due_date=item.issue_date + timedelta(days=_terms(partner, owner)), subtotal=ZERO,
                )
            children[key].subtotal += rated.amount
        ChildInvoice.objects.bulk_create(children.values())  # one insert for a CI of any size
        for position, rated in enumerate(item.lines):
            owner_key = rated.service.customer_id if rated.service.customer_id else None
            lines.append(_line(invoice, rated, position, child=children[owner_key]))
        invoice.due_date = min(child.due_date for child in children.values())
    elif item.one_time is not None:
        charge = item.one_time
        amount = quantize_money(charge.quantity * charge.unit_price, currency)
        lines.append(InvoiceLine(
            invoice=invoice, customer=charge.customer, line_type=LineType.ONE_TIME, period=period,
            quantity=charge.quantity, unit_price=charge.unit_price, amount=amount, description=charge.description,
            taxable=charge.taxable, key=f"one_time:{charge.pk}",
        ))
        invoice.due_date = item.issue_date + timedelta(days=_terms(partner, charge.customer))
    else:
        lines += [_line(invoice, rated, n) for n, rated in enumerate(item.lines)]
        invoice.due_date = item.issue_date + timedelta(days=_terms(partner, item.customer))
    _finish(invoice, lines, period=period)
    if not draft:
        _issue(invoice, actor=actor)
    return invoice


def _finish(invoice: Invoice, lines: list[InvoiceLine], *, period: str) -> None:
    """Totals and the one tax line (RULES 2: tax once per invoice, present whenever the rate is above 0)."""
    subtotal = money_sum(line.amount for line in lines)
    taxable = money_sum(line.amount for line in lines if line.taxable)
    tax = quantize_money(taxable * invoice.tax_rate / HUNDRED, invoice.currency)
    if invoice.tax_rate > 0:
        lines.append(InvoiceLine(
            invoice=invoice, line_type=LineType.TAX, period=period, quantity=None, unit_price=invoice.tax_rate,
            amount=tax, description=f"Tax {invoice.tax_rate.normalize():f}%", taxable=False, position=len(lines),
        ))
    InvoiceLine.objects.bulk_create(lines)
    invoice.subtotal, invoice.tax_amount, invoice.total = subtotal, tax, subtotal + tax
    if invoice.kind == InvoiceKind.CI:
        _statement(invoice)
    else:
        invoice.amount_due = invoice.total
    invoice.save()


def _statement(invoice: Invoice) -> None:
    """The account on a CI (RULES 4): previous balance, payments and credits since the previous CI,
    individual invoices since, this CI's charges and taxes, and the amount due."""
    previous, paid, documents = statement_sources(invoice)
    credits = documents.filter(kind=InvoiceKind.CN)
    others = documents.exclude(kind=InvoiceKind.CN)  # INVs, and any CI issued late for an earlier month
    invoice.previous_balance = previous.amount_due if previous else ZERO
    currency = invoice.currency
    invoice.payments_and_credits = money_total(paid, "amount", currency) - money_total(credits, "total", currency)
    invoice.other_invoices = money_total(others, "total", currency)
    invoice.amount_due = (invoice.previous_balance - invoice.payments_and_credits + invoice.other_invoices
                          + invoice.total)


def _issue(invoice: Invoice, *, actor: Actor) -> None:
    invoice.number = number_take(invoice.kind)
    invoice.state = InvoiceState.ISSUED
    invoice.issued_at = timezone.now()
    # a credit note is never owed; a backdated invoice may be overdue already, a zero one paid
    invoice.payment_status = invoice_status(invoice)
    Invoice.objects.filter(pk=invoice.pk).update(  # the one write that turns a draft into an issued invoice
        number=invoice.number, state=invoice.state, issued_at=invoice.issued_at,
        payment_status=invoice.payment_status,
    )
    audit_record(actor=actor, action="invoice.issue", obj=invoice, partner=invoice.partner,
                 after={"number": invoice.number, "total": str(invoice.total), "due_date": str(invoice.due_date)})
    transaction.on_commit(lambda pk=invoice.pk: _enqueue_invoice_email(pk))


def _enqueue_invoice_email(invoice_id: int) -> None:
    from invoicing.tasks import send_invoice_task

    try:
        send_invoice_task.delay(invoice_id)
    except Exception:  # issued and committed: a queue outage must not undo billing
        logger.exception("could not queue the email of invoice %s; the daily job sends it", invoice_id)


@transaction.atomic
def invoice_issue_draft(*, invoice: Invoice, actor: Actor) -> Invoice:
    """Issue a draft as it stands (the admin's "issue drafts"): numbered now, never changed after."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
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


# --- payments, credits and the payment status ---------------------------------------------------
def status_from(*, kind: str, total: Decimal, due_date: date, paid: Decimal, credited: Decimal,
                today: date) -> str:
    """Payment status from what was paid and credited (RULES 4): void once credited in full."""
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
    credited = -money_total(Invoice.objects.filter(credits=invoice, state=InvoiceState.ISSUED), "total",
                            invoice.currency)
    paid = money_total(invoice.payments.all(), "amount", invoice.currency) if invoice.pk else ZERO
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


@transaction.atomic
def payment_record(*, invoice: Invoice, amount: Decimal, paid_on: date, reference: str = "", actor: Actor,
                   source: str = "admin") -> Payment:
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)  # one payment at a time per invoice
    if not invoice.is_issued:
        raise BillingError("payments are recorded against issued invoices")
    if invoice.kind == InvoiceKind.CN:
        raise BillingError("a credit note is not paid")
    if amount <= 0:
        raise BillingError("a payment is a positive amount")
    if amount != quantize_money(amount, invoice.currency):
        raise BillingError(f"at most {currency_places(invoice.currency)} decimal places ({invoice.currency})")
    if paid_on > utc_date(timezone.now()):
        raise BillingError("a payment cannot be dated in the future")
    if paid_on < invoice.issue_date:
        raise BillingError(f"{invoice.number} was issued on {invoice.issue_date}: a payment cannot be dated before")
    payment = Payment.objects.create(partner=invoice.partner, invoice=invoice, amount=amount, paid_on=paid_on,
                                     reference=reference, recorded_by=actor.user, source=source)
    audit_record(actor=actor, action="payment.record", obj=payment, partner=invoice.partner,
                 after={"invoice": invoice.number, "amount": str(amount), "paid_on": str(paid_on),
                        "reference": reference})
    invoice_status_refresh(invoice)
    return payment


@transaction.atomic
def credit_note_issue(*, invoice: Invoice, lines=None, actor: Actor, reason: str = "") -> Invoice:
    """A credit note for a whole issued invoice, or for chosen lines of it (RULES 4: corrections are
    new documents). A whole-invoice credit negates every line and the tax exactly, so the balance
    comes back to what it was; chosen lines carry their own tax, rounded once."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if not invoice.is_issued or invoice.kind == InvoiceKind.CN:
        raise BillingError("credit notes correct issued invoices")
    charge_lines = list(invoice.lines.exclude(line_type=LineType.TAX))
    already = set(InvoiceLine.objects.filter(invoice__credits=invoice, invoice__state=InvoiceState.ISSUED,
                                             line_type=LineType.CREDIT).values_list("key", flat=True))
    if lines is None:  # the whole invoice: every line not credited yet
        chosen = [line for line in charge_lines if f"credit:{line.pk}" not in already]
        if not chosen:
            raise BillingError(f"{invoice.number} is already credited in full")
    else:
        if any(line.invoice_id != invoice.pk for line in lines):
            raise BillingError(f"a chosen line is not a line of {invoice.number}")
        chosen = [line for line in charge_lines if line in set(lines)]
        if any(f"credit:{line.pk}" in already for line in chosen):
            raise BillingError("a chosen line is already credited")
    if not chosen:
        raise BillingError("choose at least one line to credit")
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
    if len(already & {f"credit:{line.pk}" for line in charge_lines}) + len(chosen) == len(charge_lines):
        # the last lines credited: the tax still uncredited, so the credits add up to the invoice's tax
        tax = -invoice.tax_amount - money_total(earlier, "tax_amount", invoice.currency)
    else:
        tax = quantize_money(money_sum(line.amount for line in credit_lines if line.taxable) * invoice.tax_rate
                             / HUNDRED, invoice.currency)
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
    audit_record(actor=actor, action="invoice.credit", obj=note, partner=invoice.partner,
                 after={"credits": invoice.number, "total": str(note.total), "reason": reason,
                        "lines": [line.pk for line in chosen]})
    invoice_status_refresh(invoice)
    return note


def partner_balance(partner: Partner) -> Decimal:
    """What the partner owes now: every issued document's total less every payment (the ledger's
    balance at any date is `invoicing.selectors.balance_at`)."""
    return balance_at(partner)


def unsent_invoices():
    """Issued documents whose email never left (credit notes too): the daily job sends them."""
    return Invoice.objects.issued().filter(emailed_at__isnull=True)



@transaction.atomic
def invoice_email_send(*, invoice: Invoice) -> Invoice:
    """Email an issued invoice's PDF to the partner's billing contacts, once."""
    from django.conf import settings
    from django.core.mail import EmailMessage

    from invoicing.templatetags.invoice_format import format_money

    invoice = Invoice.objects.select_for_update().select_related("partner").get(pk=invoice.pk)
    if invoice.emailed_at is not None or not invoice.is_issued:
        return invoice
    recipients = invoice.partner.billing_contacts
    if recipients:
        message = EmailMessage(
            subject=f"{invoice.partner.name}: invoice {invoice.number}, due {invoice.due_date}",
            body=(f"Please find attached invoice {invoice.number} dated {invoice.issue_date:%d %B %Y}.\n"
                  f"Amount due: {format_money(invoice.amount_due, invoice.currency)}, "
                  f"by {invoice.due_date:%d %B %Y}.\n"),
            from_email=settings.DEFAULT_FROM_EMAIL, to=recipients,
        )
        invoice = invoice_pdf_store(invoice=invoice)  # the file kept is the one sent
        try:
            with invoice.pdf.open("rb") as stored:
                message.attach(f"{invoice.number}.pdf", stored.read(), "application/pdf")
            if not invoice_pdf_detailed(invoice):  # the PDF shows subtotals: the lines come along
                from invoicing.reports import invoice_lines_xlsx

                message.attach(f"{invoice.number}-lines.xlsx", invoice_lines_xlsx(invoice),
                               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            message.send()
        except Exception:
            # the rollback forgets the file's name and version: remove the file too, or it is left orphaned
            # and the retry's copy gets another name beside it
            invoice.pdf.storage.delete(invoice.pdf.name)
            raise
    invoice.emailed_at = timezone.now()
    invoice.save(update_fields=["emailed_at"])
    return invoice


def invoice_pdf_store(*, invoice: Invoice) -> Invoice:
    """Render the PDF and keep it with the invoice (pdf_version counts renderings); issued invoices
    allow this one change."""
    from django.core.files.base import ContentFile

    from invoicing.pdf import render_invoice_pdf

    content = render_invoice_pdf(invoice)
    invoice.pdf_version += 1
    invoice.pdf.save(f"{invoice.number or f'draft-{invoice.pk}'}-v{invoice.pdf_version}.pdf", ContentFile(content),
                     save=False)
    invoice.save(update_fields=["pdf", "pdf_version"])
    return invoice

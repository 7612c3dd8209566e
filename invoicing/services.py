"""Writes of invoicing: the billing run, numbering, the ledger, payments, credit notes (billing-rules 4, 6, 8.2)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import DecimalField, Min, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.aside import aside_possible
from billing.core.bulk import insert_objects, insert_rows, update_rows
from billing.core.money import ZERO, currency_places, currency_quantum, money_sum, quantize_money, tax_on
from billing.core.periods import Period, periods_between, utc_date
from invoicing.models import (
    ChildInvoice,
    FactChange,
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
from invoicing.rating import ADVANCE, CI, INV, BilledUnits, RatedLine, rate_partners_month
from invoicing.selectors import balance_at, invoice_pdf_detailed, statement_figures
from invoicing.trueups import TRUE_UP_TYPES, measured_issued, measured_now, true_up_lines
from partners.audit import audit_entry, audit_record
from partners.models import AuditLog, Customer, Method, Partner, Service, payment_due_date
from partners.terms import TermsBook

logger = logging.getLogger(__name__)


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
    rolled-back transaction gives its number back."""
    return numbers_take([kind])[0]


def numbers_take(kinds: list[str]) -> list[str]:
    """The next numbers of the prefixes given, one for each in order, taken as one block per prefix
    under the sequence rows' locks.

    Every taker first locks one and the same row (the first prefix's, which sorts first), then its own:
    numbering is serialised, so a partner's run issuing a CI then an INV and another's issuing an INV
    then a CI never wait on each other in a cycle (parallel billing of partners, as the daily task does).
    """
    prefixes = sorted({GATE, *kinds})
    if InvoiceSequence.objects.filter(prefix__in=prefixes).count() != len(prefixes):
        InvoiceSequence.objects.bulk_create([InvoiceSequence(prefix=p) for p in prefixes], ignore_conflicts=True)
    sequences = {s.prefix: s for s in InvoiceSequence.objects.select_for_update().filter(prefix__in=prefixes)
                 .order_by("prefix")}  # the gate (CI) sorts before CN and INV
    numbers = []
    for kind in kinds:
        sequences[kind].last += 1
        numbers.append(f"{kind}-{sequences[kind].last:04d}")
    for kind in set(kinds):
        InvoiceSequence.objects.filter(prefix=kind).update(last=sequences[kind].last)
    return numbers


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


def billing_run(*, through: date, partner_slug: str | None = None, partner_ids: list[int] | None = None,
                draft: bool = False, actor: Actor | None = None, batch_size: int | None = None) -> list[Invoice]:
    """Everything due up to `through` that is not done yet (billing-rules 4.9, 8.2): the one entry point of a
    billing run, for `run_billing`, the daily task and the admin. Every partner (by slug), or one by its slug,
    or the given ids in their order.

    Each partner's invoices are issued in date order: each month's CI (dated its 1st), then the month's INVs
    by date. A month whose CI is issued is not billed again; a charge already on an issued invoice is not
    charged again; drafts are thrown away and built anew. A batch of partners (`batch_size`, by default
    `BILLING_BATCH_PARTNERS`) is billed in one transaction under their locks: its meters are read with one
    query each and its documents written together, numbered partner after partner in the order given (the
    numbers of billing them one by one). If anything fails in a batch, the batch is rolled back and its
    partners are billed again one at a time, so that a fault stays with the partner it belongs to and the
    partners before it stand; the first partner that fails alone raises.
    """
    actor = actor or Actor(label="run_billing")
    if partner_ids is None:
        partners = Partner.objects.order_by("slug")
        if partner_slug:
            partners = partners.filter(slug=partner_slug)
            if not partners.exists():
                raise BillingError(f"unknown partner {partner_slug!r}")
        partner_ids = list(partners.values_list("pk", flat=True))
    size = max(1, batch_size or settings.BILLING_BATCH_PARTNERS)
    documents: list[Invoice] = []
    for start in range(0, len(partner_ids), size):
        batch = partner_ids[start:start + size]
        try:
            documents += _bill_batch(partner_ids=batch, through=through, draft=draft, actor=actor)
        except Exception:
            if len(batch) == 1:
                raise
            logger.warning("billing a batch of %d partners failed; billing them one at a time", len(batch),
                           exc_info=True)
            for partner_id in batch:
                documents += _bill_batch(partner_ids=[partner_id], through=through, draft=draft, actor=actor)
    return documents


def _bill_batch(*, partner_ids: list[int], through: date, draft: bool, actor: Actor) -> list[Invoice]:
    """One batch of partners, in one transaction under their locks; months rated for all of them together."""
    aside = aside_possible()  # before the transaction: with none around it, the meters read committed data
    with transaction.atomic():
        return _partners_bill(partner_ids=partner_ids, through=through, draft=draft, actor=actor, aside=aside)


def _partners_bill(*, partner_ids: list[int], through: date, draft: bool, actor: Actor,
                   aside: bool) -> list[Invoice]:
    _tune_session()
    locked = {p.pk: p for p in Partner.objects.select_for_update().filter(pk__in=partner_ids).order_by("pk")}
    partners = [locked[pk] for pk in partner_ids if pk in locked]
    ids = [p.pk for p in partners]
    Invoice.objects.filter(partner_id__in=ids, state=InvoiceState.DRAFT).delete()
    firsts = _first_months(ids)
    billed_keys: dict[int, set[str]] = defaultdict(set)
    for partner_id, key in InvoiceLine.objects.filter(  # the keys a rerun checks: first months, one-time charges
        invoice__partner_id__in=ids, invoice__state=InvoiceState.ISSUED,
        line_type__in=[LineType.FIRST_MONTH, LineType.ONE_TIME],
    ).values_list("invoice__partner_id", "key"):
        billed_keys[partner_id].add(key)
    issued_months: dict[int, set[str]] = defaultdict(set)
    for partner_id, month in Invoice.objects.filter(partner_id__in=ids, kind=InvoiceKind.CI,
                                                    state=InvoiceState.ISSUED).values_list("partner_id", "month"):
        issued_months[partner_id].add(month)
    unbilled_starts = _unbilled_first_months(ids, billed_keys)
    charges: dict[int, list[OneTimeCharge]] = defaultdict(list)
    for charge in OneTimeCharge.objects.filter(partner_id__in=ids, date__lte=through).select_related(
            "customer").order_by("date", "pk"):
        charges[charge.partner_id].append(charge)
    created: dict[int, list[Invoice]] = defaultdict(list)
    months = sorted({m for first in firsts.values() for m in periods_between(first, Period.of(through))})
    billing_to = Period.of(through)
    # partners whose CI of the month billed through is not issued yet (the run on a 1st, or a catch-up): their
    # months already invoiced are measured again for the true-ups that CI carries (billing-rules 4.11). The
    # daily runs of the rest of the month measure nothing again; a late CI for an older month carries none
    # then (they wait for the next month's CI).
    gets_ci = {p.pk for p in partners if p.pk in firsts and str(billing_to) not in issued_months[p.pk]}
    window_start = billing_to.shift(-settings.BILLING_TRUE_UP_MONTHS)  # the oldest month measured again
    # from which month each of them is measured again: where a fact changed since the last run that did (read
    # before any meter, so that a fact it sees is measured), or, without the log, the whole window
    changed = fact_changes(sorted(gets_ci))
    since = {pk: window_start if changed is None else (max(window_start, Period.of(changed[pk][0]))
                                                        if pk in changed else None) for pk in gets_ci}
    measured: dict[int, dict] = defaultdict(dict)  # partner id: {group: (measure, line)} of the closed months rated
    for month in months:
        due = [p for p in partners if p.pk in firsts and firsts[p.pk] <= month]
        fresh = {p.pk for p in due if str(month) not in issued_months[p.pk]}
        to_rate = [p for p in due if p.pk in fresh or month in unbilled_starts[p.pk]]
        # months already invoiced, measured again for the true-ups of the next CI this run issues
        again = [p for p in due if p.pk not in fresh and since.get(p.pk) is not None and month >= since[p.pk]
                 and p not in to_rate]
        billed = billed_units_by_partner(partner_ids=[p.pk for p in to_rate], through=month,
                                         extra=[i for p in to_rate for i in created[p.pk]])
        rated = rate_partners_month(partners=to_rate, month=month, billed=billed, aside=aside) if to_rate else {}
        if again:  # only the methods a true-up corrects: no per_asset inventory read for months invoiced
            rated.update(rate_partners_month(partners=again, month=month, billed={p.pk: None for p in again},
                                             aside=aside, methods=set(TRUE_UP_TYPES)))
        news = [p for p in due if p.pk in fresh]
        checked = [p for p in news if since.get(p.pk) is not None]
        issued_now = measured_issued(partner_ids=[p.pk for p in checked], since=min(since[p.pk] for p in checked),
                                     before=month, extra_ids=[i.pk for p in checked for i in created[p.pk]],
                                     ) if checked else {}
        pending: list[tuple[Partner, _Draft]] = []
        for partner in due:
            lines = rated.get(partner.pk, [])
            items: list[_Draft] = []
            if partner.pk in fresh:
                ups = true_up_lines(month=month, since=since[partner.pk], now=measured[partner.pk],
                                    issued=issued_now[partner.pk]) if partner.pk in issued_now else []
                ci_lines = [line for line in lines if line.document == CI and line.amount != ZERO] + ups
                if ci_lines:
                    items.append(_Draft(CI, month.first, ci_lines, month=month))
            if since.get(partner.pk) is not None and month >= since[partner.pk]:
                measured_now(lines, measured[partner.pk])
            for line in lines if partner in to_rate else ():
                if line.document == INV and line.issue_date <= through and line.key not in billed_keys[partner.pk]:
                    items.append(_Draft(INV, line.issue_date, [line], customer=line.customer))
            for charge in charges[partner.pk]:
                if month.contains(charge.date) and f"one_time:{charge.pk}" not in billed_keys[partner.pk]:
                    items.append(_Draft(INV, charge.date, [], customer=charge.customer, one_time=charge))
            pending += [(partner, item) for item in sorted(items, key=_issue_order)]
        for invoice in _write(pending, draft=draft, created=created):
            created[invoice.partner_id].append(invoice)
    documents = [invoice for partner in partners for invoice in created[partner.pk]]
    if not draft:
        _issue_all(documents, actor=actor)
        if changed:  # what this run measured again needs no measuring again until another fact changes
            FactChange.objects.filter(pk__in=[pk for _, ids in changed.values() for pk in ids]).delete()
    return documents


def fact_changes(partner_ids: list[int]) -> dict[int, tuple[date, list[int]]] | None:
    """{partner id: (the earliest day a logged write covers, the log rows)} of FactChange (written by PostgreSQL
    triggers); None where there is no such log (SQLite): every month of the window is measured again."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    earliest: dict[int, date] = {}
    ids: dict[int, list[int]] = defaultdict(list)
    for pk, partner_id, day in FactChange.objects.filter(partner_id__in=partner_ids).values_list(
            "pk", "partner_id", "day"):
        earliest[partner_id] = min(earliest.get(partner_id, day), day)
        ids[partner_id].append(pk)
    return {partner_id: (day, ids[partner_id]) for partner_id, day in earliest.items()}


def _tune_session() -> None:
    """PostgreSQL: more sort memory for this transaction (`BILLING_WORK_MEM`): the seat-days of a batch
    sort every seat of its members, which spills to disk under the server's default of 4 MB."""

    from django.db import connection

    if connection.vendor == "postgresql" and settings.BILLING_WORK_MEM:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.BILLING_WORK_MEM])


def _unbilled_first_months(partner_ids: list[int], billed_keys: dict[int, set[str]]) -> dict[int, set[Period]]:
    """The months in which a service billed in advance starts after the 1st and its first-month INV
    is not issued yet: the only lines that rating a month whose CI is issued can still add."""
    months: dict[int, set[Period]] = defaultdict(set)
    billed = {key.split(":")[1] for keys in billed_keys.values() for key in keys if key.startswith("first_month:")}
    starts = Service.objects.filter(partner_id__in=partner_ids, method__in=ADVANCE).exclude(start_date__day=1)
    for partner_id, pk, start in starts.values_list("partner_id", "pk", "start_date"):
        if str(pk) not in billed:
            months[partner_id].add(Period.of(start))
    return months


def _issue_order(item: _Draft) -> tuple:
    """Date order (billing-rules 6.6): the month's CI first on its 1st, then INVs by date, first months before
    one-time charges, each in the order they were recorded."""
    if item.kind == CI:
        return (item.issue_date, 0, 0)
    if item.one_time is not None:
        return (item.issue_date, 2, item.one_time.pk)
    return (item.issue_date, 1, item.lines[0].service.pk)


def _first_months(partner_ids: list[int]) -> dict[int, Period]:
    """{partner id: the month of its first service or one-time charge} (partners with neither are absent)."""
    firsts: dict[int, date] = {}
    for model, field in ((Service, "start_date"), (OneTimeCharge, "date")):
        rows = model.objects.filter(partner_id__in=partner_ids).values("partner_id").annotate(first=Min(field))
        for row in rows.values_list("partner_id", "first"):
            firsts[row[0]] = min(firsts.get(row[0], row[1]), row[1])
    return {partner_id: Period.of(first) for partner_id, first in firsts.items()}


def billed_units(*, partner: Partner, extra=()) -> dict[tuple[int, Period], BilledUnits]:
    """What was billed of each per_asset service per month: the units of the month's normal line
    (0 when the issued CI had none) or first-month line, and the changes posted since (billing-rules 6.6)."""
    return billed_units_by_partner(partner_ids=[partner.pk], extra=extra)[partner.pk]


def billed_units_by_partner(*, partner_ids: list[int], extra=(), through: Period | None = None,
                            ) -> dict[int, dict[tuple[int, Period], BilledUnits]]:
    """`billed_units` of many partners in a fixed number of queries; `extra`: drafts of this run. With `through`
    (the month being billed), every month of a service's life before it that no line billed counts as billed
    at 0 units from its 1st (or the start date), so that its units are prorated on the next CI: no month is
    left unbilled (billing-rules 4.12)."""
    billed: dict[int, dict[tuple[int, Period], BilledUnits]] = {pk: {} for pk in partner_ids}
    services: dict[int, list[tuple]] = defaultdict(list)  # partner id: [(service id, start, end)]
    per_asset = Service.objects.filter(partner_id__in=partner_ids, method=Method.PER_ASSET)
    for pk, partner_id, start, end in per_asset.values_list("pk", "partner_id", "start_date", "end_date"):
        services[partner_id].append((pk, start, end))
    if not services:
        return billed
    drafts = [i.pk for i in extra if i.state == InvoiceState.DRAFT and i.partner_id in services]

    def billed_documents(prefix: str = "") -> Q:  # issued, or drafts of this run
        issued = Q(**{f"{prefix}state": InvoiceState.ISSUED})
        return issued | Q(**{f"{prefix}pk__in": drafts}) if drafts else issued

    months = Invoice.objects.filter(billed_documents(), partner_id__in=list(services), kind=CI)
    for partner_id, month in months.values_list("partner_id", "month"):
        month = Period.parse(month)
        for pk, start, end in services[partner_id]:
            if start <= month.first and (end is None or end >= month.first):
                billed[partner_id][(pk, month)] = BilledUnits(month.first, 0)
    partner_of = {pk: partner_id for partner_id, group in services.items() for pk, _, _ in group}
    lines = InvoiceLine.objects.filter(
        billed_documents("invoice__"),
        invoice__partner_id__in=list(services), invoice__kind__in=[CI, INV], service__method=Method.PER_ASSET,
        line_type__in=[LineType.RECURRING, LineType.FIRST_MONTH, LineType.PRORATION],
    ).order_by("invoice_id", "position", "id")
    changes = []
    for sid, line_type, period, quantity, effective, amount in lines.values_list(
            "service_id", "line_type", "period", "quantity", "effective_date", "amount"):
        key = (sid, Period.parse(period))
        units = billed[partner_of[sid]]
        if line_type == LineType.RECURRING:
            units[key] = BilledUnits(key[1].first, int(quantity))
        elif line_type == LineType.FIRST_MONTH:
            units[key] = BilledUnits(effective, int(quantity))
        else:
            changes.append((units, key, effective, int(quantity), amount))
    if through is not None:
        for partner_id, group in services.items():
            for pk, start, end in group:
                last = min(through.previous(), Period.of(end)) if end else through.previous()
                for month in periods_between(Period.of(start), last) if Period.of(start) <= last else ():
                    billed[partner_id].setdefault((pk, month), BilledUnits(max(start, month.first), 0))
    for units, key, effective, delta, amount in changes:
        if key in units:
            units[key].changes[effective] = units[key].changes.get(effective, 0) + delta
            units[key].postings[effective] = units[key].postings.get(effective, 0) + 1
            units[key].amounts[effective] = units[key].amounts.get(effective, ZERO) + amount
    return billed


# the columns a run writes of each line, in the order of `_line` (plain rows: a model instance per line
# was most of writing a large CI's lines)
LINE_COLUMNS = ["invoice_id", "child_id", "service_id", "customer_id", "line_type", "period", "quantity",
                "unit_price", "amount", "description", "taxable", "effective_date", "key", "details", "position",
                "posting"]


def _line(invoice: Invoice, rated: RatedLine, position: int, child: ChildInvoice | None = None) -> list:
    """A line's row (LINE_COLUMNS); its invoice and child become ids once they are written."""
    return [invoice, child, rated.service.pk, rated.customer.pk if rated.customer is not None else None,
            rated.line_type, str(rated.period), rated.quantity, rated.unit_price, rated.amount,
            rated.description[:300], rated.taxable, rated.effective_date, rated.key, rated.details, position,
            rated.posting]


AMOUNT, TAXABLE = LINE_COLUMNS.index("amount"), LINE_COLUMNS.index("taxable")


def _write(pending: list[tuple[Partner, _Draft]], *, draft: bool, created: dict[int, list[Invoice]]) -> list[Invoice]:
    """Write documents (of one month, for any number of partners) with their children, lines, totals
    and, on a CI, the statement: a few inserts for all of them. Documents of a run that issues are
    stamped `issued_at` now; they are numbered and issued together at the end (`_issue_all`)."""
    invoices, children, lines = [], [], []
    book = TermsBook({partner.pk: partner for partner, _ in pending}.values())
    for account, item in pending:
        currency = account.currency
        partner = book.on(account, item.issue_date)  # tax and payment terms in force on the issue date (3.11)
        invoice = Invoice(partner=account, kind=item.kind, issue_date=item.issue_date, due_date=item.issue_date,
                          currency=currency, month=str(item.month) if item.month else "", customer=item.customer,
                          tax_rate=partner.tax_rate)
        mine: list[list] = []
        period = str(item.month or Period.of(item.issue_date))
        if item.kind == CI:
            owners: dict[int | None, ChildInvoice] = {}
            for rated in item.lines:
                owner = rated.service.customer if rated.service.customer_id else None
                key = owner.pk if owner else None
                if key not in owners:
                    owners[key] = ChildInvoice(customer_id=key, subtotal=ZERO,
                                               due_date=payment_due_date(item.issue_date, partner, owner))
                    children.append((owners[key], invoice))
                owners[key].subtotal += rated.amount
            for position, rated in enumerate(item.lines):
                owner_key = rated.service.customer_id if rated.service.customer_id else None
                mine.append(_line(invoice, rated, position, owners[owner_key]))
            invoice.due_date = min(child.due_date for child in owners.values())
        elif item.one_time is not None:
            charge = item.one_time
            amount = quantize_money(charge.quantity * charge.unit_price, currency)
            mine.append([invoice, None, None, charge.customer_id, LineType.ONE_TIME.value, period, charge.quantity,
                         charge.unit_price, amount, charge.description, charge.taxable, None,
                         f"one_time:{charge.pk}", {}, 0, None])
            invoice.due_date = payment_due_date(item.issue_date, partner, charge.customer)
        else:
            mine += [_line(invoice, rated, n) for n, rated in enumerate(item.lines)]
            invoice.due_date = payment_due_date(item.issue_date, partner, item.customer)
        tax = _totals(invoice, [(line[AMOUNT], line[TAXABLE]) for line in mine])
        if invoice.tax_rate > 0:  # billing-rules 4.3: tax once per invoice, present whenever the rate is above 0
            mine.append([invoice, None, None, None, LineType.TAX.value, period, None, invoice.tax_rate, tax,
                         f"Tax {invoice.tax_rate.normalize():f}%", False, None, "", {}, len(mine), None])
        if not draft:
            invoice.issued_at = timezone.now()  # its place in the account (statements); numbered at the end
        if invoice.kind != InvoiceKind.CI:
            invoice.amount_due = invoice.total
        invoices.append(invoice)
        lines += mine
    cis = [invoice for invoice in invoices if invoice.kind == InvoiceKind.CI]
    if cis:  # the documents of this run before them count as issued: they are, once the run commits
        pending = [] if draft else [i.pk for documents in created.values() for i in documents]
        figures = statement_figures(cis, pending=pending)
        for invoice in cis:
            _statement_set(invoice, *figures[invoice.partner_id])
    Invoice.objects.bulk_create(invoices)
    for child, invoice in children:
        child.invoice_id = invoice.pk
    insert_objects(ChildInvoice, [child for child, _ in children])  # the children and lines: one COPY each
    for line in lines:
        line[0], line[1] = line[0].pk, line[1].pk if line[1] is not None else None
    insert_rows(InvoiceLine, LINE_COLUMNS, lines)
    return invoices


def _totals(invoice: Invoice, amounts: list[tuple[Decimal, bool]]) -> Decimal:
    """Set the invoice's subtotal, tax and total from its lines' (amount, taxable); returns the tax."""
    subtotal = money_sum(amount for amount, _ in amounts)
    taxable = money_sum(amount for amount, taxable in amounts if taxable)
    tax = tax_on(taxable, invoice.tax_rate, invoice.currency)
    invoice.subtotal, invoice.tax_amount, invoice.total = subtotal, tax, subtotal + tax
    return tax


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


def _issue(invoice: Invoice, *, actor: Actor) -> None:
    invoice.issued_at = timezone.now()
    _issue_all([invoice], actor=actor)


def _issue_all(invoices: list[Invoice], *, actor: Actor) -> None:
    """Number and issue documents in their order, in a fixed number of queries (`numbers_take`): the one
    write that turns drafts into issued invoices, with their audit rows and, after commit, their emails."""
    if not invoices:
        return
    today = utc_date(timezone.now())
    for invoice, number in zip(invoices, numbers_take([i.kind for i in invoices]), strict=True):
        invoice.number = number
        invoice.state = InvoiceState.ISSUED
        # nothing is paid or credited on a draft: a credit note is never owed; a backdated invoice may be
        # overdue already, a zero one paid
        invoice.payment_status = status_from(kind=invoice.kind, total=invoice.total, due_date=invoice.due_date,
                                             paid=ZERO, credited=ZERO, today=today)
    update_rows(Invoice, ["number", "state", "issued_at", "payment_status"],
                [(i.pk, i.number, i.state, i.issued_at, i.payment_status) for i in invoices])
    AuditLog.objects.bulk_create(
        audit_entry(actor=actor, action="invoice.issue", obj=invoice, partner=invoice.partner,
                    after={"number": invoice.number, "total": str(invoice.total), "due_date": str(invoice.due_date)})
        for invoice in invoices
    )
    ids = [invoice.pk for invoice in invoices]
    transaction.on_commit(lambda: invoice_emails_enqueue(ids))


def invoice_emails_enqueue(invoice_ids: list[int]) -> None:
    """Queue the emails of issued (committed) invoices, all on one producer: one broker connection.

    Issued and committed, they must stay so whatever the queue does: an error queuing one invoice's
    email is logged and the next is tried; a broker that cannot be reached stops the rest at once
    (logged once, not retried invoice by invoice). The daily job sends every email that never left."""
    from kombu.exceptions import OperationalError as BrokerUnreachable

    from invoicing.tasks import send_invoice_task

    done = 0
    try:
        with send_invoice_task.app.producer_or_acquire() as producer:
            for invoice_id in invoice_ids:
                try:
                    send_invoice_task.apply_async((invoice_id,), producer=producer)
                except BrokerUnreachable:
                    raise
                except Exception:
                    logger.exception("could not queue the email of invoice %s; the daily job sends it", invoice_id)
                done += 1
    except Exception:
        left = invoice_ids[done:]
        if not left:  # every email was handed over; only giving the producer back failed
            logger.warning("the queue's producer could not be released after queuing %d invoice emails", done,
                           exc_info=True)
            return
        logger.exception("could not reach the queue for the emails of %d invoices (ids %s); the daily job sends "
                         "them", len(left), ", ".join(map(str, left[:20])) + (", ..." if len(left) > 20 else ""))


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
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)  # one payment at a time per invoice
    refusals = payment_refusals(invoice=invoice, amount=amount, paid_on=paid_on, today=utc_date(timezone.now()))
    if refusals:
        raise BillingError(refusals[0][1])
    payment = Payment.objects.create(partner=invoice.partner, invoice=invoice, amount=amount, paid_on=paid_on,
                                     reference=reference, recorded_by=actor.user, source=source)
    audit_record(actor=actor, action="payment.record", obj=payment, partner=invoice.partner,
                 after={"invoice": invoice.number, "amount": str(amount), "paid_on": str(paid_on),
                        "reference": reference})
    invoice_status_refresh(invoice)
    return payment


@transaction.atomic
def credit_note_issue(*, invoice: Invoice, lines=None, actor: Actor, reason: str = "") -> Invoice:
    """A credit note for a whole issued invoice, or for chosen lines of it (billing-rules 4.4, 4.5: corrections are
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
        tax = tax_on(money_sum(line.amount for line in credit_lines if line.taxable), invoice.tax_rate,
                     invoice.currency)
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

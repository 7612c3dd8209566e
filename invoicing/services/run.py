"""The billing run (billing-rules 4, 8.2): `billing_run`, its batches of partners, the documents it drafts and
writes, and the true-ups wired in. The documents are issued through the ledger (`ledger._issue_all`)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.aside import aside_possible
from billing.core.bulk import insert_objects, insert_rows
from billing.core.hooks import after_partner_billed
from billing.core.money import ZERO, money_sum, quantize_money, tax_on
from billing.core.periods import Period, periods_between
from invoicing.models import (
    MAX_TOTAL,
    ChildInvoice,
    FactChange,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceState,
    LineType,
    OneTimeCharge,
)
from invoicing.rating import CI, INV, RatedLine, rate_partners_month
from invoicing.selectors import billed_units_by_partner, first_months, statement_figures, unbilled_first_months
from invoicing.services.errors import BillingError
from invoicing.services.ledger import (
    _issue_all,
    _statement_set,
    company_details_missing,
    partner_details_missing,
    partners_lock,
)
from invoicing.trueups import MEASURED_METHODS, measured_issued, measured_now, true_up_lines
from partners.models import Customer, Partner, payment_due_date
from partners.terms import TermsBook

logger = logging.getLogger("invoicing.services")  # the services' one logger, by the name it has always had


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
                draft: bool = False, actor: Actor | None = None, batch_size: int | None = None,
                failed: list[tuple[int, Exception]] | None = None,
                on_progress: Callable[[int, int], None] | None = None) -> list[Invoice]:
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
    partners before it stand; the first partner that fails alone raises. Given a list `failed`, a partner that
    fails alone is put there instead, (its id, the error), and the partners after it are billed (the admin's
    billing page and the recorded runs of `invoicing.services.runs`).

    `on_progress(done, total)`, if given, is called before the first batch and after each one with the
    partners billed (or failed) so far of the partners to bill: `run_billing`'s progress bar.
    """
    actor = actor or Actor(label="run_billing")
    if partner_ids is None:
        partners = Partner.objects.order_by("slug")
        if partner_slug:
            partners = partners.filter(slug=partner_slug)
            if not partners.exists():
                raise BillingError(f"unknown partner {partner_slug!r}")
        partner_ids = list(partners.values_list("pk", flat=True))
    held: list[str] = []
    if not draft and settings.INVOICE_LEGAL_DETAILS_REQUIRED:
        # no invoice without the legal details (billing-rules 4.13): without the company's, nothing is billed;
        # a partner without its billing address is left out, and named once the others are billed
        refused = company_details_missing()
        if refused:
            raise BillingError(f"invoices cannot be issued: {'; '.join(refused)}")
        partners = Partner.objects.filter(pk__in=partner_ids).order_by("slug")
        lacking = {p.pk: partner_details_missing(p) for p in partners}
        held = [reason for reasons in lacking.values() for reason in reasons]
        partner_ids = [pk for pk in partner_ids if not lacking.get(pk)]
    size = max(1, batch_size or settings.BILLING_BATCH_PARTNERS)
    documents: list[Invoice] = []
    if on_progress is not None:
        on_progress(0, len(partner_ids))
    for start in range(0, len(partner_ids), size):
        batch = partner_ids[start:start + size]
        try:
            documents += _bill_batch(partner_ids=batch, through=through, draft=draft, actor=actor)
        except Exception as exc:
            if len(batch) == 1:
                if failed is None:
                    raise
                failed.append((batch[0], exc))
                if on_progress is not None:
                    on_progress(start + 1, len(partner_ids))
                continue
            logger.warning("billing a batch of %d partners failed; billing them one at a time", len(batch),
                           exc_info=True)
            for partner_id in batch:
                try:
                    documents += _bill_batch(partner_ids=[partner_id], through=through, draft=draft, actor=actor)
                except Exception as alone:
                    if failed is None:
                        raise
                    failed.append((partner_id, alone))
        if on_progress is not None:
            on_progress(start + len(batch), len(partner_ids))
    if held:
        raise BillingError(f"{len(documents)} document(s) issued for the others; not billed: {'; '.join(held)}")
    return documents


def _bill_batch(*, partner_ids: list[int], through: date, draft: bool, actor: Actor) -> list[Invoice]:
    """One batch of partners, in one transaction under their locks; months rated for all of them together."""
    aside = aside_possible()  # before the transaction: with none around it, the meters read committed data
    with transaction.atomic():
        return _partners_bill(partner_ids=partner_ids, through=through, draft=draft, actor=actor, aside=aside)


def _partners_bill(*, partner_ids: list[int], through: date, draft: bool, actor: Actor,
                   aside: bool) -> list[Invoice]:
    _tune_session()
    locked = partners_lock(partner_ids)
    partners = [locked[pk] for pk in partner_ids if pk in locked]
    ids = [p.pk for p in partners]
    Invoice.objects.filter(partner_id__in=ids, state=InvoiceState.DRAFT).delete()
    firsts = first_months(ids)
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
    unbilled_starts = unbilled_first_months(ids, billed_keys)
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
        # a month with no CI before a month whose CI is issued is closed: it counts as billed as it was (at 0
        # where it had no line, billing-rules 4.12), and what it lacks goes on the next CI, never on one dated back
        fresh = {p.pk for p in due if str(month) not in issued_months[p.pk]
                 and str(month) > max(issued_months[p.pk], default="")}
        to_rate = [p for p in due if p.pk in fresh or month in unbilled_starts[p.pk]]
        # months already invoiced, measured again for the true-ups of the next CI this run issues
        again = [p for p in due if p.pk not in fresh and since.get(p.pk) is not None and month >= since[p.pk]
                 and p not in to_rate]
        billed = billed_units_by_partner(partner_ids=[p.pk for p in to_rate], through=month,
                                         extra=[i for p in to_rate for i in created[p.pk]])
        rated = rate_partners_month(partners=to_rate, month=month, billed=billed, aside=aside) if to_rate else {}
        if again:  # only the methods a true-up corrects: no per_asset inventory read for months invoiced
            rated.update(rate_partners_month(partners=again, month=month, billed={p.pk: None for p in again},
                                             aside=aside, methods=set(MEASURED_METHODS)))
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
                ci_lines = [line for line in lines if line.document == CI and line.amount != ZERO]
                # a month of no lines of its own issues no CI (billing-rules 4.9), not even one of true-ups alone
                # dated months back: they wait for the next CI with lines, or the CI of the month billed through
                if ci_lines or month == billing_to:
                    ci_lines += ups
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
        for partner in partners:  # what later layers issue after a partner's documents (rebilling's, 12.5)
            if created[partner.pk]:
                after_partner_billed(partner=partner, documents=created[partner.pk], through=through, actor=actor)
        if changed:  # what this run measured again needs no measuring again until another fact changes
            FactChange.objects.filter(pk__in=[pk for _, ids in changed.values() for pk in ids]).delete()
    return documents


def fact_changes(partner_ids: list[int]) -> dict[int, tuple[date, list[int]]] | None:
    """{partner id: (the earliest day a logged write covers, the log rows)} of FactChange (written by PostgreSQL
    triggers); None where there is no such log (SQLite): every month of the window is measured again."""

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

    if connection.vendor == "postgresql" and settings.BILLING_WORK_MEM:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.BILLING_WORK_MEM])


def _issue_order(item: _Draft) -> tuple:
    """Date order (billing-rules 6.6): the month's CI first on its 1st, then INVs by date, first months before
    one-time charges, each in the order they were recorded."""
    if item.kind == CI:
        return (item.issue_date, 0, 0)
    if item.one_time is not None:
        return (item.issue_date, 2, item.one_time.pk)
    return (item.issue_date, 1, item.lines[0].service.pk)


# --- writing the documents -------------------------------------------------------------------------
class LineRow(NamedTuple):
    """A line a run writes, one field per column of InvoiceLine it fills: plain rows, since a model instance
    per line was most of writing a large CI's lines. `invoice` and `child` are the documents being written
    (written with them, so without ids yet); `cells` gives the row the bulk insert takes."""

    invoice: Invoice
    child: ChildInvoice | None
    service_id: int | None
    customer_id: int | None
    line_type: str
    period: str
    quantity: Decimal | None
    unit_price: Decimal | None
    amount: Decimal
    description: str
    taxable: bool
    effective_date: date | None
    key: str
    details: dict
    position: int
    posting: int | None

    def cells(self) -> tuple:
        """The row in `LINE_COLUMNS`' order, the invoice and child by their ids (they are written by then)."""
        return tuple(self._replace(invoice=self.invoice.pk, child=self.child.pk if self.child is not None else None))


# the columns of a LineRow, as the bulk insert names them
LINE_COLUMNS = [f"{name}_id" if name in ("invoice", "child") else name for name in LineRow._fields]


def _line(invoice: Invoice, rated: RatedLine, position: int, child: ChildInvoice | None = None) -> LineRow:
    """A rated line's row; its invoice and child become ids once they are written."""
    return LineRow(invoice=invoice, child=child, service_id=rated.service.pk,
                   customer_id=rated.customer.pk if rated.customer is not None else None,
                   line_type=rated.line_type, period=str(rated.period), quantity=rated.quantity,
                   unit_price=rated.unit_price, amount=rated.amount, description=rated.description[:300],
                   taxable=rated.taxable, effective_date=rated.effective_date, key=rated.key, details=rated.details,
                   position=position, posting=rated.posting)


def _write(pending: list[tuple[Partner, _Draft]], *, draft: bool, created: dict[int, list[Invoice]]) -> list[Invoice]:
    """Write documents (of one month, for any number of partners) with their children, lines, totals
    and, on a CI, the statement: a few inserts for all of them. Documents of a run that issues are
    stamped `issued_at` now; they are numbered and issued together at the end (`_issue_all`)."""
    invoices, children, lines = [], [], []
    owners_of = {c.pk: c for _, item in pending for c in (
        item.customer, item.one_time.customer if item.one_time else None,
        *(rated.service.customer for rated in item.lines)) if c is not None}
    book = TermsBook([*{partner.pk: partner for partner, _ in pending}.values(), *owners_of.values()])
    for account, item in pending:
        currency = account.currency
        partner = book.on(account, item.issue_date)  # tax and payment terms in force on the issue date (3.11)

        def due(customer, _day=item.issue_date, _partner=partner):  # the customer's own terms then, too
            return payment_due_date(_day, _partner, book.on(customer, _day) if customer is not None else None)

        invoice = Invoice(partner=account, kind=item.kind, issue_date=item.issue_date, due_date=item.issue_date,
                          currency=currency, month=str(item.month) if item.month else "", customer=item.customer,
                          tax_rate=partner.tax_rate)
        mine: list[LineRow] = []
        period = str(item.month or Period.of(item.issue_date))
        if item.kind == CI:
            owners: dict[int | None, ChildInvoice] = {}
            for rated in item.lines:
                owner = rated.service.customer if rated.service.customer_id else None
                key = owner.pk if owner else None
                if key not in owners:
                    owners[key] = ChildInvoice(customer_id=key, subtotal=ZERO,
                                               due_date=due(owner))
                    children.append((owners[key], invoice))
                owners[key].subtotal += rated.amount
            for position, rated in enumerate(item.lines):
                owner_key = rated.service.customer_id if rated.service.customer_id else None
                mine.append(_line(invoice, rated, position, owners[owner_key]))
            invoice.due_date = min(child.due_date for child in owners.values())
        elif item.one_time is not None:
            charge = item.one_time
            amount = quantize_money(charge.quantity * charge.unit_price, currency)
            mine.append(LineRow(invoice=invoice, child=None, service_id=None, customer_id=charge.customer_id,
                                line_type=LineType.ONE_TIME.value, period=period, quantity=charge.quantity,
                                unit_price=charge.unit_price, amount=amount, description=charge.description,
                                taxable=charge.taxable, effective_date=None, key=f"one_time:{charge.pk}", details={},
                                position=0, posting=None))
            invoice.due_date = due(charge.customer)
        else:
            mine += [_line(invoice, rated, n) for n, rated in enumerate(item.lines)]
            invoice.due_date = due(item.customer)
        tax = _totals(invoice, [(line.amount, line.taxable) for line in mine])
        if invoice.tax_rate > 0:  # billing-rules 4.3: tax once per invoice, present whenever the rate is above 0
            mine.append(LineRow(invoice=invoice, child=None, service_id=None, customer_id=None,
                                line_type=LineType.TAX.value, period=period, quantity=None,
                                unit_price=invoice.tax_rate, amount=tax,
                                description=f"Tax {invoice.tax_rate.normalize():f}%", taxable=False,
                                effective_date=None, key="", details={}, position=len(mine), posting=None))
        if not draft:
            invoice.issued_at = timezone.now()  # its place in the account (statements); numbered at the end
        if invoice.kind != InvoiceKind.CI:
            invoice.amount_due = invoice.total
        invoices.append(invoice)
        lines += mine
    cis = [invoice for invoice in invoices if invoice.kind == InvoiceKind.CI]
    if cis:  # the documents of this run before them count as issued: they are, once the run commits
        # a draft run's too: its CIs carry the statements the real run would issue (billing-rules 4.4)
        pending = [i.pk for documents in created.values() for i in documents]
        figures = statement_figures(cis, pending=pending)
        for invoice in cis:
            _statement_set(invoice, *figures[invoice.partner_id])
    _fits(invoices, lines)
    Invoice.objects.bulk_create(invoices)
    for child, invoice in children:
        child.invoice_id = invoice.pk
    insert_objects(ChildInvoice, [child for child, _ in children])  # the children and lines: one COPY each
    insert_rows(InvoiceLine, LINE_COLUMNS, (line.cells() for line in lines))
    return invoices


def _fits(invoices: list[Invoice], lines: list[LineRow]) -> None:
    """Every amount of the documents within what an invoice holds (models.MAX_TOTAL), or a BillingError naming the
    partner, the document and the amount: one clear line, nothing written (billing-rules 8.2). A price the imports
    take times a quantity they take can exceed it (1000.00 x 2,147,483,647 users)."""
    def too_large(invoice: Invoice, what: str, amount: Decimal) -> BillingError:
        document = f"the {invoice.kind} of {invoice.month or invoice.issue_date}"
        return BillingError(f"partner {invoice.partner.slug!r}: {document}: {what} of {amount:,} "
                            f"{invoice.currency} is too large for one invoice (at most {MAX_TOTAL - 1:,} and cents)")

    for line in lines:
        if abs(line.amount) >= MAX_TOTAL:
            raise too_large(line.invoice, f"a {line.line_type} line", line.amount)
    for invoice in invoices:
        for what in ("subtotal", "tax_amount", "total", "previous_balance", "payments_and_credits", "other_invoices",
                     "amount_due"):
            if abs(getattr(invoice, what)) >= MAX_TOTAL:
                raise too_large(invoice, what.replace("_", " "), getattr(invoice, what))


def _totals(invoice: Invoice, amounts: list[tuple[Decimal, bool]]) -> Decimal:
    """Set the invoice's subtotal, tax and total from its lines' (amount, taxable); returns the tax."""
    subtotal = money_sum(amount for amount, _ in amounts)
    taxable = money_sum(amount for amount, taxable in amounts if taxable)
    tax = tax_on(taxable, invoice.tax_rate, invoice.currency)
    invoice.subtotal, invoice.tax_amount, invoice.total = subtotal, tax, subtotal + tax
    return tax

"""Reads for invoicing: seat_days periods priced from metering."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Min, OuterRef, Prefetch, Q, Subquery, Sum
from django.utils import timezone

from billing.core.money import ZERO, money_sum, quantize_money
from billing.core.periods import Period, periods_between
from invoicing.documents import issuer_snapshot, recipient_snapshot
from invoicing.models import (
    CompanyProfile,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceState,
    LineType,
    OneTimeCharge,
    Payment,
    PaymentStatus,
)
from invoicing.pricing import BilledUnits, SeatDaysPrice, price_seat_days
from metering.selectors import seat_days_by_service
from partners.choices import ADVANCE_METHODS
from partners.models import Method, Partner, SeatPurchase, Service
from partners.seating import committed_seats_on
from partners.terms import TermsBook


@dataclass(frozen=True)
class SeatPeriod:
    service: Service
    period: Period
    seat_days: int
    committed: int
    price: SeatDaysPrice


def last_complete_period(today: date | None = None) -> Period:
    today = today or timezone.now().date()
    return Period.of(today).previous()


def seat_periods(*, services, first: Period | None = None, last: Period | None = None) -> list[SeatPeriod]:
    """Each seat_days service priced for each of its months in first..last, with the terms in force on each
    month's 1st as billing prices it (billing-rules 3.11; three queries in all)."""
    services = [s for s in services if s.method == Method.SEAT_DAYS]
    purchases = defaultdict(list)
    for service_id, effective, seats in SeatPurchase.objects.filter(service__in=services).values_list(
        "service_id", "effective_date", "seats"
    ):
        purchases[service_id].append((effective, seats))
    last = last or last_complete_period()
    spans = {}
    for service in services:
        start = max(first or Period.of(service.start_date), Period.of(service.start_date))
        stop = min(last, Period.of(service.end_date)) if service.end_date else last
        if start <= stop:
            spans[service.pk] = (start, stop)
    if not spans:
        return []
    counted = seat_days_by_service(
        service_ids=list(spans), first=min(s for s, _ in spans.values()).first,
        last=max(e for _, e in spans.values()).last,
    )
    book = TermsBook([s for s in services if s.pk in spans])
    result = []
    for service in services:
        if service.pk not in spans:
            continue
        for period in periods_between(*spans[service.pk]):
            result.append(seat_period(book.on(service, period.first), period,
                                      seat_days=counted.get((service.pk, period.first), 0),
                                      purchases=purchases[service.pk]))
    return result


def seat_period(service: Service, period: Period, *, seat_days: int, purchases) -> SeatPeriod:
    """One seat_days service priced for one usage period (billing-rules 3.1, 6.1-6.2). `service` stands as on
    the period's 1st (its terms then); `purchases` are its (effective date, seats)."""
    committed = committed_seats_on(period.first, committed_quantity=service.committed_quantity, purchases=purchases)
    price = price_seat_days(
        seat_days=seat_days, days_in_month=period.days,
        service_days=period.days_within(service.start_date, service.end_date),
        committed=committed, unit_price=service.unit_price.amount,
        overage_price=service.overage_price.amount if service.overage_price is not None else None,
        currency=service.partner.currency,
    )
    return SeatPeriod(service, period, seat_days, committed, price)


def statement_sources(invoice, *, pending=()):
    """(previous CI, payments, issued documents) behind a CI's statement (billing-rules 4.6).

    A payment, credit note or INV shows on the first CI dated after it that was issued after it was
    recorded: dated before this CI, and not already on the previous one (CIs go forward in date and in
    issue time, so the previous CI's rule covers every earlier one). A payment recorded late is never
    lost. The one place this rule lives: the billing run and the invoice PDF both read it here.

    A CI can come late too: a month never invoiced is invoiced by the next run, whatever its date, so
    a CI dated before the previous one may have been issued after it. It is among the documents, like
    an INV recorded late; the previous CI itself is not (its total is in its amount due).

    `pending`: documents of the billing run being issued together with this CI, counted as issued. A draft
    CI's are the partner's drafts (its draft run's documents, issued in date order before it, billing-rules
    4.4): its statement is the one the real run would issue.
    """

    if not invoice.is_issued and not pending:
        pending = list(Invoice.objects.filter(partner_id=invoice.partner_id, state=InvoiceState.DRAFT)
                       .exclude(pk=invoice.pk).values_list("pk", flat=True))
    issued = _issued(pending)
    previous = _previous_cis([invoice], issued)[invoice.partner_id]
    paid, documents = _since_previous(invoice, previous)
    return previous, Payment.objects.filter(paid), Invoice.objects.filter(issued, documents)


def _issued(pending=()):
    return Q(state=InvoiceState.ISSUED) | Q(pk__in=list(pending)) if pending else Q(state=InvoiceState.ISSUED)


def _previous_cis(invoices, issued) -> dict:
    """{partner id: the CI before each invoice (one per partner), or None}, in one query."""

    previous = {invoice.partner_id: None for invoice in invoices}
    by_date = defaultdict(list)  # the CIs of a run's month share their date: one condition per date
    for invoice in invoices:
        by_date[invoice.issue_date].append(invoice.partner_id)
    before = Q()
    for day, partner_ids in by_date.items():
        before |= Q(partner_id__in=partner_ids, issue_date__lt=day)
    exclude = [invoice.pk for invoice in invoices if invoice.pk is not None]
    for ci in Invoice.objects.filter(issued, before, kind=InvoiceKind.CI).exclude(pk__in=exclude).order_by(
            "issue_date", "pk"):
        previous[ci.partner_id] = ci  # the latest dated
    return previous


def _since_previous(invoice, previous):
    """(payments, documents) conditions of a CI's statement: before it, and not on the previous CI."""

    paid = Q(partner_id=invoice.partner_id, paid_on__lt=invoice.issue_date)
    documents = Q(partner_id=invoice.partner_id, issue_date__lt=invoice.issue_date)
    if previous is not None:
        # a draft (of a draft run, pending) has no issued_at yet: it would be issued now, after every record so
        # far and in date order with the run's other drafts (the same rule as statement_figures' SQL)
        known = previous.issued_at or timezone.now()
        after = Q(issued_at__gt=known) | Q(issued_at__isnull=True) if previous.issued_at else Q(issued_at__gt=known)
        paid &= ~Q(paid_on__lt=previous.issue_date, recorded_at__lte=known)
        documents &= (Q(issue_date__gte=previous.issue_date) | after) & ~Q(pk=previous.pk)
    return paid, documents


def statement_figures(invoices, *, pending=()) -> dict[int, tuple]:
    """{partner id: (previous CI, payments, credit notes, other documents)} of new CIs (one per partner)
    by the rule of `statement_sources` (`_since_previous`), in three queries for any number of them.

    The rule is the same, written as one statement for all the CIs: each CI's partner, date and
    previous CI are a row that payments and documents are joined to. The sums are exact in the
    currency (SQLite sums decimals as floats)."""

    previous = _previous_cis(invoices, _issued(pending))
    figures = {invoice.partner_id: (previous[invoice.partner_id], ZERO, ZERO, ZERO) for invoice in invoices}
    if not invoices:
        return figures
    cis = " UNION ALL ".join(["SELECT %s AS partner_id, %s AS upto, %s AS prev_id"] * len(invoices))
    rows = []
    for invoice in invoices:
        before = previous[invoice.partner_id]
        rows += [invoice.partner_id, invoice.issue_date, before.pk if before is not None else -1]
    invoice_table, payment_table = Invoice._meta.db_table, Payment._meta.db_table
    issued = "i.state = %s" + (f" OR i.id IN ({', '.join(['%s'] * len(pending))})" if pending else "")
    # a pending draft (a draft run's) has no issued_at: it would be issued now, after every record so far and in
    # date order with the run's other documents (as the real run stamps them)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    paid_sql = f"""SELECT v.partner_id, SUM(p.amount) FROM ({cis}) v
        JOIN {payment_table} p ON p.partner_id = v.partner_id AND p.paid_on < v.upto
        LEFT JOIN {invoice_table} prev ON prev.id = v.prev_id
        WHERE prev.id IS NULL OR NOT (p.paid_on < prev.issue_date AND p.recorded_at <= COALESCE(prev.issued_at, %s))
        GROUP BY v.partner_id"""
    documents_sql = f"""SELECT v.partner_id, i.kind, SUM(i.total) FROM ({cis}) v
        JOIN {invoice_table} i ON i.partner_id = v.partner_id AND i.issue_date < v.upto AND ({issued})
        LEFT JOIN {invoice_table} prev ON prev.id = v.prev_id
        WHERE prev.id IS NULL OR (i.id <> prev.id AND NOT (
            i.issue_date < prev.issue_date AND COALESCE(i.issued_at, %s) <= COALESCE(prev.issued_at, %s)))
        GROUP BY v.partner_id, i.kind"""
    sums: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    with connection.cursor() as cursor:
        cursor.execute(paid_sql, [*rows, now])
        for partner_id, total in cursor.fetchall():
            sums[(partner_id, "paid")] += Decimal(total)
        cursor.execute(documents_sql, [*rows, InvoiceState.ISSUED.value, *pending, now, now])
        for partner_id, kind, total in cursor.fetchall():
            sums[(partner_id, "credits" if kind == InvoiceKind.CN else "others")] += Decimal(total)
    for invoice in invoices:
        exact = [quantize_money(sums[(invoice.partner_id, part)], invoice.currency)
                 if (invoice.partner_id, part) in sums else ZERO for part in ("paid", "credits", "others")]
        figures[invoice.partner_id] = (previous[invoice.partner_id], *exact)
    return figures


def invoice_document(invoice) -> dict:
    """Everything an invoice page or PDF shows, read in a few queries.

    A CI also carries its statement (billing-rules 4.6): the stored figures of the invoice, and the
    documents behind them (payments, credit notes and individual invoices since the previous CI,
    as known when it was issued), so the listed items add up to the figures they explain.
    """

    lines = list(invoice.lines.select_related("service", "customer", "child__customer").order_by("position", "pk"))
    charges = [line for line in lines if line.line_type != LineType.TAX]
    children = sorted(invoice.children.select_related("customer"), key=_child_order)
    groups = _charge_groups(invoice, children, charges)
    titles = {InvoiceKind.CI: "Consolidated invoice", InvoiceKind.INV: "Invoice", InvoiceKind.CN: "Credit note"}
    issuer = invoice.issuer or issuer_snapshot(CompanyProfile.current())
    document = {
        "invoice": invoice,
        "partner": invoice.partner,
        # as issued; a draft shows them as they stand now
        "issuer": issuer,
        "recipient": invoice.recipient or recipient_snapshot(invoice.partner),
        "issuer_logo": _logo_url(issuer["logo"]),
        "title": titles[invoice.kind],
        "number": invoice.number or "DRAFT",
        "is_draft": not invoice.is_issued,
        "currency": invoice.currency,
        "lines": lines,
        "charges": charges,
        "taxes": [line for line in lines if line.line_type == LineType.TAX],
        "groups": groups,
        "children": [group for group in groups if group["child"] is not None],
        "payments": list(invoice.payments.order_by("paid_on", "pk")),
        "credit_notes": list(invoice.credit_notes.filter(state=InvoiceState.ISSUED).order_by("issue_date", "pk")),
        "credited": invoice.credits if invoice.kind == InvoiceKind.CN else None,
        "terms_days": (invoice.due_date - invoice.issue_date).days,
        "taxable_base": money_sum(line.amount for line in charges if line.taxable),
        # a very large CI lists each organization's subtotal, not its lines (they go in a spreadsheet)
        "detailed": _detailed(invoice, len(charges)),
    }
    if invoice.kind == InvoiceKind.CI:
        document.update(_statement_items(invoice, document))
    else:
        document["received"] = _received(document["payments"], document["credit_notes"])
        remainder = invoice.total + document["received"]["total"]
        if invoice.kind == InvoiceKind.CN:
            document["balance"] = remainder
        else:  # never below zero on the invoice: what was paid over it is on the account (billing-rules 4.7, 4.8)
            document["balance"], document["overpaid"] = max(remainder, ZERO), max(-remainder, ZERO)
    return document


def _detailed(invoice, charge_lines: int) -> bool:
    return invoice.kind != InvoiceKind.CI or charge_lines <= settings.INVOICE_PDF_DETAIL_MAX_LINES


def invoice_pdf_detailed(invoice) -> bool:
    """Whether the PDF lists every charge line (else a CI shows each organization's subtotal, and the
    lines travel as a spreadsheet with the email)."""

    return _detailed(invoice, invoice.lines.exclude(line_type=LineType.TAX).count())


def _child_order(child):
    """Partner services first, then the customers by name."""
    if child.customer_id is None:
        return (0, "", child.pk)
    return (1, child.customer.name.casefold(), child.pk)


def _charge_groups(invoice, children, charges) -> list[dict]:
    """The charge lines grouped by child invoice (a CI), else one group of them all (INV, CN). A CI
    line without a child (the billing run writes none) would form a last group rather than vanish."""

    groups = []
    for child in children:
        group_lines = [line for line in charges if line.child_id == child.pk]
        groups.append({
            "child": child,
            "name": child.customer.name if child.customer_id else "Partner services",
            "due_date": child.due_date,
            "terms_days": (child.due_date - invoice.issue_date).days,
            "subtotal": child.subtotal,
            "owner_id": child.customer_id,
            "lines": group_lines,
        })
    known = {child.pk for child in children}
    rest = [line for line in charges if line.child_id not in known]
    if rest:
        groups.append({"child": None, "name": "Other charges" if children else "", "due_date": invoice.due_date,
                       "terms_days": (invoice.due_date - invoice.issue_date).days,
                       "subtotal": money_sum(line.amount for line in rest), "owner_id": invoice.customer_id,
                       "lines": rest})
    return groups


def _statement_items(invoice, document) -> dict:
    """The documents behind a CI's statement figures, chosen by the rule of
    `invoicing.services.ledger._statement`: an item dated before this CI counts here unless it was dated
    before the previous CI and already recorded when that one was issued (so a payment recorded late
    comes on the next CI). Limited to what was recorded when this CI was issued, the items add up to
    the stored figures; `statement_reconciles` says so, and the tests hold it."""

    previous, payments, documents = statement_sources(invoice)
    if invoice.issued_at is not None:  # what was known when this CI was issued
        payments = payments.filter(recorded_at__lte=invoice.issued_at)
        documents = documents.filter(issued_at__lte=invoice.issued_at)
    payments = list(payments.select_related("invoice").order_by("paid_on", "pk"))
    credit_notes = list(documents.filter(kind=InvoiceKind.CN).select_related("credits").order_by("issue_date", "pk"))
    # INVs, and any CI issued late for an earlier month
    others = list(documents.exclude(kind=InvoiceKind.CN).select_related("customer").order_by("issue_date", "pk"))

    def late(day) -> str:
        if previous is not None and day < previous.issue_date:
            return f"recorded after {previous.number} was issued"
        return ""

    items = [
        {"date": p.paid_on, "what": f"Payment for {p.invoice.number}", "reference": p.reference,
         "note": late(p.paid_on), "amount": -p.amount}
        for p in payments
    ] + [
        {"date": cn.issue_date, "what": f"Credit note {cn.number}"
         + (f" for {cn.credits.number}" if cn.credits_id else ""), "reference": "", "note": late(cn.issue_date),
         "amount": cn.total}
        for cn in credit_notes
    ]
    items.sort(key=lambda item: item["date"])
    for inv in others:
        inv.late_note = late(inv.issue_date)
    received = _received(document["payments"], document["credit_notes"],
                         exclude_payments={p.pk for p in payments}, exclude_notes={cn.pk for cn in credit_notes})
    listed_total = money_sum(item["amount"] for item in items)
    others_total = money_sum(inv.total for inv in others)
    computed_due = (invoice.previous_balance - invoice.payments_and_credits + invoice.other_invoices
                    + invoice.subtotal + invoice.tax_amount)
    return {
        "previous_statement": previous,
        "since": previous.issue_date if previous else None,
        "statement_items": items,
        "statement_items_total": listed_total,
        "other_invoices_list": others,
        "received": received,
        # the stored figures are what the partner was told; this says whether the lists explain them
        "statement_reconciles": (listed_total == -invoice.payments_and_credits
                                 and others_total == invoice.other_invoices
                                 and computed_due == invoice.amount_due),
    }


def _received(payments, credit_notes, *, exclude_payments=frozenset(), exclude_notes=frozenset()) -> dict:
    """Payments and credit notes recorded against this very invoice (not already listed above)."""

    items = [
        {"date": p.paid_on, "what": "Payment", "reference": p.reference, "note": "", "amount": -p.amount}
        for p in payments if p.pk not in exclude_payments
    ] + [
        {"date": cn.issue_date, "what": f"Credit note {cn.number}", "reference": "", "note": "", "amount": cn.total}
        for cn in credit_notes if cn.pk not in exclude_notes
    ]
    items.sort(key=lambda item: item["date"])
    return {"items": items, "total": money_sum(item["amount"] for item in items)}


def balance_at(partner, on: date | None = None, *, known_at=None):
    """What a partner owes at the end of a day (billing-rules 4.6, the ledger): the totals of its issued documents
    dated up to `on` (charges and taxes of CIs and INVs; credit notes count negative) less its payments
    paid up to it. Every date when `on` is None: the balance now.

    `known_at` (an instant) keeps only what had been recorded by then. A CI's amount due is this
    balance on the day before its date, as known when it was issued, plus its own total: later
    records dated earlier (a payment entered late) count from the next CI on.
    """

    documents = Invoice.objects.filter(partner_id=partner.pk, state=InvoiceState.ISSUED)
    payments = Payment.objects.filter(partner_id=partner.pk)
    if on is not None:
        documents, payments = documents.filter(issue_date__lte=on), payments.filter(paid_on__lte=on)
    if known_at is not None:
        documents = documents.filter(issued_at__lte=known_at)
        payments = payments.filter(recorded_at__lte=known_at)

    def total(queryset, field):
        # SQLite sums decimals as floats: back to the currency's places (every amount summed has them)
        value = queryset.aggregate(s=Sum(field))["s"]
        return quantize_money(Decimal(value), partner.currency) if value is not None else ZERO

    return total(documents, "total") - total(payments, "amount")


def true_ups_of(invoice_ids) -> dict[int, list[tuple[str, object]]]:
    """{invoice id: [(description, amount)]} of the true-up lines of some invoices (billing-rules 4.11)."""

    found: dict[int, list[tuple[str, object]]] = {}
    rows = (InvoiceLine.objects.filter(invoice_id__in=list(invoice_ids), line_type="true_up")
            .order_by("invoice_id", "position").values_list("invoice_id", "description", "amount"))
    for invoice_id, description, amount in rows:
        found.setdefault(invoice_id, []).append((description, amount))
    return found


def billing_run_invoices(run) -> list[Invoice]:
    """The documents a recorded billing run wrote that still stand, in the order it wrote them, each with its
    partner, customer and lines (a preview's drafts are gone once a later run drafted or issued in their place)."""
    ids = [document["id"] for document in run.documents]
    lines = InvoiceLine.objects.select_related("service", "customer").order_by("position", "pk")
    found = {invoice.pk: invoice for invoice in Invoice.objects.filter(pk__in=ids).select_related(
        "partner", "customer").prefetch_related(Prefetch("lines", queryset=lines))}
    return [found[pk] for pk in ids if pk in found]


# --- what a billing run reads of what was billed; the ledger's sums -------------------------------------
def money_total(queryset, field: str, currency: str) -> Decimal:
    """A database sum of amounts, exact: SQLite sums decimals as floats, so the sum (of amounts already
    rounded to the currency) is brought back to the currency's places."""

    value = queryset.aggregate(s=Sum(field))["s"]
    return quantize_money(Decimal(value), currency) if value is not None else ZERO


def first_months(partner_ids: list[int]) -> dict[int, Period]:
    """{partner id: the month of its first service or one-time charge} (partners with neither are absent)."""

    firsts: dict[int, date] = {}
    for model, field in ((Service, "start_date"), (OneTimeCharge, "date")):
        rows = model.objects.filter(partner_id__in=partner_ids).values("partner_id").annotate(first=Min(field))
        for row in rows.values_list("partner_id", "first"):
            firsts[row[0]] = min(firsts.get(row[0], row[1]), row[1])
    return {partner_id: Period.of(first) for partner_id, first in firsts.items()}


def unbilled_first_months(partner_ids: list[int], billed_keys: dict[int, set[str]]) -> dict[int, set[Period]]:
    """The months in which a service billed in advance starts after the 1st and its first-month INV
    is not issued yet: the only lines that rating a month whose CI is issued can still add. Once the partner's
    CI of a later month is issued, a first month with no INV (nothing to bill on its start date) counts as
    billed at 0 (billing-rules 4.12): what is found later goes on the next CI (a proration, a true-up or a late
    line), never on an INV dated months back."""

    months: dict[int, set[Period]] = defaultdict(set)
    billed = {key.split(":")[1] for keys in billed_keys.values() for key in keys if key.startswith("first_month:")}
    latest = Invoice.objects.last_invoiced_months(partner_ids, first_months=False)
    starts = Service.objects.filter(partner_id__in=partner_ids, method__in=ADVANCE_METHODS).exclude(start_date__day=1)
    for partner_id, pk, start in starts.values_list("partner_id", "pk", "start_date"):
        if str(pk) not in billed and not (partner_id in latest and latest[partner_id] > str(Period.of(start))):
            months[partner_id].add(Period.of(start))
    return months


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

    months = Invoice.objects.filter(billed_documents(), partner_id__in=list(services), kind=InvoiceKind.CI)
    for partner_id, month in months.values_list("partner_id", "month"):
        month = Period.parse(month)
        for pk, start, end in services[partner_id]:
            if start <= month.first and (end is None or end >= month.first):
                billed[partner_id][(pk, month)] = BilledUnits(month.first, 0)
    partner_of = {pk: partner_id for partner_id, group in services.items() for pk, _, _ in group}
    lines = InvoiceLine.objects.filter(
        billed_documents("invoice__"),
        invoice__partner_id__in=list(services), invoice__kind__in=[InvoiceKind.CI, InvoiceKind.INV],
        service__method=Method.PER_ASSET,
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


def with_settlement(invoices):
    """Invoices with what was paid against each (`paid_sum`) and what its issued credit notes took off
    (`credited_sum`, negative), for `open_amount`: two sub-selects, not a query per invoice."""
    paid = (Payment.objects.filter(invoice=OuterRef("pk")).order_by().values("invoice")
            .annotate(s=Sum("amount")).values("s"))
    credited = (Invoice.objects.filter(credits=OuterRef("pk"), state=InvoiceState.ISSUED).order_by().values("credits")
                .annotate(s=Sum("total")).values("s"))
    return invoices.annotate(paid_sum=Subquery(paid), credited_sum=Subquery(credited))


def open_amount(invoice: Invoice) -> Decimal | None:
    """What is still to pay on this invoice itself (billing-rules 4.7): its total less the payments recorded
    against it and what its credit notes took off, never below zero. None for a credit note or a draft. This
    is the invoice's own remainder, not the account's balance printed on a CI (its amount due)."""
    if invoice.kind == InvoiceKind.CN or not invoice.is_issued:
        return None
    if hasattr(invoice, "paid_sum"):
        # SQLite sums decimals as floats: back to the currency's places (every amount summed has them)
        paid = quantize_money(Decimal(invoice.paid_sum or 0), invoice.currency)
        credited = -quantize_money(Decimal(invoice.credited_sum or 0), invoice.currency)
    else:
        paid, credited = settlement(invoice)
    return max(ZERO, invoice.total - paid - credited)


def settlement(invoice: Invoice) -> tuple[Decimal, Decimal]:
    """(what was paid against the invoice, what its issued credit notes took off, as a positive amount): what
    its payment status (billing-rules 4.7) and its open amount are judged on."""
    credited = -money_total(Invoice.objects.filter(credits=invoice, state=InvoiceState.ISSUED), "total",
                            invoice.currency)
    paid = money_total(invoice.payments.all(), "amount", invoice.currency) if invoice.pk else ZERO
    return paid, credited


def partner_overdue(partner: Partner, today: date | None = None) -> Decimal:
    """The part of the partner's balance that is past due: the open amounts of its overdue invoices."""
    overdue = with_settlement(Invoice.objects.issued().filter(partner=partner, payment_status=PaymentStatus.OVERDUE))
    return sum((open_amount(invoice) or ZERO for invoice in overdue), ZERO)


def partner_balance(partner: Partner) -> Decimal:
    """What the partner owes now: every issued document's total less every payment (the ledger's
    balance at any date is `balance_at`)."""
    return balance_at(partner)


def unsent_invoices():
    """Issued documents whose email never left (credit notes too): the daily job sends them."""

    return Invoice.objects.issued().filter(emailed_at__isnull=True)


def _logo_url(name: str | None) -> str:
    """The issuer's logo as a file URL WeasyPrint reads ("" without one, or when the file is gone)."""
    if not name:
        return ""
    path = Path(settings.MEDIA_ROOT) / name
    return path.as_uri() if path.is_file() else ""

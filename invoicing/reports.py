"""Invoicing reports: invoice-lines, periods and billing-gaps (billing-rules 10.2, 10.4, 10.5)."""

from __future__ import annotations

import io
from decimal import Decimal

from django.utils import timezone

from billing.core.money import currency_places, quantize_money, quantize_quantity
from billing.core.periods import Period, utc_date
from billing.core.registry import register_report
from billing.core.reporting import Report, ReportOptions, write_xlsx
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceState, LineType
from invoicing.trueups import billing_gaps
from partners.models import Method, Partner

RATE_PLACES = 2  # a tax line's unit price is its rate, a percentage: 10.00 in every currency (billing-rules 4.3)


def shown_price(value: Decimal | None, currency: str, *, places: int | None = None) -> Decimal | None:
    """A unit price with the currency's places (or `places`), or up to 4 when it has more (12.5 -> 12.50, 0.0125
    kept; in JPY 1234.0000 -> 1234)."""
    if value is None:
        return None
    places = currency_places(currency) if places is None else places
    short = value.quantize(Decimal(1).scaleb(-places))
    return short if short == value else value.quantize(Decimal("0.0001"))


def line_unit_price(line, currency: str) -> Decimal | None:
    """A line's unit price as the exports show it: a tax line's is its rate, with 2 places in every currency."""
    return shown_price(line.unit_price, currency, places=RATE_PLACES if line.line_type == LineType.TAX else None)


def line_row(line: InvoiceLine, invoice: Invoice) -> dict:
    """One invoice line with the invoice-lines columns (billing-rules 10.2); a draft shows its state as status."""
    return {
        "invoice_number": invoice.number or "",
        "kind": invoice.kind,
        "status": invoice.payment_status if invoice.is_issued else invoice.state,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "partner": invoice.partner.slug,
        "customer": line.customer.slug if line.customer_id else "",
        "service": line.service.code if line.service_id else "",
        "line_type": line.line_type,
        "period": line.period,
        "quantity": quantize_quantity(line.quantity) if line.quantity is not None else None,
        "unit_price": line_unit_price(line, invoice.currency),
        # with exactly the currency's places (billing-rules 2: 80.00 USD, 3702 JPY), in the CSV and as the XLSX number
        # format (write_xlsx keeps a Decimal's places); stored with 2 places in every currency and already rounded
        # to the minor unit, an amount keeps its value here
        "amount": quantize_money(line.amount, invoice.currency),
        "currency": invoice.currency,
        "description": line.description,
    }


@register_report
class InvoiceLinesReport(Report):
    """Every line of every issued invoice (credit notes included, kind CN); --month keeps the
    invoices issued in that month."""

    name = "invoice-lines"
    takes_month = True
    columns = ("invoice_number", "kind", "status", "issue_date", "due_date", "partner", "customer", "service",
               "line_type", "period", "quantity", "unit_price", "amount", "currency", "description")

    def rows(self, options: ReportOptions):
        lines = (
            InvoiceLine.objects.filter(invoice__state=InvoiceState.ISSUED)
            .select_related("invoice__partner", "customer", "service")
            .order_by("invoice__issue_date", "invoice__number", "position", "pk")
        )
        if options.partner:
            lines = lines.filter(invoice__partner__slug=options.partner)
        if options.month:
            lines = lines.filter(invoice__issue_date__gte=options.month.first,
                                 invoice__issue_date__lte=options.month.last)
        for line in lines.iterator(chunk_size=2000):
            yield line_row(line, line.invoice)


@register_report
class PeriodsReport(Report):
    """Every invoiced usage period of a seat_days service, as it was when the CI was issued."""

    name = "periods"
    takes_period = True
    columns = ("partner", "period", "service", "actual_seat_months", "minimum_seat_months",
               "billable_seat_months", "subtotal", "currency", "invoice_number", "payment_status")

    def rows(self, options: ReportOptions):
        lines = (
            InvoiceLine.objects.filter(invoice__state=InvoiceState.ISSUED, invoice__kind=InvoiceKind.CI,
                                       service__method=Method.SEAT_DAYS)
            .exclude(details={})
            .exclude(line_type=LineType.TRUE_UP)  # the period as invoiced; a true-up is on a later CI's lines
            .select_related("invoice__partner", "service")
            .order_by("invoice__partner__slug", "service__code", "period", "position")
        )
        if options.partner:
            lines = lines.filter(invoice__partner__slug=options.partner)
        if options.period:
            lines = lines.filter(period=str(options.period))
        seen = set()
        for line in lines.iterator(chunk_size=2000):
            key = (line.invoice_id, line.service_id, line.period)
            if key in seen:
                continue  # the minimum and overage lines of one period: one row
            seen.add(key)
            invoice: Invoice = line.invoice
            facts = line.details
            yield {
                "partner": invoice.partner.slug,
                "period": line.period,
                "service": line.service.code,
                "actual_seat_months": quantize_quantity(Decimal(facts["actual"])),
                "minimum_seat_months": quantize_quantity(Decimal(facts["minimum"])),
                "billable_seat_months": quantize_quantity(Decimal(facts["billable"])),
                "subtotal": quantize_money(Decimal(facts["subtotal"]), invoice.currency),  # as line_row's amount
                "currency": invoice.currency,
                "invoice_number": invoice.number,
                "payment_status": invoice.payment_status,
            }


def invoice_lines_xlsx(invoice: Invoice, *, title: str | None = None) -> bytes:
    """One invoice's lines (drafts included) with the invoice-lines report's columns, as a spreadsheet:
    the admin's XLSX download and the attachment of a CI whose PDF shows subtotals."""

    stream = io.BytesIO()
    lines = invoice.lines.select_related("customer", "service").order_by("position", "pk")
    write_xlsx(InvoiceLinesReport.columns, (line_row(line, invoice) for line in lines), stream,
               title=title or invoice.number or "draft")
    return stream.getvalue()


@register_report
class BillingGapsReport(Report):
    """Every service's month (before --period, default the current month) whose issued lines do not add up to
    what the rules give from the data known now (billing-rules 4.12): right after a run, none. A gap is what the
    next run's true-ups and prorations will settle, or a month older than BILLING_TRUE_UP_MONTHS."""

    name = "billing-gaps"
    takes_period = True
    columns = ("partner", "service", "period", "customer", "billed", "expected", "difference")

    def rows(self, options: ReportOptions):
        partners = Partner.objects.order_by("slug")
        if options.partner:
            partners = partners.filter(slug=options.partner)
        before = options.period or Period.of(utc_date(timezone.now()))
        for gap in billing_gaps(partner_ids=list(partners.values_list("pk", flat=True)), before=before):
            yield {"partner": gap.partner, "service": gap.service, "period": gap.period, "customer": gap.customer,
                   "billed": gap.billed, "expected": gap.expected, "difference": gap.expected - gap.billed}

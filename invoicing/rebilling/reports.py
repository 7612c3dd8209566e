"""Rebilling's reports: `customer-invoice-lines` (billing-rules 12.9), every line of every issued customer invoice
with the columns of our `invoice-lines`; `customer-transactions` (billing-rules 12.10), every movement of every
customer's account with its running balance; and one customer invoice's lines as a spreadsheet."""

from __future__ import annotations

import io
from decimal import Decimal

from billing.core.money import quantize_money, quantize_quantity
from billing.core.registry import register_report
from billing.core.reporting import Report, ReportOptions, write_xlsx
from invoicing.choices import InvoiceState
from invoicing.rebilling.accounts import running_balances
from invoicing.rebilling.models import CustomerInvoice, CustomerInvoiceLine, CustomerTransaction
from invoicing.reports import InvoiceLinesReport, line_unit_price


def customer_line_row(line: CustomerInvoiceLine, invoice: CustomerInvoice) -> dict:
    """One customer invoice line with the invoice-lines columns; the status is the invoice's state (the
    customers' payments, and with them a payment status, come with their transactions)."""
    return {
        "invoice_number": invoice.number or "",
        "kind": invoice.kind,
        "status": invoice.state,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "partner": invoice.partner.slug,
        "customer": invoice.customer.slug,
        "service": line.service.code if line.service_id else line.item.code if line.item_id else "",
        "line_type": line.line_type,
        "period": line.period,
        "quantity": quantize_quantity(line.quantity) if line.quantity is not None else None,
        "unit_price": line_unit_price(line, invoice.currency),  # a tax line's is its rate (billing-rules 10.2)
        "amount": quantize_money(line.amount, invoice.currency),  # the currency's places: 3702 JPY (billing-rules 2)
        "currency": invoice.currency,
        "description": line.description,
    }


@register_report
class CustomerInvoiceLinesReport(Report):
    """Every line of every issued customer invoice (credit notes included); --month keeps the invoices issued in
    that month, --partner one partner's."""

    name = "customer-invoice-lines"
    takes_month = True
    columns = InvoiceLinesReport.columns

    def rows(self, options: ReportOptions):
        lines = (CustomerInvoiceLine.objects.filter(invoice__state=InvoiceState.ISSUED)
                 .select_related("invoice__partner", "invoice__customer", "service", "item")
                 .order_by("invoice__issue_date", "invoice__number", "position", "pk"))
        if options.partner:
            lines = lines.filter(invoice__partner__slug=options.partner)
        if options.month:
            lines = lines.filter(invoice__issue_date__gte=options.month.first,
                                 invoice__issue_date__lte=options.month.last)
        for line in lines.iterator(chunk_size=2000):
            yield customer_line_row(line, line.invoice)


def customer_invoice_xlsx(invoice: CustomerInvoice) -> bytes:
    """One customer invoice's lines (a draft's too) with the report's columns: its email's attachment and the
    admin's download."""
    stream = io.BytesIO()
    lines = invoice.lines.select_related("service", "item").order_by("position", "pk")
    write_xlsx(CustomerInvoiceLinesReport.columns, (customer_line_row(line, invoice) for line in lines), stream,
               title=invoice.number or "draft")
    return stream.getvalue()


@register_report
class CustomerTransactionsReport(Report):
    """Every customer transaction (billing-rules 12.10) with the customer's running balance after it; --partner
    one partner's customers, --month the transactions dated in that month (their balances still count every
    earlier transaction)."""

    name = "customer-transactions"
    takes_month = True
    columns = ("partner", "customer", "date", "kind", "reference", "amount", "currency", "balance")

    def rows(self, options: ReportOptions):
        transactions = CustomerTransaction.objects.all()
        if options.partner:
            transactions = transactions.filter(partner__slug=options.partner)
        if options.month:
            transactions = transactions.filter(date__lte=options.month.last)
        transactions = running_balances(transactions, since=options.month.first if options.month else None)
        rows = (transactions.order_by("partner__slug", "customer__slug", "customer_id", "date", "pk")
                .values_list("partner__slug", "customer__slug", "date", "kind", "reference", "amount", "currency",
                             "balance"))
        for row in rows.iterator(chunk_size=2000):
            values = dict(zip(self.columns, row, strict=True))
            # SQLite sums money as floating point: the sum of cents is exact to far more places, so rounding it to
            # the cent gives the exact balance back (PostgreSQL's numeric sum is exact already)
            values["balance"] = quantize_money(Decimal(values["balance"]), values["currency"])
            yield values

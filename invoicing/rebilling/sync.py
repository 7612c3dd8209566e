"""Sync out (issue 20 item 6): per customer and month, what a partner charges its customers, as rows its own
billing (WHMCS, a PSA, Xero, QuickBooks) can pull, through `export_report customer-charges` and
GET /api/reseller/customer-charges (invoicing.rebilling.sync_formats writes them in each tool's shape).

`customer_charge_rows(partner, month)` is the one source of the rows, in one of two ways:

- the partner's customer invoices of the month (rebilling on): every line of its issued customer invoices whose
  `month` is M, credit notes as their own negative rows (a credit note bills the month of the invoice it
  corrects), tax lines left out (each row says its tax rate; the importing tool computes the tax its own way);
- our documents of the month, priced (rebilling off: the partner bills in its own tool): the same lines the run
  would have written, from its issued CI of M and INVs issued within M, by `customer_invoices_price` with
  nothing written. These rows have no invoice number: the partner numbers its own invoices.

A month with any customer invoice of the partner (a draft awaiting review included) is read from the customer
invoices only: its drafts are the partner's to issue, and showing their charges as priced rows would invite it
to bill them twice. Each row says which way it came (`source`: "invoice" or "priced")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Q

from billing.core.money import quantize_money, quantize_quantity
from billing.core.periods import Period
from invoicing.choices import InvoiceKind, InvoiceState, LineType
from invoicing.models import Invoice
from invoicing.rebilling.documents import recipient_snapshot
from invoicing.rebilling.invoices import customer_invoices_price
from invoicing.rebilling.models import CustomerBillingProfile, CustomerInvoice, CustomerInvoiceLine, RebillingProfile
from invoicing.reports import line_unit_price
from partners.models import Partner

SOURCE_INVOICE = "invoice"
SOURCE_PRICED = "priced"


@dataclass(frozen=True)
class ChargeRow:
    """One charge to one customer: a line of a customer invoice, or of the invoice the run would write."""

    source: str  # "invoice": read from an issued customer invoice; "priced": computed from our documents
    partner: str  # the partner's slug
    customer: str  # the customer's slug
    customer_name: str
    billing_name: str  # the name it is invoiced under: its billing profile's legal name, else its name
    billing_emails: tuple[str, ...]
    billing_address: str  # one line per line
    purchase_order: str
    item_code: str  # our service's code or the partner's own item's
    item_name: str
    line_type: str
    period: str
    description: str
    quantity: Decimal | None  # to 4 places, as every export shows it
    unit_price: Decimal | None  # at the currency's places when that loses nothing, else to 4; None: no one price
    amount: Decimal  # before tax, rounded to the currency's places; negative on a credit note
    currency: str
    invoice_number: str | None  # None: priced, not invoiced
    kind: str  # "invoice" or "credit_note"
    issue_date: date
    due_date: date
    tax_rate: Decimal  # percent, the customer's rate on the partner's invoices
    taxable: bool  # the tax rate applies to the line


def customer_charge_rows(partner: Partner, month: Period) -> list[ChargeRow]:
    """What the partner charges its customers for `month` (the module's docstring says which rows)."""
    invoices = CustomerInvoice.objects.filter(partner=partner, month=str(month))
    if invoices.exists():
        return _invoiced_rows(invoices.filter(state=InvoiceState.ISSUED))
    return _priced_rows(partner, month)


def partners_with_charges(month: Period) -> list[Partner]:
    """The partners with something to show for `month`: a customer invoice of it, or an issued document of ours
    in it (the report over every partner reads these, in slug order)."""
    billed = CustomerInvoice.objects.filter(month=str(month)).values("partner_id")
    documented = _documents_of(Invoice.objects.all(), month).values("partner_id")
    return list(Partner.objects.filter(Q(pk__in=billed) | Q(pk__in=documented)).order_by("slug"))


def _documents_of(invoices, month: Period):
    """Our issued documents a customer invoice of `month` follows (billing-rules 12.5): the CI of the month and
    the INVs issued within it (a first month's)."""
    return invoices.filter(state=InvoiceState.ISSUED).filter(
        Q(kind=InvoiceKind.CI, month=str(month))
        | Q(kind=InvoiceKind.INV, issue_date__gte=month.first, issue_date__lte=month.last))


def _invoiced_rows(invoices) -> list[ChargeRow]:
    lines = (CustomerInvoiceLine.objects.filter(invoice__in=invoices).exclude(line_type=LineType.TAX)
             .select_related("invoice__partner", "invoice__customer__billing_profile", "service", "item")
             .order_by("invoice__issue_date", "invoice__number", "position", "pk"))
    rows = []
    for line in lines:
        invoice = line.invoice
        # the recipient as printed when it was issued; the profile as it stands only if none was kept
        recipient = invoice.recipient or recipient_snapshot(invoice.customer, _profile(invoice.customer))
        rows.append(_row(SOURCE_INVOICE, invoice, line, recipient))
    return rows


def _priced_rows(partner: Partner, month: Period) -> list[ChargeRow]:
    profile = RebillingProfile.objects.filter(partner=partner).first()
    # the partner's own terms when it set them while rebilling was on; else the profile's default
    terms = profile.payment_terms_days if profile else RebillingProfile._meta.get_field("payment_terms_days").default
    documents = list(_documents_of(Invoice.objects.filter(partner=partner), month).order_by("issue_date", "pk"))
    priced = customer_invoices_price(partner, documents, payment_terms_days=terms, skip_billed=False)
    billing = {p.customer_id: p for p in CustomerBillingProfile.objects.filter(
        customer_id__in={invoice.customer_id for invoice, _lines in priced.invoices})}
    rows = []
    drafted = sorted(priced.invoices, key=lambda pair: (pair[0].issue_date, pair[0].customer.slug,
                                                        pair[0].source_id))
    for invoice, lines in drafted:
        recipient = recipient_snapshot(invoice.customer, billing.get(invoice.customer_id))
        rows += [_row(SOURCE_PRICED, invoice, line, recipient) for line in lines if line.line_type != LineType.TAX]
    return rows


def _profile(customer) -> CustomerBillingProfile | None:
    try:
        return customer.billing_profile
    except CustomerBillingProfile.DoesNotExist:
        return None


def _row(source: str, invoice: CustomerInvoice, line: CustomerInvoiceLine, recipient: dict) -> ChargeRow:
    target = line.service if line.service_id else line.item
    return ChargeRow(
        source=source,
        partner=invoice.partner.slug,
        customer=invoice.customer.slug,
        customer_name=invoice.customer.name,
        billing_name=recipient.get("name") or invoice.customer.name,
        billing_emails=tuple(recipient.get("emails") or ()),
        billing_address=recipient.get("address") or "",
        purchase_order=recipient.get("purchase_order") or "",
        item_code=target.code if target is not None else "",
        item_name=target.name if target is not None else "",
        line_type=line.line_type,
        period=line.period,
        description=line.description,
        quantity=quantize_quantity(line.quantity) if line.quantity is not None else None,
        unit_price=line_unit_price(line, invoice.currency),
        amount=quantize_money(line.amount, invoice.currency),  # the currency's places, as the exports write it
        currency=invoice.currency,
        invoice_number=invoice.number if source == SOURCE_INVOICE else None,
        kind=str(invoice.kind),
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        tax_rate=invoice.tax_rate,
        taxable=line.taxable,
    )

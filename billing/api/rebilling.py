"""/api/reseller/customer-charges: what the key's partner charges its customers for a month (issue 20 item 6, the
sync out), for its own billing (WHMCS, a PSA, Xero, QuickBooks) to pull: JSON rows, or a CSV file in one tool's
import shape (invoicing.rebilling.sync_formats). The rows are invoicing.rebilling.sync's, the same as
`export_report customer-charges`."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Literal

from django.http import HttpResponse
from ninja import Field, Query, Router, Schema, Status

from billing.api.auth import partner_of
from billing.api.schemas import ErrorOut, ValidationErrorOut
from billing.core.periods import Period, PeriodError
from invoicing.rebilling.sync import ChargeRow, customer_charge_rows
from invoicing.rebilling.sync_formats import SyncFormatError, plain, sync_format, sync_formats, write_charges_csv

router = Router(tags=["reseller"])

FormatName = Literal[("json", *sync_formats())]
OPTIONS = ("account_code", "tax_type", "exempt_tax_type", "tax_code", "exempt_tax_code", "date_format",
           "item_codes")


class ChargeRowOut(Schema):
    """One charge to one customer. Money and quantities are strings; amounts before tax."""

    source: Literal["invoice", "priced"] = Field(
        description="invoice: a line of an issued customer invoice; priced: the line the billing run would write "
                    "(rebilling off), with no invoice number")
    customer: str = Field(description="the customer's slug")
    customer_name: str
    billing_name: str = Field(description="the name it is invoiced under: its billing profile's legal name, else "
                                          "its name")
    billing_emails: list[str]
    billing_address: str
    purchase_order: str
    item_code: str = Field(description="our service's code, or the partner's own item's")
    item_name: str
    line_type: str
    period: str = Field(description="the month the line covers, YYYY-MM")
    description: str
    quantity: str | None = Field(description="to 4 places")
    unit_price: str | None = Field(description="null where no one price applies (a package, graduated tiers)")
    amount: str = Field(description="before tax; negative on a credit note")
    currency: str
    invoice_number: str | None = Field(description="null on a priced row")
    kind: Literal["invoice", "credit_note"]
    issue_date: dt.date
    due_date: dt.date
    tax_rate: str = Field(description="percent")
    taxable: bool


class ChargeOptions(Schema):
    """A vendor format's options; each one only for the format that takes it (a 422 otherwise)."""

    account_code: str | None = Field(None, description="xero: *AccountCode (default 200, Sales)")
    tax_type: str | None = Field(None, description="xero: *TaxType of a taxed line (default Tax on Sales); {rate} "
                                                   "is replaced by the customer's rate")
    exempt_tax_type: str | None = Field(None, description="xero: *TaxType of an untaxed line (default Tax Exempt)")
    tax_code: str | None = Field(None, description="quickbooks: ItemTaxCode of a taxed line (default TAX); {rate} "
                                                   "is replaced by the customer's rate")
    exempt_tax_code: str | None = Field(None, description="quickbooks: ItemTaxCode of an untaxed line (default NON)")
    date_format: str | None = Field(None, description="xero, quickbooks: dd/mm/yyyy or mm/dd/yyyy (defaults: xero "
                                                      "dd/mm/yyyy, quickbooks mm/dd/yyyy)")
    item_codes: str | None = Field(None, description="xero: yes (default) fills InventoryItemCode, no leaves it blank")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _json(row: ChargeRow) -> dict:
    return {
        "source": row.source, "customer": row.customer, "customer_name": row.customer_name,
        "billing_name": row.billing_name, "billing_emails": list(row.billing_emails),
        "billing_address": row.billing_address, "purchase_order": row.purchase_order, "item_code": row.item_code,
        "item_name": row.item_name, "line_type": row.line_type, "period": row.period, "description": row.description,
        "quantity": _text(row.quantity), "unit_price": _text(row.unit_price), "amount": _text(row.amount),
        "currency": row.currency, "invoice_number": row.invoice_number, "kind": row.kind,
        "issue_date": row.issue_date, "due_date": row.due_date, "tax_rate": plain(row.tax_rate),
        "taxable": row.taxable,
    }


def _invalid(name: str, message: str) -> Status:
    return Status(422, {"detail": [{"loc": ["query", name], "msg": message, "type": "value_error"}]})


@router.get(
    "", response={200: list[ChargeRowOut], 401: ErrorOut, 422: ValidationErrorOut},
    openapi_extra={"responses": {200: {
        "description": "JSON rows (format=json), or a CSV file in the format's shape (the other formats)",
        "content": {"text/csv": {"schema": {"type": "string"}}}}}},
)
def customer_charges(request, month: str, options: Query[ChargeOptions],
                     format: FormatName = "json"):
    """Per customer, what the partner charges for `month` (YYYY-MM): the lines of its issued customer invoices of
    that month (credit notes as negative rows, tax lines left out), or, when it has none (rebilling off), the lines
    the billing run would write from our documents of that month. `format`: json (default) rows, or a CSV file
    to import: generic (our columns), xero (Xero's sales invoice import), quickbooks (QuickBooks Online's invoice
    import)."""
    try:
        period = Period.parse(month)
    except PeriodError as exc:
        return _invalid("month", f"month: {exc}")
    given = options.dict()
    if format == "json":
        used = [name for name in OPTIONS if given.get(name) is not None]
        if used:
            return _invalid(used[0], f"{used[0]} is an option of a CSV format, not of json")
        return Status(200, [_json(row) for row in customer_charge_rows(partner_of(request), period)])
    fmt = sync_format(format)
    try:
        fmt.resolved(given)
    except SyncFormatError as exc:
        return _invalid(exc.option or "format", str(exc))
    partner = partner_of(request)
    stream = io.StringIO()
    write_charges_csv(fmt, customer_charge_rows(partner, period), stream, given)
    response = HttpResponse(stream.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{fmt.filename(partner.slug, period)}"'
    return response

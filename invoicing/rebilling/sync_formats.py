"""The shapes the sync-out rows (invoicing.rebilling.sync) are written in: a small registry of formats, each the
CSV header of one tool's import and how a row fills it, with the options that tool's books need (an account code,
tax rate names, a date order), each with a stated default.

- `generic`: our own columns, every field of a row (the JSON API's fields, in the same order);
- `xero`: Xero's sales invoice import template (one row per line, lines of one invoice share *InvoiceNumber);
- `quickbooks`: QuickBooks Online's invoice import (one row per line, lines of one invoice share InvoiceNo).

No other tool's shape is here: ConnectWise PSA, Autotask and WHMCS document no invoice import file we could check,
so none is guessed (they read the generic CSV or the JSON API).

Both vendors' importers compute a line's total from its quantity and unit amount; a line whose amount is not its
quantity times its unit price (a prorated first month, a package, graduated tiers) is written as 1 x its amount,
so the tool books the amount the customer was charged (its description says what it is; the generic CSV and the
JSON keep the line's own quantity and price).

Each format is also a report of `export_report` (`customer-charges`, `customer-charges-xero`,
`customer-charges-quickbooks`): the command's --format is the file type (csv or xlsx), so the shape is the
report's name. Reports cannot take options: they use each format's defaults."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from billing.core.money import quantize_money
from billing.core.periods import Period
from billing.core.registry import register_report
from billing.core.reporting import Report, ReportError, ReportOptions, write_csv
from invoicing.rebilling.sync import ChargeRow, customer_charge_rows, partners_with_charges
from partners.models import Partner

OPTION_MAX_LENGTH = 100
DATE_FORMATS = {"dd/mm/yyyy": "%d/%m/%Y", "mm/dd/yyyy": "%m/%d/%Y"}


class SyncFormatError(ValueError):
    """An unknown format, or an option the format does not take or cannot use: one clear line, and the option's
    name (None: the format itself)."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class SyncFormat:
    name: str
    title: str
    columns: tuple[str, ...]
    cells: Callable[[ChargeRow, Mapping[str, str]], dict]
    source_url: str = ""  # where the tool documents the shape
    options: Mapping[str, str] = field(default_factory=dict)  # name: default
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # the options with fixed values

    def resolved(self, given: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """The options to write with: the defaults, overridden by the `given` ones that are not None; an option the
        format does not take, a blank or over-long value, or a value outside its choices is an error naming it."""
        values = dict(self.options)
        for name, value in (given or {}).items():
            if value is None:
                continue
            if name not in self.options:
                takes = ", ".join(self.options) or "none"
                raise SyncFormatError(f"{name} is not an option of the {self.name} format (its options: {takes})",
                                      name)
            text = value.strip()
            if not text or len(text) > OPTION_MAX_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in text):
                raise SyncFormatError(f"{name}: give 1 to {OPTION_MAX_LENGTH} printable characters", name)
            if name in self.choices and text not in self.choices[name]:
                raise SyncFormatError(f"{name}: one of {', '.join(self.choices[name])}, not {text!r}", name)
            values[name] = text
        return values

    def rows(self, rows: Iterable[ChargeRow], options: Mapping[str, str | None] | None = None) -> Iterator[dict]:
        """The rows as this format's cells, by column."""
        values = self.resolved(options)
        for row in rows:
            yield self.cells(row, values)

    def filename(self, partner_slug: str, month: Period) -> str:
        return f"customer-charges-{partner_slug}-{month}-{self.name}.csv"


_formats: dict[str, SyncFormat] = {}


def register_format(fmt: SyncFormat) -> SyncFormat:
    if fmt.name in _formats:
        raise ValueError(f"sync format {fmt.name!r} registered twice")
    _formats[fmt.name] = fmt
    return fmt


def sync_formats() -> dict[str, SyncFormat]:
    return dict(_formats)


def sync_format(name: str) -> SyncFormat:
    if name not in _formats:
        raise SyncFormatError(f"unknown format {name!r} (one of {', '.join(_formats)})")
    return _formats[name]


def write_charges_csv(fmt: SyncFormat, rows: Iterable[ChargeRow], stream,
                      options: Mapping[str, str | None] | None = None) -> int:
    """The rows as CSV in the format's shape, with the reports' writer (the csv module; text a spreadsheet would
    run as a formula is prefixed with '), so the API's file and export_report's are the same bytes."""
    return write_csv(fmt.columns, fmt.rows(rows, options), stream)


# --- cells -----------------------------------------------------------------------------------------------------
def plain(value: Decimal) -> str:
    """A decimal without an exponent or needless zeros: 10.0000 -> "10", 0.32260 -> "0.3226", 8.250 -> "8.25"."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def quantity_and_rate(row: ChargeRow) -> tuple[Decimal, Decimal]:
    """The quantity and unit amount an importer multiplies back to the line's amount: the line's own when their
    product, rounded once, is its amount (a credit note's rate negative, its quantity as credited); else 1 x the
    amount (a prorated first month, a package, graduated tiers: no one price makes the amount)."""
    if row.quantity is not None and row.unit_price is not None:
        rate = -row.unit_price if row.amount < 0 else row.unit_price
        if quantize_money(row.quantity * rate, row.currency) == row.amount:
            return row.quantity, rate
    return Decimal(1), row.amount


def taxed(row: ChargeRow) -> bool:
    """The customer's tax applies to the line: the line is taxable and the rate is above zero."""
    return row.taxable and row.tax_rate > 0


def tax_name(row: ChargeRow, taxed_name: str, untaxed_name: str) -> str:
    """The tool's name of the line's tax rate: `taxed_name` for a taxed line, with {rate} replaced by the
    customer's rate ("Sales Tax {rate}%" -> "Sales Tax 8.25%": customers taxed at different rates in one file),
    else `untaxed_name`."""
    return taxed_name.replace("{rate}", plain(row.tax_rate)) if taxed(row) else untaxed_name


def _date(value, options: Mapping[str, str]) -> str:
    return value.strftime(DATE_FORMATS[options["date_format"]])


def generic_cells(row: ChargeRow, options: Mapping[str, str]) -> dict:
    return {
        "source": row.source, "partner": row.partner, "customer": row.customer, "customer_name": row.customer_name,
        "billing_name": row.billing_name, "billing_emails": ", ".join(row.billing_emails),
        "billing_address": row.billing_address, "purchase_order": row.purchase_order, "item_code": row.item_code,
        "item_name": row.item_name, "line_type": row.line_type, "period": row.period, "description": row.description,
        "quantity": row.quantity, "unit_price": row.unit_price, "amount": row.amount, "currency": row.currency,
        "invoice_number": row.invoice_number, "kind": row.kind, "issue_date": row.issue_date,
        "due_date": row.due_date, "tax_rate": plain(row.tax_rate), "taxable": "true" if row.taxable else "false",
    }


GENERIC = register_format(SyncFormat(
    name="generic", title="generic CSV",
    columns=("source", "partner", "customer", "customer_name", "billing_name", "billing_emails", "billing_address",
             "purchase_order", "item_code", "item_name", "line_type", "period", "description", "quantity",
             "unit_price", "amount", "currency", "invoice_number", "kind", "issue_date", "due_date", "tax_rate",
             "taxable"),
    cells=generic_cells,
))


def _address_lines(address: str, count: int = 4) -> list[str]:
    """A free-text address as `count` lines: its first lines, the rest joined onto the last."""
    lines = [line.strip() for line in address.splitlines() if line.strip()]
    head, rest = lines[:count - 1], lines[count - 1:]
    return [*head, ", ".join(rest)] + [""] * (count - 1 - len(head))


def xero_cells(row: ChargeRow, options: Mapping[str, str]) -> dict:
    quantity, rate = quantity_and_rate(row)
    po1, po2, po3, po4 = _address_lines(row.billing_address)
    return {
        "*ContactName": row.billing_name, "EmailAddress": row.billing_emails[0] if row.billing_emails else "",
        "POAddressLine1": po1, "POAddressLine2": po2, "POAddressLine3": po3, "POAddressLine4": po4,
        "*InvoiceNumber": row.invoice_number or "", "Reference": row.purchase_order,
        "*InvoiceDate": _date(row.issue_date, options), "*DueDate": _date(row.due_date, options),
        "InventoryItemCode": row.item_code if options["item_codes"] == "yes" else "",
        "*Description": row.description, "*Quantity": plain(quantity), "*UnitAmount": rate,
        "*AccountCode": options["account_code"],
        "*TaxType": tax_name(row, options["tax_type"], options["exempt_tax_type"]),
        "Currency": row.currency,
    }


XERO = register_format(SyncFormat(
    name="xero", title="Xero sales invoice import",
    columns=("*ContactName", "EmailAddress", "POAddressLine1", "POAddressLine2", "POAddressLine3", "POAddressLine4",
             "POCity", "PORegion", "POPostalCode", "POCountry", "*InvoiceNumber", "Reference", "*InvoiceDate",
             "*DueDate", "InventoryItemCode", "*Description", "*Quantity", "*UnitAmount", "Discount",
             "*AccountCode", "*TaxType", "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2",
             "Currency", "BrandingTheme"),
    cells=xero_cells,
    # Xero's own import page was not at hand: the header is its template's as partners' guides reproduce it
    source_url="https://xero-help.caltrix.asia/en/articles/12528333-how-to-import-sales-invoice-into-xero",
    # "200" is Sales in Xero's default chart of accounts; "Tax on Sales" and "Tax Exempt" are the default sales
    # and no-tax rates of a US organisation (https://help.xero.com/us/Tax-SetDefaults); Xero reads dates in the
    # organisation's order, day first outside the US
    options={"account_code": "200", "tax_type": "Tax on Sales", "exempt_tax_type": "Tax Exempt",
             "date_format": "dd/mm/yyyy", "item_codes": "yes"},
    choices={"date_format": tuple(DATE_FORMATS), "item_codes": ("yes", "no")},
))


def quickbooks_cells(row: ChargeRow, options: Mapping[str, str]) -> dict:
    quantity, rate = quantity_and_rate(row)
    return {
        "InvoiceNo": row.invoice_number or "", "Customer": row.billing_name,
        "InvoiceDate": _date(row.issue_date, options), "DueDate": _date(row.due_date, options),
        "Item(Product/Service)": row.item_name, "ItemDescription": row.description,
        "ItemQuantity": plain(quantity), "ItemRate": rate, "ItemAmount": row.amount,
        "ItemTaxCode": tax_name(row, options["tax_code"], options["exempt_tax_code"]),
    }


QUICKBOOKS = register_format(SyncFormat(
    name="quickbooks", title="QuickBooks Online invoice import",
    columns=("InvoiceNo", "Customer", "InvoiceDate", "DueDate", "Item(Product/Service)", "ItemDescription",
             "ItemQuantity", "ItemRate", "ItemAmount", "ItemTaxCode"),
    cells=quickbooks_cells,
    # Intuit's answer naming the headers its importer maps by itself (*Invoice number, *Customer, ...)
    source_url="https://quickbooks.intuit.com/learn-support/en-ca/sales-and-invoicing/do-we-need-to-map-field-"
               "everytime-when-import-invoices/01/394876",
    # TAX and NON are a US company's taxable and non-taxable codes; the importer asks for the date order, a US
    # company's month first
    options={"tax_code": "TAX", "exempt_tax_code": "NON", "date_format": "mm/dd/yyyy"},
    choices={"date_format": tuple(DATE_FORMATS)},
))


# --- reports ---------------------------------------------------------------------------------------------------
class CustomerChargesReport(Report):
    """`export_report customer-charges[-FORMAT] --month M [--partner P]`: the sync-out rows in one format, with
    the format's default options. A vendor's file is one partner's books: it needs --partner."""

    takes_month = True

    def __init__(self, fmt: SyncFormat):
        self.format = fmt
        self.name = "customer-charges" if fmt is GENERIC else f"customer-charges-{fmt.name}"
        self.columns = fmt.columns

    def check(self, options: ReportOptions) -> None:
        super().check(options)
        if options.month is None:
            raise ReportError(f"the {self.name} report needs --month YYYY-MM (the month the customers are billed)")
        if self.format is not GENERIC and not options.partner:
            raise ReportError(f"the {self.name} report needs --partner: a {self.format.title} file is one "
                              "partner's books")

    def rows(self, options: ReportOptions) -> Iterator[dict]:
        partners = (Partner.objects.filter(slug=options.partner) if options.partner
                    else partners_with_charges(options.month))
        for partner in partners:
            yield from self.format.rows(customer_charge_rows(partner, options.month))


for _fmt in (GENERIC, XERO, QUICKBOOKS):
    register_report(CustomerChargesReport(_fmt))

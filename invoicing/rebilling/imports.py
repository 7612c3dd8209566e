"""Rebilling's import kinds: `resale-prices` (billing-rules 12.3, import-formats 5.11), a partner's price lists
from a file, and `customer-payments` (billing-rules 12.10, import-formats 5.13), the payments its customers made.

Each row sets the price of one service (or own item, `item:CODE`) in the partner's default list (no customer)
or in one customer's list, from `effective_from` (today, UTC, when blank). It follows the engine's contract
(billing.core.importing): keys are resolved one query per batch, every bad row is reported as
`row N: column: reason`, and any bad row writes nothing. The rules are those of the portal's form
(invoicing.rebilling.services.resale_price_errors) and the writes those of resale_price_set
(price_writes, resale_prices_save), so importing the same file again changes nothing. The customer-payments kind
checks each row as the portal's form does (invoicing.rebilling.accounts.customer_payment_errors) and writes them
with customer_payments_save: a bank file imported again records nothing twice.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.utils import timezone
from import_export import resources
from import_export.fields import Field

from billing.core.importing import ImportContext, ImportKind, ParsedRow
from billing.core.money import quantize_money
from billing.core.periods import utc_date
from billing.core.registry import register_import
from billing.core.widgets import DateWidget, DecimalWidget, SlugWidget, TextWidget
from invoicing.models import AMOUNT
from invoicing.rebilling.accounts import customer_payment_errors, customer_payments_save
from invoicing.rebilling.models import CustomerInvoice, CustomerPayment, ResaleItem, ResalePrice
from invoicing.rebilling.pricing import AMOUNT_FIELDS, mode_of
from invoicing.rebilling.resources import ResalePriceResource
from invoicing.rebilling.services import price_writes, resale_price_errors, resale_prices_save
from partners.lookups import customers_by_key, partners_by_slug, services_by_key
from partners.models import Customer

ITEM_PREFIX = "item:"
ONE_MODE = ("give one way of pricing: unit_price; package_units and package_price (with unit_price for each unit "
            "above); markup_percent; or tiers")


def _digest(value) -> int:
    return int.from_bytes(hashlib.blake2b(repr(value).encode(), digest_size=8).digest(), "big")


def _by_value(value):
    """A cell as compared between two rows of a file: numbers by value (35 and 35.00 are one price)."""
    return value.normalize() if isinstance(value, Decimal) else value


@register_import
class ResalePricesImport(ImportKind):
    """Resale prices, keyed by (partner, customer, service, effective_from): a new key adds a price from its
    date, a known key changes that day's price, and a row equal to the price already in force changes nothing.
    A customer's row with no price column filled returns that customer to the default list from its date."""

    name = "resale-prices"
    resource_class = ResalePriceResource
    required_columns = ("partner", "service")

    def process_batch(self, batch: list[ParsedRow], ctx: ImportContext) -> None:
        today = utc_date(timezone.now())
        seen: dict[int, tuple[int, int]] = ctx.state.setdefault("seen", {})
        rows = []
        for row in batch:
            v = row.values
            key = _digest((v["partner"], v["customer"], v["service"], v["effective_from"] or today))
            signature = _digest(sorted((k, repr(_by_value(value))) for k, value in v.items()))
            if key in seen:
                first_row, first_signature = seen[key]
                if first_signature != signature:
                    ctx.error(row.number, "service", f"same partner, customer, service and effective_from as row "
                                                     f"{first_row} with different prices")
                else:
                    ctx.unchanged += 1
                continue
            seen[key] = (row.number, signature)
            rows.append(row)
        partners = partners_by_slug(r.values["partner"] for r in rows)
        customers = customers_by_key((r.values["partner"], r.values["customer"]) for r in rows if r.values["customer"])
        services = services_by_key((r.values["partner"], r.values["service"]) for r in rows
                                   if not r.values["service"].startswith(ITEM_PREFIX))
        items = {(i.partner.slug, i.code): i for i in ResaleItem.objects.filter(
            partner__slug__in={r.values["partner"] for r in rows},
            code__in={r.values["service"].removeprefix(ITEM_PREFIX) for r in rows
                      if r.values["service"].startswith(ITEM_PREFIX)}).select_related("partner")}
        prices = []
        for row in rows:
            price = self._price(row, ctx, today, partners, customers, services, items)
            if price is None:
                continue
            errors = resale_price_errors(price)
            for column, reason in errors.items():
                ctx.error(row.number, column, reason)
            if not errors:
                prices.append(price)
        writes = []
        for outcome, write in price_writes(prices):
            if outcome == "created":
                ctx.created += 1
            elif outcome == "updated":
                ctx.updated += 1
            else:
                ctx.unchanged += 1
            if write is not None:
                writes.append(write)
        if writes and ctx.ok:  # a bad row anywhere writes nothing: spare the writes, keep validating
            resale_prices_save(writes=writes, actor=ctx.actor, source=ctx.source, file=ctx.source)

    @staticmethod
    def _price(row: ParsedRow, ctx: ImportContext, today, partners, customers, services, items):
        """The row as an unsaved price, or None with its errors reported."""
        v = row.values
        partner = partners.get(v["partner"])
        if partner is None:
            ctx.error(row.number, "partner", f"unknown partner {v['partner']!r}")
            return None
        customer = None
        if v["customer"]:
            customer = customers.get((partner.slug, v["customer"]))
            if customer is None:
                ctx.error(row.number, "customer", f"unknown customer {v['customer']!r} of partner {partner.slug}")
                return None
        service = item = None
        if v["service"].startswith(ITEM_PREFIX):
            item = items.get((partner.slug, v["service"].removeprefix(ITEM_PREFIX)))
            if item is None:
                ctx.error(row.number, "service", f"unknown own item {v['service'].removeprefix(ITEM_PREFIX)!r} of "
                                                 f"partner {partner.slug}")
                return None
        else:
            service = services.get((partner.slug, v["service"]))
            if service is None:
                ctx.error(row.number, "service", f"unknown service {v['service']!r} of partner {partner.slug} (an own "
                                                 f"item is written item:CODE)")
                return None
        mode = mode_of(v)
        if mode is None:
            given = [name for name in AMOUNT_FIELDS if v.get(name) not in (None, "")]
            ctx.error(row.number, given[-1], ONE_MODE)
            return None
        return ResalePrice(partner=partner, customer=customer, service=service, item=item, mode=mode,
                           effective_from=v["effective_from"] or today,
                           **{name: v[name] for name in (*AMOUNT_FIELDS, "tier_mode")})


# --- customer-payments ---------------------------------------------------------------------------------------------
class PlainAmountWidget(DecimalWidget):
    """An amount as a plain decimal (1234.50): a bank export's "1,234.50" (or a decimal comma, "1234,50") is
    refused rather than guessed, as the comma means a thousands separator in one locale and the point in
    another. The sign and the places are the payment's rules (customer_payment_errors), not the cell's."""

    def __init__(self, **kwargs):
        super().__init__(min_value=None, max_digits=AMOUNT["max_digits"] - AMOUNT["decimal_places"], **kwargs)

    def clean(self, value, row=None, **kwargs):
        if "," in str(value):
            raise ValueError(f"{value!r} is not a plain decimal: write 1234.50, with no thousands separator and a "
                             "point before the cents")
        return super().clean(value, row, **kwargs)


class CurrencyWidget(TextWidget):
    def clean(self, value, row=None, **kwargs):
        text = super().clean(value, row, **kwargs).upper()
        if text and not (len(text) == 3 and text.isalpha()):
            raise ValueError(f"{text!r} is not a currency code (three letters: USD, EUR)")
        return text


class CustomerPaymentResource(resources.ModelResource):
    """The columns of `import_csv customer-payments`: `invoice` names one of the customer's invoices by number,
    when the customer said what it paid; blank `currency` is the partner's."""

    partner = Field(attribute="partner__slug", column_name="partner", widget=SlugWidget())
    customer = Field(attribute="customer__slug", column_name="customer", widget=SlugWidget())
    date = Field(attribute="received_on", column_name="date", widget=DateWidget())
    amount = Field(attribute="amount", column_name="amount", widget=PlainAmountWidget())
    currency = Field(attribute="currency", column_name="currency", widget=CurrencyWidget(max_length=40), default="")
    reference = Field(attribute="reference", column_name="reference", widget=TextWidget(max_length=200), default="")
    method = Field(attribute="method", column_name="method", widget=TextWidget(max_length=60), default="")
    invoice = Field(attribute="invoice__number", column_name="invoice", widget=TextWidget(max_length=24), default="")
    note = Field(attribute="note", column_name="note", widget=TextWidget(max_length=300), default="")

    class Meta:
        model = CustomerPayment
        fields = ("partner", "customer", "date", "amount", "currency", "reference", "method", "invoice", "note")
        import_id_fields = ()


@register_import
class CustomerPaymentsImport(ImportKind):
    """Payments a partner's customers made to it (billing-rules 12.10), from the partner's bank export or its own
    list: each one a payment transaction on the customer's account, optionally against one of its invoices.

    A payment is (customer, date, amount, reference): a row equal to a payment already recorded is `unchanged`,
    so a bank file can be imported again; identical rows of one file are one payment. Two rows of one file with
    that key and anything else different are two payments the file cannot tell apart: a row error (give each
    its own reference), never one of them dropped in silence. Every rule is the portal form's
    (`customer_payment_errors`); the writes are `customer_payments_save`'s (the transaction, the audit row)."""

    name = "customer-payments"
    resource_class = CustomerPaymentResource
    required_columns = ("partner", "customer", "date", "amount")

    def process_batch(self, batch: list[ParsedRow], ctx: ImportContext) -> None:
        today = utc_date(timezone.now())
        partners = partners_by_slug(r.values["partner"] for r in batch)
        customers = self._customers(batch)
        invoices = {i.number: i for i in CustomerInvoice.objects.filter(
            number__in={r.values["invoice"].upper() for r in batch if r.values["invoice"]})
            .select_related("partner", "customer")}
        seen: dict[int, tuple[int, int]] = ctx.state.setdefault("seen", {})
        payments = []
        for row in batch:
            payment = self._payment(row, ctx, partners, customers, invoices)
            if payment is None:
                continue
            errors = customer_payment_errors(payment, today=today)
            for column, reason in errors.items():
                ctx.error(row.number, column, reason)
            if errors:
                continue
            payment.currency = payment.currency or payment.partner.currency
            payment.amount = quantize_money(payment.amount, payment.currency)  # 50 is 50.00, as stored
            key = _digest((payment.customer_id, payment.received_on, payment.amount, payment.reference))
            signature = _digest((payment.invoice_id, payment.method, payment.note, payment.currency))
            if key in seen:
                first_row, first_signature = seen[key]
                if first_signature != signature:
                    ctx.error(row.number, "reference", f"same customer, date, amount and reference as row {first_row} "
                                                       "with other details: give each payment its own reference")
                else:
                    ctx.unchanged += 1
                continue
            seen[key] = (row.number, signature)
            payments.append(payment)
        if not payments or not ctx.ok:  # a bad row anywhere writes nothing: spare the writes, keep validating
            ctx.created += len(payments)
            return
        recorded, already = customer_payments_save(payments, actor=ctx.actor)
        ctx.created += len(recorded)
        ctx.unchanged += already

    @staticmethod
    def _customers(batch: list[ParsedRow]) -> dict[tuple[str, str], Customer]:
        """The rows' customers by (partner, slug), and a slug the partner has no customer of under ("", slug):
        another partner's, which the checks name as such (not a customer of this partner)."""
        found = customers_by_key((r.values["partner"], r.values["customer"]) for r in batch)
        missing = {r.values["customer"] for r in batch if (r.values["partner"], r.values["customer"]) not in found}
        if missing:
            for customer in Customer.objects.filter(slug__in=missing).select_related("partner").order_by("pk"):
                found.setdefault(("", customer.slug), customer)
        return found

    @staticmethod
    def _payment(row: ParsedRow, ctx: ImportContext, partners, customers, invoices) -> CustomerPayment | None:
        """The row as an unsaved payment, or None with its errors reported."""
        v = row.values
        partner = partners.get(v["partner"])
        if partner is None:
            ctx.error(row.number, "partner", f"unknown partner {v['partner']!r}")
            return None
        customer = customers.get((partner.slug, v["customer"])) or customers.get(("", v["customer"]))
        if customer is None:
            ctx.error(row.number, "customer", f"unknown customer {v['customer']!r} of partner {partner.slug}")
            return None
        invoice = None
        if v["invoice"]:
            invoice = invoices.get(v["invoice"].upper())
            if invoice is None:
                ctx.error(row.number, "invoice", f"unknown customer invoice {v['invoice']!r}")
                return None
        return CustomerPayment(partner=partner, customer=customer, invoice=invoice, received_on=v["date"],
                               amount=v["amount"], currency=v["currency"], reference=v["reference"],
                               method=v["method"], note=v["note"], source=ctx.source[:100])

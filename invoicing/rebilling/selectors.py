"""Reads of price lists (billing-rules 12.1): the prices in force on a day for every customer of many partners at
once, in one query whatever the number of customers and prices.

The price of a service (or own item) for a customer on day D is the customer's own row in force on D, else
the default list's: a row is in force from its `effective_from` until the next row of the same list and
service. A customer's row in the mode `default` sends it back to the default list from its date. A month is
charged at the prices in force on its 1st (`resale_price_lists_for_month`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber

from billing.core.periods import Period
from invoicing.choices import LineType
from invoicing.rebilling.accounts import AccountSummary, account_summary
from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.documents import issuer_snapshot, recipient_snapshot
from invoicing.rebilling.models import (
    CustomerBillingProfile,
    CustomerInvoice,
    RebillingProfile,
    ResaleItem,
    ResalePrice,
)
from invoicing.rebilling.pricing import margin_per_unit
from invoicing.rebilling.text import METHOD_UNITS, money_text, price_text
from partners.models import Service
from partners.terms import TermsBook

Target = tuple[str, int]  # ("service", id) or ("item", id): what a price prices


@dataclass
class PriceList:
    """A partner's prices in force on `day`: its default list, and each customer's own rows (those of the mode
    `default` included, which `for_customer` reads as "the default list's price")."""

    partner_id: int
    day: date
    default: dict[Target, ResalePrice] = field(default_factory=dict)
    overrides: dict[int, dict[Target, ResalePrice]] = field(default_factory=dict)

    def for_customer(self, customer_id: int) -> dict[Target, ResalePrice]:
        """Every price the customer is charged on the day: its own where it has one, else the default list's."""
        prices = dict(self.default)
        for target, row in self.overrides.get(customer_id, {}).items():
            if row.mode != ResaleMode.DEFAULT:
                prices[target] = row
        return prices

    def price(self, customer_id: int | None, target: Target) -> ResalePrice | None:
        """The price of one service or item for a customer (None: the default list's), or None when unpriced."""
        if customer_id is not None:
            own = self.overrides.get(customer_id, {}).get(target)
            if own is not None and own.mode != ResaleMode.DEFAULT:
                return own
        return self.default.get(target)


def resale_price_lists(partner_ids: Iterable[int], day: date) -> dict[int, PriceList]:
    """{partner id: its PriceList on `day`} for every partner given (an empty list when it has no price), in
    one query: the latest row on or before `day` of each list and service."""
    ids = sorted(set(partner_ids))
    lists = {pk: PriceList(partner_id=pk, day=day) for pk in ids}
    latest = (
        ResalePrice.objects.filter(partner_id__in=ids, effective_from__lte=day)
        .annotate(rank=Window(RowNumber(), partition_by=[F("partner_id"), F("customer_id"), F("service_id"),
                                                         F("item_id")], order_by=F("effective_from").desc()))
        .filter(rank=1).select_related("service", "item")
    )
    for row in latest:
        price_list = lists[row.partner_id]
        if row.customer_id is None:
            price_list.default[row.target] = row
        else:
            price_list.overrides.setdefault(row.customer_id, {})[row.target] = row
    return lists


def resale_price_list(partner_id: int, day: date) -> PriceList:
    return resale_price_lists([partner_id], day)[partner_id]


def resale_price_lists_for_month(partner_ids: Iterable[int], period: Period) -> dict[int, PriceList]:
    """The prices a month is charged at: those in force on its 1st (billing-rules 12.1)."""
    return resale_price_lists(partner_ids, period.first)


def resale_prices_scheduled(partner_id: int, day: date):
    """The partner's rows that take effect after `day`: changes set in advance, which can still be cancelled."""
    return (ResalePrice.objects.filter(partner_id=partner_id, effective_from__gt=day)
            .select_related("customer", "service", "item").order_by("effective_from", "customer__name", "pk"))


def resale_items(partner_id: int):
    return ResaleItem.objects.filter(partner_id=partner_id).order_by("name", "code")


# --- the portal's price list ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceRow:
    """One line of a price list as the portal shows it: a service we bill the partner for (with what it costs
    the partner on the day) or one of its own items, and the price in force for the list shown."""

    key: str  # "service:ID" or "item:ID", the form's value
    name: str
    code: str
    unit: str
    scope: str  # a customer-level service's customer ("" for the others)
    cost: Decimal | None  # our unit price on the day (None: an own item, or tiers)
    cost_text: str
    price: ResalePrice | None  # in force on the day for the list (None: not priced)
    inherited: bool  # a customer's list showing the default list's price
    price_text: str
    margin: Decimal | None


def price_list_rows(partner, customer, day: date) -> list[PriceRow]:
    """The services in force on `day` (for a customer: those covering it) and the partner's own items, each with
    our price then and the price in force for the default list (`customer` None) or the customer's list."""
    currency = partner.currency
    services = Service.objects.filter(partner=partner).active_on(day).select_related("customer").order_by(
        "name", "code")
    if customer is not None:
        services = services.filter(Q(customer__isnull=True) | Q(customer=customer))
    services = list(services)
    book = TermsBook(services)
    price_list = resale_price_list(partner.pk, day)
    rows = []
    for service in services:
        dated = book.on(service, day)
        unit = METHOD_UNITS.get(service.method, "unit")
        cost = None if dated.tiers else dated.unit_price.amount
        cost_text = (f"tiers {dated.tiers} ({dated.tier_mode})" if dated.tiers
                     else f"{money_text(dated.unit_price.amount, currency)} per {unit}")
        rows.append(_row(("service", service.pk), service.name, service.code, unit,
                         service.customer.name if service.customer_id else "", cost, cost_text, price_list, customer,
                         currency))
    for item in resale_items(partner.pk):
        rows.append(_row(("item", item.pk), item.name, item.code, item.unit or "unit", "", None, "your own item",
                         price_list, customer, currency))
    return rows


def _row(target, name, code, unit, scope, cost, cost_text, price_list: PriceList, customer, currency) -> PriceRow:
    price = price_list.price(customer.pk if customer else None, target)
    inherited = customer is not None and price is not None and price.customer_id is None
    terms = price.terms if price is not None else None
    return PriceRow(
        key=f"{target[0]}:{target[1]}", name=name, code=code, unit=unit, scope=scope, cost=cost,
        cost_text=cost_text, price=price, inherited=inherited,
        price_text=price_text(price, currency, unit) if price is not None else "",
        margin=margin_per_unit(terms, cost) if terms is not None else None,
    )


def resale_price_history(partner_id: int, customer_id: int | None, *, limit: int = 50):
    """Every row of one list (the default list: `customer_id` None), latest first: the history the portal shows."""
    return (ResalePrice.objects.filter(partner_id=partner_id, customer_id=customer_id)
            .select_related("customer", "service", "item").order_by("-effective_from", "-pk")[:limit])


def customers_with_own_prices(partner_id: int) -> dict[int, int]:
    """{customer id: the number of its own price rows}: which customers have a list of their own."""
    return dict(ResalePrice.objects.filter(partner_id=partner_id, customer__isnull=False).order_by()
                .values_list("customer_id").annotate(n=Count("id")))


# --- customer invoices (billing-rules 12.5) --------------------------------------------------------------------
def customer_invoice_document(invoice) -> dict:
    """Everything a customer invoice's PDF shows: the issuer and recipient kept when it was issued (a draft's as
    they stand now), its charges and taxes, and the account summary when the partner's Customer Billing is on
    (its previous balance, credits, payments and amount due: invoicing.rebilling.accounts)."""
    profile = RebillingProfile.objects.filter(partner_id=invoice.partner_id).select_related("partner").first()
    issuer = invoice.issuer or (issuer_snapshot(profile) if profile else {"legal_name": invoice.partner.name})
    billing = CustomerBillingProfile.objects.filter(customer_id=invoice.customer_id).first()
    lines = list(invoice.lines.select_related("service", "item").order_by("position", "pk"))
    return {
        "invoice": invoice,
        "issuer": issuer,
        "recipient": invoice.recipient or recipient_snapshot(invoice.customer, billing),
        "issuer_logo": _logo_url(issuer.get("logo")),
        "title": "Credit note" if invoice.is_credit_note else "Invoice",
        "number": invoice.number or "DRAFT",
        "is_draft": not invoice.is_issued,
        "currency": invoice.currency,
        "charges": [line for line in lines if line.line_type != LineType.TAX],
        "taxes": [line for line in lines if line.line_type == LineType.TAX],
        "credited": invoice.credits if invoice.is_credit_note else None,
        "terms_days": (invoice.due_date - invoice.issue_date).days,
        "account": _account(invoice, profile),
    }


def _account(invoice, profile) -> AccountSummary | None:
    """The account summary printed (billing-rules 12.8): the one kept when it was issued (None: Customer Billing
    was off then); a draft's as the account stands, when the partner's Customer Billing is on now."""
    if invoice.is_credit_note:
        return None
    if invoice.is_issued:
        return AccountSummary.of_json(invoice.account) if invoice.account else None
    return account_summary(invoice) if profile is not None and profile.customer_billing else None


def _logo_url(name: str | None) -> str:
    """A logo as a file URL WeasyPrint reads ("" without one, or when the file is gone)."""
    if not name:
        return ""
    path = Path(settings.MEDIA_ROOT) / name
    return path.as_uri() if path.is_file() else ""


def customer_invoices(*, partner_slug: str | None = None, month: Period | None = None):
    """Issued customer invoices (credit notes included), by issue date and number: the exports' rows."""
    invoices = CustomerInvoice.objects.issued().select_related("partner", "customer")
    if partner_slug:
        invoices = invoices.filter(partner__slug=partner_slug)
    if month:
        invoices = invoices.filter(issue_date__gte=month.first, issue_date__lte=month.last)
    return invoices.order_by("issue_date", "number")

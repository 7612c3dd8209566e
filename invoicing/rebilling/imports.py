"""The resale-prices import kind (billing-rules 12.3, import-formats 5.11): a partner's price lists from a file.

Each row sets the price of one service (or own item, `item:CODE`) in the partner's default list (no customer)
or in one customer's list, from `effective_from` (today, UTC, when blank). It follows the engine's contract
(billing.core.importing): keys are resolved one query per batch, every bad row is reported as
`row N: column: reason`, and any bad row writes nothing. The rules are those of the portal's form
(invoicing.rebilling.services.resale_price_errors) and the writes those of resale_price_set
(price_writes, resale_prices_save), so importing the same file again changes nothing.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.utils import timezone

from billing.core.importing import ImportContext, ImportKind, ParsedRow
from billing.core.periods import utc_date
from billing.core.registry import register_import
from invoicing.rebilling.models import ResaleItem, ResalePrice
from invoicing.rebilling.pricing import AMOUNT_FIELDS, mode_of
from invoicing.rebilling.resources import ResalePriceResource
from invoicing.rebilling.services import price_writes, resale_price_errors, resale_prices_save
from partners.lookups import customers_by_key, partners_by_slug, services_by_key

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

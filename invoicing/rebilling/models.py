"""Resale price lists (billing-rules 12): what a partner charges its own customers for the services it buys from
us and for its own extra items.

A price list is rows of `ResalePrice`, each the price of one service or own item from a date: the partner's
default list (no customer) and its overrides for single customers. History is kept as rows: a change is a new
row from its `effective_from`, and the row in force on a day is the latest one from that day or before
(`invoicing.rebilling.selectors`). Nothing else is stored about a row's end: the next row ends it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.pricing import ResaleTerms
from partners.choices import TierMode
from partners.models import Customer, Partner, Service, slug_validator

PRICE = {"max_digits": settings.PRICE_MAX_DIGITS, "decimal_places": settings.PRICE_DECIMAL_PLACES}


class ResaleItem(models.Model):
    """Something the partner sells its customers that it does not buy from us (its own helpdesk hours, a
    hardware rental): priced only by its price lists, and billed from the quantities the partner records."""

    # no index of its own: resale_item_unique_code begins with it
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, db_index=False, related_name="resale_items")
    code = models.SlugField(max_length=64, validators=[slug_validator],
                            help_text="the item's key in files: lower-case letters, digits, - and _")
    name = models.CharField(max_length=200)
    unit = models.CharField("unit", max_length=40, blank=True, help_text="what one unit is: user, hour, device")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["partner__name", "name"]
        verbose_name = "own item"
        constraints = [models.UniqueConstraint(fields=["partner", "code"], name="resale_item_unique_code")]

    def __str__(self):
        return f"{self.name} [{self.code}]"


def _only(*names: str) -> Q:
    """The amount fields other than `names` are blank."""
    blank = {"unit_price": Q(unit_price__isnull=True), "markup_percent": Q(markup_percent__isnull=True),
             "package_units": Q(package_units__isnull=True), "package_price": Q(package_price__isnull=True),
             "tiers": Q(tiers="")}
    given = {"unit_price": Q(unit_price__isnull=False), "markup_percent": Q(markup_percent__isnull=False),
             "package_units": Q(package_units__isnull=False), "package_price": Q(package_price__isnull=False),
             "tiers": ~Q(tiers="")}
    condition = Q()
    for field in blank:
        condition &= given[field] if field in names else blank[field]
    return condition


class ResalePrice(models.Model):
    """The price of one service (or own item) in a partner's default list (`customer` blank) or in one
    customer's list, from `effective_from` until the next row of the same list and service (billing-rules 12.1).

    The mode says which amounts are used (invoicing.rebilling.pricing has the rule and the checks); the
    database holds the same rules as constraints, so no door (admin, shell, a later app) writes a row that
    cannot price."""

    # no index of its own: resale_price_partner_day begins with it
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, db_index=False, related_name="resale_prices")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="resale_prices", help_text="blank: the partner's default list")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="resale_prices", help_text="one of our services the partner resells")
    item = models.ForeignKey(ResaleItem, on_delete=models.PROTECT, null=True, blank=True, related_name="prices",
                             verbose_name="own item", help_text="or one of the partner's own items")
    mode = models.CharField(max_length=10, choices=ResaleMode.choices)
    unit_price = models.DecimalField(**PRICE, null=True, blank=True,
                                     help_text="per unit; for a package, each unit above it")
    markup_percent = models.DecimalField("markup (%)", max_digits=7, decimal_places=3, null=True, blank=True,
                                         help_text="percent added to our unit price")
    package_units = models.PositiveIntegerField(null=True, blank=True, help_text="units the package covers")
    package_price = models.DecimalField(**PRICE, null=True, blank=True, help_text="the price of the package")
    tiers = models.CharField(max_length=500, blank=True, help_text="UP_TO:PRICE;...;inf:PRICE")
    tier_mode = models.CharField(max_length=10, choices=TierMode.choices, default=TierMode.VOLUME)
    effective_from = models.DateField(help_text="the first day this price is in force")
    source = models.CharField(max_length=100, blank=True, help_text="portal, or the file it was imported from")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["partner__name", "customer_id", "service_id", "item_id", "-effective_from"]
        verbose_name = "resale price"
        indexes = [models.Index(fields=["partner", "effective_from"], name="resale_price_partner_day")]
        constraints = [
            models.CheckConstraint(
                condition=Q(service__isnull=False, item__isnull=True) | Q(service__isnull=True, item__isnull=False),
                name="resale_price_one_service_or_item"),
            models.CheckConstraint(
                condition=(Q(mode=ResaleMode.UNIT) & _only("unit_price"))
                | (Q(mode=ResaleMode.MARKUP, service__isnull=False) & _only("markup_percent"))
                | (Q(mode=ResaleMode.PACKAGE) & _only("package_units", "package_price", "unit_price"))
                | (Q(mode=ResaleMode.TIERS) & _only("tiers"))
                | (Q(mode=ResaleMode.DEFAULT, customer__isnull=False) & _only()),
                name="resale_price_mode_fields"),
            models.CheckConstraint(
                condition=(Q(unit_price__isnull=True) | Q(unit_price__gte=0))
                & (Q(package_price__isnull=True) | Q(package_price__gte=0))
                & (Q(markup_percent__isnull=True) | Q(markup_percent__gte=0))
                & (Q(package_units__isnull=True) | Q(package_units__gte=1)),
                name="resale_price_amounts_in_range"),
            # one row per list, service (or item) and day; a NULL customer, service or item is its own case, as
            # a unique index sees two NULLs as different
            models.UniqueConstraint(fields=["partner", "service", "effective_from"],
                                    condition=Q(customer__isnull=True, service__isnull=False),
                                    name="resale_price_unique_default_service_day"),
            models.UniqueConstraint(fields=["partner", "item", "effective_from"],
                                    condition=Q(customer__isnull=True, item__isnull=False),
                                    name="resale_price_unique_default_item_day"),
            models.UniqueConstraint(fields=["customer", "service", "effective_from"],
                                    condition=Q(customer__isnull=False, service__isnull=False),
                                    name="resale_price_unique_customer_service_day"),
            models.UniqueConstraint(fields=["customer", "item", "effective_from"],
                                    condition=Q(customer__isnull=False, item__isnull=False),
                                    name="resale_price_unique_customer_item_day"),
        ]

    def __str__(self):
        target = self.service or self.item
        list_name = self.customer.name if self.customer_id else "default list"
        return f"{target} for {list_name} from {self.effective_from}"

    @property
    def target(self) -> tuple[str, int]:
        """What the row prices: ("service", id) or ("item", id)."""
        return ("service", self.service_id) if self.service_id else ("item", self.item_id)

    @property
    def target_name(self) -> str:
        """The name of the service or own item priced."""
        return self.service.name if self.service_id else self.item.name

    @property
    def terms(self) -> ResaleTerms:
        """The row as the pure pricing module reads it."""
        return ResaleTerms.of(mode=self.mode, unit_price=self.unit_price, markup_percent=self.markup_percent,
                              package_units=self.package_units, package_price=self.package_price,
                              tiers=self.tiers, tier_mode=self.tier_mode)

    def amounts(self) -> dict:
        """The fields the mode uses and the rest, as the services compare and audit them."""
        return {"mode": self.mode, "unit_price": self.unit_price, "markup_percent": self.markup_percent,
                "package_units": self.package_units, "package_price": self.package_price, "tiers": self.tiers,
                "tier_mode": self.tier_mode}

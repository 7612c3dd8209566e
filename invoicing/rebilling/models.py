"""Resale price lists (billing-rules 12): what a partner charges its own customers for the services it buys from
us and for its own extra items.

A price list is rows of `ResalePrice`, each the price of one service or own item from a date: the partner's
default list (no customer) and its overrides for single customers. History is kept as rows: a change is a new
row from its `effective_from`, and the row in force on a day is the latest one from that day or before
(`invoicing.rebilling.selectors`). Nothing else is stored about a row's end: the next row ends it.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from billing.core.emails import split_emails
from billing.core.usage_meters import meter_pattern_error
from invoicing.choices import InvoiceKind, InvoiceState, LineType
from invoicing.models import (
    AMOUNT,
    MUTABLE_WHEN_ISSUED,
    QUANTITY,
    IssuedDocumentMixin,
    IssuedGuardQuerySet,
    IssuedInvoiceError,
    IssuedPartMixin,
)
from invoicing.rebilling.choices import CustomerInvoiceKind, ResaleMode, TransactionKind, UnbilledReason
from invoicing.rebilling.pricing import ResaleTerms
from partners.choices import TierMode
from partners.models import Customer, Partner, Service, slug_validator

PRICE = {"max_digits": settings.PRICE_MAX_DIGITS, "decimal_places": settings.PRICE_DECIMAL_PLACES}


def usage_meter_validator(value: str) -> None:
    if value and (error := meter_pattern_error(value)):
        raise ValidationError(error)


class ResaleItem(models.Model):
    """Something the partner sells its customers that it does not buy from us (its own helpdesk hours, a
    hardware rental): priced only by its price lists, and billed from the quantities the partner records."""

    # no index of its own: resale_item_unique_code begins with it
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, db_index=False, related_name="resale_items")
    code = models.SlugField(max_length=64, validators=[slug_validator],
                            help_text="the item's key in files: lower-case letters, digits, - and _")
    name = models.CharField(max_length=200)
    unit = models.CharField("unit", max_length=40, blank=True, help_text="what one unit is: user, hour, device")
    meter = models.CharField(
        max_length=100, blank=True, validators=[usage_meter_validator],
        help_text="a usage-record meter that gives each customer's monthly quantity (call_minutes:outbound:*, "
                  "meeting_minutes…); blank: not billed from a meter")
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


# --- customer invoices (billing-rules 12.4-12.8) --------------------------------------------------------------
prefix_validator = RegexValidator(
    r"^[A-Z][A-Z0-9]{1,9}$", "2 to 10 capital letters and digits, beginning with a letter (e.g. NWIT)")
RESERVED_PREFIXES = frozenset(InvoiceKind.values)  # our own numbers' (CI-0001): never a partner's


class RebillingProfile(models.Model):
    """A partner's rebilling settings (billing-rules 12.4): whether its customers get invoices from it, how they
    are numbered, who issues them (the partner's legal details and logo, printed as the issuer) and how they are
    delivered. A blank legal name, address or tax id prints the partner's own (its name, billing address, tax
    id)."""

    partner = models.OneToOneField(Partner, on_delete=models.PROTECT, related_name="rebilling_profile")
    enabled = models.BooleanField("rebilling on", default=False,
                                  help_text="the billing run issues invoices to this partner's customers")
    number_prefix = models.CharField(
        max_length=10, unique=True, validators=[prefix_validator],
        help_text="the customer invoices' numbers begin with it: NWIT-0001 (credit notes NWIT-CN-0001)")
    legal_name = models.CharField(max_length=200, blank=True, help_text="blank: the partner's name")
    address = models.TextField(blank=True, help_text="blank: the partner's billing address")
    tax_id = models.CharField("tax ID", max_length=60, blank=True, help_text="blank: the partner's tax ID")
    email = models.EmailField(blank=True, help_text="printed: where customers ask about their invoices")
    phone = models.CharField(max_length=40, blank=True)
    website = models.CharField(max_length=200, blank=True)
    bank_details = models.TextField(blank=True, help_text="how customers pay the partner")
    invoice_footer = models.TextField(blank=True, help_text="printed at the end of every customer invoice")
    logo = models.ImageField(upload_to="rebilling/logos/", blank=True, help_text="PNG or JPEG, printed 18 mm high")
    payment_terms_days = models.PositiveIntegerField("payment terms (days)", default=30,
                                                     help_text="days the partner's customers have to pay")
    email_invoices = models.BooleanField(
        "email customer invoices", default=False,
        help_text="email each issued customer invoice to the customer's billing emails")
    review_drafts = models.BooleanField(
        "draft for review", default=False,
        help_text="the run drafts customer invoices instead of issuing them; the partner issues them")
    customer_billing = models.BooleanField(
        "Customer Billing", default=False,
        help_text="customer invoices show the account (previous balance, credits, payments, amount due); "
                  "off: new charges only")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "rebilling profile"

    def __str__(self):
        return f"{self.partner.name}: rebilling {'on' if self.enabled else 'off'} ({self.number_prefix})"

    def clean(self):
        if self.number_prefix in RESERVED_PREFIXES:
            raise ValidationError({"number_prefix": f"{self.number_prefix} is our own invoices' prefix"})


class CustomerBillingProfile(models.Model):
    """A customer as its partner invoices it (billing-rules 12.4): the legal details printed as the recipient, its
    tax rate on the partner's invoices, and who receives them. A customer without one is invoiced under its name
    with no tax."""

    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="billing_profile")
    legal_name = models.CharField(max_length=200, blank=True, help_text="blank: the customer's name")
    address = models.TextField(blank=True, help_text="printed on its invoices; one line per line")
    tax_id = models.CharField("tax ID", max_length=60, blank=True)
    purchase_order = models.CharField("purchase order", max_length=100, blank=True)
    # a percent, refused above 100 as a partner's rate is (partners.services.partner_errors, the partner admin:
    # "is a percent: at most 100"); like the partner's, no database constraint
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("0"),
                                   validators=[MinValueValidator(Decimal("0")),
                                               MaxValueValidator(Decimal("100"), "is a percent: at most 100")],
                                   help_text="percent, e.g. 8.25")
    billing_emails = models.TextField(blank=True, help_text="who receives its invoices, separated by commas")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "customer billing profile"

    def __str__(self):
        return f"{self.customer.name} (billing profile)"

    @property
    def billing_contacts(self) -> list[str]:
        return split_emails(self.billing_emails)


class CustomerInvoiceSequence(models.Model):
    """The last number used per partner and kind: locked while numbers are taken, so each partner's customer
    invoices (and credit notes) are numbered without gaps (a rolled-back issue gives its numbers back)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, db_index=False, related_name="+")
    kind = models.CharField(max_length=12, choices=CustomerInvoiceKind.choices)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "kind"], name="customer_sequence_unique")]

    def __str__(self):
        return f"{self.partner_id}/{self.kind}: {self.last}"


class CustomerInvoiceQuerySet(IssuedGuardQuerySet):
    mutable = MUTABLE_WHEN_ISSUED
    noun = "issued customer invoices"

    def issued(self):
        return self.filter(state=InvoiceState.ISSUED)


class CustomerInvoiceLineQuerySet(IssuedGuardQuerySet):
    state_path = "invoice__state"
    noun = "lines of issued customer invoices"


class CustomerInvoice(IssuedDocumentMixin, models.Model):
    """An invoice (or a credit note) from a partner to one of its customers (billing-rules 12.5): numbered in the
    partner's own sequence, with the partner as issuer and the customer as recipient as they stood when it was
    issued, and the customer's tax rate. Issued by the billing run after the partner's own documents: a monthly
    invoice after the partner's CI of the month (dated its 1st), a first-month invoice after the partner's INV of
    a service starting after a 1st (dated the start date). Never changed once issued."""

    # no index of its own: customer_invoice_partner_date begins with it
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, db_index=False, related_name="customer_invoices")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices_from_partner")
    kind = models.CharField(max_length=12, choices=CustomerInvoiceKind.choices, default=CustomerInvoiceKind.INVOICE)
    number = models.CharField(max_length=24, null=True, blank=True, unique=True)
    state = models.CharField(max_length=10, choices=InvoiceState.choices, default=InvoiceState.DRAFT)
    month = models.CharField(max_length=7, help_text="the month it bills, YYYY-MM")
    issue_date = models.DateField()
    due_date = models.DateField()
    currency = models.CharField(max_length=3)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("0"))
    subtotal = models.DecimalField(**AMOUNT, default=Decimal("0"))
    tax_amount = models.DecimalField(**AMOUNT, default=Decimal("0"))
    total = models.DecimalField(**AMOUNT, default=Decimal("0"))
    # the partner's document it follows (its CI of the month, or the INV of a first month): one customer invoice
    # per customer and partner document, the key a rerun finds already billed
    source = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="+", help_text="the partner's invoice it follows")
    credits = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                related_name="credit_notes", help_text="a credit note: the invoice it corrects")
    issuer = models.JSONField(null=True, blank=True)
    recipient = models.JSONField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    pdf = models.FileField("PDF", upload_to="customer-invoices/", blank=True)
    pdf_version = models.PositiveIntegerField("PDF version", default=0)
    emailed_at = models.DateTimeField(null=True, blank=True)
    # Customer Billing on when it was issued (billing-rules 12.8): the account as it stood, printed with it
    # (previous_balance, payments, credits, new_charges, taxes, amount_due as strings); None: new charges only
    account = models.JSONField(null=True, blank=True, help_text="the account summary printed on it")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CustomerInvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["-issue_date", "-id"]
        verbose_name = "customer invoice"
        indexes = [models.Index(fields=["partner", "issue_date"], name="customer_invoice_partner_date")]
        constraints = [
            models.UniqueConstraint(fields=["source", "customer"], condition=Q(kind="invoice"),
                                    name="customer_invoice_once_per_source"),
            models.CheckConstraint(condition=~Q(state="issued") | Q(number__isnull=False),
                                   name="customer_invoice_issued_has_number"),
            models.CheckConstraint(condition=Q(kind="invoice") | Q(credits__isnull=False),
                                   name="customer_credit_note_names_invoice"),
        ]

    def __str__(self):
        return self.number or f"draft {self.get_kind_display().lower()} {self.issue_date}"

    @property
    def is_credit_note(self) -> bool:
        return self.kind == CustomerInvoiceKind.CREDIT_NOTE


class CustomerInvoiceLine(IssuedPartMixin, models.Model):
    """One charge of a customer invoice: a service of ours resold (or a partner's own item) at the customer's
    price, for a period; `details` keeps the facts it was computed from (the host limit in force, the price)."""

    part_noun = "lines of issued customer invoices"

    invoice = models.ForeignKey(CustomerInvoice, on_delete=models.CASCADE, related_name="lines")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    item = models.ForeignKey(ResaleItem, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                             verbose_name="own item")
    line_type = models.CharField(max_length=20, choices=LineType.choices)
    period = models.CharField(max_length=7, help_text="the month the line covers, YYYY-MM")
    quantity = models.DecimalField(**QUANTITY, null=True, blank=True)
    unit_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    amount = models.DecimalField(**AMOUNT)
    cost = models.DecimalField(**AMOUNT, null=True, blank=True,
                               help_text="what we charged the partner for the same quantity (blank: an own item)")
    description = models.CharField(max_length=300)
    taxable = models.BooleanField(default=True)
    key = models.CharField(max_length=120, blank=True, help_text="what makes the charge unique")
    details = models.JSONField(default=dict, blank=True, help_text="facts the amount was computed from")
    position = models.PositiveIntegerField(default=0)

    objects = CustomerInvoiceLineQuerySet.as_manager()

    class Meta:
        ordering = ["invoice", "position", "id"]
        verbose_name = "customer invoice line"
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=Q(line_type="credit"),
                                    name="customer_line_credited_once"),
        ]

    def __str__(self):
        return f"{self.invoice}: {self.description}"



class UnbilledCharge(models.Model):
    """A charge of ours to the partner that no customer invoice carries (billing-rules 12.6): the customer has no
    resale price for the service (a customer is never billed at a price its partner did not set), or the service
    is the partner's as a whole and its meter has no quantity per customer. Written by the run that issued the
    partner's document, for the partner to price or bill by hand."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, db_index=False, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, related_name="+")
    period = models.CharField(max_length=7)
    line_type = models.CharField(max_length=20, choices=LineType.choices)
    quantity = models.DecimalField(**QUANTITY, null=True, blank=True)
    reason = models.CharField(max_length=12, choices=UnbilledReason.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "id"]
        verbose_name = "charge not rebilled"
        verbose_name_plural = "charges not rebilled"
        indexes = [models.Index(fields=["partner", "period"], name="unbilled_charge_partner_period")]

    def __str__(self):
        return f"{self.service} {self.period} ({self.get_reason_display()})"


# --- customer payments and transactions (billing-rules 12.10) --------------------------------------------------
class CustomerPayment(models.Model):
    """Money a customer paid its partner, recorded by the partner (portal or `import_csv customer-payments`):
    to the customer's account, optionally against one of its invoices. Never changed: a mistake is voided (a
    transaction of its own puts the amount back) and recorded again."""

    # no index of its own: customer_payment_once begins with it
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, db_index=False, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments_to_partner")
    invoice = models.ForeignKey(CustomerInvoice, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="payments", help_text="the invoice it pays, when the customer said")
    received_on = models.DateField("received on")
    amount = models.DecimalField(**AMOUNT, validators=[MinValueValidator(Decimal("0.01"))])
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=200, blank=True, help_text="the bank's or the customer's reference")
    method = models.CharField(max_length=60, blank=True, help_text="bank transfer, card, cheque…")
    note = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=100, blank=True, help_text="portal, or the file it was imported from")
    recorded_by = models.CharField(max_length=200, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_on", "-id"]
        verbose_name = "customer payment"
        constraints = [
            # the same payment sent twice (a file imported again) is one payment
            models.UniqueConstraint(fields=["partner", "customer", "received_on", "amount", "reference"],
                                    name="customer_payment_once"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="customer_payment_positive"),
        ]

    def __str__(self):
        return f"{self.amount} {self.currency} from {self.customer} on {self.received_on}"


class CustomerTransactionQuerySet(models.QuerySet):
    """Transactions are written once and never changed or deleted (billing-rules 12.10): the customer's balance
    at any date is their sum."""

    def update(self, **kwargs):
        raise IssuedInvoiceError("customer transactions never change; record a payment, a credit or a void")

    def delete(self):
        raise IssuedInvoiceError("customer transactions are never deleted")


class CustomerTransaction(models.Model):
    """One movement of a customer's account with its partner (billing-rules 12.10): an issued invoice's
    subscription charges, usage charges and taxes, a credit note, a payment or its void. Charges are positive,
    payments and credits negative; the balance at a date is the sum of the transactions dated then or before."""

    # no index of its own: customer_transaction_customer_date begins with the customer
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, db_index=False, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, db_index=False, related_name="+")
    date = models.DateField()
    kind = models.CharField(max_length=14, choices=TransactionKind.choices)
    reference = models.CharField(max_length=200, blank=True, help_text="the invoice number or the payment's")
    description = models.CharField(max_length=300, blank=True)
    amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3)
    invoice = models.ForeignKey(CustomerInvoice, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="transactions")
    payment = models.ForeignKey(CustomerPayment, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="transactions")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CustomerTransactionQuerySet.as_manager()

    class Meta:
        ordering = ["customer", "date", "id"]
        verbose_name = "customer transaction"
        indexes = [
            models.Index(fields=["customer", "date"], name="customer_transaction_day"),
            models.Index(fields=["partner", "date"], name="customer_transaction_partner"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "kind"], condition=Q(invoice__isnull=False),
                                    name="customer_transaction_once_per_invoice"),
            models.UniqueConstraint(fields=["payment", "kind"], condition=Q(payment__isnull=False),
                                    name="customer_transaction_once_per_payment"),
        ]

    def __str__(self):
        return f"{self.date} {self.get_kind_display()} {self.amount} {self.currency}"

    def save(self, *args, **kwargs):
        if self.pk and type(self).objects.filter(pk=self.pk).exists():
            raise IssuedInvoiceError("customer transactions never change")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise IssuedInvoiceError("customer transactions are never deleted")

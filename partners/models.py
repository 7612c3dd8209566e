"""Who, and what they signed: partners, customers, members, services, seats, roles, audit."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from djmoney.models.fields import MoneyField

from billing.core.emails import split_emails
from billing.core.periods import next_month_start, utc_date
from billing.core.usage_meters import meter_pattern_error
from partners.choices import AuditAction, Meter, Method, Proration, TierMode
from partners.tiers import TierError, parse_tiers

slug_validator = RegexValidator(r"^[a-z0-9][a-z0-9_-]*$", "use lower-case letters, digits, - and _")


class Partner(models.Model):
    """An MSP or reseller: the billed account. One currency for all its prices."""

    slug = models.SlugField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217, e.g. USD")
    tax_rate = models.DecimalField(
        max_digits=6, decimal_places=3, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))], help_text="percent, e.g. 10 for 10%",
    )
    payment_terms_days = models.PositiveIntegerField("payment terms (days)", default=30)
    billing_emails = models.TextField(blank=True, help_text="billing contacts, separated by commas")
    billing_address = models.TextField(blank=True, help_text="printed on its invoices; one line per line")
    tax_id = models.CharField("tax ID", max_length=60, blank=True,
                              help_text="VAT or sales tax number, printed on its invoices")
    purchase_order = models.CharField("purchase order", max_length=100, blank=True,
                                      help_text="the partner's PO reference, printed on its invoices")
    billing_portal_url = models.URLField(
        "billing portal URL", blank=True, help_text="the payment portal linked from the partner portal's Billing page "
                              "(blank: the BILLING_PORTAL_URL setting, if any)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def billing_contacts(self) -> list[str]:
        return split_emails(self.billing_emails)

    @property
    def payment_portal_url(self) -> str:
        return self.billing_portal_url or getattr(settings, "BILLING_PORTAL_URL", "")


class Customer(models.Model):
    """A tenant / organization of a partner."""

    # no index of its own: customer_unique_slug begins with it
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, db_index=False, related_name="customers")
    slug = models.SlugField(max_length=64, validators=[slug_validator])
    name = models.CharField(max_length=200)
    seat_cap = models.PositiveIntegerField(null=True, blank=True, help_text="blank: no cap")
    host_limit = models.PositiveIntegerField(default=0)
    payment_terms_days = models.PositiveIntegerField(
        "payment terms (days)", null=True, blank=True, help_text="blank: the partner's terms"
    )
    rmm_organization = models.CharField(
        "RMM organization", max_length=200, blank=True,
        help_text="the customer's organization in the RMM: its name, short reference or id (any case); a VSA "
                  "organization, a Datto RMM site, a NinjaOne organization")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["partner__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "slug"], name="customer_unique_slug"),
        ]

    def __str__(self):
        return f"{self.name} ({self.partner.slug})"

    def save(self, *args, **kwargs):
        """A cap never goes below the seats active now (billing-rules 3.2). Checked under the partner's row
        lock, the one seat assignments take, so a concurrent assignment cannot slip past it."""
        with transaction.atomic():
            if self.pk and self.seat_cap is not None:
                Partner.objects.select_for_update().filter(pk=self.partner_id).first()
                active = SeatAssignment.objects.active().filter(customer_id=self.pk).count()
                if active > self.seat_cap:
                    raise ValidationError(
                        {"seat_cap": f"{active} seats are active now; unassign seats before lowering the cap "
                                     f"to {self.seat_cap}"}
                    )
            super().save(*args, **kwargs)

    @property
    def effective_payment_terms_days(self) -> int:
        """The days this customer is given to pay, today's terms (`payment_terms_days` has the rule)."""
        return payment_terms_days(self.partner, self)


def payment_terms_days(partner: Partner, customer: Customer | None = None) -> int:
    """The days to pay an invoice (billing-rules 4.1): the customer's own `payment_terms_days` when it has
    them, else the partner's; an invoice or child with no customer takes the partner's. The one place this
    rule is written (billing and `Customer.effective_payment_terms_days` come here).

    `partner` and `customer` are as they stood on the invoice's issue date (their payment terms have effective
    dates, billing-rules 3.11: `partners.terms.TermsBook.on(obj, issue_date)`)."""
    if customer is not None and customer.payment_terms_days is not None:
        return customer.payment_terms_days
    return partner.payment_terms_days


def payment_due_date(issue_date: date, partner: Partner, customer: Customer | None = None) -> date:
    """The due date of an invoice (or a CI's child) issued on `issue_date` (billing-rules 4.1): the issue
    date plus `payment_terms_days(partner, customer)`."""
    return issue_date + timedelta(days=payment_terms_days(partner, customer))


class Member(models.Model):
    """A person at a customer who can hold a seat; keyed by (partner, customer, name)."""

    # no index of its own: member_unique_name begins with it
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, db_index=False, related_name="members")
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["customer", "name"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "name"], name="member_unique_name"),
        ]

    def __str__(self):
        return f"{self.name} @ {self.customer.slug}"


class SeatAssignmentQuerySet(models.QuerySet):
    def active(self, at=None):
        """Assignments holding a seat at the instant `at` (now by default)."""
        at = at or timezone.now()
        return self.filter(assigned_at__lte=at).filter(Q(removed_at__isnull=True) | Q(removed_at__gt=at))

    def in_scope(self, service: Service):
        qs = self.filter(partner_id=service.partner_id)
        if service.customer_id:
            qs = qs.filter(customer_id=service.customer_id)
        return qs


class SeatAssignment(models.Model):
    """A member's seat from `assigned_at` until `removed_at` (open while blank).

    The UTC dates of both instants are kept beside them so that seat-day
    metering is plain set-based SQL on any database.
    """

    # partner and customer repeat the member's, for set-based metering: no index of their own (the (partner,
    # start_date, end_date) and (customer, start_date) indexes begin with them) and no foreign key in the database,
    # whose per-row checks were a third of a seat import's time: the member's key holds (the member holds its
    # customer, the customer its partner, each protected), and Django still protects them on delete (billing-rules (ax))
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, db_index=False, db_constraint=False,
                                related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, db_index=False, db_constraint=False,
                                 related_name="seat_assignments")
    # no index of its own: the (member, assigned_at) index begins with it
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False, related_name="seat_assignments")
    assigned_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    start_date = models.DateField(editable=False)
    end_date = models.DateField(null=True, blank=True, editable=False)
    source = models.CharField(max_length=100, blank=True, help_text="admin, api, portal, import file")

    objects = SeatAssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["-assigned_at"]
        indexes = [
            models.Index(fields=["partner", "start_date", "end_date"]),
            models.Index(fields=["customer", "start_date"]),
            # a member's seats, and an import's look-up of an event among them (partners.seat_staging)
            models.Index(fields=["member", "assigned_at"], name="seat_member_assigned_idx"),
            models.Index(fields=["assigned_at", "id"], name="seat_assigned_at_idx"),  # the admin's newest first
            models.Index(fields=["partner", "assigned_at", "id"], name="seat_partner_assigned_at_idx"),  # one partner's
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["member"], condition=Q(removed_at__isnull=True), name="one_open_seat_per_member"
            ),
            models.CheckConstraint(
                condition=Q(removed_at__isnull=True) | Q(removed_at__gte=models.F("assigned_at")),
                name="seat_removed_after_assigned",
            ),
            # the dates are the instants' UTC dates, whoever writes the row (a queryset update() of removed_at
            # alone is refused): metering counts the dates, the imports read the instants
            models.CheckConstraint(
                condition=Q(start_date=TruncDate("assigned_at", tzinfo=ZoneInfo("UTC")))
                & (Q(removed_at__isnull=True, end_date__isnull=True)  # (a comparison with NULL would pass)
                   | Q(removed_at__isnull=False, end_date__isnull=False,
                       end_date=TruncDate("removed_at", tzinfo=ZoneInfo("UTC")))),
                name="seat_dates_are_the_instants_utc_dates",
            ),
        ]

    def __str__(self):
        return f"{self.member} from {self.assigned_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        self.set_dates()
        super().save(*args, **kwargs)

    def set_dates(self):
        self.start_date = utc_date(self.assigned_at)
        self.end_date = utc_date(self.removed_at) if self.removed_at else None
        return self


class SeatFileImported(models.Model):
    """A seat-events file the set-based import wrote, by its SHA-256, one row per partner it held
    (partners.seat_staging): the same bytes again are every row unchanged while no seat of those partners has been
    written since. PostgreSQL triggers delete a partner's rows on any write to its seats, and on any change to the
    keys a file names its rows by (the partner's or a customer's slug, a member's name; migration 0026); a
    fingerprint missing any of its partners is read in full again (billing-rules 9.3)."""

    sha256 = models.CharField(max_length=64, db_index=True)
    partner_id = models.BigIntegerField(db_index=True)  # no foreign key: the trigger's rows, like FactChange
    partners = models.PositiveIntegerField(help_text="how many partners the file held")
    rows = models.PositiveIntegerField(help_text="the file's data rows")
    imported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "seat file imported"

    def __str__(self):
        return f"{self.sha256[:12]} (partner {self.partner_id})"


rmm_filter_validator = RegexValidator(
    r"^((?i:view:)\s*\S.*|(?!(?i:view:))[^/]*[^/\s][^/]*(/[^/]*[^/\s][^/]*)*)$",
    "use ORG, ORG/GROUP, ORG/GROUP/SUB or view:NAME")

def rmm_filter_parts(rmm_filter: str) -> tuple[str, str, str]:
    """(organization, group path, view) of a service's RMM filter, each trimmed and in lower case
    (billing-rules 3.7): "Birchwood / Workstations/Lab" is ("birchwood", "workstations/lab", "");
    "view:Servers only" is ("", "", "servers only"); blank is ("", "", "")."""
    text = (rmm_filter or "").strip()
    if text[:5].lower() == "view:":
        return "", "", text[5:].strip().lower()
    org, *groups = text.split("/")
    return org.strip().lower(), "/".join(g.strip().lower() for g in groups if g.strip()), ""


# Fields that decide how units are derived; fixed once a service is saved (billing-rules 3.7).
DERIVATION_FIELDS = ("method", "meter", "usage_meter", "rmm_filter")


class ServiceQuerySet(models.QuerySet):
    def active_on(self, day):
        return self.filter(start_date__lte=day).filter(Q(end_date__isnull=True) | Q(end_date__gte=day))

    def covering_customer(self, customer: Customer):
        """Services whose scope includes the customer: partner-level ones and its own."""
        return self.filter(partner_id=customer.partner_id).filter(
            Q(customer__isnull=True) | Q(customer_id=customer.pk)
        )

    # The derivation lock (billing-rules 3.7) holds for bulk writes too, not only for save().
    def update(self, **kwargs):
        locked = sorted(set(kwargs) & {*DERIVATION_FIELDS, "rmm_org", "rmm_group", "rmm_view"})
        if locked:
            raise ValidationError({name: "cannot be changed once the service is saved" for name in locked})
        return super().update(**kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        locked = sorted(set(fields) & {*DERIVATION_FIELDS, "rmm_org", "rmm_group", "rmm_view"})
        if locked:
            raise ValidationError({name: "cannot be changed once the service is saved" for name in locked})
        return super().bulk_update(objs, fields, *args, **kwargs)


class Service(models.Model):
    """A contract line: what is billed, how, and at what price (billing-rules 3, columns of billing-rules 9.7)."""

    # no index of its own: service_unique_code begins with it
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, db_index=False, related_name="services")
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="services",
        help_text="blank: a partner-level service covering every customer",
    )
    code = models.SlugField(max_length=64, validators=[slug_validator])
    name = models.CharField(max_length=200)
    method = models.CharField(max_length=20, choices=Method.choices)
    meter = models.CharField(max_length=10, choices=Meter.choices, blank=True)
    usage_meter = models.CharField(
        "usage-record meter", max_length=100, blank=True,
        help_text="records services: the usage-record meter billed, e.g. call_minutes:outbound:* or meeting_minutes")
    unit_price = MoneyField(
        max_digits=settings.PRICE_MAX_DIGITS, decimal_places=settings.PRICE_DECIMAL_PLACES,
        default_currency="USD", help_text="per unit per month",
    )
    overage_price = MoneyField(
        max_digits=settings.PRICE_MAX_DIGITS, decimal_places=settings.PRICE_DECIMAL_PLACES,
        default_currency="USD", null=True, blank=True, help_text="blank: the unit price",
    )
    committed_quantity = models.PositiveIntegerField(null=True, blank=True)
    overage_enabled = models.BooleanField(default=False)
    storage_per_license_gb = models.DecimalField("storage per license (GB)", max_digits=12, decimal_places=3,
                                                 null=True, blank=True)
    tiers = models.CharField(max_length=500, blank=True, help_text="UP_TO:PRICE;...;inf:PRICE")
    tier_mode = models.CharField(max_length=10, choices=TierMode.choices, default=TierMode.VOLUME)
    proration = models.CharField(max_length=20, choices=Proration.choices, default=Proration.DAY_FRACTION)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="inclusive; blank: open-ended")
    rmm_filter = models.CharField(
        "RMM filter", max_length=200, blank=True, validators=[rmm_filter_validator],
        help_text="which RMM agents: ORG (name, reference or id), ORG/GROUP (with its sub-groups), ORG/GROUP/SUB or "
                  "view:NAME; blank: the customer's RMM organization, or every agent for a partner-level service")
    # rmm_filter split (ORG, GROUP path, view), trimmed and in lower case, so metering can match agents in plain
    # SQL (metering.matching has the rule)
    rmm_org = models.CharField("RMM organization", max_length=200, blank=True, editable=False)
    rmm_group = models.CharField("RMM group", max_length=200, blank=True, editable=False)
    rmm_view = models.CharField("RMM view", max_length=200, blank=True, editable=False, default="", db_default="")
    taxable = models.BooleanField(default=True)
    notification_emails = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ServiceQuerySet.as_manager()

    class Meta:
        ordering = ["partner__name", "code"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "code"], name="service_unique_code"),
        ]

    def __str__(self):
        return f"{self.name} [{self.code}]"

    def save(self, *args, **kwargs):
        self.set_rmm_parts()
        # Every price of a partner is in its currency (billing-rules 2).
        if self.partner_id:
            currency = self.partner.currency
            self.unit_price_currency = currency
            if self.overage_price is not None:
                self.overage_price_currency = currency
        if self.pk:
            changed = self.derivation_changes()
            if changed:
                raise ValidationError(changed)
        super().save(*args, **kwargs)

    def set_rmm_parts(self):
        self.rmm_org, self.rmm_group, self.rmm_view = rmm_filter_parts(self.rmm_filter)
        return self

    # --- validation -----------------------------------------------------------------
    def clean(self):
        errors = service_rule_errors(self)
        if self.pk:
            errors.update(self.derivation_changes())
        if errors:
            raise ValidationError(errors)

    def derivation_changes(self) -> dict[str, str]:
        """Errors for any derivation field changed since the service was saved (billing-rules 3.7)."""
        saved = type(self).objects.filter(pk=self.pk).values(*DERIVATION_FIELDS).first()
        if saved is None:
            return {}
        return {
            name: f"cannot be changed once the service is saved (was {saved[name]!r})"
            for name in DERIVATION_FIELDS
            if saved[name] != getattr(self, name)
        }

    # --- derived values --------------------------------------------------------------
    @property
    def scope_label(self) -> str:
        return self.customer.name if self.customer_id else "all customers"


def service_rule_errors(service: Service) -> dict[str, str]:
    """Method-specific rules of a service, keyed by field (also the CSV column)."""
    errors: dict[str, str] = {}
    method = service.method
    if method not in Method.values:
        errors["method"] = f"unknown method {method!r} (one of {', '.join(Method.values)})"
        return errors
    if service.meter and service.meter not in Meter.values:
        errors["meter"] = f"unknown meter {service.meter!r} (one of {', '.join(Meter.values)})"
    elif method in (Method.PEAK, Method.CMQ) and not service.meter:
        errors["meter"] = f"required for method {method} (users or assets)"
    elif method not in (Method.PEAK, Method.CMQ) and service.meter:
        errors["meter"] = f"only peak and cmq services take a meter, not {method}"
    if method == Method.RECORDS:
        if not service.usage_meter:
            errors["usage_meter"] = "required for method records (e.g. call_minutes:outbound:*)"
        elif problem := meter_pattern_error(service.usage_meter):
            errors["usage_meter"] = problem
    elif service.usage_meter:
        errors["usage_meter"] = f"only records services take a usage-record meter, not {method}"
    if method == Method.CMQ:
        if not service.committed_quantity:
            errors["committed_quantity"] = "required for method cmq"
        if service.start_date and service.start_date.day != 1:
            errors["start_date"] = "a cmq service must start on the 1st of a month"
    if method == Method.PER_HOST and not service.customer_id:
        errors["customer"] = "a per_host service belongs to one customer (its host limit)"
    if service.overage_enabled and method != Method.SEAT_DAYS:
        errors["overage_enabled"] = "only seat_days services enforce a commitment"
    if service.storage_per_license_gb is not None:
        if method != Method.LICENSES:
            errors["storage_per_license_gb"] = "only licenses services count storage"
        elif service.storage_per_license_gb <= 0:
            errors["storage_per_license_gb"] = "must be above 0"
    if service.rmm_filter and not (method == Method.PER_ASSET or service.meter == Meter.ASSETS):
        errors["rmm_filter"] = "only per_asset services and the assets meter take an RMM filter"
    if service.tiers:
        if method in (Method.SEAT_DAYS, Method.CMQ, Method.FLAT):
            errors["tiers"] = f"a {method} service is priced by its unit price, not by tiers"
        else:
            try:
                parse_tiers(service.tiers)
            except TierError as exc:
                errors["tiers"] = str(exc)
    if service.committed_quantity and method not in (Method.SEAT_DAYS, Method.CMQ):
        errors["committed_quantity"] = "only seat_days and cmq services have a commitment"
    if service.overage_price is not None and method not in (Method.SEAT_DAYS, Method.CMQ):
        errors["overage_price"] = "only seat_days and cmq services have an overage price"
    if service.tier_mode not in TierMode.values:
        errors["tier_mode"] = f"unknown tier mode {service.tier_mode!r} (volume or graduated)"
    if service.proration not in Proration.values:
        errors["proration"] = f"unknown proration {service.proration!r} (day_fraction or rounded_daily_rate)"
    if service.start_date and service.end_date and service.end_date < service.start_date:
        errors["end_date"] = "is before start_date"
    if service.customer_id and service.partner_id and service.customer.partner_id != service.partner_id:
        errors["customer"] = "belongs to another partner"
    for field in ("unit_price", "overage_price"):
        value = getattr(service, field)
        if value is not None and value.amount < 0:
            errors[field] = "must not be negative"
    return errors


class SeatPurchaseQuerySet(models.QuerySet):
    def effective_by(self, day):
        return self.filter(effective_date__lte=day)


class SeatPurchase(models.Model):
    """"Add seats": a commitment increase effective at the next UTC month boundary."""

    # no index of its own: seat_purchase_unique_instant begins with it
    service = models.ForeignKey(Service, on_delete=models.PROTECT, db_index=False, related_name="seat_purchases")
    seats = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    purchased_at = models.DateTimeField()
    effective_date = models.DateField(editable=False)
    purchased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source = models.CharField(max_length=100, blank=True)

    objects = SeatPurchaseQuerySet.as_manager()

    class Meta:
        ordering = ["-purchased_at"]
        constraints = [
            models.UniqueConstraint(fields=["service", "purchased_at"], name="seat_purchase_unique_instant"),
        ]

    def __str__(self):
        return f"+{self.seats} seats on {self.service.code} from {self.effective_date}"

    def save(self, *args, **kwargs):
        self.effective_date = next_month_start(self.purchased_at)
        super().save(*args, **kwargs)


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    BILLING = "billing", "Billing"
    TECHNICIAN = "technician", "Technician"


# Roles that may buy seats and see billing (seed: "Seat purchases are an Owner or Billing role action").
BILLING_ROLES = (Role.OWNER, Role.BILLING)


class PartnerUser(models.Model):
    """A login of a partner's staff, with its role."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="partner_user")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="users")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.TECHNICIAN)

    class Meta:
        ordering = ["partner", "user__username"]

    def __str__(self):
        return f"{self.user} ({self.get_role_display()} at {self.partner.slug})"

    @property
    def can_manage_billing(self) -> bool:
        return self.role in BILLING_ROLES


class AlertKind(models.TextChoices):
    WARNING = "warning", "Utilization reached 90%"
    OVERAGE = "overage", "Overage started"


class UtilizationAlert(models.Model):
    """One crossing of a threshold: raised once, cleared when utilization falls below."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=10, choices=AlertKind.choices)
    raised_at = models.DateTimeField(default=timezone.now)
    cleared_at = models.DateTimeField(null=True, blank=True)
    active_seats = models.PositiveIntegerField()
    committed_seats = models.PositiveIntegerField()
    recipients = models.TextField(blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "kind"], condition=Q(cleared_at__isnull=True), name="one_open_alert_per_kind"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.service.code} ({self.active_seats}/{self.committed_seats})"


class TermsVersion(models.Model):
    """Terms that were in force until a day (billing-rules 3.11): a partner's tax rate and payment terms, a
    customer's host limit, a service's prices, tiers and commitment. The object's own fields are its latest
    terms; these versions are what held before each change (partners.terms has the rule)."""

    object_type = models.CharField(max_length=20)  # partner, customer or service
    object_id = models.BigIntegerField("object ID")
    # the owner, so that a partner's versions go with it
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, db_index=False, related_name="+")
    valid_until = models.DateField(help_text="the last day these terms were in force (inclusive)")
    values = models.JSONField()
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["object_type", "object_id", "valid_until"]
        constraints = [models.UniqueConstraint(fields=["object_type", "object_id", "valid_until"],
                                               name="terms_version_unique_day")]

    def __str__(self):
        return f"{self.object_type} {self.object_id} until {self.valid_until}"


class AuditLog(models.Model):
    """Who changed seats or money, when, and the values before and after."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True, help_text="command, task or API key")
    partner = models.ForeignKey(Partner, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    action = models.CharField(max_length=100, choices=AuditAction.choices, db_index=True)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField("object ID", max_length=100, blank=True)
    object_repr = models.CharField("object", max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_action_display()}: {self.object_repr}".rstrip(": ")




class SeatEventStage(models.Model):
    """Working rows of a seat-events import: the file's events beside the history they merge into.

    Filled and emptied inside the import's own transaction, so it is empty between imports.
    """

    token = models.CharField(max_length=32)
    rank = models.PositiveSmallIntegerField()  # 0: history already imported, 1: the file
    seq = models.BigIntegerField()  # history: the assignment id; file: the row number
    row = models.PositiveIntegerField(default=0)
    partner_id = models.BigIntegerField()
    customer_id = models.BigIntegerField()
    member_id = models.BigIntegerField()
    action = models.CharField(max_length=10)
    at = models.DateTimeField()
    assigned_at = models.DateTimeField(null=True)  # history: when the closed seat began
    duplicate = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["token", "partner_id", "at", "rank", "seq"]),
            models.Index(fields=["token", "member_id", "at"]),
        ]

    def __str__(self):
        return f"{self.action} {self.member_id} at {self.at}"


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A partner's key to the HTTP API. Only a SHA-256 digest of the secret is kept; the key is shown
    once, when it is created (billing-rules 11.1)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True, help_text="the public part, shown in lists")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the whole key")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["partner", "-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.prefix}… ({self.partner.slug}{', revoked' if self.revoked_at else ''})"

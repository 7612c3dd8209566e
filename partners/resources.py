"""django-import-export resources: the columns of each import kind (billing-rules 9.7), also behind the
admin's Import and Export buttons."""

from django.conf import settings
from import_export import resources
from import_export.fields import Field

from billing.core.widgets import (
    BooleanWidget,
    ChoiceWidget,
    DateWidget,
    DecimalWidget,
    EmailListWidget,
    InstantWidget,
    IntegerWidget,
    MoneyAmountWidget,
    SlugWidget,
    TextWidget,
)
from partners.models import (
    Customer,
    Meter,
    Method,
    Partner,
    Proration,
    SeatAssignment,
    SeatPurchase,
    Service,
    TierMode,
)

# The model fields' limits, so that a value the database cannot hold is a row error (not a crash, nor a
# silent rounding that would make every re-import an update).
INT_MAX = 2147483647  # PositiveIntegerField: safe on every database
PRICE = {"places": settings.PRICE_DECIMAL_PLACES, "max_digits": settings.PRICE_MAX_DIGITS}


class PartnerResource(resources.ModelResource):
    slug = Field(attribute="slug", column_name="slug", widget=SlugWidget(max_length=64))
    name = Field(attribute="name", column_name="name", widget=TextWidget(max_length=200))
    currency = Field(attribute="currency", column_name="currency", widget=TextWidget(max_length=3), default="USD")
    tax_rate = Field(attribute="tax_rate", column_name="tax_rate", widget=DecimalWidget(places=3, max_digits=6),
                     default=None)
    payment_terms_days = Field(attribute="payment_terms_days", column_name="payment_terms_days",
                               widget=IntegerWidget(max_value=INT_MAX), default=30)
    billing_emails = Field(attribute="billing_emails", column_name="billing_emails",
                           widget=EmailListWidget(), default="")
    # printed on its invoices (billing-rules 4.13): the address's lines separated by line breaks in the cell
    billing_address = Field(attribute="billing_address", column_name="billing_address",
                            widget=TextWidget(max_length=1000), default="")
    tax_id = Field(attribute="tax_id", column_name="tax_id", widget=TextWidget(max_length=60), default="")
    purchase_order = Field(attribute="purchase_order", column_name="purchase_order",
                           widget=TextWidget(max_length=100), default="")
    # the date changed terms take effect (billing-rules 3.11); blank: the first month not yet invoiced
    effective_from = Field(column_name="effective_from", widget=DateWidget(), default=None)

    class Meta:
        model = Partner
        fields = ("slug", "name", "currency", "tax_rate", "payment_terms_days", "billing_emails", "billing_address",
                  "tax_id", "purchase_order", "effective_from")
        import_id_fields = ("slug",)


class CustomerResource(resources.ModelResource):
    partner = Field(attribute="partner__slug", column_name="partner", widget=SlugWidget())
    slug = Field(attribute="slug", column_name="slug", widget=SlugWidget(max_length=64))
    name = Field(attribute="name", column_name="name", widget=TextWidget(max_length=200))
    seat_cap = Field(attribute="seat_cap", column_name="seat_cap", widget=IntegerWidget(max_value=INT_MAX),
                     default=None)
    host_limit = Field(attribute="host_limit", column_name="host_limit", widget=IntegerWidget(max_value=INT_MAX),
                       default=0)
    payment_terms_days = Field(attribute="payment_terms_days", column_name="payment_terms_days",
                               widget=IntegerWidget(max_value=INT_MAX), default=None)
    rmm_organization = Field(attribute="rmm_organization", column_name="rmm_organization",
                             widget=TextWidget(max_length=200), default="")
    # the date changed terms take effect (billing-rules 3.11); blank: the first month not yet invoiced
    effective_from = Field(column_name="effective_from", widget=DateWidget(), default=None)

    class Meta:
        model = Customer
        fields = ("partner", "slug", "name", "seat_cap", "host_limit", "payment_terms_days", "rmm_organization",
                  "effective_from")
        import_id_fields = ("partner", "slug")


class ServiceResource(resources.ModelResource):
    partner = Field(attribute="partner__slug", column_name="partner", widget=SlugWidget())
    customer = Field(attribute="customer__slug", column_name="customer", widget=SlugWidget(), default=None)
    code = Field(attribute="code", column_name="code", widget=SlugWidget(max_length=64))
    name = Field(attribute="name", column_name="name", widget=TextWidget(max_length=200))
    method = Field(attribute="method", column_name="method", widget=ChoiceWidget(Method.values, "method"))
    meter = Field(attribute="meter", column_name="meter", widget=ChoiceWidget(Meter.values, "meter"), default="")
    usage_meter = Field(attribute="usage_meter", column_name="usage_meter", widget=TextWidget(max_length=100),
                        default="")
    unit_price = Field(attribute="unit_price", column_name="unit_price", widget=MoneyAmountWidget(**PRICE))
    overage_price = Field(attribute="overage_price", column_name="overage_price",
                          widget=MoneyAmountWidget(**PRICE),
                          default=None)
    committed_quantity = Field(attribute="committed_quantity", column_name="committed_quantity",
                               widget=IntegerWidget(max_value=INT_MAX), default=None)
    overage_enabled = Field(attribute="overage_enabled", column_name="overage_enabled", widget=BooleanWidget(),
                            default=False)
    storage_per_license_gb = Field(attribute="storage_per_license_gb", column_name="storage_per_license_gb",
                                   widget=DecimalWidget(places=3, max_digits=12), default=None)
    tiers = Field(attribute="tiers", column_name="tiers", widget=TextWidget(max_length=500), default="")
    tier_mode = Field(attribute="tier_mode", column_name="tier_mode",
                      widget=ChoiceWidget(TierMode.values, "tier mode"), default=TierMode.VOLUME)
    proration = Field(attribute="proration", column_name="proration",
                      widget=ChoiceWidget(Proration.values, "proration"), default=Proration.DAY_FRACTION)
    start_date = Field(attribute="start_date", column_name="start_date", widget=DateWidget())
    end_date = Field(attribute="end_date", column_name="end_date", widget=DateWidget(), default=None)
    rmm_filter = Field(attribute="rmm_filter", column_name="rmm_filter", widget=TextWidget(max_length=200),
                       default="")
    taxable = Field(attribute="taxable", column_name="taxable", widget=BooleanWidget(), default=True)
    notification_emails = Field(attribute="notification_emails", column_name="notification_emails",
                                widget=EmailListWidget(), default="")
    # the date changed terms take effect (billing-rules 3.11); blank: the first month not yet invoiced
    effective_from = Field(column_name="effective_from", widget=DateWidget(), default=None)

    class Meta:
        model = Service
        fields = (
            "partner", "customer", "code", "name", "method", "meter", "usage_meter", "unit_price", "overage_price",
            "committed_quantity", "overage_enabled", "storage_per_license_gb", "tiers", "tier_mode",
            "proration", "start_date", "end_date", "rmm_filter", "taxable", "notification_emails", "effective_from",
        )
        import_id_fields = ("partner", "code")


class SeatPurchaseResource(resources.ModelResource):
    partner = Field(attribute="service__partner__slug", column_name="partner", widget=SlugWidget())
    service = Field(attribute="service__code", column_name="service", widget=SlugWidget())
    seats = Field(attribute="seats", column_name="seats", widget=IntegerWidget(min_value=1, max_value=INT_MAX))
    purchased_at = Field(attribute="purchased_at", column_name="purchased_at", widget=InstantWidget())

    class Meta:
        model = SeatPurchase
        fields = ("partner", "service", "seats", "purchased_at")
        import_id_fields = ("partner", "service", "purchased_at")


class SeatEventResource(resources.ModelResource):
    """Seat events (assign / unassign at an instant): what an import brings in."""

    partner = Field(column_name="partner", widget=SlugWidget())
    customer = Field(column_name="customer", widget=SlugWidget())
    member = Field(column_name="member", widget=TextWidget(max_length=200, an_id=True))
    action = Field(column_name="action", widget=ChoiceWidget(["assign", "unassign"], "action"))
    at = Field(column_name="at", widget=InstantWidget())

    class Meta:
        model = SeatAssignment
        fields = ("partner", "customer", "member", "action", "at")
        import_id_fields = ()


class SeatAssignmentResource(resources.ModelResource):
    """The seat history as intervals, for the admin's Export button."""

    partner = Field(attribute="partner__slug", column_name="partner")
    customer = Field(attribute="customer__slug", column_name="customer")
    member = Field(attribute="member__name", column_name="member", widget=TextWidget())
    assigned_at = Field(attribute="assigned_at", column_name="assigned_at", widget=InstantWidget())
    removed_at = Field(attribute="removed_at", column_name="removed_at", widget=InstantWidget())
    source = Field(attribute="source", column_name="source", widget=TextWidget())

    class Meta:
        model = SeatAssignment
        fields = ("partner", "customer", "member", "assigned_at", "removed_at", "source")

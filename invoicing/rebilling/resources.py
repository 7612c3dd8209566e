"""django-import-export resources of rebilling: the columns of the resale-prices import kind (billing-rules 12.3,
import-formats 5.11)."""

from django.conf import settings
from import_export import resources
from import_export.fields import Field

from billing.core.widgets import ChoiceWidget, DateWidget, DecimalWidget, IntegerWidget, SlugWidget, TextWidget
from invoicing.rebilling.models import ResalePrice
from partners.choices import TierMode

PRICE = {"places": settings.PRICE_DECIMAL_PLACES, "max_digits": settings.PRICE_MAX_DIGITS}


class ResalePriceResource(resources.ModelResource):
    """`service` names one of the partner's services by code, or one of its own items as `item:CODE`. The file
    has no mode column: the columns a row fills say it (invoicing.rebilling.pricing.mode_of)."""

    partner = Field(attribute="partner__slug", column_name="partner", widget=SlugWidget())
    customer = Field(attribute="customer__slug", column_name="customer", widget=SlugWidget(), default=None)
    service = Field(attribute="service__code", column_name="service", widget=TextWidget(max_length=70))
    unit_price = Field(attribute="unit_price", column_name="unit_price", widget=DecimalWidget(**PRICE),
                       default=None)
    markup_percent = Field(attribute="markup_percent", column_name="markup_percent",
                           widget=DecimalWidget(places=3, max_digits=7), default=None)
    package_units = Field(attribute="package_units", column_name="package_units",
                          widget=IntegerWidget(min_value=1, max_value=2_147_483_647), default=None)
    package_price = Field(attribute="package_price", column_name="package_price", widget=DecimalWidget(**PRICE),
                          default=None)
    tiers = Field(attribute="tiers", column_name="tiers", widget=TextWidget(max_length=500), default="")
    tier_mode = Field(attribute="tier_mode", column_name="tier_mode",
                      widget=ChoiceWidget(TierMode.values, "tier mode"), default=TierMode.VOLUME)
    effective_from = Field(attribute="effective_from", column_name="effective_from", widget=DateWidget(),
                           default=None)

    class Meta:
        model = ResalePrice
        fields = ("partner", "customer", "service", "unit_price", "markup_percent", "package_units",
                  "package_price", "tiers", "tier_mode", "effective_from")
        import_id_fields = ()

"""django-import-export resources of invoicing: the columns of the one-time-charges and payments import
kinds (billing-rules 9), also usable behind an admin's Import and Export buttons."""

from decimal import Decimal

from django.conf import settings
from import_export import resources
from import_export.fields import Field

from billing.core.money import MoneyError, parse_decimal
from billing.core.widgets import BooleanWidget, DateWidget, DecimalWidget, SlugWidget, TextWidget
from invoicing.models import AMOUNT, OneTimeCharge, Payment

PRICE = {"places": settings.PRICE_DECIMAL_PLACES, "max_digits": settings.PRICE_MAX_DIGITS}


def _signed(value) -> Decimal:
    """The number of a cell, for its sign (the sign is reported before size and places)."""
    try:
        return parse_decimal(repr(value) if isinstance(value, float) else str(value))
    except MoneyError as exc:
        raise ValueError(str(exc)) from exc


class PositiveDecimalWidget(DecimalWidget):
    """A decimal above zero: a negative value reads "must not be negative" (or `negative_reason`), zero
    "must be more than 0"."""

    def __init__(self, negative_reason: str = "must not be negative", **kwargs):
        self.negative_reason = negative_reason
        super().__init__(min_value=None, **kwargs)

    def clean(self, value, row=None, **kwargs):
        number = _signed(value)
        if number < 0:
            raise ValueError(self.negative_reason)
        if number == 0:
            raise ValueError("must be more than 0")
        return super().clean(value, row, **kwargs)


class NonNegativePriceWidget(DecimalWidget):
    """A unit price of a charge: zero is allowed (a free item on the invoice), a negative one is not."""

    def __init__(self, **kwargs):
        super().__init__(min_value=None, **kwargs)

    def clean(self, value, row=None, **kwargs):
        if _signed(value) < 0:
            raise ValueError("must not be negative: a credit is a credit note, not a negative charge")
        return super().clean(value, row, **kwargs)


class OneTimeChargeResource(resources.ModelResource):
    partner = Field(attribute="partner__slug", column_name="partner", widget=SlugWidget())
    customer = Field(attribute="customer__slug", column_name="customer", widget=SlugWidget(), default=None)
    description = Field(attribute="description", column_name="description", widget=TextWidget(max_length=300))
    quantity = Field(attribute="quantity", column_name="quantity", widget=PositiveDecimalWidget(**PRICE))
    unit_price = Field(attribute="unit_price", column_name="unit_price", widget=NonNegativePriceWidget(**PRICE))
    date = Field(attribute="date", column_name="date", widget=DateWidget())
    taxable = Field(attribute="taxable", column_name="taxable", widget=BooleanWidget(), default=True)

    class Meta:
        model = OneTimeCharge
        fields = ("partner", "customer", "description", "quantity", "unit_price", "date", "taxable")
        import_id_fields = ()


class PaymentResource(resources.ModelResource):
    """Payments against issued invoices. The amount's decimal places are the invoice currency's, so the
    import kind checks them (it knows the invoice); the widget bounds the whole digits the column holds."""

    invoice_number = Field(attribute="invoice__number", column_name="invoice_number",
                           widget=TextWidget(max_length=20))
    amount = Field(attribute="amount", column_name="amount",
                   widget=PositiveDecimalWidget(max_digits=AMOUNT["max_digits"] - AMOUNT["decimal_places"]))
    paid_on = Field(attribute="paid_on", column_name="paid_on", widget=DateWidget())
    reference = Field(attribute="reference", column_name="reference", widget=TextWidget(max_length=200),
                      default="")

    class Meta:
        model = Payment
        fields = ("invoice_number", "amount", "paid_on", "reference")
        import_id_fields = ()


"""One-time charges in the admin: each billed on its own INV by the billing run; edited here (audited) until
billed (an issued invoice line keyed `one_time:<pk>`), then read-only and corrected by a credit note."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import CharField, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from import_export.admin import ImportExportModelAdmin

from billing.core.admin_import import FileImportAdminMixin
from billing.core.money import quantize_money, quantize_quantity, tax_on
from billing.core.periods import utc_date
from invoicing.admin.common import money_html
from invoicing.models import MAX_TOTAL, Invoice, InvoiceLine, InvoiceState, OneTimeCharge
from invoicing.resources import OneTimeChargeResource
from invoicing.services.ledger import partners_lock
from partners.admin.kit import AuditedSaveMixin
from partners.audit import jsonable


def _billing_line(outer: str = "pk"):
    """The issued invoice line that billed the outer charge (keyed `one_time:<pk>`)."""
    return InvoiceLine.objects.filter(
        invoice__state=InvoiceState.ISSUED,
        key=Concat(Value("one_time:"), Cast(OuterRef(outer), output_field=CharField())),
    ).order_by("invoice__issue_date", "pk")


def billed_invoice_of(charge: OneTimeCharge) -> Invoice | None:
    line = (InvoiceLine.objects.filter(invoice__state=InvoiceState.ISSUED, key=f"one_time:{charge.pk}")
            .select_related("invoice").order_by("invoice__issue_date", "pk").first())
    return line.invoice if line else None


class BilledFilter(admin.SimpleListFilter):
    title = "billed"
    parameter_name = "billed"

    def lookups(self, request, model_admin):
        return [("yes", "Billed (on an issued invoice)"), ("no", "Not billed yet")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(billed_invoice_id__isnull=False)
        if self.value() == "no":
            return queryset.filter(billed_invoice_id__isnull=True)
        return queryset


class OneTimeChargeForm(forms.ModelForm):
    """The import's rules (invoicing.imports.OneTimeChargesImport), for one charge."""

    class Meta:
        model = OneTimeCharge
        fields = ("partner", "customer", "description", "quantity", "unit_price", "date", "taxable")

    def clean_quantity(self):
        quantity = self.cleaned_data["quantity"]
        if quantity is not None and quantity <= 0:
            raise ValidationError("must be more than 0")
        return quantity

    def clean_unit_price(self):
        price = self.cleaned_data["unit_price"]
        if price is not None and price < 0:
            raise ValidationError("must not be negative: a credit is a credit note, not a negative charge")
        return price

    def clean_date(self):
        day = self.cleaned_data["date"]
        if day is not None and day > utc_date(timezone.now()):
            raise ValidationError(f"{day} is in the future")
        return day

    def clean(self):
        cleaned = super().clean()
        partner, customer = cleaned.get("partner"), cleaned.get("customer")
        if partner is not None and customer is not None and customer.partner_id != partner.pk:
            self.add_error("customer", f"{customer.name} is a customer of another partner")
        quantity, price = cleaned.get("quantity"), cleaned.get("unit_price")
        if partner is not None and quantity is not None and price is not None:
            amount = quantize_money(quantity * price, partner.currency)
            tax = tax_on(amount, partner.tax_rate, partner.currency)
            if amount + tax >= MAX_TOTAL:
                self.add_error("unit_price", f"quantity x unit_price = {amount} {partner.currency} is too large "
                                             f"for one invoice")
        return cleaned


def charge_snapshot(obj: OneTimeCharge) -> dict:
    """The columns the one-time-charges import audits."""
    return {"customer": obj.customer.slug if obj.customer_id else None, "description": obj.description,
            "quantity": jsonable(obj.quantity), "unit_price": jsonable(obj.unit_price),
            "currency": obj.partner.currency, "date": jsonable(obj.date), "taxable": obj.taxable}


@admin.register(OneTimeCharge)
class OneTimeChargeAdmin(AuditedSaveMixin, FileImportAdminMixin, ImportExportModelAdmin):
    """One-time charges, each billed on its own INV by the billing run. Editable (audited) until
    billed; then read-only, and corrected by a credit note."""

    import_kind = "one-time-charges"
    resource_classes = [OneTimeChargeResource]
    form = OneTimeChargeForm
    audit_kind = "one_time_charge"
    list_display = ("description", "partner", "customer", "date", "quantity_shown", "unit_price", "amount_shown",
                    "taxable", "billed_on", "source")
    list_filter = ("partner", BilledFilter, "taxable", "date")
    search_fields = ("description", "partner__slug", "partner__name", "customer__slug", "customer__name")
    list_select_related = ("partner", "customer")
    autocomplete_fields = ("partner", "customer")
    date_hierarchy = "date"
    fields = ("partner", "customer", "description", "quantity", "unit_price", "date", "taxable", "billed_on",
              "source", "created_at")

    def audit_snapshot(self, obj):
        return charge_snapshot(obj)

    def has_import_permission(self, request):
        return request.user.has_perm("invoicing.add_onetimecharge")  # importing adds charges

    def get_queryset(self, request):
        billing = _billing_line()
        return super().get_queryset(request).annotate(
            billed_number=Subquery(billing.values("invoice__number")[:1]),
            billed_invoice_id=Subquery(billing.values("invoice_id")[:1]),
        )

    def get_readonly_fields(self, request, obj=None):
        return ("billed_on", "source", "created_at")

    @staticmethod
    def _billed(obj) -> bool:
        if obj is None or not obj.pk:
            return False
        if hasattr(obj, "billed_invoice_id"):
            return obj.billed_invoice_id is not None
        return billed_invoice_of(obj) is not None

    def has_change_permission(self, request, obj=None):
        if self._billed(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if self._billed(obj):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        """Under the partner's lock (the billing run's): a charge billed meanwhile is not changed."""
        partners_lock([obj.partner_id])
        if change:
            invoice = billed_invoice_of(obj)
            if invoice is not None:
                raise ValidationError(f"this charge was billed on {invoice} meanwhile; correct it with a credit note")
        else:
            obj.source = obj.source or "admin"
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        partners_lock([obj.partner_id])
        invoice = billed_invoice_of(obj)
        if invoice is not None:
            raise ValidationError(f"this charge was billed on {invoice}; correct it with a credit note")
        super().delete_model(request, obj)

    @admin.display(description="quantity", ordering="quantity")
    def quantity_shown(self, obj):
        return quantize_quantity(obj.quantity)

    @admin.display(description="amount")
    def amount_shown(self, obj):
        currency = obj.partner.currency
        return money_html(quantize_money(obj.quantity * obj.unit_price, currency), currency)

    @admin.display(description="billed on", ordering="billed_number")
    def billed_on(self, obj):
        number = getattr(obj, "billed_number", None)
        invoice_id = getattr(obj, "billed_invoice_id", None)
        if number is None and obj.pk and not hasattr(obj, "billed_number"):
            invoice = billed_invoice_of(obj)
            number, invoice_id = (invoice.number, invoice.pk) if invoice else (None, None)
        if number is None:
            return format_html('<span class="quiet">{}</span>', "not billed yet")
        return format_html('<a href="{}">{}</a>', reverse("admin:invoicing_invoice_change", args=[invoice_id]),
                           number)

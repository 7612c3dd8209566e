"""Every invoice line in the admin, newest first: to find a charge across invoices. Read only: an issued
line never changes, a credit note corrects it. The customer page links to its lines here (the metering
CustomerAdmin re-registered with the link: partners and metering never import invoicing)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from billing.core.money import quantize_quantity
from invoicing.admin.common import money_html
from invoicing.models import InvoiceLine, LineType
from invoicing.templatetags.invoice_format import format_unit_price
from metering.admin.customers import MeteredCustomerAdmin
from partners.admin.kit import EMPTY, CustomerFilter, ReadOnlyAdminMixin, admin_url
from partners.models import Customer


class LineCustomerFilter(CustomerFilter):
    """Customers, narrowed to the partner chosen in the partner filter (a line's partner is its invoice's)."""

    partner_parameter = "invoice__partner__id__exact"


@admin.register(InvoiceLine)
class InvoiceLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every invoice line, newest first: to find a charge across invoices (read only: an issued line never
    changes, a credit note corrects it)."""

    # at 1440 px the amount stays in view: the customer without its partner (a column of its own), the service's
    # name over its code, both wrapping (billing/static/billing/admin.css)
    list_display = ("invoice_number", "partner", "customer_shown", "service_shown", "line_type", "period",
                    "quantity_shown", "unit_price_shown", "amount_shown")
    list_filter = ("invoice__partner", LineCustomerFilter, "line_type", "invoice__kind", "invoice__state")
    search_fields = ("invoice__number", "invoice__partner__slug", "customer__slug", "service__code", "description")
    list_select_related = ("invoice__partner", "customer__partner", "service")
    ordering = ("-id",)
    show_full_result_count = False
    readonly_fields = ("invoice", "child", "service", "customer", "line_type", "period", "quantity", "unit_price",
                       "amount", "description", "taxable", "effective_date", "key", "details", "position")
    fields = readonly_fields

    @admin.display(description="invoice", ordering="invoice__number")
    def invoice_number(self, obj):
        url = reverse("admin:invoicing_invoice_change", args=[obj.invoice_id])
        return format_html('<a href="{}">{}</a>', url, obj.invoice.number or f"draft {obj.invoice_id}")

    @admin.display(description="partner")
    def partner(self, obj):
        return obj.invoice.partner.slug

    @admin.display(description="customer", ordering="customer__name")
    def customer_shown(self, obj):
        return obj.customer.name if obj.customer_id else EMPTY

    @admin.display(description="service", ordering="service__code")
    def service_shown(self, obj):
        if not obj.service_id:
            return EMPTY
        return format_html('{} <span class="quiet code">{}</span>', obj.service.name, obj.service.code)

    @admin.display(description="currency")
    def currency(self, obj):
        return obj.invoice.currency

    @admin.display(description="quantity", ordering="quantity")
    def quantity_shown(self, obj):
        """To 4 places, as on the invoice (stored with 10); a tax line has none."""
        if obj.line_type == LineType.TAX or obj.quantity is None:
            return EMPTY
        return quantize_quantity(obj.quantity)

    @admin.display(description="unit price", ordering="unit_price")
    def unit_price_shown(self, obj):
        """A tax line's "unit price" is its rate: shown as a percent, not as money."""
        if obj.unit_price is None:
            return EMPTY
        if obj.line_type == LineType.TAX:
            return f"{format(obj.unit_price.normalize(), 'f')}% tax"
        currency = obj.invoice.currency  # up to 4 places, as the price was set and as the invoice prints it
        return format_html('<span style="white-space:nowrap">{} <span class="quiet">{}</span></span>',
                           format_unit_price(obj.unit_price, currency), currency)

    @admin.display(description="amount", ordering="amount")
    def amount_shown(self, obj):
        return money_html(obj.amount, obj.invoice.currency)


class BilledCustomerAdmin(MeteredCustomerAdmin):
    """The customer page with a link to the customer's invoice lines (this list, filtered)."""

    @admin.display(description="shortcuts")
    def links(self, obj):
        shortcuts = super().links(obj)
        if not obj.pk:
            return shortcuts
        lines = admin_url(InvoiceLine, query={"invoice__partner__id__exact": obj.partner_id, "customer": obj.pk})
        return format_html('{} · <a href="{}">Invoice lines</a>', shortcuts, lines)


admin.site.unregister(Customer)
admin.site.register(Customer, BilledCustomerAdmin)

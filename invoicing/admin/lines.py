"""Every invoice line in the admin, newest first: to find a charge across invoices. Read only: an issued
line never changes, a credit note corrects it."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from invoicing.models import InvoiceLine
from partners.admin.kit import ReadOnlyAdminMixin


@admin.register(InvoiceLine)
class InvoiceLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every invoice line, newest first: to find a charge across invoices (read only: an issued line never
    changes, a credit note corrects it)."""

    list_display = ("invoice_number", "partner", "customer", "service", "line_type", "period", "quantity",
                    "unit_price", "amount", "currency")
    list_filter = ("line_type", "invoice__kind", "invoice__state")
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

    @admin.display(description="currency")
    def currency(self, obj):
        return obj.invoice.currency

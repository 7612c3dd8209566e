"""The admin's view of the partners' price lists and own items: read-only (partners set them in the portal or by
the resale-prices import, both audited through invoicing.rebilling.services)."""

from django.contrib import admin

from invoicing.rebilling.models import ResaleItem, ResalePrice
from invoicing.rebilling.text import price_text, unit_of
from partners.admin.kit import CustomerFilter, PageStatsMixin, ReadOnlyAdminMixin


@admin.register(ResaleItem)
class ResaleItemAdmin(PageStatsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "code", "partner", "unit", "created_at")
    list_filter = ("partner",)
    search_fields = ("name", "code", "partner__name", "partner__slug")
    list_select_related = ("partner",)
    ordering = ("partner__name", "name")


class ListFilter(admin.SimpleListFilter):
    """The default list or the customers' own prices."""

    title = "list"
    parameter_name = "list"

    def lookups(self, request, model_admin):
        return [("default", "Default list"), ("customer", "A customer's prices")]

    def queryset(self, request, queryset):
        if self.value() == "default":
            return queryset.filter(customer__isnull=True)
        if self.value() == "customer":
            return queryset.filter(customer__isnull=False)
        return queryset


@admin.register(ResalePrice)
class ResalePriceAdmin(PageStatsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("partner", "list_name", "priced", "mode", "price", "effective_from", "source")
    list_filter = ("partner", ListFilter, CustomerFilter, "mode", "service", "effective_from")
    search_fields = ("partner__name", "partner__slug", "customer__name", "customer__slug", "service__code",
                     "service__name", "item__code", "item__name")
    list_select_related = ("partner", "customer", "service", "item")
    date_hierarchy = "effective_from"
    ordering = ("partner__name", "customer__name", "-effective_from")

    @admin.display(description="list", ordering="customer__name")
    def list_name(self, obj):
        return obj.customer.name if obj.customer_id else "Default list"

    @admin.display(description="service or own item")
    def priced(self, obj):
        return obj.service or obj.item

    @admin.display(description="price")
    def price(self, obj):
        return price_text(obj, obj.partner.currency, unit_of(obj))


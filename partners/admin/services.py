"""Services in the admin: the service page (prices, commitment, dates, terms over time) and the services
listed on a partner's and a customer's page.

Services are created, edited and deleted by partners.services (service_create, service_update,
service_delete), which check the rules the imports check, audit and date changed terms
(WriteServicesMixin). How units are derived is fixed once saved (billing-rules 3.7).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from import_export.admin import ImportExportModelAdmin

from billing.core.admin_import import FileImportAdminMixin
from billing.core.periods import next_month_start, utc_date
from partners.admin.kit import (
    EMPTY,
    CleanInitialMixin,
    EmptyStateInlineMixin,
    FieldErrorsMixin,
    PageStatsMixin,
    admin_url,
)
from partners.admin.seats import utilization_html
from partners.admin.terms import DatedTermsForm, TermsHistoryMixin, WriteServicesMixin
from partners.audit import SERVICE_AUDIT_FIELDS
from partners.models import Method, SeatPurchase, Service
from partners.resources import ServiceResource
from partners.selectors import active_seat_counts, committed_seats
from partners.services import service_create, service_delete, service_update


# --- services on the partner's and the customer's page ------------------------------------------
class ServiceOverviewInline(EmptyStateInlineMixin, admin.TabularInline):
    """Services as read-only rows with a link to their page: a service has method-specific
    fields and locked derivation fields (billing-rules 3.7) that a table row cannot show properly."""

    model = Service
    fk_name = "partner"
    fields = ("name", "code", "method", "price", "commitment", "start_date", "end_date", "taxable")
    readonly_fields = fields
    show_change_link = True
    can_delete = False
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("partner", "customer")

    def _committed_today(self, obj) -> int:
        """The service's commitment in force today (`committed_seats`), read once for all the partner's
        services shown (this inline is made anew for each request)."""
        cache = self.__dict__.setdefault("_committed_now", {})
        if obj.partner_id not in cache:
            services = list(Service.objects.filter(partner_id=obj.partner_id))
            cache[obj.partner_id] = committed_seats(services, utc_date(timezone.now()))
        return cache[obj.partner_id].get(obj.pk, 0)

    @admin.display(description="price")
    def price(self, obj):
        if obj.overage_price is not None and obj.overage_price != obj.unit_price:
            return f"{obj.unit_price} (overage {obj.overage_price})"
        return str(obj.unit_price)

    @admin.display(description="commitment")
    def commitment(self, obj):
        committed = self._committed_today(obj)
        if not committed:
            return EMPTY
        return f"{committed}{' + overage' if obj.overage_enabled else ''}"


class PartnerServiceInline(ServiceOverviewInline):
    verbose_name = "partner-level service"
    verbose_name_plural = "partner-level services (cover every customer)"
    empty_text = "No partner-level service: each customer's services are on its page."

    def get_queryset(self, request):
        return super().get_queryset(request).filter(customer__isnull=True)


class CustomerServiceInline(ServiceOverviewInline):
    fk_name = "customer"
    verbose_name = "service of this customer"
    verbose_name_plural = "services of this customer only (partner-level services also cover it)"
    empty_text = "No service of this customer's own."


# --- the service page ---------------------------------------------------------------------------
class ServiceForm(FieldErrorsMixin, DatedTermsForm):
    class Meta:
        model = Service
        fields = ("partner", "customer", *SERVICE_AUDIT_FIELDS)
        widgets = {"notification_emails": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def clean(self):
        cleaned = super().clean()
        partner = cleaned.get("partner") or (self.instance.partner if self.instance.partner_id else None)
        if partner is not None:
            for name in ("unit_price", "overage_price"):
                value = cleaned.get(name)
                if name in self.fields and value is not None and str(value.currency) != partner.currency:
                    self.add_error(name, f"prices of {partner.name} are in {partner.currency}")
        customer = cleaned.get("customer")
        if customer is not None and partner is not None and customer.partner_id != partner.pk:
            self.add_error("customer", f"{customer.name} is a customer of another partner")
        return cleaned


@admin.register(Service)
class ServiceAdmin(TermsHistoryMixin, CleanInitialMixin, PageStatsMixin, WriteServicesMixin, FileImportAdminMixin,
                   ImportExportModelAdmin):
    import_kind = "services"
    resource_classes = [ServiceResource]
    form = ServiceForm
    create_service, update_service, delete_service = (
        staticmethod(service_create), staticmethod(service_update), staticmethod(service_delete))
    list_display = ("name", "code", "partner", "scope", "method_code", "prices", "committed_now", "dates",
                    "taxable")
    list_filter = ("method", "partner", "taxable", "overage_enabled")
    search_fields = ("code", "name", "partner__slug", "partner__name", "customer__slug", "customer__name")
    list_select_related = ("partner", "customer")
    autocomplete_fields = ("partner", "customer")
    fieldsets = (
        ("Who", {"fields": ("partner", "customer", "code", "name")}),
        ("Pricing", {"fields": ("method", "meter", "usage_meter", "unit_price", "overage_price", "tiers", "tier_mode",
                                "proration", "taxable")}),
        ("Commitment", {"fields": ("committed_quantity", "overage_enabled", "commitment_now",
                                   "notification_emails")}),
        ("Licenses and RMM", {"fields": ("storage_per_license_gb", "rmm_filter")}),
        ("Dates", {"fields": ("start_date", "end_date")}),
        ("Terms over time", {"fields": ("terms_effective_from", "terms_history_table")}),
        ("Record", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        """How units are derived (method, meter, usage-record meter, RMM filter) is fixed once saved (billing-rules
        3.7); so are the partner (prices are in its currency) and the code (the import's key)."""
        if obj is None:
            return ("commitment_now", "terms_history_table", "created_at", "updated_at")
        return ("partner", "code", "method", "meter", "usage_meter", "rmm_filter", "commitment_now",
                "terms_history_table", "created_at", "updated_at")

    def annotate_page(self, request, rows):
        """Each row's commitment in force today (billing-rules 3.1, 6.2), for the page in two queries."""
        in_force = committed_seats(rows, utc_date(timezone.now()))
        for service in rows:
            service.page_committed = in_force[service.pk]

    @admin.display(description="scope", ordering="customer__name")
    def scope(self, obj):
        return obj.customer.name if obj.customer_id else format_html('<span class="quiet">{}</span>', "all customers")

    @admin.display(description="method", ordering="method")
    def method_code(self, obj):
        """The method as the clerk reads it (its label); its code, as import files write it, on hover."""
        return format_html('<span title="in import files: {}">{}</span>', obj.method, obj.get_method_display())

    @admin.display(description="price", ordering="unit_price")
    def prices(self, obj):
        if obj.tiers:  # may break after each tier: the list keeps its width at 1440 px
            tiers = format_html_join(mark_safe(";<wbr>"), "{}", ((tier,) for tier in obj.tiers.split(";")))
            return format_html('<span class="quiet">tiers</span> {}', tiers)
        if obj.overage_price is not None and obj.overage_price != obj.unit_price:
            return format_html('<span style="white-space:nowrap">{}</span> <span class="quiet">overage {}</span>',
                               obj.unit_price, obj.overage_price)
        return format_html('<span style="white-space:nowrap">{}</span>', obj.unit_price)

    @admin.display(description="committed now")
    def committed_now(self, obj):
        committed = getattr(obj, "page_committed", None)
        if committed is None:
            committed = committed_seats([obj], utc_date(timezone.now()))[obj.pk]
        if obj.method != Method.SEAT_DAYS:
            return committed or EMPTY
        if not committed:
            return EMPTY
        return format_html('<span style="white-space:nowrap">{}{}</span>', committed,
                           " + overage" if obj.overage_enabled else ", no overage")

    @admin.display(description="dates", ordering="start_date")
    def dates(self, obj):
        end = obj.end_date.isoformat() if obj.end_date else "open"
        return format_html('<span style="white-space:nowrap">{} →</span> <span style="white-space:nowrap">{}</span>',
                           obj.start_date.isoformat(), end)

    @admin.display(description="in force today")
    def commitment_now(self, obj):
        if not obj.pk or obj.method != Method.SEAT_DAYS:
            return EMPTY
        today = utc_date(timezone.now())
        committed = committed_seats([obj], today)[obj.pk]
        counts = active_seat_counts(partner_ids=[obj.partner_id])
        purchases = obj.seat_purchases.order_by("purchased_at")
        bought = format_html_join(
            "", "<li>+{} seats bought {}, effective {}</li>",
            ((p.seats, p.purchased_at.date().isoformat(), p.effective_date.isoformat()) for p in purchases),
        )
        add_link = admin_url(SeatPurchase, "add", query={"service": obj.pk})
        return format_html(
            '{} committed seats {}<ul style="margin-left:1em">{}</ul><a href="{}">Add seats</a> '
            '<span class="quiet">(effective {})</span>',
            committed, utilization_html(counts.in_scope(obj), committed, obj.scope_label), bought, add_link,
            next_month_start(timezone.now()),
        )

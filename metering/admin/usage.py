"""Usage in the admin: tenants' daily usage snapshots and suspensions (billing-rules 3.4-3.6, 6.8, 6.10).

Usage history is read-only here. It changes only through the imports, whose Import buttons run the same
all-or-nothing engine as `import_csv` (rules checked, every change audited). Correcting a day's usage is
re-importing that day: the last snapshot of a date wins. So nothing on these pages can silently rewrite
what was or will be billed.

Lists never run a query per row: suspensions and the licensing services are subquery annotations.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils.html import format_html
from import_export.admin import ImportExportModelAdmin

from billing.core.admin_import import FileImportAdminMixin
from metering.admin.common import BLANK, SourceColumnMixin, TenantColumnsMixin, utc_today
from metering.models import Suspension, UsageSnapshot
from metering.resources import SuspensionResource, TenantEventResource, TenantUsageResource
from metering.selectors import GB, licenses_on_day
from partners.admin.kit import EMPTY, CustomerFilter, ReadOnlyAdminMixin
from partners.models import Method, Service

NUMBER = '<span style="display:block;text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums">{}</span>'


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


class ImportNeedsAddPermissionMixin:
    """Importing writes usage: it takes the model's add permission, even where the add page is
    closed (a view-only clerk sees the history but cannot import into it)."""

    def has_import_permission(self, request):
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.add_{opts.model_name}")


class TenantFilter(CustomerFilter):
    """Customers, narrowed to the partner chosen in the partner filter (rows hang off a customer)."""

    partner_parameter = "customer__partner__id__exact"


def _suspended_all_day(day_field: str):
    """Whether the row's customer was suspended for the whole date `day_field` (billing-rules 3.6, 6.8)."""
    return Exists(Suspension.objects.filter(customer=OuterRef("customer"), first_full_day__lte=OuterRef(day_field))
                  .filter(Q(last_full_day__isnull=True) | Q(last_full_day__gte=OuterRef(day_field))))


def _licensing_services():
    """licenses services covering the row's customer on the row's date (its own first)."""
    return (
        Service.objects.filter(partner=OuterRef("customer__partner"), method=Method.LICENSES,
                               start_date__lte=OuterRef("date"))
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=OuterRef("date")))
        .filter(Q(customer__isnull=True) | Q(customer=OuterRef("customer")))
        .order_by(F("customer_id").desc(nulls_last=True), "code")
    )


# --- usage snapshots ----------------------------------------------------------------------------
@admin.register(UsageSnapshot)
class UsageSnapshotAdmin(TenantColumnsMixin, ImportNeedsAddPermissionMixin, ReadOnlyAdminMixin, FileImportAdminMixin,
                         ImportExportModelAdmin):
    """A tenant's daily usage (peak users, licenses). Import and Export use the tenant-usage columns;
    a re-imported date replaces that date's snapshot (the last one wins), audited."""

    import_kind = "tenant-usage"
    resource_classes = [TenantUsageResource]
    list_display = ("date", "customer_name", "partner_name", "users", "storage", "licenses", "messages",
                    "suspended")
    list_filter = ("customer__partner", TenantFilter, "date")
    search_fields = ("customer__name", "customer__slug", "customer__partner__slug")
    search_help_text = "Customer name or slug, or partner slug. A re-imported date replaces that date's snapshot."
    list_select_related = ("customer__partner",)
    date_hierarchy = "date"
    ordering = ("-date", "customer__partner__name", "customer__name")
    fields = ("customer", "date", "users_count", "storage", "storage_bytes", "licenses", "messages_count",
              "suspended", "recorded_at", "source")
    readonly_fields = fields

    def get_queryset(self, request):
        licensing = _licensing_services()
        return (
            super().get_queryset(request).select_related("customer__partner")
            .annotate(suspended_all_day=_suspended_all_day("date"), licensed=Exists(licensing),
                      per_license_gb=Subquery(licensing.values("storage_per_license_gb")[:1]))
        )

    @admin.display(description="users", ordering="users_count")
    def users(self, obj):
        return format_html(NUMBER, obj.users_count)

    @admin.display(description="storage", ordering="storage_bytes")
    def storage(self, obj):
        gigabytes = (Decimal(obj.storage_bytes) / GB).quantize(Decimal("0.01"))
        return format_html('<span title="{} bytes" style="display:block;text-align:right;white-space:nowrap;'
                           'font-variant-numeric:tabular-nums">{} GB</span>', f"{obj.storage_bytes:,}",
                           f"{gigabytes:,}")

    @admin.display(description="licenses")
    def licenses(self, obj):
        if not getattr(obj, "licensed", False):
            return BLANK
        if obj.suspended_all_day:
            return format_html('<span class="quiet" title="{}">{}</span>', "suspended all day: counts 0",
                               format_html(NUMBER, 0))
        count = licenses_on_day(obj.users_count, obj.storage_bytes, obj.per_license_gb)  # billing-rules 3.6
        if count > obj.users_count:  # storage decided it
            return format_html(
                '<span title="by storage: {} GB per license" style="display:block;text-align:right;'
                'white-space:nowrap">{} <span class="quiet">storage</span></span>',
                f"{obj.per_license_gb.normalize():f}", count)
        return format_html(NUMBER, count)

    @admin.display(description="messages", ordering="messages_count")
    def messages(self, obj):
        if obj.messages_count is None:
            return EMPTY
        return format_html(NUMBER, f"{obj.messages_count:,}")

    @admin.display(description="suspended")
    def suspended(self, obj):
        if getattr(obj, "suspended_all_day", False):
            return format_html('<span style="color:#ba2121;white-space:nowrap" title="{}">all day</span>',
                               "suspended for the whole day: this day counts 0 users and 0 licenses")
        return BLANK


# --- suspensions --------------------------------------------------------------------------------
class SuspensionStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "Suspended now"), ("ended", "Unsuspended")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(unsuspended_at__isnull=True)
        if self.value() == "ended":
            return queryset.filter(unsuspended_at__isnull=False)
        return queryset


@admin.register(Suspension)
class SuspensionAdmin(TenantColumnsMixin, SourceColumnMixin, ImportNeedsAddPermissionMixin, ReadOnlyAdminMixin,
                      FileImportAdminMixin, ImportExportModelAdmin):
    """Suspension history: Import takes tenant-events (suspend/unsuspend at an instant, merged into the
    history and checked), Export gives the intervals."""

    import_kind = "tenant-events"
    list_display = ("customer_name", "partner_name", "suspended_at", "unsuspended_at", "whole_days", "source_file")
    list_filter = ("customer__partner", SuspensionStatusFilter, TenantFilter)
    search_fields = ("customer__name", "customer__slug", "customer__partner__slug")
    search_help_text = ("Customer name or slug, or partner slug. Suspending stops counting from the next whole "
                        "day; unsuspending counts the day it happens.")
    list_select_related = ("customer__partner",)
    date_hierarchy = "suspended_at"
    ordering = ("-suspended_at",)
    fields = ("customer", "suspended_at", "unsuspended_at", "whole_days", "source")
    readonly_fields = fields

    def get_import_resource_classes(self, request):
        return [TenantEventResource]

    def get_export_resource_classes(self, request):
        return [SuspensionResource]

    @admin.display(description="whole days suspended (not billed)")
    def whole_days(self, obj):
        """Suspending stops counting from the next whole day; unsuspending counts its day (billing-rules 3.6)."""
        first, last = obj.first_full_day, obj.last_full_day
        if first is None:
            return EMPTY
        if last is not None:
            if last < first:
                return format_html('<span class="quiet">{}</span>', "none (less than a whole day)")
            return format_html('<span style="white-space:nowrap">{} → {}</span> ({})', first, last,
                               _days((last - first).days + 1))
        today = utc_today()
        if first > today:
            return format_html('<span style="white-space:nowrap">from {}</span>', first)
        return format_html('<span style="white-space:nowrap">{} → open</span> ({} so far)', first,
                           _days((today - first).days + 1))

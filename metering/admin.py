"""Metering in the admin: usage snapshots, suspensions and RMM inventories, plus month-to-date
seat-days beside each customer (RULES 3.1, 3.3-3.6, 9.10).

Usage history is read-only here. It changes only through the imports, whose Import buttons run
the same all-or-nothing engine as `import_csv` (rules checked, every change audited), and through
metering.services (inventories). Correcting a day's usage is re-importing that day: the last
snapshot of a date wins. So nothing on these pages can silently rewrite what was or will be billed.
An RMM inventory needs a partner and an as-of date (`--partner`, `--as-of`), so it has no Import
button: it comes from the nightly sync or the command line.

Data flows partners -> metering, so partners' admin cannot show metered values; metering adds
its column itself by re-registering a subclass of the partners CustomerAdmin (the app registry
loads this module after partners.admin).

Lists never run a query per row: places, suspensions and counts are subquery annotations.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_CEILING, Decimal

from django.contrib import admin
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from import_export.admin import ImportExportModelAdmin

from billing.money import quantize_quantity
from billing.periods import Period, utc_date
from metering.models import AgentPresence, InventorySync, RmmAgent, Suspension, UsageSnapshot
from metering.resources import SuspensionResource, TenantEventResource, TenantUsageResource
from metering.selectors import seat_days_by_customer
from partners.admin import EMPTY, CustomerAdmin, CustomerFilter, ReadOnlyAdminMixin
from partners.models import Customer, Method, Service

GB = Decimal(10**9)  # storage_per_license_gb counts decimal gigabytes (RULES 3.5)
NUMBER = '<span style="display:block;text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums">{}</span>'
BLANK = mark_safe("&nbsp;")  # an empty cell ("" would show the admin's empty-value dash)
INVENTORY_HELP = (
    "No Import button here: an RMM inventory is a partner's whole RMM as of a date, so it comes from the "
    "nightly sync or: manage.py import_csv rmm-assets FILE --partner SLUG --as-of YYYY-MM-DD"
)


def _today() -> date:
    return utc_date(timezone.now())


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


class ImportNeedsAddPermissionMixin:
    """Importing writes usage: it takes the model's add permission, even where the add page is
    closed (a view-only clerk sees the history but cannot import into it)."""

    def has_import_permission(self, request):
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.add_{opts.model_name}")


class SourceColumnMixin:
    @admin.display(description="source", ordering="source")
    def source_file(self, obj):
        """The file or sync a row came from, on one line."""
        return format_html('<span class="quiet" style="white-space:nowrap">{}</span>', obj.source or EMPTY)


class TenantFilter(CustomerFilter):
    """Customers, narrowed to the partner chosen in the partner filter (rows hang off a customer)."""

    partner_parameter = "customer__partner__id__exact"


def _suspended_all_day(day_field: str):
    """Whether the row's customer was suspended for the whole date `day_field` (RULES 3.5, 9.8)."""
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


def day_licenses(users: int, storage_bytes: int, per_license_gb: Decimal | None) -> tuple[int, bool]:
    """A day's licenses (RULES 3.5): max(users, ceil(storage / (GB per license x 10^9))), and whether
    storage decided it. For the list only: billing counts them in metering.selectors."""
    if not per_license_gb:
        return users, False
    by_storage = int((Decimal(storage_bytes) / (per_license_gb * GB)).to_integral_value(rounding=ROUND_CEILING))
    return max(users, by_storage), by_storage > users


# --- usage snapshots ----------------------------------------------------------------------------
@admin.register(UsageSnapshot)
class UsageSnapshotAdmin(ImportNeedsAddPermissionMixin, ReadOnlyAdminMixin, ImportExportModelAdmin):
    """A tenant's daily usage (peak users, licenses). Import and Export use the tenant-usage columns;
    a re-imported date replaces that date's snapshot (the last one wins), audited."""

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

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, obj):
        return obj.customer.name

    @admin.display(description="partner", ordering="customer__partner__name")
    def partner_name(self, obj):
        return format_html('<span style="white-space:nowrap">{}</span>', obj.customer.partner.name)

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
        count, by_storage = day_licenses(obj.users_count, obj.storage_bytes, obj.per_license_gb)
        if by_storage:
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
class SuspensionAdmin(SourceColumnMixin, ImportNeedsAddPermissionMixin, ReadOnlyAdminMixin,
                      ImportExportModelAdmin):
    """Suspension history: Import takes tenant-events (suspend/unsuspend at an instant, merged into the
    history and checked), Export gives the intervals."""

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

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, obj):
        return obj.customer.name

    @admin.display(description="partner", ordering="customer__partner__name")
    def partner_name(self, obj):
        return format_html('<span style="white-space:nowrap">{}</span>', obj.customer.partner.name)

    @admin.display(description="whole days suspended (not billed)")
    def whole_days(self, obj):
        """Suspending stops counting from the next whole day; unsuspending counts its day (RULES 3.5)."""
        first, last = obj.first_full_day, obj.last_full_day
        if first is None:
            return EMPTY
        if last is not None:
            if last < first:
                return format_html('<span class="quiet">{}</span>', "none (less than a whole day)")
            return format_html('<span style="white-space:nowrap">{} → {}</span> ({})', first, last,
                               _days((last - first).days + 1))
        today = _today()
        if first > today:
            return format_html('<span style="white-space:nowrap">from {}</span>', first)
        return format_html('<span style="white-space:nowrap">{} → open</span> ({} so far)', first,
                           _days((today - first).days + 1))


# --- RMM agents and inventories -----------------------------------------------------------------
class AgentPresenceInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = AgentPresence
    fields = ("organization", "group", "present_from", "present_until")
    readonly_fields = fields
    ordering = ("-present_from",)
    extra = 0
    verbose_name = "place in the RMM"
    verbose_name_plural = "places in the RMM (from the inventory that detected each change)"


class AgentStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("present", "In the latest inventory"), ("removed", "Removed")]

    def queryset(self, request, queryset):
        open_presence = AgentPresence.objects.filter(agent=OuterRef("pk"), present_until__isnull=True)
        if self.value() == "present":
            return queryset.filter(Exists(open_presence))
        if self.value() == "removed":
            return queryset.exclude(Exists(open_presence))
        return queryset


@admin.register(RmmAgent)
class RmmAgentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Agents as the inventories reported them, with where each one was and when."""

    list_display = ("machine_name", "partner", "place", "since", "system", "checked_in")
    list_filter = ("partner", AgentStatusFilter, "os")
    search_fields = ("machine_name", "agent_id", "presences__organization", "presences__group")
    search_help_text = "Machine name, agent ID, organization or group. " + INVENTORY_HELP
    list_select_related = ("partner",)
    ordering = ("partner__name", "machine_name")
    fields = ("partner", "agent_id", "machine_name", "os", "last_seen")
    readonly_fields = fields
    inlines = (AgentPresenceInline,)

    def get_queryset(self, request):
        latest = AgentPresence.objects.filter(agent=OuterRef("pk")).order_by("-present_from")
        return super().get_queryset(request).annotate(
            place_org=Subquery(latest.values("organization")[:1]),
            place_group=Subquery(latest.values("group")[:1]),
            place_from=Subquery(latest.values("present_from")[:1]),
            place_until=Subquery(latest.values("present_until")[:1]),
        )

    @admin.display(description="organization / group", ordering="place_org")
    def place(self, obj):
        if obj.place_org is None:
            return EMPTY
        where = f"{obj.place_org} / {obj.place_group}" if obj.place_group else obj.place_org
        if obj.place_until is not None:
            return format_html('<b style="color:#ba2121">removed</b> <span class="quiet">was {} until {}</span>',
                               where, obj.place_until)
        return format_html('<span style="white-space:nowrap">{}</span>', where)

    @admin.display(description="there since", ordering="place_from")
    def since(self, obj):
        return obj.place_from or EMPTY

    @admin.display(description="OS", ordering="os")
    def system(self, obj):
        return format_html('<span style="white-space:nowrap">{}</span>', obj.os) if obj.os else EMPTY

    @admin.display(description="last check-in (UTC)", ordering="last_seen")
    def checked_in(self, obj):
        if obj.last_seen is None:
            return EMPTY
        return format_html('<span style="white-space:nowrap">{}</span>', f"{obj.last_seen:%Y-%m-%d %H:%M}")


class InForceFilter(admin.SimpleListFilter):
    """Presences in force today, or on the 1st of this or last month (the dates normal lines count)."""

    title = "in force"
    parameter_name = "in_force"

    def lookups(self, request, model_admin):
        this_month = Period.of(_today())
        return [
            ("today", "Today"),
            (this_month.first.isoformat(), f"On {this_month.first} (this month's 1st)"),
            (this_month.previous().first.isoformat(), f"On {this_month.previous().first} (last month's 1st)"),
            ("ended", "Ended"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value == "ended":
            return queryset.filter(present_until__lt=_today())
        try:
            day = _today() if value == "today" else date.fromisoformat(value)
        except ValueError:
            return queryset.none()
        return queryset.filter(present_from__lte=day).filter(Q(present_until__isnull=True) |
                                                             Q(present_until__gte=day))


@admin.register(AgentPresence)
class AgentPresenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Where each agent was, from and until which date: what per_asset services and the assets meter
    count (an ORG filter matches the organization, ORG/GROUP the group too)."""

    list_display = ("agent_name", "partner", "organization", "group", "present_from", "present_until", "in_force")
    list_filter = ("partner", InForceFilter, "organization", "group")
    search_fields = ("agent__machine_name", "agent__agent_id", "organization", "group")
    search_help_text = "Machine name, agent ID, organization or group. " + INVENTORY_HELP
    list_select_related = ("agent", "partner")
    date_hierarchy = "present_from"
    ordering = ("partner__name", "organization", "group", "agent__machine_name", "-present_from")
    fields = ("agent", "partner", "organization", "group", "present_from", "present_until")
    readonly_fields = fields

    @admin.display(description="agent", ordering="agent__machine_name")
    def agent_name(self, obj):
        return obj.agent.machine_name or obj.agent.agent_id

    @admin.display(description="in force today", boolean=True)
    def in_force(self, obj):
        today = _today()
        return obj.present_from <= today and (obj.present_until is None or obj.present_until >= today)


@admin.register(InventorySync)
class InventorySyncAdmin(SourceColumnMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each whole inventory applied: its changes took effect on its as-of date (RULES 3.6)."""

    list_display = ("as_of", "partner", "agents", "added", "moved", "removed", "source_file", "synced_at")
    list_filter = ("partner",)
    ordering = ("-as_of", "partner__name", "-synced_at")
    search_fields = ("partner__slug", "partner__name", "source")
    search_help_text = "Partner or source file. " + INVENTORY_HELP
    list_select_related = ("partner",)
    date_hierarchy = "as_of"
    fields = ("partner", "as_of", "agents", "added", "moved", "removed", "source", "synced_at")
    readonly_fields = fields


# --- customers: seat-days this month ------------------------------------------------------------
class MeteredCustomerAdmin(CustomerAdmin):
    list_display = (*CustomerAdmin.list_display, "seat_days_to_date")

    def annotate_page(self, request, rows):
        """One set-based query for the whole page (metering.selectors)."""
        super().annotate_page(request, rows)
        today = _today()
        month = Period.of(today)
        counted = seat_days_by_customer(partner_ids={c.partner_id for c in rows}, first=month.first, last=today)
        for customer in rows:
            customer.page_seat_days = counted.get(customer.pk, (0, 0))[0]
            customer.page_month = month

    @admin.display(description="seat-days this month")
    def seat_days_to_date(self, obj):
        days = getattr(obj, "page_seat_days", None)
        if days is None:
            return "—"
        month = obj.page_month
        return format_html('{} <span class="quiet" title="seat-months of {} so far">({})</span>',
                           days, month, quantize_quantity(Decimal(days) / Decimal(month.days)))


admin.site.unregister(Customer)
admin.site.register(Customer, MeteredCustomerAdmin)


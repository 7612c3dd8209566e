"""Seats in the admin: assignments (assign a seat, unassign selected seats), purchases (add seats to a
commitment), members and utilization alerts; and the seat columns the partner, customer and service
pages show (active seats now, utilization).

Every change of seats goes through partners.services (seat_assign, seat_unassign,
seat_purchase_create), which lock, check the rules and audit. The history (assignments, purchases,
members, alerts) is read-only here: it changes only through those services and the imports.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html
from import_export.admin import ImportExportModelAdmin

from billing.core.admin_import import FileImportAdminMixin
from billing.core.idempotency import OnceField
from billing.core.paging import LargeTablePaginator
from billing.core.periods import next_month_start
from partners.admin.kit import (
    EMPTY,
    CleanInitialMixin,
    CustomerFilter,
    EmptyStateInlineMixin,
    ReadOnlyAdminMixin,
    ServiceAddViewMixin,
    actor_of,
    admin_url,
)
from partners.models import Customer, Member, Method, SeatAssignment, SeatPurchase, Service, UtilizationAlert
from partners.resources import SeatAssignmentResource, SeatEventResource, SeatPurchaseResource
from partners.seating import SEATS_PER_PURCHASE_MAX, SeatRuleError, utilization, utilization_percent
from partners.services import seat_assign, seat_purchase_create, seat_unassign


# --- seat columns -------------------------------------------------------------------------------
def active_seats_of(outer: str):
    """Active seats now of the outer row (a customer or a partner), as one correlated subquery."""
    counted = (
        SeatAssignment.objects.active(timezone.now())
        .filter(**{outer: OuterRef("pk")})
        .order_by()
        .values(outer)
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def utilization_html(active: int, committed: int, scope: str = "", part: int | None = None, compact: bool = False):
    """A small bar, the percent (`utilization_percent`: whole, half away from zero, billing-rules decision (as))
    and active / committed: amber from the warning threshold, red in overage, both judged on the exact ratio as
    the alerts are (billing-rules 3.3). `part`: the seats this row holds of a wider scope, drawn darker.
    `compact` (a list's narrow cell): a shorter bar, and the word "overage" left to the caller."""
    if not committed:
        return EMPTY
    percent = utilization_percent(active, committed)
    if active > committed:
        colour = "#ba2121"
    elif utilization(active, committed) * 100 >= settings.UTILIZATION_WARNING_PERCENT:
        colour = "#b36b00"
    else:
        colour = "#417690"
    total_width = min(percent, 100)
    part_width = total_width if part is None else min(utilization_percent(part, committed), total_width)
    title = f"{active} active seats of {committed} committed{' ' + scope if scope else ''}"
    if part is not None:
        title += f"; this customer holds {part}"
    overage = format_html(' <b style="color:{}">overage</b>', colour) if active > committed and not compact else ""
    return format_html(
        '<span title="{}" style="white-space:nowrap">'
        '<span style="display:inline-flex;width:{}px;height:9px;border-radius:4px;background:#e6e6e6;'
        'vertical-align:middle;overflow:hidden">'
        '<span style="width:{}%;background:{}"></span><span style="width:{}%;background:{};opacity:.4"></span>'
        '</span> <b style="color:{}">{}%</b> <span class="quiet">{}/{}</span>{}</span>',
        title, 36 if compact else 60, part_width, colour, total_width - part_width, colour, colour, percent, active,
        committed, overage,
    )


# --- seats --------------------------------------------------------------------------------------
class SeatAssignForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.select_related("partner"))
    member_name = forms.CharField(
        label="Member", max_length=200,
        help_text="The person's name at this customer; a new name creates the member. The seat starts now.",
    )

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["customer"]
        field.widget = AutocompleteSelect(SeatAssignment._meta.get_field("customer"), admin_site)
        field.widget.choices = field.choices
        field.widget.is_required = True


class ServicePurchaseChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.partner.name}: {obj.name} [{obj.code}] ({obj.scope_label})"


class SeatPurchaseAddForm(forms.Form):
    once_token = OnceField()  # sent twice, added once (billing/core/idempotency.py)
    service = ServicePurchaseChoiceField(
        queryset=Service.objects.filter(method=Method.SEAT_DAYS).select_related("partner", "customer")
        .order_by("partner__name", "code"),
        help_text=f"a service of method “{Method.SEAT_DAYS.label}”",
    )
    # as the portal's Add seats: a typo of a few digits more is refused by the form, never a database error
    seats = forms.IntegerField(min_value=1, max_value=SEATS_PER_PURCHASE_MAX, help_text="added to the commitment")

    def __init__(self, *args, admin_site=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["seats"].help_text = (
            f"added to the commitment from {next_month_start(timezone.now())} (the next UTC month boundary)"
        )


class SeatStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "Open (seat held now)"), ("closed", "Closed (unassigned)")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(removed_at__isnull=True)
        if self.value() == "closed":
            return queryset.filter(removed_at__isnull=False)
        return queryset


@admin.register(SeatAssignment)
class SeatAssignmentAdmin(CleanInitialMixin, ServiceAddViewMixin, FileImportAdminMixin, ImportExportModelAdmin):
    import_kind = "seat-events"
    add_form_class = SeatAssignForm
    add_title = "Assign a seat"
    list_display = ("member_name", "customer_name", "partner", "assigned_at", "removed_at", "source")
    list_filter = ("partner", CustomerFilter, SeatStatusFilter)
    search_fields = ("member__name", "customer__name", "customer__slug")
    list_select_related = ("member", "customer", "partner")
    # millions of rows: no full count, an estimated one when unfiltered, and no date drill-down or
    # filter by source (each of those scans the whole table on every page)
    show_full_result_count = False
    paginator = LargeTablePaginator
    fields = ("partner", "customer", "member", "assigned_at", "removed_at", "start_date", "end_date", "source")
    readonly_fields = fields
    actions = ("unassign_selected",)

    def get_import_resource_classes(self, request):
        return [SeatEventResource]

    def get_export_resource_classes(self, request):
        return [SeatAssignmentResource]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("member__customer", "customer__partner", "partner")

    def has_change_permission(self, request, obj=None):
        # history rows are never edited; seats end through "Unassign selected seats"
        return False if obj is not None else super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_unassign_permission(self, request):
        return request.user.has_perm("partners.change_seatassignment")

    def perform_add(self, request, form):
        return seat_assign(customer=form.cleaned_data["customer"], member_name=form.cleaned_data["member_name"],
                           actor=actor_of(request), source="admin")

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        if "_addanother" in request.POST:  # the next seat is most often for the same customer
            return HttpResponseRedirect(admin_url(SeatAssignment, "add", query={"customer": obj.customer_id}))
        return response

    @admin.display(description="member", ordering="member__name")
    def member_name(self, obj):
        return obj.member.name

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, obj):
        return obj.customer.name

    @admin.action(permissions=["unassign"], description="Unassign selected seats")
    def unassign_selected(self, request, queryset):
        """End each selected open seat now through seat_unassign (audited, alerts re-judged);
        each seat is its own transaction, so one failure does not undo the others."""
        done, failed = 0, []
        actor = actor_of(request)
        for assignment in queryset.select_related("member", "customer").order_by("pk"):
            if assignment.removed_at is not None:
                failed.append(f"{assignment.member.name} at {assignment.customer.slug}: already unassigned")
                continue
            try:
                seat_unassign(customer=assignment.customer, member_name=assignment.member.name, actor=actor,
                              source="admin")
            except SeatRuleError as exc:
                failed.append(str(exc))
            else:
                done += 1
        level = messages.SUCCESS if not failed else messages.WARNING
        message = f"{done} unassigned ({len(failed)} failed)"
        if failed:
            message += ": " + "; ".join(failed[:5]) + ("; ..." if len(failed) > 5 else "")
        self.message_user(request, message, level)


@admin.register(SeatPurchase)
class SeatPurchaseAdmin(CleanInitialMixin, ServiceAddViewMixin, FileImportAdminMixin, ImportExportModelAdmin):
    import_kind = "seat-purchases"
    resource_classes = [SeatPurchaseResource]
    add_form_class = SeatPurchaseAddForm
    add_title = "Add seats (a commitment increase from the next month)"
    list_display = ("service_name", "partner_name", "seats", "purchased_at", "effective_date", "purchased_by",
                    "source")
    list_filter = ("service__partner", "effective_date")
    search_fields = ("service__code", "service__name", "service__partner__slug", "service__partner__name")
    list_select_related = ("service__partner", "purchased_by")
    fields = ("service", "seats", "purchased_at", "effective_date", "purchased_by", "source")
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def perform_add(self, request, form):
        return seat_purchase_create(service=form.cleaned_data["service"], seats=form.cleaned_data["seats"],
                                    actor=actor_of(request), source="admin")

    @admin.display(description="service", ordering="service__code")
    def service_name(self, obj):
        return f"{obj.service.name} [{obj.service.code}]"

    @admin.display(description="partner", ordering="service__partner__name")
    def partner_name(self, obj):
        return obj.service.partner.name


class MemberSeatInline(EmptyStateInlineMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = SeatAssignment
    fields = ("assigned_at", "removed_at", "source")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "seat history"
    empty_text = "No seat held yet."


@admin.register(Member)
class MemberAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Members come from seat assignments and imports, keyed by (partner, customer, name):
    renaming one would break re-imports of its history, so they are read-only."""

    list_display = ("name", "customer_name", "partner_name")
    list_filter = (("customer__partner", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("name", "customer__name", "customer__slug")
    list_select_related = ("customer__partner",)
    fields = ("customer", "name")
    inlines = (MemberSeatInline,)

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, obj):
        return obj.customer.name

    @admin.display(description="partner", ordering="customer__partner__name")
    def partner_name(self, obj):
        return obj.customer.partner.name


class AlertStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("cleared", "Cleared")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(cleared_at__isnull=True)
        if self.value() == "cleared":
            return queryset.filter(cleared_at__isnull=False)
        return queryset


@admin.register(UtilizationAlert)
class UtilizationAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("service", "partner_name", "kind", "seats", "raised_at", "cleared_at", "emailed_at")
    list_filter = ("kind", AlertStatusFilter, "service__partner")
    search_fields = ("service__code", "service__name", "service__partner__slug", "recipients")
    list_select_related = ("service__partner",)
    date_hierarchy = "raised_at"

    @admin.display(description="partner", ordering="service__partner__name")
    def partner_name(self, obj):
        return obj.service.partner.name

    @admin.display(description="active / committed")
    def seats(self, obj):
        return f"{obj.active_seats} / {obj.committed_seats}"

"""Customers in the admin: the customer list (active seats, cap, commitment and utilization of each
row), the customer page, and the customer rows of a partner's page.

Customers are created, edited and deleted by partners.services (customer_create, customer_update,
customer_delete), which check the rules the imports check, audit and date changed terms
(billing-rules 3.11). The commitments and utilization of a page are read in a few grouped queries for
the whole page (PageStatsChangeList).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone
from django.utils.html import format_html
from import_export.admin import ImportExportModelAdmin

from billing.core.admin_import import FileImportAdminMixin
from billing.core.periods import utc_date
from partners.admin.kit import EMPTY, CleanInitialMixin, PageStatsMixin, actor_of, admin_url
from partners.admin.seats import active_seats_of, utilization_html
from partners.admin.services import CustomerServiceInline
from partners.admin.terms import DatedTermsForm, TermsHistoryMixin, WriteServicesMixin
from partners.models import Customer, Method, SeatAssignment, Service
from partners.resources import CustomerResource
from partners.selectors import active_seat_counts, commitments_in_force
from partners.services import customer_create, customer_delete, customer_update


# --- forms, and the customer rows of a partner's page -------------------------------------------
class CustomerForm(DatedTermsForm):
    class Meta:
        model = Customer
        fields = ("partner", "slug", "name", "seat_cap", "host_limit", "payment_terms_days", "rmm_organization")

    def clean_seat_cap(self):
        """A cap below the seats active now would leave the customer in breach (billing-rules 3.2)."""
        cap = self.cleaned_data.get("seat_cap")
        if cap is not None and self.instance.pk:
            active = SeatAssignment.objects.active().filter(customer_id=self.instance.pk).count()
            if active > cap:
                raise ValidationError(
                    f"{active} seats are active now; unassign seats before lowering the cap to {cap}"
                )
        return cap


class CustomerInlineForm(CustomerForm):
    class Meta(CustomerForm.Meta):
        widgets = {
            "name": forms.TextInput(attrs={"style": "width:14em"}),
            "slug": forms.TextInput(attrs={"style": "width:10em"}),
            "rmm_organization": forms.TextInput(attrs={"style": "width:10em"}),
        }


class CustomerInline(admin.TabularInline):
    model = Customer
    form = CustomerInlineForm
    fields = ("name", "slug", "seat_cap", "active_seats", "host_limit", "payment_terms_days", "rmm_organization")
    readonly_fields = ("active_seats",)
    show_change_link = True
    can_delete = False
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("partner").annotate(n_active=active_seats_of("customer"))

    @admin.display(description="active seats")
    def active_seats(self, obj):
        return getattr(obj, "n_active", EMPTY)


def customers_formset_save(request, formset) -> None:
    """Save the partner page's customer rows through customer_create and customer_update (checked, audited,
    a changed host limit dated from today: billing-rules 3.11)."""
    formset.save(commit=False)
    actor = actor_of(request)
    for customer in formset.new_objects:
        customer_create(customer=customer, actor=actor)
    for customer, _fields in formset.changed_objects:
        customer_update(customer=customer, actor=actor)
    for customer in formset.deleted_objects:
        customer_delete(customer=customer, actor=actor)


# --- the customer list and page -----------------------------------------------------------------
class SeatCapFilter(admin.SimpleListFilter):
    title = "seat cap"
    parameter_name = "cap"

    def lookups(self, request, model_admin):
        return [("capped", "Has a cap"), ("full", "At its cap"), ("none", "No cap")]

    def queryset(self, request, queryset):
        if self.value() == "capped":
            return queryset.filter(seat_cap__isnull=False)
        if self.value() == "full":
            return queryset.filter(seat_cap__isnull=False, n_active__gte=F("seat_cap"))
        if self.value() == "none":
            return queryset.filter(seat_cap__isnull=True)
        return queryset


@admin.register(Customer)
class CustomerAdmin(TermsHistoryMixin, CleanInitialMixin, PageStatsMixin, WriteServicesMixin, FileImportAdminMixin,
                    ImportExportModelAdmin):
    import_kind = "customers"
    resource_classes = [CustomerResource]
    form = CustomerForm
    create_service, update_service, delete_service = (
        staticmethod(customer_create), staticmethod(customer_update), staticmethod(customer_delete))
    search_fields = ("slug", "name", "partner__slug", "partner__name")
    list_filter = ("partner", SeatCapFilter)
    # the commitment is in the utilization cell (its seats are the cell's denominator): one column fewer at 1440 px
    list_display = ("name", "key", "partner_name", "active_seat_count", "cap", "utilization")
    list_select_related = ("partner",)
    fieldsets = (
        (None, {"fields": ("partner", "name", "slug")}),
        ("Seats", {"fields": ("seat_cap", "seat_summary", "links")}),
        ("Billing and RMM", {"fields": ("host_limit", "payment_terms_days", "rmm_organization")}),
        ("Terms over time", {"fields": ("terms_effective_from", "terms_history_table")}),
        ("Record", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = (CustomerServiceInline,)

    def get_readonly_fields(self, request, obj=None):
        fixed = ("partner", "slug") if obj else ()  # the import's key (partner, slug)
        return (*fixed, "seat_summary", "links", "terms_history_table", "created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("partner").annotate(n_active=active_seats_of("customer"))

    def annotate_page(self, request, rows):
        """The seat_days commitment covering each customer (its own service first, else the
        partner-level one) and the active seats in that commitment's scope: three queries."""
        today = utc_date(timezone.now())
        partner_ids = {c.partner_id for c in rows}
        commitments = commitments_in_force(partner_ids=partner_ids, day=today)
        counts = active_seat_counts(partner_ids=partner_ids)
        for customer in rows:
            mine = commitments.get(customer.partner_id, [])
            own = [c for c in mine if c.customer_id == customer.pk]
            shared = [c for c in mine if c.customer_id is None]
            chosen = (own or shared or [None])[0]
            customer.page_commitment = chosen
            if chosen is None:
                customer.page_in_scope = None
            elif chosen.customer_id:
                customer.page_in_scope = counts.by_customer.get(customer.pk, 0)
            else:
                customer.page_in_scope = counts.by_partner.get(customer.partner_id, 0)

    @admin.display(description="active seats", ordering="n_active")
    def active_seat_count(self, obj):
        return format_html('<a href="{}">{}</a>',
                           admin_url(SeatAssignment, query={"customer": obj.pk, "status": "open"}), obj.n_active)

    @admin.display(description="slug", ordering="slug")
    def key(self, obj):
        return obj.slug  # a long slug may break at its hyphens: the list keeps its width at 1440 px

    @admin.display(description="partner", ordering="partner__name")
    def partner_name(self, obj):
        return obj.partner.name  # not the field itself: the admin keeps a foreign key's cell on one line

    @admin.display(description="seat cap", ordering="seat_cap")
    def cap(self, obj):
        if obj.seat_cap is None:
            return EMPTY
        if obj.n_active >= obj.seat_cap:
            return format_html('<span style="white-space:nowrap">{} <b style="color:#ba2121">full</b></span>',
                               obj.seat_cap)
        return format_html('<span style="white-space:nowrap">{} <span class="quiet">({} free)</span></span>',
                           obj.seat_cap, obj.seat_cap - obj.n_active)

    @admin.display(description="utilization")
    def utilization(self, obj):
        """The seats in the scope of the seat-days commitment covering the customer, of its committed seats,
        and under them which commitment that is (the customer's own, or the partner's)."""
        commitment = getattr(obj, "page_commitment", None)
        if commitment is None:
            return EMPTY
        own = bool(commitment.customer_id)
        bar = utilization_html(obj.page_in_scope, commitment.committed,
                               "of this customer" if own else "across the partner",
                               part=None if own else obj.n_active, compact=True)
        over = obj.page_in_scope > commitment.committed
        overage = format_html(' · <b style="color:{}">overage</b>', "#ba2121") if over else ""
        return format_html('{} <span class="quiet scope" title="{} service {}">{} committed, {}{}</span>', bar,
                           Method.SEAT_DAYS.label, commitment.service_code, commitment.committed,
                           "this customer" if own else "partner-wide", overage)

    @admin.display(description="seats")
    def seat_summary(self, obj):
        if not obj.pk:
            return EMPTY
        active = SeatAssignment.objects.active().filter(customer=obj).count()
        cap = f"cap {obj.seat_cap}" if obj.seat_cap is not None else "no cap"
        return format_html("<b>{}</b> active seats now ({})", active, cap)

    @admin.display(description="shortcuts")
    def links(self, obj):
        if not obj.pk:
            return EMPTY
        return format_html(
            '<a href="{}">Assign a seat</a> · <a href="{}">Seats held now</a> · <a href="{}">Seat history</a> · '
            '<a href="{}">Add a service for this customer</a>',
            admin_url(SeatAssignment, "add", query={"customer": obj.pk}),
            admin_url(SeatAssignment, query={"customer": obj.pk, "status": "open"}),
            admin_url(SeatAssignment, query={"customer": obj.pk}),
            admin_url(Service, "add", query={"partner": obj.partner_id, "customer": obj.pk}),
        )

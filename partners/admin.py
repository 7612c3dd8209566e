"""The billing clerk's screens for partners, customers, services and seats.

Every change of seats or money goes through partners.services (seat_assign,
seat_unassign, seat_purchase_create), which lock, check the rules and audit.
So do edits of partners, customers and services (partner_create,
partner_update, partner_delete, and the same of customer_ and service_),
which check the rules the imports check, write the audit rows the imports
and the portal write (one snapshot per model, partners.audit) and date
changed terms. History (seat assignments, seat purchases, alerts, the audit
log, members) is read-only here: it changes only through those services and
the imports.

Lists never run a query per row: counts are subquery annotations, and the
commitments and utilization of a page are read in a few grouped queries for
the whole page (see PageStatsChangeList).
"""

from __future__ import annotations

import json
from decimal import Decimal

from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AdminDateWidget, AutocompleteSelect
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from import_export.admin import ImportExportModelAdmin

from billing.core.actor import Actor
from billing.core.admin_import import FileImportAdminMixin
from billing.core.emails import split_emails
from billing.core.idempotency import OnceField, once_per_form
from billing.core.paging import LargeTablePaginator
from billing.core.periods import next_month_start, utc_date
from partners.api_keys import api_key_create, api_key_revoke
from partners.audit import SERVICE_AUDIT_FIELDS, audit_record, partner_user_snapshot
from partners.choices import AuditAction
from partners.models import (
    ApiKey,
    AuditLog,
    Customer,
    Member,
    Method,
    Partner,
    PartnerUser,
    SeatAssignment,
    SeatPurchase,
    Service,
    UtilizationAlert,
)
from partners.resources import (
    CustomerResource,
    PartnerResource,
    SeatAssignmentResource,
    SeatEventResource,
    SeatPurchaseResource,
    ServiceResource,
)
from partners.seating import SeatRuleError, utilization, utilization_percent
from partners.selectors import active_seat_counts, commitments_in_force, committed_seats
from partners.services import (
    customer_create,
    customer_delete,
    customer_update,
    partner_create,
    partner_delete,
    partner_update,
    seat_assign,
    seat_purchase_create,
    seat_unassign,
    service_create,
    service_delete,
    service_update,
    terms_history,
)
from partners.terms import TERM_FIELDS, TermsDateError, changed_terms, check_effective, copied, kind_of, values_of

EMPTY = "—"


# --- helpers ------------------------------------------------------------------------------------
def _actor(request) -> Actor:
    return Actor.of_user(request.user)


def _admin_url(obj_or_model, action: str = "changelist", *args, query: dict | None = None) -> str:
    opts = obj_or_model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{action}", args=args)
    return f"{url}?{urlencode(query)}" if query else url


def _active_seats(outer: str):
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


def utilization_html(active: int, committed: int, scope: str = "", part: int | None = None):
    """A small bar, the percent (`utilization_percent`: whole, half away from zero, billing-rules decision (as))
    and active / committed: amber from the warning threshold, red in overage, both judged on the exact ratio as
    the alerts are (billing-rules 3.3). `part`: the seats this row holds of a wider scope, drawn darker."""
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
    return format_html(
        '<span title="{}" style="white-space:nowrap">'
        '<span style="display:inline-flex;width:60px;height:9px;border-radius:4px;background:#e6e6e6;'
        'vertical-align:middle;overflow:hidden">'
        '<span style="width:{}%;background:{}"></span><span style="width:{}%;background:{};opacity:.4"></span>'
        '</span> <b style="color:{}">{}%</b> <span class="quiet">{}/{}</span>{}</span>',
        title, part_width, colour, total_width - part_width, colour, colour, percent, active, committed,
        format_html(' <b style="color:{}">overage</b>', colour) if active > committed else "",
    )


class FieldErrorsMixin:
    """Model validation may name a field the form does not show (a read-only or locked field):
    show it as a form-level error naming the field, never as a server error."""

    def add_error(self, field, error):
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            shown, hidden = {}, []
            for name, errors in error.error_dict.items():
                if name == NON_FIELD_ERRORS or name in self.fields:
                    shown[name] = errors
                else:
                    hidden += [f"{name}: {message}" for e in errors for message in e.messages]
            if hidden:
                shown.setdefault(NON_FIELD_ERRORS, []).extend(ValidationError(m) for m in hidden)
            error = ValidationError(shown)
        super().add_error(field, error)


def _errors_to_form(form, exc) -> None:
    """A domain error from a service, shown on the form it came from."""
    if isinstance(exc, SeatRuleError):
        field = "member_name" if exc.column == "member" and "member_name" in form.fields else None
        form.add_error(field, str(exc))
    elif isinstance(exc, PermissionDenied):
        form.add_error(None, str(exc) or "permission denied")
    elif hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            for error in errors:
                form.add_error(name if name in form.fields else None, error)
    else:
        form.add_error(None, exc)


class CleanInitialMixin:
    """Add pages prefilled from links (?partner=1&customer=2): a malformed id is dropped rather
    than crashing the autocomplete widget."""

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        for name in ("partner", "customer", "service"):
            value = initial.get(name)
            if value is not None and not str(value).isdigit():
                del initial[name]
        return initial


class PageStatsChangeList(ChangeList):
    """Hands the rows of the current page to ModelAdmin.annotate_page once, so that columns
    derived from several rows (commitments, utilization) cost a few queries per page."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        self.model_admin.annotate_page(request, self.result_list)


class PageStatsMixin:
    def get_changelist(self, request, **kwargs):
        return PageStatsChangeList

    def annotate_page(self, request, rows) -> None:
        """Set per-row attributes for the page's columns (a few grouped queries, not one per row)."""


class AuditedSaveMixin:
    """Admin edits write an audit row `<audit_kind>.create|update|delete` with the
    object's `audit_snapshot` before and after (partners, customers and services are
    written by their services instead: WriteServicesMixin)."""

    audit_kind = ""

    def audit_snapshot(self, obj) -> dict:
        raise NotImplementedError

    def audit_partner(self, obj):
        return getattr(obj, "partner", None)

    def save_model(self, request, obj, form, change):
        before = self.audit_snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        after = self.audit_snapshot(obj)
        if after != before:
            audit_record(actor=_actor(request), action=AuditAction.of(self.audit_kind,
                         "update" if change else "create"),
                         obj=obj, partner=self.audit_partner(obj), before=before, after=after)

    def delete_model(self, request, obj):
        before, object_id, partner = self.audit_snapshot(obj), obj.pk, self.audit_partner(obj)
        label = str(obj)
        super().delete_model(request, obj)
        audit_record(actor=_actor(request), action=AuditAction.of(self.audit_kind, "delete"),
                     object_type=obj._meta.label,
                     object_id=object_id, object_repr=label, partner=partner if partner and partner.pk else None,
                     before=before)

    def get_actions(self, request):
        # bulk deletes would skip the audit and PROTECT would stop most of them anyway
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A ValidationError raised while saving (the model's own guard, say after a concurrent
        edit) rolls the whole save back and comes back as an error message, not a 500."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            self.message_user(request, "Nothing was saved: " + "; ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class WriteServicesMixin(AuditedSaveMixin):
    """Partners, customers and services are saved and deleted by their services (partners.services:
    `<noun>_create`, `<noun>_update`, `<noun>_delete`), which check the rules, audit with the model's one
    snapshot and date changed terms from the form's "Changed terms take effect on" (billing-rules 3.11).
    A ValidationError they raise comes back as a message (AuditedSaveMixin.changeform_view)."""

    create_service = update_service = delete_service = None  # staticmethods, set by each admin

    def save_model(self, request, obj, form, change):
        if not change:
            self.create_service(**{kind_of(obj): obj}, actor=_actor(request))
            return
        _, effective = self.update_service(**{kind_of(obj): obj}, actor=_actor(request),
                                           effective=form.cleaned_data.get("terms_effective_from"))
        if effective is not None:
            self.message_user(request, f"The new terms take effect on {effective:%-d %B %Y}; "
                                       f"months before keep the terms then in force.", messages.INFO)

    def delete_model(self, request, obj):
        self.delete_service(**{kind_of(obj): obj}, actor=_actor(request))


def customers_formset_save(request, formset) -> None:
    """Save the partner page's customer rows through customer_create and customer_update (checked, audited,
    a changed host limit dated from today: billing-rules 3.11)."""
    formset.save(commit=False)
    actor = _actor(request)
    for customer in formset.new_objects:
        customer_create(customer=customer, actor=actor)
    for customer, _fields in formset.changed_objects:
        customer_update(customer=customer, actor=actor)
    for customer in formset.deleted_objects:
        customer_delete(customer=customer, actor=actor)


def audit_formset(request, formset, *, kind: str, snap, partner_of) -> None:
    """Save an inline formset, auditing its new, changed and deleted rows like AuditedSaveMixin."""
    changed_pks = [f.instance.pk for f in formset.initial_forms if f.instance.pk and f.has_changed()]
    befores = {pk: snap(obj) for pk, obj in formset.model.objects.in_bulk(changed_pks).items()}
    deleted = [(f.instance.pk, str(f.instance), snap(f.instance), partner_of(f.instance))
               for f in formset.deleted_forms if f.instance.pk]
    formset.save()
    actor = _actor(request)
    for pk, label, before, partner in deleted:
        audit_record(actor=actor, action=AuditAction.of(kind, "delete"), object_type=formset.model._meta.label,
                     object_id=pk,
                     object_repr=label, partner=partner, before=before)
    for obj in formset.new_objects:
        audit_record(actor=actor, action=AuditAction.of(kind, "create"), obj=obj, partner=partner_of(obj),
                     after=snap(obj))
    for obj, _fields in formset.changed_objects:
        after = snap(obj)
        if after != befores.get(obj.pk):
            audit_record(actor=actor, action=AuditAction.of(kind, "update"), obj=obj, partner=partner_of(obj),
                         before=befores.get(obj.pk), after=after)


class CustomerFilter(admin.SimpleListFilter):
    """Customers by name, narrowed to the partner chosen in the partner filter (one query)."""

    title = "customer"
    parameter_name = "customer"
    partner_parameter = "partner__id__exact"

    # with thousands of customers the list is offered once a partner is chosen (the chosen customer
    # stays shown), not as thousands of links on every page
    most_unnarrowed = 200

    def lookups(self, request, model_admin):
        customers = Customer.objects.select_related("partner").order_by("partner__name", "name")
        partner_id = request.GET.get(self.partner_parameter)
        if partner_id and partner_id.isdigit():
            customers = customers.filter(partner_id=partner_id)
        else:
            shown = list(customers[: self.most_unnarrowed + 1])
            if len(shown) > self.most_unnarrowed:
                value = self.value()
                shown = list(customers.filter(pk=value)) if value and value.isdigit() else []
            customers = shown
        return [(str(c.pk), f"{c.name} ({c.partner.slug})") for c in customers]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(customer_id=value)
        return queryset


class ReadOnlyAdminMixin:
    """History: shown, never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- terms with effective dates (billing-rules 3.11) -----------------------------------------------
class DatedTermsForm(forms.ModelForm):
    """A change form whose terms (prices, tiers, commitment, host limit, tax, payment terms) change from a
    date: blank is the day the change is made (UTC), a price change the next month's 1st."""

    terms_effective_from = forms.DateField(
        required=False, label="Changed terms take effect on", widget=AdminDateWidget,
        help_text="blank: today (UTC); a change of a price, tiers or tier mode: the next month's 1st. A price "
                  "change takes effect on a 1st. Months before it keep the terms then in force; a date in a "
                  "month already invoiced is trued up on the next invoice.")

    def clean(self):
        cleaned = super().clean()
        effective = cleaned.get("terms_effective_from")
        if effective is not None and self.instance.pk:
            saved = type(self.instance).objects.get(pk=self.instance.pk)
            edited = copied(saved)  # the saved object with the form's terms: values_of reads both alike
            for name in TERM_FIELDS[kind_of(saved)]:
                if name in cleaned:
                    setattr(edited, name, cleaned[name])
            try:
                check_effective(changed_terms(values_of(saved), values_of(edited)), effective)
            except TermsDateError as exc:
                self.add_error("terms_effective_from", str(exc))
        return cleaned


class TermsHistoryMixin:
    """The admin's history of an object's terms: what held from when until when (on a saved object)."""

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else [f for f in fieldsets if f[0] != "Terms over time"]

    @admin.display(description="history of terms")
    def terms_history_table(self, obj):
        if obj is None or not obj.pk:
            return "-"
        rows = terms_history(type(obj).objects.get(pk=obj.pk))  # as saved (a form sent back holds its edits)
        return format_html(
            '<table class="terms-history"><thead><tr><th>from</th><th>until</th><th>terms</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", (
                (row["from"] or "the start", row["until"] or "now on",
                 "; ".join(f"{label} {value}" for label, value in row["values"].items() if value not in (None, ""))
                 or "-")
                for row in rows)))


# --- partners -----------------------------------------------------------------------------------
class PartnerForm(DatedTermsForm):
    billing_portal_url = forms.URLField(required=False, assume_scheme="https",
                                        help_text=Partner._meta.get_field("billing_portal_url").help_text)

    currency = forms.ChoiceField(choices=[(c, c) for c in settings.CURRENCIES], initial="USD",
                                 help_text="ISO 4217; every price of the partner is in it")

    class Meta:
        model = Partner
        fields = ("slug", "name", "currency", "tax_rate", "payment_terms_days", "billing_emails",
                  "billing_portal_url")
        widgets = {"billing_emails": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        rate = self.initial.get("tax_rate")
        if isinstance(rate, Decimal):
            self.initial["tax_rate"] = format(rate.normalize(), "f")  # 8, not 8.000

    def clean_currency(self):
        currency = self.cleaned_data["currency"].upper()
        saved = self.instance.currency if self.instance.pk else None
        if saved and saved != currency and self.instance.services.exists():
            raise ValidationError(f"cannot change from {saved} once the partner has services (prices are in it)")
        return currency

    def clean_tax_rate(self):
        rate = self.cleaned_data["tax_rate"]
        if rate is not None and rate > 100:
            raise ValidationError("is a percent: at most 100")
        return rate

    def clean_billing_emails(self):
        emails = split_emails(self.cleaned_data.get("billing_emails", ""))
        for email in emails:
            try:
                validate_email(email)
            except ValidationError:
                raise ValidationError(f"not an email address: {email!r}") from None
        return ", ".join(emails)


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
        return super().get_queryset(request).select_related("partner").annotate(n_active=_active_seats("customer"))

    @admin.display(description="active seats")
    def active_seats(self, obj):
        return getattr(obj, "n_active", EMPTY)


class ServiceOverviewInline(admin.TabularInline):
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

    def get_queryset(self, request):
        return super().get_queryset(request).filter(customer__isnull=True)


class PartnerUserInline(admin.TabularInline):
    model = PartnerUser
    fields = ("user", "role")
    autocomplete_fields = ("user",)
    extra = 0


@admin.register(Partner)
class PartnerAdmin(TermsHistoryMixin, PageStatsMixin, WriteServicesMixin, FileImportAdminMixin,
                   ImportExportModelAdmin):
    import_kind = "partners"
    resource_classes = [PartnerResource]
    form = PartnerForm
    create_service, update_service, delete_service = (
        staticmethod(partner_create), staticmethod(partner_update), staticmethod(partner_delete))
    search_fields = ("slug", "name")
    list_display = ("name", "slug", "currency", "tax", "terms", "customer_count", "active_seat_count",
                    "utilization")
    list_display_links = ("name", "slug")
    fieldsets = (
        (None, {"fields": ("name", "slug")}),
        ("Billing", {"fields": ("currency", "tax_rate", "payment_terms_days", "billing_emails",
                                "billing_portal_url")}),
        ("Terms over time", {"fields": ("terms_effective_from", "terms_history_table")}),
        ("Seats now", {"fields": ("seat_summary", "links")}),
        ("Record", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = (CustomerInline, PartnerServiceInline, PartnerUserInline)

    def get_readonly_fields(self, request, obj=None):
        fixed = ("slug",) if obj else ()  # the import's key
        return (*fixed, "seat_summary", "links", "terms_history_table", "created_at", "updated_at")

    def get_queryset(self, request):
        customers = (
            Customer.objects.filter(partner=OuterRef("pk")).order_by().values("partner")
            .annotate(n=Count("pk")).values("n")[:1]
        )
        return super().get_queryset(request).annotate(
            n_customers=Coalesce(Subquery(customers, output_field=IntegerField()), 0),
            n_active=_active_seats("partner"),
        )

    def annotate_page(self, request, rows):
        today = utc_date(timezone.now())
        commitments = commitments_in_force(partner_ids=[p.pk for p in rows], day=today)
        for partner in rows:
            shared = [c for c in commitments.get(partner.pk, []) if c.customer_id is None]
            partner.page_committed = sum(c.committed for c in shared) if shared else None
            partner.page_per_customer = any(c.customer_id for c in commitments.get(partner.pk, []))

    def save_formset(self, request, form, formset, change):
        if formset.model is Customer:
            customers_formset_save(request, formset)
        elif formset.model is PartnerUser:
            audit_formset(request, formset, kind="partner_user", snap=partner_user_snapshot,
                          partner_of=lambda u: u.partner)
        else:
            super().save_formset(request, form, formset, change)

    @admin.display(description="tax", ordering="tax_rate")
    def tax(self, obj):
        return f"{obj.tax_rate.normalize():f}%"

    @admin.display(description="terms", ordering="payment_terms_days")
    def terms(self, obj):
        return f"{obj.payment_terms_days} days"

    @admin.display(description="customers", ordering="n_customers")
    def customer_count(self, obj):
        return format_html('<a href="{}">{}</a>', _admin_url(Customer, query={"partner__id__exact": obj.pk}),
                           obj.n_customers)

    @admin.display(description="active seats", ordering="n_active")
    def active_seat_count(self, obj):
        return obj.n_active

    @admin.display(description="utilization")
    def utilization(self, obj):
        committed = getattr(obj, "page_committed", None)
        if committed:
            return utilization_html(obj.n_active, committed, "partner-wide")
        if getattr(obj, "page_per_customer", False):
            return format_html('<span class="quiet">{}</span>', "per customer (see customers)")
        return EMPTY

    @admin.display(description="seats")
    def seat_summary(self, obj):
        if not obj.pk:
            return EMPTY
        today = utc_date(timezone.now())
        counts = active_seat_counts(partner_ids=[obj.pk])
        active = counts.by_partner.get(obj.pk, 0)
        lines = [format_html("<b>{}</b> active seats now", active)]
        for c in commitments_in_force(partner_ids=[obj.pk], day=today).get(obj.pk, []):
            in_scope = counts.by_customer.get(c.customer_id, 0) if c.customer_id else active
            scope = "one customer" if c.customer_id else "partner-wide"
            overage = "overage allowed" if c.overage_enabled else "overage disabled: assignments stop at it"
            lines.append(format_html("service <b>{}</b>: {} committed seats ({}, {}) {}", c.service_code,
                                     c.committed, scope, overage, utilization_html(in_scope, c.committed, scope)))
        return format_html_join("", "<div>{}</div>", ((line,) for line in lines))

    @admin.display(description="shortcuts")
    def links(self, obj):
        if not obj.pk:
            return EMPTY
        return format_html(
            '<a href="{}">Seat history</a> · <a href="{}">Add a partner-level service</a> · '
            '<a href="{}">Audit log</a>',
            _admin_url(SeatAssignment, query={"partner__id__exact": obj.pk}),
            _admin_url(Service, "add", query={"partner": obj.pk}),
            _admin_url(AuditLog, query={"partner__id__exact": obj.pk}),
        )


# --- customers ----------------------------------------------------------------------------------
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


class CustomerServiceInline(ServiceOverviewInline):
    fk_name = "customer"
    verbose_name = "service of this customer"
    verbose_name_plural = "services of this customer only (partner-level services also cover it)"


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
    list_display = ("name", "key", "partner", "active_seat_count", "cap", "committed", "utilization")
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
        return super().get_queryset(request).select_related("partner").annotate(n_active=_active_seats("customer"))

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
                           _admin_url(SeatAssignment, query={"customer": obj.pk, "status": "open"}), obj.n_active)

    @admin.display(description="slug", ordering="slug")
    def key(self, obj):
        return format_html('<span style="white-space:nowrap">{}</span>', obj.slug)

    @admin.display(description="seat cap", ordering="seat_cap")
    def cap(self, obj):
        if obj.seat_cap is None:
            return EMPTY
        if obj.n_active >= obj.seat_cap:
            return format_html('<span style="white-space:nowrap">{} <b style="color:#ba2121">full</b></span>',
                               obj.seat_cap)
        return format_html('<span style="white-space:nowrap">{} <span class="quiet">({} free)</span></span>',
                           obj.seat_cap, obj.seat_cap - obj.n_active)

    @admin.display(description="committed")
    def committed(self, obj):
        commitment = getattr(obj, "page_commitment", None)
        if commitment is None:
            return EMPTY
        scope = "this customer" if commitment.customer_id else "partner-wide"
        return format_html('<span style="white-space:nowrap" title="seat_days service {}">{} '
                           '<span class="quiet">{}</span></span>', commitment.service_code, commitment.committed, scope)

    @admin.display(description="utilization")
    def utilization(self, obj):
        commitment = getattr(obj, "page_commitment", None)
        if commitment is None:
            return EMPTY
        if commitment.customer_id:
            return utilization_html(obj.page_in_scope, commitment.committed, "of this customer")
        return utilization_html(obj.page_in_scope, commitment.committed, "across the partner", part=obj.n_active)

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
            _admin_url(SeatAssignment, "add", query={"customer": obj.pk}),
            _admin_url(SeatAssignment, query={"customer": obj.pk, "status": "open"}),
            _admin_url(SeatAssignment, query={"customer": obj.pk}),
            _admin_url(Service, "add", query={"partner": obj.partner_id, "customer": obj.pk}),
        )


# --- services -----------------------------------------------------------------------------------
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
        ("Pricing", {"fields": ("method", "meter", "unit_price", "overage_price", "tiers", "tier_mode",
                                "proration", "taxable")}),
        ("Commitment", {"fields": ("committed_quantity", "overage_enabled", "commitment_now",
                                   "notification_emails")}),
        ("Licenses and RMM", {"fields": ("storage_per_license_gb", "rmm_filter")}),
        ("Dates", {"fields": ("start_date", "end_date")}),
        ("Terms over time", {"fields": ("terms_effective_from", "terms_history_table")}),
        ("Record", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        """How units are derived (method, meter, RMM filter) is fixed once saved (billing-rules 3.7); so are the
        partner (prices are in its currency) and the code (the import's key)."""
        if obj is None:
            return ("commitment_now", "terms_history_table", "created_at", "updated_at")
        return ("partner", "code", "method", "meter", "rmm_filter", "commitment_now", "terms_history_table",
                "created_at", "updated_at")

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
        return format_html('<span title="{}">{}</span>', obj.get_method_display(), obj.method)

    @admin.display(description="price", ordering="unit_price")
    def prices(self, obj):
        if obj.tiers:
            return format_html('<span class="quiet">tiers</span> {}', obj.tiers)
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
        return format_html('<span style="white-space:nowrap">{} → {}</span>', obj.start_date.isoformat(), end)

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
        add_link = _admin_url(SeatPurchase, "add", query={"service": obj.pk})
        return format_html(
            '{} committed seats {}<ul style="margin-left:1em">{}</ul><a href="{}">Add seats</a> '
            '<span class="quiet">(effective {})</span>',
            committed, utilization_html(counts.in_scope(obj), committed, obj.scope_label), bought, add_link,
            next_month_start(timezone.now()),
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
        help_text="a seat_days service",
    )
    seats = forms.IntegerField(min_value=1, help_text="added to the commitment")

    def __init__(self, *args, admin_site=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["seats"].help_text = (
            f"added to the commitment from {next_month_start(timezone.now())} (the next UTC month boundary)"
        )


class ServiceAddViewMixin:
    """An add page whose write is one service call.

    The service (seat_assign, seat_purchase_create) locks, checks the rules and audits; a
    rule it denies must come back as an error on the form, with nothing written. Django's
    own add view cannot do that: its save_model runs after validation and must succeed.
    Validating in the form's clean() would mean writing during validation. So this add
    view keeps the usual split: the form checks the input, the view calls the service
    inside a transaction (with the admin's LogEntry), and a SeatRuleError, ValidationError
    or PermissionDenied becomes a form error on the re-rendered page.
    """

    add_form_class: type[forms.Form]
    add_title = ""

    def perform_add(self, request, form):
        raise NotImplementedError

    def add_view(self, request, form_url="", extra_context=None):
        """The add form sent again (a double click) adds once, when it carries a one-time token."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        return once_per_form(request, f"admin:{self.opts.label}:add",
                             lambda: self._add_view(request, form_url, extra_context))

    def _add_view(self, request, form_url="", extra_context=None):
        initial = self.get_changeform_initial_data(request)
        data = request.POST if request.method == "POST" else None
        form = self.add_form_class(data, initial=initial, admin_site=self.admin_site)
        if form.is_bound and form.is_valid():
            try:
                with transaction.atomic():
                    obj = self.perform_add(request, form)
                    self.log_addition(request, obj, [{"added": {}}])
            except (SeatRuleError, ValidationError, PermissionDenied) as exc:
                _errors_to_form(form, exc)
            else:
                return self.response_add(request, obj)
        admin_form = helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {}, model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": self.add_title or f"Add {self.opts.verbose_name}",
            "subtitle": None,
            "adminform": admin_form,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            "show_save_and_continue": False,
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=True, change=False, form_url=form_url)


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
                           actor=_actor(request), source="admin")

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        if "_addanother" in request.POST:  # the next seat is most often for the same customer
            return HttpResponseRedirect(_admin_url(SeatAssignment, "add", query={"customer": obj.customer_id}))
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
        actor = _actor(request)
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
                                    actor=_actor(request), source="admin")

    @admin.display(description="service", ordering="service__code")
    def service_name(self, obj):
        return f"{obj.service.name} [{obj.service.code}]"

    @admin.display(description="partner", ordering="service__partner__name")
    def partner_name(self, obj):
        return obj.service.partner.name


class MemberSeatInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SeatAssignment
    fields = ("assigned_at", "removed_at", "source")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "seat history"


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


@admin.register(PartnerUser)
class PartnerUserAdmin(AuditedSaveMixin, admin.ModelAdmin):
    """Portal logins and their roles: every change of a role is audited (partner_user.*)."""

    audit_kind = "partner_user"
    list_display = ("user", "email", "partner", "role")
    list_filter = ("role", "partner")
    search_fields = ("user__username", "user__email", "partner__slug", "partner__name")
    list_select_related = ("user", "partner")
    autocomplete_fields = ("user", "partner")

    def audit_snapshot(self, obj):
        return partner_user_snapshot(obj)

    @admin.display(description="email", ordering="user__email")
    def email(self, obj):
        return obj.user.email


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


# --- audit log ----------------------------------------------------------------------------------
def _pretty_json(value):
    if value is None:
        return EMPTY
    return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>',
                       json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("at", "who", "action", "object_link", "partner")
    list_filter = ("action", "partner", "object_type")
    search_fields = ("action", "object_repr", "object_id", "actor_label", "actor__username")
    list_select_related = ("actor", "partner")
    date_hierarchy = "at"
    fields = ("at", "who", "action", "object_type", "object_link", "partner", "changes", "before_json",
              "after_json")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="actor", ordering="actor_label")
    def who(self, obj):
        return obj.actor_label or (obj.actor.get_username() if obj.actor_id else "system")

    @admin.display(description="object", ordering="object_repr")
    def object_link(self, obj):
        label = obj.object_repr or f"{obj.object_type} {obj.object_id}"
        try:
            model = apps.get_model(obj.object_type)
            if obj.object_id and model in self.admin_site._registry:
                return format_html('<a href="{}">{}</a>', _admin_url(model, "change", obj.object_id), label)
        except (LookupError, ValueError, NoReverseMatch):
            pass
        return label

    @admin.display(description="changes")
    def changes(self, obj):
        before, after = obj.before or {}, obj.after or {}
        if not isinstance(before, dict) or not isinstance(after, dict):
            return EMPTY
        rows = []
        for key in sorted({*before, *after}):
            old, new = before.get(key), after.get(key)
            if obj.before is not None and old == new:
                continue
            rows.append((key, EMPTY if old is None else old, EMPTY if new is None else new))
        if not rows:
            return EMPTY
        body = format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", rows)
        return format_html("<table><thead><tr><th>field</th><th>before</th><th>after</th></tr></thead>"
                           "<tbody>{}</tbody></table>", body)

    @admin.display(description="before (JSON)")
    def before_json(self, obj):
        return _pretty_json(obj.before)

    @admin.display(description="after (JSON)")
    def after_json(self, obj):
        return _pretty_json(obj.after)


class ApiKeyAddForm(forms.Form):
    once_token = OnceField()  # sent twice, added once (billing/core/idempotency.py)
    partner = forms.ModelChoiceField(queryset=Partner.objects.order_by("name"))
    name = forms.CharField(max_length=100, required=False, help_text="what the key is for, e.g. 'PSA sync'")

    def __init__(self, *args, admin_site=None, **kwargs):
        super().__init__(*args, **kwargs)


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceAddViewMixin, admin.ModelAdmin):
    """Keys of the HTTP API: created here or in the portal, shown once, stored as a digest, revoked
    for good. The secret never appears on these pages again."""

    add_form_class = ApiKeyAddForm
    add_title = "Create an API key (shown once)"
    list_display = ("prefix", "partner", "name", "created_at", "created_by", "last_used_at", "revoked_at")
    list_filter = ("partner", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("prefix", "name", "partner__slug", "partner__name")
    list_select_related = ("partner", "created_by")
    fields = ("partner", "name", "prefix", "created_at", "created_by", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke_keys"]

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def perform_add(self, request, form):
        api_key, secret = api_key_create(partner=form.cleaned_data["partner"], actor=_actor(request),
                                         name=form.cleaned_data["name"])
        self.message_user(request, f"The new key, shown this once: {secret}", messages.WARNING)
        return api_key

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_keys(self, request, queryset):
        """Revoke keys for good: the API answers 401 to them from now on."""
        count = 0
        for api_key in queryset:
            if api_key.revoked_at is None:
                api_key_revoke(api_key=api_key, actor=_actor(request))
                count += 1
        self.message_user(request, f"{count} key(s) revoked.")

"""The admin kit: the generic pieces every app's admin builds on (partners, metering, invoicing).

- who acted (`actor_of`) and where an object's admin pages are (`admin_url`);
- forms: model errors on fields the form does not show (`FieldErrorsMixin`), a service's refusal on the
  form it came from (`errors_to_form`), add pages prefilled from links (`CleanInitialMixin`);
- lists: per-page columns in a few grouped queries (`PageStatsChangeList`, `PageStatsMixin`), customers
  narrowed to the chosen partner (`CustomerFilter`), inlines that say when they have no rows
  (`EmptyStateInlineMixin`);
- writes: audited saves and deletes (`AuditedSaveMixin`) and inline formsets (`audit_formset`), history
  shown but never changed (`ReadOnlyAdminMixin`), and add pages whose write is one service call
  (`ServiceAddViewMixin`).

It lives in partners, the lowest app, because it writes the audit log (partners.audit); the kernel
(billing.core) imports no app.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from billing.core.actor import Actor
from billing.core.idempotency import once_per_form
from billing.core.periods import Period, PeriodError, utc_date
from partners.audit import audit_record
from partners.choices import AuditAction
from partners.models import Customer
from partners.seating import SeatRuleError

EMPTY = "—"


# --- helpers ------------------------------------------------------------------------------------
def actor_of(request) -> Actor:
    return Actor.of_user(request.user)


def admin_url(obj_or_model, action: str = "changelist", *args, query: dict | None = None) -> str:
    opts = obj_or_model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{action}", args=args)
    return f"{url}?{urlencode(query)}" if query else url


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


def errors_to_form(form, exc) -> None:
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
            audit_record(actor=actor_of(request), action=AuditAction.of(self.audit_kind,
                         "update" if change else "create"),
                         obj=obj, partner=self.audit_partner(obj), before=before, after=after)

    def delete_model(self, request, obj):
        before, object_id, partner = self.audit_snapshot(obj), obj.pk, self.audit_partner(obj)
        label = str(obj)
        super().delete_model(request, obj)
        audit_record(actor=actor_of(request), action=AuditAction.of(self.audit_kind, "delete"),
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


def audit_formset(request, formset, *, kind: str, snap, partner_of) -> None:
    """Save an inline formset, auditing its new, changed and deleted rows like AuditedSaveMixin."""
    changed_pks = [f.instance.pk for f in formset.initial_forms if f.instance.pk and f.has_changed()]
    befores = {pk: snap(obj) for pk, obj in formset.model.objects.in_bulk(changed_pks).items()}
    deleted = [(f.instance.pk, str(f.instance), snap(f.instance), partner_of(f.instance))
               for f in formset.deleted_forms if f.instance.pk]
    formset.save()
    actor = actor_of(request)
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


class EmptyStateInlineMixin:
    """A tabular inline that says so when it has no rows (`empty_text`), instead of showing bare column
    headings (templates/admin/edit_inline/tabular_or_empty.html)."""

    template = "admin/edit_inline/tabular_or_empty.html"
    empty_text = "None."


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
                errors_to_form(form, exc)
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


class MonthFilter(admin.SimpleListFilter):
    """The UTC month of an instant (`field`, a DateTimeField): this month and the twelve before, offered from the
    calendar. For lists of millions of rows, in place of Django's date_hierarchy, which asks the table for its
    first and last date and then for every distinct year, month and day in it."""

    title = "month (UTC)"
    parameter_name = "month"
    field = ""  # set by a subclass (or `of`)
    offered = 13

    @classmethod
    def of(cls, field: str) -> type[MonthFilter]:
        return type(f"MonthFilter_{field}", (cls,), {"field": field})

    def lookups(self, request, model_admin):
        month = Period.of(utc_date(timezone.now()))
        months = [month.shift(-n) for n in range(self.offered)]
        chosen = self.period()
        if chosen is not None and chosen not in months:
            months.append(chosen)
        return [(str(m), m.first.strftime("%B %Y")) for m in months]

    def period(self) -> Period | None:
        try:
            return Period.parse(self.value()) if self.value() else None
        except PeriodError:
            return None

    def queryset(self, request, queryset):
        month = self.period()
        if month is None:
            return queryset
        return queryset.filter(**{f"{self.field}__gte": month.start, f"{self.field}__lt": month.end})

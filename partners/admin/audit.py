"""The audit log in the admin: every change of seats, money, terms and access, as a sentence with names ("Anna
Berg assigned a seat to j.smith at Contoso Dental") and the before and after of the changed fields by their
labels (partners.audit_text). Filters by person, kind, object type and partner. The raw row stays on the
detail page, folded, for support.

Read-only: rows are written by the services (partners.audit), never here. A page of the list reads its names
in one query per model (annotate_page), however many rows it shows."""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import NoReverseMatch
from django.utils.html import format_html, format_html_join

from billing.core.paging import LargeTablePaginator
from partners.admin.kit import EMPTY, MonthFilter, PageStatsMixin, admin_url
from partners.audit_log import (
    audit_by_kind,
    audit_by_person,
    audit_kinds,
    audit_object_types,
    audit_people,
    object_type_label,
)
from partners.audit_text import audit_texts, model_of
from partners.models import AuditLog

SHOWN_IN_LIST = 3  # changes shown under a sentence in the list; the detail page has them all


def _pretty_json(value):
    if value is None:
        return EMPTY
    return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>',
                       json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def _text(obj):
    """The entry's AuditText: set for a whole list page by annotate_page, else read for this one entry."""
    if getattr(obj, "text", None) is None:
        obj.text = audit_texts([obj])[0]
    return obj.text


class PersonFilter(admin.SimpleListFilter):
    """The people who have entries (by name), then the commands, tasks and API keys (by label)."""

    title = "person"
    parameter_name = "person"

    def lookups(self, request, model_admin):
        return audit_people(AuditLog.objects.all())

    def queryset(self, request, queryset):
        return audit_by_person(queryset, self.value())


class KindFilter(admin.SimpleListFilter):
    """Kinds of entries by topic (seats, usage and RMM, invoices and payments, ...); the chosen topic opens
    into its actions, to narrow to one ("Seat assigned")."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        chosen = self.value() or ""
        choices = []
        for topic, label, actions in audit_kinds():
            choices.append((topic, label))
            if chosen == topic or chosen in dict(actions):
                choices += [(action, f"· {name}") for action, name in actions]
        return choices

    def queryset(self, request, queryset):
        return audit_by_kind(queryset, self.value())


class ObjectTypeFilter(admin.SimpleListFilter):
    """Object types by their names ("Seat assignment"), not their model labels."""

    title = "object type"
    parameter_name = "object_type"

    def lookups(self, request, model_admin):
        types = audit_object_types(AuditLog.objects.all())
        return sorted(((t, object_type_label(t)) for t in types if t), key=lambda choice: choice[1])

    def queryset(self, request, queryset):
        return queryset.filter(object_type=self.value()) if self.value() else queryset


@admin.register(AuditLog)
class AuditLogAdmin(PageStatsMixin, admin.ModelAdmin):
    list_display = ("when", "entry", "partner")
    list_display_links = ("when",)
    list_filter = (PersonFilter, KindFilter, ObjectTypeFilter, "partner", MonthFilter.of("at"))
    search_fields = ("object_repr", "object_id", "actor_label", "actor__username", "actor__first_name",
                     "actor__last_name")
    search_help_text = "Search by person, command or API key, or by the object's name or ID."
    list_select_related = ("actor", "partner")
    list_per_page = 50
    # millions of rows once seat imports are audited seat by seat: no date_hierarchy scan, no full count
    paginator = LargeTablePaginator
    show_full_result_count = False
    raw = ("action_code", "actor_label", "object_type", "object_id", "object_repr", "before_json", "after_json")
    fieldsets = (
        (None, {"fields": ("when", "entry", "changes", "partner", "object_link")}),
        ("Raw entry (for support)", {"classes": ["collapse"], "fields": raw}),
    )
    readonly_fields = ("when", "entry", "changes", "partner", "object_link", *raw)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "partner")  # the detail page's too

    def annotate_page(self, request, rows) -> None:
        for row, text in zip(rows, audit_texts(rows), strict=True):
            row.text = text

    @admin.display(description="when (UTC)", ordering="at")
    def when(self, obj):
        return _text(obj).when.removesuffix(" UTC")

    @admin.display(description="entry")
    def entry(self, obj):
        text = _text(obj)
        via = format_html(' <span style="color:var(--body-quiet-color)">({})</span>', text.via) if text.via else ""
        changes = text.changes[:SHOWN_IN_LIST]
        more = len(text.changes) - len(changes)
        lines = format_html_join(
            "", '<div style="color:var(--body-quiet-color)">{}: {}{}</div>',
            ((c.label, f"{c.before} → " if c.was else "", c.after) for c in changes))
        if more > 0:
            lines = format_html('{}<div style="color:var(--body-quiet-color)">and {} more</div>', lines, more)
        return format_html("<div>{}{}</div>{}", text.summary, via, lines)

    @admin.display(description="changes")
    def changes(self, obj):
        rows = _text(obj).changes
        if not rows:
            return EMPTY
        body = format_html_join(
            "", '<tr><th scope="row">{}</th><td style="white-space:pre-line">{}</td>'
                '<td style="white-space:pre-line">{}</td></tr>',
            ((c.label, c.before, c.after) for c in rows))
        return format_html("<table><thead><tr><th>field</th><th>before</th><th>after</th></tr></thead>"
                           "<tbody>{}</tbody></table>", body)

    @admin.display(description="object", ordering="object_repr")
    def object_link(self, obj):
        label = obj.object_repr or f"{object_type_label(obj.object_type)} {obj.object_id}".strip()
        model = model_of(obj.object_type)
        try:
            if model is not None and obj.object_id and model in self.admin_site._registry:
                return format_html('<a href="{}">{}</a>', admin_url(model, "change", obj.object_id), label)
        except (ValueError, NoReverseMatch):
            pass
        return label

    @admin.display(description="action")
    def action_code(self, obj):
        return f"{obj.action} ({obj.get_action_display()})"

    @admin.display(description="before (JSON)")
    def before_json(self, obj):
        return _pretty_json(obj.before)

    @admin.display(description="after (JSON)")
    def after_json(self, obj):
        return _pretty_json(obj.after)

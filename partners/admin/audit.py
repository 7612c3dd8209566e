"""The audit log in the admin: every change of seats, money, terms and access, with who made it and the
object before and after. Read-only: rows are written by the services (partners.audit), never here."""

from __future__ import annotations

import json

from django.apps import apps
from django.contrib import admin
from django.urls import NoReverseMatch
from django.utils.html import format_html, format_html_join

from partners.admin.kit import EMPTY, admin_url
from partners.models import AuditLog


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
                return format_html('<a href="{}">{}</a>', admin_url(model, "change", obj.object_id), label)
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

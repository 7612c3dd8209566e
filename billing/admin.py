"""Staff accounts in the admin, audited: who gave whom staff or superuser status, which groups
("Billing clerk", "Auditor": partners/migrations/0007_admin_groups.py) and which permissions, and
when (audit actions user.* and group.*, with the access before and after; never a password).

Only superusers manage accounts: neither group has any permission on users, groups or permissions.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from billing.actor import Actor
from partners.audit import audit_record, group_snapshot, user_snapshot


class AuditedAccountMixin:
    """Audit a save once its many-to-many fields (groups, permissions) are saved too: save_model
    takes the before, save_related writes the row. Bulk deletes are off (they would skip the audit)."""

    audit_kind = ""
    snap = staticmethod(lambda obj: {})

    def save_model(self, request, obj, form, change):
        request._audit_before = self.snap(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj, before = form.instance, getattr(request, "_audit_before", None)
        after = self.snap(obj)
        if after != before:
            action = f"{self.audit_kind}.{'update' if change else 'create'}"
            audit_record(actor=Actor.of_user(request.user), action=action, obj=obj, before=before, after=after)

    def delete_model(self, request, obj):
        before, object_id, label = self.snap(obj), obj.pk, str(obj)
        super().delete_model(request, obj)
        audit_record(actor=Actor.of_user(request.user), action=f"{self.audit_kind}.delete",
                     object_type=obj._meta.label, object_id=object_id, object_repr=label, before=before)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class AuditedUserAdmin(AuditedAccountMixin, UserAdmin):
    audit_kind = "user"
    snap = staticmethod(user_snapshot)


class AuditedGroupAdmin(AuditedAccountMixin, GroupAdmin):
    audit_kind = "group"
    snap = staticmethod(group_snapshot)


User = get_user_model()
admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, AuditedGroupAdmin)

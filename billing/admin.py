"""Staff accounts in the admin, audited: who gave whom staff or superuser status, which groups
("Billing clerk", "Auditor": partners/migrations/0007_admin_groups.py) and which permissions, and
when (audit actions user.* and group.*, with the access before and after; never a password).

Only superusers manage accounts: neither group has any permission on users, groups or permissions.
"""

from __future__ import annotations

import inspect
from json import loads

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from billing.core.actor import Actor
from partners.audit import audit_record, group_snapshot, jsonable, user_snapshot
from partners.choices import AuditAction


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
            action = AuditAction.of(self.audit_kind, "update" if change else "create")
            audit_record(actor=Actor.of_user(request.user), action=action, obj=obj, before=before, after=after)

    def delete_model(self, request, obj):
        before, object_id, label = self.snap(obj), obj.pk, str(obj)
        super().delete_model(request, obj)
        audit_record(actor=Actor.of_user(request.user), action=AuditAction.of(self.audit_kind, "delete"),
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


# --- scheduled jobs (django-celery-beat) -----------------------------------------------------------------
class AuditedPeriodicTaskAdmin(PeriodicTaskAdmin):
    """The scheduled jobs, as django-celery-beat shows them, with what its list actions lack: enabling,
    disabling, toggling and running a job need the change permission of periodic tasks (neither staff group
    has it: only superusers change the schedule), and each action, edit and deletion writes an audit row
    naming the person. A job run by hand is told who asked (`requested_by`, when the task takes it), so that
    what it issues names them too (the billing job: its invoices' audit rows)."""

    def _audit(self, request, action: str, queryset_or_obj, **values):
        objects = [queryset_or_obj] if isinstance(queryset_or_obj, PeriodicTask) else list(queryset_or_obj)
        for task in objects:
            audit_record(actor=Actor.of_user(request.user), action=AuditAction.of("periodic_task", action), obj=task,
                         after={"name": task.name, "task": task.task, **values})

    @admin.action(description="Enable selected tasks", permissions=["change"])
    def enable_tasks(self, request, queryset):
        tasks = list(queryset)
        super().enable_tasks(request, queryset)
        self._audit(request, "enable", tasks, enabled=True)

    @admin.action(description="Disable selected tasks", permissions=["change"])
    def disable_tasks(self, request, queryset):
        tasks = list(queryset)
        super().disable_tasks(request, queryset)
        self._audit(request, "disable", tasks, enabled=False)

    @admin.action(description="Toggle activity of selected tasks", permissions=["change"])
    def toggle_tasks(self, request, queryset):
        tasks = [(task, not task.enabled) for task in queryset]
        super().toggle_tasks(request, queryset)
        for task, enabled in tasks:
            self._audit(request, "toggle", task, enabled=enabled)

    @admin.action(description="Run selected tasks", permissions=["change"])
    def run_tasks(self, request, queryset):
        """Run each selected job now, as the parent does, telling the tasks that take it who asked."""
        requested_by = f"{request.user.get_username()} (admin, run by hand)"
        self.celery_app.loader.import_default_modules()
        runs = []
        for task in queryset:
            function = self.celery_app.tasks.get(task.task)
            if function is None:
                self.message_user(request, f'task "{task.task}" not found', level=messages.ERROR)
                return
            kwargs = loads(task.kwargs or "{}")
            if "requested_by" in inspect.signature(function.run).parameters:
                kwargs["requested_by"] = requested_by
            options = {"queue": task.queue} if task.queue else {}
            function.apply_async(args=loads(task.args or "[]"), kwargs=kwargs,
                                 headers={"periodic_task_name": task.name}, **options)
            runs.append(task)
        self._audit(request, "run", runs, requested_by=requested_by)
        self.message_user(request, f"{len(runs)} task(s) run now")

    def save_model(self, request, obj, form, change):
        before = (dict(PeriodicTask.objects.filter(pk=obj.pk).values(*TASK_FIELDS).first() or {})
                  if change else None)
        super().save_model(request, obj, form, change)
        after = dict(PeriodicTask.objects.filter(pk=obj.pk).values(*TASK_FIELDS).first() or {})
        audit_record(actor=Actor.of_user(request.user), action=AuditAction.of("periodic_task",
                     "update" if change else "create"),
                     obj=obj, before=jsonable_dict(before), after=jsonable_dict(after))

    def delete_model(self, request, obj):
        before = dict(PeriodicTask.objects.filter(pk=obj.pk).values(*TASK_FIELDS).first() or {})
        object_id, label = obj.pk, str(obj)
        super().delete_model(request, obj)
        audit_record(actor=Actor.of_user(request.user), action=AuditAction.PERIODIC_TASK_DELETE,
                     object_type=PeriodicTask._meta.label, object_id=object_id, object_repr=label,
                     before=jsonable_dict(before))

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bulk delete would skip the audit
        return actions


TASK_FIELDS = ("name", "task", "args", "kwargs", "queue", "enabled", "one_off", "crontab_id", "interval_id",
               "clocked_id", "start_time", "expires")


def jsonable_dict(values: dict | None) -> dict | None:
    return None if values is None else {key: jsonable(value) for key, value in values.items()}


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, AuditedPeriodicTaskAdmin)

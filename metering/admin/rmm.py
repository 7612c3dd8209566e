"""RMM inventories in the admin (billing-rules 3.7): the agents and where each one was, the inventories
applied, the integrations the nightly sync fetches them from (the API secret is write-only), the sync runs
with the review page of a held one, the unit change notices, and the "Get units now" action that the
registered ServiceAdmin takes in through MeteredServiceAdminMixin.

Inventories change only through metering.services and metering.sync. An RMM inventory needs a partner and
an as-of date (`--partner`, `--as-of`), so it has no Import button: it comes from the nightly sync or the
command line.

Lists never run a query per row: places and the last sync are subquery annotations.
"""

from __future__ import annotations

from datetime import date

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, Subquery
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters

from billing.core.actor import Actor
from billing.core.periods import Period, utc_date
from billing.core.sealed import Unreadable
from metering.admin.common import BLANK, SourceColumnMixin, utc_today
from metering.connectors import token_is_sendable
from metering.models import (
    CREDENTIAL_HELP,
    AgentPresence,
    IntegrationKind,
    InventorySync,
    RmmAgent,
    RmmIntegration,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    UnitChangeNotice,
)
from metering.selectors import unmatched_summary
from metering.services import inventory_latest_as_of, rmm_integration_snapshot
from metering.sync import (
    ReviewError,
    inventory_sync,
    sync_run_approve,
    sync_run_reject,
    units_now,
)
from partners.admin.kit import EMPTY, AuditedSaveMixin, EmptyStateInlineMixin, ReadOnlyAdminMixin
from partners.models import Method

INVENTORY_HELP = (
    "No Import button here: an RMM inventory is a partner's whole RMM as of a date, so it comes from the "
    "nightly sync or: manage.py import_csv rmm-assets FILE --partner SLUG --as-of YYYY-MM-DD"
)


# --- RMM agents and inventories -----------------------------------------------------------------
class AgentPresenceInline(EmptyStateInlineMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = AgentPresence
    fields = ("organization", "group", "present_from", "present_until")
    readonly_fields = fields
    ordering = ("-present_from",)
    extra = 0
    verbose_name = "place in the RMM"
    verbose_name_plural = "places in the RMM (from the inventory that detected each change)"
    empty_text = "No place recorded: no inventory has reported this agent yet."


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
        this_month = Period.of(utc_today())
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
            return queryset.filter(present_until__lt=utc_today())
        try:
            day = utc_today() if value == "today" else date.fromisoformat(value)
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
        today = utc_today()
        return obj.present_from <= today and (obj.present_until is None or obj.present_until >= today)


@admin.register(InventorySync)
class InventorySyncAdmin(SourceColumnMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each whole inventory applied: its changes took effect on its as-of date (billing-rules 3.7)."""

    list_display = ("as_of", "partner", "agents", "added", "moved", "removed", "source_file", "synced_at")
    list_filter = ("partner",)
    ordering = ("-as_of", "partner__name", "-synced_at")
    search_fields = ("partner__slug", "partner__name", "source")
    search_help_text = "Partner or source file. " + INVENTORY_HELP
    list_select_related = ("partner",)
    date_hierarchy = "as_of"
    fields = ("partner", "as_of", "agents", "added", "moved", "removed", "source", "synced_at")
    readonly_fields = fields


# --- RMM integrations, sync runs and unit change notices ----------------------------------------
SYNC_PERMISSION = "metering.add_syncrun"  # "can add RMM sync run": may start a sync (Get units now, Sync now)
STATUS_COLORS = {SyncStatus.OK: "#2e7d32", SyncStatus.FAILED: "#ba2121", SyncStatus.RUNNING: "#8a6d3b",
                 SyncStatus.HELD: "#b35c00", SyncStatus.REJECTED: "#666"}


class RmmIntegrationForm(forms.ModelForm):
    """The secret (token, API secret key, client secret) is write-only: never rendered back; typing a new one
    replaces it."""

    base_url = forms.URLField(label="Base URL", max_length=500, required=False, assume_scheme="https",
                              widget=forms.URLInput(attrs={"size": 60}),
                              help_text=RmmIntegration._meta.get_field("base_url").help_text)
    new_api_token = forms.CharField(
        label="New secret", required=False, strip=True, max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 60}),
        help_text="Write-only: the stored secret is never shown. Kaseya VSA: the API user's personal access "
                  "token; Datto RMM: the API secret key; NinjaOne: the client secret; JSON feed: the bearer token. "
                  "Leave blank to keep the one stored.",
    )
    clear_api_token = forms.BooleanField(label="Remove the stored secret", required=False)

    class Meta:
        model = RmmIntegration
        fields = ("partner", "kind", "enabled", "base_url", "username", "folder_path", "count_offline",
                  "count_suspended", "count_never_checked_in", "inventory_filter", "removal_guard_percent", "notes")
        widgets = {"notes": forms.Textarea(attrs={"rows": 3, "cols": 60}),
                   "folder_path": forms.TextInput(attrs={"size": 60}),
                   "username": forms.TextInput(attrs={"size": 40, "autocomplete": "off"}),
                   "inventory_filter": forms.Textarea(attrs={"rows": 2, "cols": 40})}

    def clean(self):
        cleaned = super().clean()
        token, clear = cleaned.get("new_api_token"), cleaned.get("clear_api_token")
        if token and clear:
            self.add_error("clear_api_token", "either type a new secret or remove the stored one, not both")
            return cleaned
        if token and not token_is_sendable(token):
            self.add_error("new_api_token", "a secret is visible ASCII characters only, without spaces or line "
                                            "breaks (it is sent in an HTTP header)")  # never quoted back
            return cleaned
        if token:
            self.instance.api_token = token
        elif clear:
            self.instance.api_token = ""
        kind = cleaned.get("kind")
        if kind and kind != IntegrationKind.FOLDER and not self.instance.api_token:
            needed = CREDENTIAL_HELP.get(kind, ("", "a secret"))[1]
            self.add_error("new_api_token", f"this RMM needs a secret: {needed}")
        return cleaned


def _sync_message(run: SyncRun) -> str:
    if run.status == SyncStatus.OK:
        text = (f"{run.partner}: inventory as of {run.as_of} synced: {run.agents_billed} agents billed of "
                f"{run.agents_seen} read, {run.added} added, {run.moved} moved, {run.removed} removed")
        lines = unmatched_summary(run.unmatched)
        return text + (f"; {'; '.join(lines)}" if lines else "")
    if run.status == SyncStatus.HELD:
        return (f"{run.partner}: the inventory as of {run.as_of} is held for review ({run.review.get('reason')}): "
                f"nothing changed; approve or reject it under RMM sync runs")
    return f"{run.partner}: the RMM sync failed: {run.error[:400]}"


@admin.register(RmmIntegration)
class RmmIntegrationAdmin(AuditedSaveMixin, admin.ModelAdmin):
    """Where each partner's RMM inventory comes from (nightly at 02:00 UTC, and on Get units now); docs/rmm.md
    says what to set up in each RMM."""

    form = RmmIntegrationForm
    audit_kind = "rmm_integration"
    list_display = ("partner", "kind", "where", "token_status", "enabled", "removal_guard_percent", "last_run")
    list_filter = ("kind", "enabled")
    search_fields = ("partner__slug", "partner__name", "base_url", "folder_path")
    list_select_related = ("partner",)
    autocomplete_fields = ("partner",)
    ordering = ("partner__name",)
    readonly_fields = ("token_status",)
    fieldsets = (
        (None, {"fields": ("partner", "kind", "enabled")}),
        ("RMM API", {"fields": ("base_url", "username", "token_status", "new_api_token", "clear_api_token"),
                     "description": "Kaseya VSA: an API user with a personal access token (MFA off for that user). "
                                    "Datto RMM: an API key and secret key. NinjaOne: a client credentials app with "
                                    "the monitoring scope. docs/rmm.md has the steps."}),
        ("Drop folder", {"fields": ("folder_path",),
                         "description": "The newest *.csv file of the folder, in the rmm-assets columns. Write "
                                        "files under another name and rename them to *.csv when complete."}),
        ("Which agents are billed", {"fields": ("count_offline", "count_suspended", "count_never_checked_in",
                                                "inventory_filter"),
                                     "description": "Agents deleted in the RMM are never billed."}),
        ("Removal guard", {"fields": ("removal_guard_percent",)}),
        ("Notes", {"fields": ("notes",)}),
    )
    actions = ("sync_now",)

    @method_decorator(sensitive_post_parameters("new_api_token"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """The typed secret is masked in error reports (Django's SafeExceptionReporterFilter)."""
        return super().changeform_view(request, object_id, form_url, extra_context)

    def audit_snapshot(self, obj) -> dict:
        return rmm_integration_snapshot(obj)

    def get_queryset(self, request):
        last = SyncRun.objects.filter(partner=OuterRef("partner")).order_by("-started_at", "-pk")
        return super().get_queryset(request).annotate(
            last_status=Subquery(last.values("status")[:1]), last_started=Subquery(last.values("started_at")[:1]),
        )

    @admin.display(description="secret")
    def token_status(self, obj):
        if obj is None or not obj.api_token:
            return format_html('<span class="quiet">{}</span>', "not set")
        if isinstance(obj.api_token, Unreadable):
            return "set, but it cannot be decrypted: check FIELD_ENCRYPTION_KEYS, or type the secret again"
        return "set"

    @admin.display(description="address or folder")
    def where(self, obj):
        return obj.folder_path if obj.kind == IntegrationKind.FOLDER else obj.base_url

    @admin.display(description="last sync", ordering="last_started")
    def last_run(self, obj):
        if getattr(obj, "last_status", None) is None:
            return EMPTY
        return format_html('<span style="color:{};white-space:nowrap">{}</span> <span class="quiet">{}</span>',
                           STATUS_COLORS.get(obj.last_status, ""), obj.last_status,
                           f"{obj.last_started:%Y-%m-%d %H:%M}")

    def has_sync_permission(self, request):
        return request.user.has_perm(SYNC_PERMISSION)

    @admin.action(permissions=["sync"], description="Sync now (as of today, UTC)")
    def sync_now(self, request, queryset):
        """Fetch and apply each selected integration's inventory as of today (a manual SyncRun each)."""
        actor = Actor.of_user(request.user, label=f"{request.user} (admin: Sync now)")
        today = utc_date(timezone.now())
        for integration in queryset.select_related("partner"):
            run = inventory_sync(partner=integration.partner, as_of=today, actor=actor, trigger=SyncTrigger.MANUAL)
            level = {SyncStatus.OK: messages.SUCCESS, SyncStatus.HELD: messages.WARNING}.get(run.status, messages.ERROR)
            self.message_user(request, _sync_message(run), level)


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every sync attempt, nightly or manual: a failed one wrote nothing to the inventory; a held one waits for
    staff to approve or reject it (its Review page)."""

    list_display = ("started_at", "partner", "as_of", "trigger", "status_label", "attempt", "agents_seen",
                    "agents_billed", "added", "moved", "removed", "problem")
    list_filter = ("status", "trigger", "partner")
    search_fields = ("partner__slug", "partner__name", "error", "source")
    list_select_related = ("partner",)
    date_hierarchy = "started_at"
    ordering = ("-started_at", "-id")
    fields = ("partner", "integration", "as_of", "trigger", "attempt", "actor_label", "status", "retryable",
              "started_at", "finished_at", "pages", "agents_seen", "agents_billed", "not_billed", "added", "moved",
              "removed", "no_customer", "source", "inventory", "error", "held_because", "reviewed_by", "reviewed_at")
    readonly_fields = fields

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [path("<path:object_id>/review/", self.admin_site.admin_view(self.review_view),
                     name="{}_{}_review".format(*info)), *super().get_urls()]

    @admin.display(description="status", ordering="status")
    def status_label(self, obj):
        label = format_html('<b style="color:{}">{}</b>', STATUS_COLORS.get(obj.status, ""), obj.get_status_display())
        if obj.status == SyncStatus.HELD:
            review = reverse("admin:metering_syncrun_review", args=[obj.pk])
            return format_html('{} <a href="{}">Review</a>', label, review)
        return label

    @admin.display(description="error")
    def problem(self, obj):
        if not obj.error:
            lines = unmatched_summary(obj.unmatched)
            return "; ".join(lines) if lines else BLANK
        short = obj.error if len(obj.error) <= 140 else obj.error[:140] + "…"
        # a transient fault of a nightly try that has tries left is tried again; the last try, or a manual
        # "Sync now", is not (operations 5): say so, so that nobody waits for a retry that never comes
        retried = (obj.retryable and obj.trigger == SyncTrigger.NIGHTLY
                   and obj.attempt <= settings.RMM_SYNC_RETRIES)
        mark = "(retried)" if retried else "(transient; not retried)" if obj.retryable else ""
        return format_html('<span title="{}">{}</span>{}', obj.error, short,
                           format_html(' <span class="quiet">{}</span>', mark) if mark else "")

    @admin.display(description="read but not billed")
    def not_billed(self, obj):
        return ", ".join(f"{n} {reason}" for reason, n in sorted(obj.skipped.items())) or BLANK

    @admin.display(description="held for review because")
    def held_because(self, obj):
        reason = (obj.review or {}).get("reason")
        if not reason:
            return BLANK
        review = reverse("admin:metering_syncrun_review", args=[obj.pk])
        return format_html('{} <a href="{}">{}</a>', reason, review,
                           "Review" if obj.status == SyncStatus.HELD else "what it changed")

    @admin.display(description="agents of no customer")
    def no_customer(self, obj):
        return "; ".join(unmatched_summary(obj.unmatched)) or BLANK

    def review_view(self, request, object_id):
        """A held sync: per service the units before and after, the agents that would go; Approve applies it
        as of its date, Reject drops it. Either takes the permission to start a sync."""
        run = get_object_or_404(SyncRun.objects.select_related("partner"), pk=object_id)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        may_decide = request.user.has_perm(SYNC_PERMISSION) and run.status == SyncStatus.HELD
        if request.method == "POST":
            if not may_decide:
                raise PermissionDenied
            actor = Actor.of_user(request.user, label=f"{request.user} (admin: review of sync #{run.pk})")
            try:
                if "approve" in request.POST:
                    run = sync_run_approve(run=run, actor=actor)
                    self.message_user(request, f"Approved: {_sync_message(run)}", messages.SUCCESS)
                elif "reject" in request.POST:
                    sync_run_reject(run=run, actor=actor)
                    self.message_user(request, f"Rejected: the inventory of {run.partner} as of {run.as_of} was "
                                               f"dropped; nothing changed", messages.SUCCESS)
            except ReviewError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            return redirect(reverse("admin:metering_syncrun_change", args=[run.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.opts, "run": run, "review": run.review,
                   "may_decide": may_decide, "title": f"Review the sync of {run.partner} as of {run.as_of}",
                   "unmatched": unmatched_summary(run.review.get("unmatched", []))}
        return TemplateResponse(request, "admin/metering/syncrun/review.html", context)


class NoticeEmailedFilter(admin.SimpleListFilter):
    title = "email"
    parameter_name = "emailed"

    def lookups(self, request, model_admin):
        return [("yes", "Sent"), ("no", "Not sent yet"), ("none", "No notification emails")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(emailed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(emailed_at__isnull=True).exclude(recipients="")
        if self.value() == "none":
            return queryset.filter(recipients="")
        return queryset


@admin.register(UnitChangeNotice)
class UnitChangeNoticeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """per_asset unit changes found by syncs, and when each was emailed to the service's notification emails."""

    list_display = ("effective_date", "service", "partner_name", "change", "recipients", "emailed_at")
    list_filter = ("service__partner", NoticeEmailedFilter)
    search_fields = ("service__code", "service__name", "service__partner__slug", "recipients")
    list_select_related = ("service__partner",)
    date_hierarchy = "effective_date"
    ordering = ("-effective_date", "-created_at")
    fields = ("service", "effective_date", "units_before", "units_after", "sync_run", "recipients", "created_at",
              "emailed_at")
    readonly_fields = fields

    @admin.display(description="partner", ordering="service__partner__name")
    def partner_name(self, obj):
        return obj.service.partner.name

    @admin.display(description="units")
    def change(self, obj):
        return format_html('<span style="white-space:nowrap">{} → {} ({})</span>', obj.units_before, obj.units_after,
                           f"{obj.units_after - obj.units_before:+d}")


# --- "Get units now" on per_asset services ------------------------------------------------------
@admin.action(description="Get units now (sync the RMM, then show the units in force)")
def get_units_now(modeladmin, request, queryset):
    """The seed's "Get Units Now": sync each selected per_asset service's partner as of today (UTC, once
    per partner, a manual SyncRun) and report the units in force today per service."""
    services = list(queryset.select_related("partner", "customer"))
    others = [s for s in services if s.method != Method.PER_ASSET]
    if others:
        modeladmin.message_user(request, f"Skipped (method not “{Method.PER_ASSET.label}”: no RMM units): "
                                + ", ".join(s.code for s in others), messages.WARNING)
    actor = Actor.of_user(request.user, label=f"{request.user} (admin: Get units now)")
    for report in units_now(services=services, actor=actor):
        service, run = report.service, report.run
        label = f"{service.name} [{service.code}]"
        if run.status == SyncStatus.OK:
            change = (f"was {report.units_before}" if report.units != report.units_before else "unchanged")
            modeladmin.message_user(request, f"{label}: {report.units} units in force on {report.day} ({change})",
                                    messages.SUCCESS)
        elif run.status == SyncStatus.HELD:
            modeladmin.message_user(
                request, f"{label}: {report.units} units in force on {report.day}, unchanged: the RMM's inventory is "
                         f"held for review ({run.review.get('reason')}); approve or reject it under RMM sync runs",
                messages.WARNING)
        else:
            latest = inventory_latest_as_of(service.partner)
            known = f"the last inventory, as of {latest}" if latest else "no inventory yet"
            modeladmin.message_user(
                request, f"{label}: {report.units} units in force on {report.day} from {known}; the RMM sync failed: "
                         f"{run.error[:400]}", messages.ERROR)


class MeteredServiceAdminMixin:
    """Mix into the registered ServiceAdmin (class X(MeteredServiceAdminMixin, ServiceAdmin)) to add the
    "Get units now" action. Added in get_actions, so it composes with the admin's own `actions`; shown
    to users who may start a sync (metering.add_syncrun)."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions
        if request.user.has_perm(SYNC_PERMISSION):
            func, name, description = self.get_action(get_units_now)
            actions[name] = (func, name, description)
        return actions

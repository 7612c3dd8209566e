"""Who may reach a partner's billing from outside the admin: portal logins and their roles (partner
users, audited as partner_user.*) and keys of the HTTP API (created here or in the portal, shown once,
stored as a digest, revoked for good)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from billing.core.idempotency import OnceField
from partners.admin.kit import AuditedSaveMixin, ServiceAddViewMixin, actor_of
from partners.api_keys import api_key_create, api_key_revoke
from partners.audit import partner_user_snapshot
from partners.models import ApiKey, Partner, PartnerUser


# --- partner users ------------------------------------------------------------------------------
class PartnerUserInline(admin.TabularInline):
    model = PartnerUser
    fields = ("user", "role")
    autocomplete_fields = ("user",)
    extra = 0


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


# --- API keys -----------------------------------------------------------------------------------
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
        api_key, secret = api_key_create(partner=form.cleaned_data["partner"], actor=actor_of(request),
                                         name=form.cleaned_data["name"])
        self.message_user(request, f"The new key, shown this once: {secret}", messages.WARNING)
        return api_key

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_keys(self, request, queryset):
        """Revoke keys for good: the API answers 401 to them from now on."""
        count = 0
        for api_key in queryset:
            if api_key.revoked_at is None:
                api_key_revoke(api_key=api_key, actor=actor_of(request))
                count += 1
        self.message_user(request, f"{count} key(s) revoked.")

"""The company profile: who issues the invoices (billing-rules 4.13). One row, edited in place: the list opens it."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from invoicing.documents import ISSUER_FIELDS
from invoicing.models import CompanyProfile
from partners.admin.kit import AuditedSaveMixin
from partners.audit import snapshot


@admin.register(CompanyProfile)
class CompanyProfileAdmin(AuditedSaveMixin, admin.ModelAdmin):
    audit_kind = "company_profile"
    fieldsets = (
        ("Printed at the top of every invoice", {
            "fields": ("legal_name", "address", "tax_id", "registration", "email", "phone", "website", "logo"),
            "description": "Legal name, address and tax ID are required to issue invoices under the production "
                           "settings. An issued invoice keeps the details it was issued with."}),
        ("Printed at the end of every invoice", {"fields": ("bank_details", "remittance", "invoice_footer")}),
    )

    def audit_snapshot(self, obj) -> dict:
        return snapshot(obj, ISSUER_FIELDS) | {"logo": obj.logo.name if obj.logo else ""}

    def audit_partner(self, obj):
        return None

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not CompanyProfile.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        """One profile: the list opens its page (while there is none, the empty list offers to add it)."""
        profile = CompanyProfile.objects.order_by("pk").first()
        if profile is None or not self.has_view_or_change_permission(request, profile):
            return super().changelist_view(request, extra_context)
        return HttpResponseRedirect(reverse("admin:invoicing_companyprofile_change", args=[profile.pk]))

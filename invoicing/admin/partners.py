"""The partners PartnerAdmin re-registered with the account as it stands (partners never imports invoicing): the
balance now, what of it is overdue, and a link to the partner's invoices."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from invoicing.admin.common import money_html
from invoicing.selectors import partner_balance, partner_overdue
from partners.admin.partners import PartnerAdmin
from partners.models import Partner


class AccountPartnerAdmin(PartnerAdmin):
    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and obj.pk:
            fieldsets.insert(1, ("Account now", {"fields": ("account_now",)}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "account_now")

    @admin.display(description="balance")
    def account_now(self, obj):
        """What the partner owes now (every issued document less every payment), what of it is past due, and
        its invoices; each invoice's own remainder is on the invoice list."""
        if obj is None or not obj.pk:
            return "—"
        invoices = reverse("admin:invoicing_invoice_changelist") + f"?partner__id__exact={obj.pk}"
        overdue = partner_overdue(obj)
        return format_html(
            '{} owed now{} · <a href="{}">its invoices</a>',
            money_html(partner_balance(obj), obj.currency, strong=True),
            format_html(', of which {} overdue', money_html(overdue, obj.currency)) if overdue else "",
            invoices,
        )


admin.site.unregister(Partner)
admin.site.register(Partner, AccountPartnerAdmin)

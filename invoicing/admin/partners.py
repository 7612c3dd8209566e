"""The partners PartnerAdmin re-registered with the account as it stands (partners never imports invoicing): the
balance now, what of it is overdue, and links to the partner's invoices, its unpaid invoices (what makes up the
balance), its payments and its invoice lines."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from invoicing.admin.common import money_html
from invoicing.models import Invoice, InvoiceLine, InvoiceState, Payment, PaymentStatus
from invoicing.selectors import partner_balance, partner_overdue
from partners.admin.kit import EMPTY, admin_url
from partners.admin.partners import PartnerAdmin
from partners.models import Partner

UNPAID = (PaymentStatus.OPEN, PaymentStatus.PARTIALLY_PAID, PaymentStatus.OVERDUE)


def partner_invoices_url(partner: Partner, *, unpaid: bool = False) -> str:
    """The invoice list filtered to the partner (and to its issued invoices not paid in full)."""
    query = {"partner__id__exact": partner.pk}
    if unpaid:
        query |= {"state__exact": InvoiceState.ISSUED, "payment_status__in": ",".join(UNPAID)}
    return admin_url(Invoice, query=query)


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
        the invoices behind it; each invoice's own remainder is on the invoice list."""
        if obj is None or not obj.pk:
            return EMPTY
        overdue = partner_overdue(obj)
        return format_html(
            '{} owed now{} · <a href="{}">unpaid invoices</a> · <a href="{}">all its invoices</a> · '
            '<a href="{}">payments</a>',
            money_html(partner_balance(obj), obj.currency, strong=True),
            format_html(", of which {} overdue", money_html(overdue, obj.currency)) if overdue else "",
            partner_invoices_url(obj, unpaid=True), partner_invoices_url(obj),
            admin_url(Payment, query={"partner__id__exact": obj.pk}),
        )

    @admin.display(description="shortcuts")
    def links(self, obj):
        shortcuts = super().links(obj)
        if not obj.pk:
            return shortcuts
        return format_html(
            '{} · <a href="{}">Invoices</a> · <a href="{}">Invoice lines</a> · <a href="{}">Payments</a>',
            shortcuts, partner_invoices_url(obj),
            admin_url(InvoiceLine, query={"invoice__partner__id__exact": obj.pk}),
            admin_url(Payment, query={"partner__id__exact": obj.pk}),
        )


admin.site.unregister(Partner)
admin.site.register(Partner, AccountPartnerAdmin)

"""Partners in the admin: the partner list (customers, active seats and utilization of each row) and
the partner page, with its customers, partner-level services and portal users.

Partners are created, edited and deleted by partners.services (partner_create, partner_update,
partner_delete), which check the rules the imports check, write the audit rows the imports and the
portal write (one snapshot per model, partners.audit) and date changed terms. The customer rows of
the page are saved through customer_create and customer_update, its portal users audited
(audit_formset).
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from import_export.admin import ImportExportModelAdmin

from billing.core.admin_import import FileImportAdminMixin
from billing.core.emails import split_emails
from billing.core.periods import utc_date
from partners.admin.access import PartnerUserInline
from partners.admin.customers import CustomerInline, customers_formset_save
from partners.admin.kit import EMPTY, PageStatsMixin, admin_url, audit_formset
from partners.admin.seats import active_seats_of, utilization_html
from partners.admin.services import PartnerServiceInline
from partners.admin.terms import DatedTermsForm, TermsHistoryMixin, WriteServicesMixin
from partners.audit import partner_user_snapshot
from partners.models import AuditLog, Customer, Partner, PartnerUser, SeatAssignment, Service
from partners.resources import PartnerResource
from partners.selectors import active_seat_counts, commitments_in_force
from partners.services import partner_create, partner_delete, partner_update


class PartnerForm(DatedTermsForm):
    billing_portal_url = forms.URLField(label="Billing portal URL", required=False, assume_scheme="https",
                                        help_text=Partner._meta.get_field("billing_portal_url").help_text)

    currency = forms.ChoiceField(choices=[(c, c) for c in settings.CURRENCIES], initial="USD",
                                 help_text="ISO 4217; every price of the partner is in it")

    class Meta:
        model = Partner
        fields = ("slug", "name", "currency", "tax_rate", "payment_terms_days", "billing_emails",
                  "billing_portal_url", "billing_address", "tax_id", "purchase_order")
        widgets = {"billing_emails": forms.Textarea(attrs={"rows": 2, "cols": 60}),
                   "billing_address": forms.Textarea(attrs={"rows": 4, "cols": 60})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        rate = self.initial.get("tax_rate")
        if isinstance(rate, Decimal):
            self.initial["tax_rate"] = format(rate.normalize(), "f")  # 8, not 8.000

    def clean_currency(self):
        currency = self.cleaned_data["currency"].upper()
        saved = self.instance.currency if self.instance.pk else None
        if saved and saved != currency and self.instance.services.exists():
            raise ValidationError(f"cannot change from {saved} once the partner has services (prices are in it)")
        return currency

    def clean_tax_rate(self):
        rate = self.cleaned_data["tax_rate"]
        if rate is not None and rate > 100:
            raise ValidationError("is a percent: at most 100")
        return rate

    def clean_billing_emails(self):
        emails = split_emails(self.cleaned_data.get("billing_emails", ""))
        for email in emails:
            try:
                validate_email(email)
            except ValidationError:
                raise ValidationError(f"not an email address: {email!r}") from None
        return ", ".join(emails)


@admin.register(Partner)
class PartnerAdmin(TermsHistoryMixin, PageStatsMixin, WriteServicesMixin, FileImportAdminMixin,
                   ImportExportModelAdmin):
    import_kind = "partners"
    resource_classes = [PartnerResource]
    form = PartnerForm
    create_service, update_service, delete_service = (
        staticmethod(partner_create), staticmethod(partner_update), staticmethod(partner_delete))
    search_fields = ("slug", "name")
    list_display = ("name", "slug", "currency", "tax", "terms", "customer_count", "active_seat_count",
                    "utilization")
    list_display_links = ("name", "slug")
    fieldsets = (
        (None, {"fields": ("name", "slug")}),
        ("Billing", {"fields": ("currency", "tax_rate", "payment_terms_days", "billing_emails",
                                "billing_portal_url")}),
        ("On its invoices", {"fields": ("billing_address", "tax_id", "purchase_order"),
                             "description": "Printed in the Billed to block of every invoice and credit note "
                                            "issued to this partner (billing-rules 4.13)."}),
        ("Terms over time", {"fields": ("terms_effective_from", "terms_history_table")}),
        ("Seats now", {"fields": ("seat_summary", "links")}),
        ("Record", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = (CustomerInline, PartnerServiceInline, PartnerUserInline)

    def get_readonly_fields(self, request, obj=None):
        fixed = ("slug",) if obj else ()  # the import's key
        return (*fixed, "seat_summary", "links", "terms_history_table", "created_at", "updated_at")

    def get_queryset(self, request):
        customers = (
            Customer.objects.filter(partner=OuterRef("pk")).order_by().values("partner")
            .annotate(n=Count("pk")).values("n")[:1]
        )
        return super().get_queryset(request).annotate(
            n_customers=Coalesce(Subquery(customers, output_field=IntegerField()), 0),
            n_active=active_seats_of("partner"),
        )

    def annotate_page(self, request, rows):
        today = utc_date(timezone.now())
        commitments = commitments_in_force(partner_ids=[p.pk for p in rows], day=today)
        for partner in rows:
            shared = [c for c in commitments.get(partner.pk, []) if c.customer_id is None]
            partner.page_committed = sum(c.committed for c in shared) if shared else None
            partner.page_per_customer = any(c.customer_id for c in commitments.get(partner.pk, []))

    def save_formset(self, request, form, formset, change):
        if formset.model is Customer:
            customers_formset_save(request, formset)
        elif formset.model is PartnerUser:
            audit_formset(request, formset, kind="partner_user", snap=partner_user_snapshot,
                          partner_of=lambda u: u.partner)
        else:
            super().save_formset(request, form, formset, change)

    @admin.display(description="tax", ordering="tax_rate")
    def tax(self, obj):
        return f"{obj.tax_rate.normalize():f}%"

    @admin.display(description="terms", ordering="payment_terms_days")
    def terms(self, obj):
        return f"{obj.payment_terms_days} days"

    @admin.display(description="customers", ordering="n_customers")
    def customer_count(self, obj):
        return format_html('<a href="{}">{}</a>', admin_url(Customer, query={"partner__id__exact": obj.pk}),
                           obj.n_customers)

    @admin.display(description="active seats", ordering="n_active")
    def active_seat_count(self, obj):
        return obj.n_active

    @admin.display(description="utilization")
    def utilization(self, obj):
        committed = getattr(obj, "page_committed", None)
        if committed:
            return utilization_html(obj.n_active, committed, "partner-wide")
        if getattr(obj, "page_per_customer", False):
            return format_html('<span class="quiet">{}</span>', "per customer (see customers)")
        return EMPTY

    @admin.display(description="seats")
    def seat_summary(self, obj):
        if not obj.pk:
            return EMPTY
        today = utc_date(timezone.now())
        counts = active_seat_counts(partner_ids=[obj.pk])
        active = counts.by_partner.get(obj.pk, 0)
        lines = [format_html("<b>{}</b> active seats now", active)]
        for c in commitments_in_force(partner_ids=[obj.pk], day=today).get(obj.pk, []):
            in_scope = counts.by_customer.get(c.customer_id, 0) if c.customer_id else active
            scope = "one customer" if c.customer_id else "partner-wide"
            overage = "overage allowed" if c.overage_enabled else "overage disabled: assignments stop at it"
            lines.append(format_html("service <b>{}</b>: {} committed seats ({}, {}) {}", c.service_code,
                                     c.committed, scope, overage, utilization_html(in_scope, c.committed, scope)))
        return format_html_join("", "<div>{}</div>", ((line,) for line in lines))

    @admin.display(description="shortcuts")
    def links(self, obj):
        if not obj.pk:
            return EMPTY
        return format_html(
            '<a href="{}">Seat history</a> · <a href="{}">Add a partner-level service</a> · '
            '<a href="{}">Audit log</a>',
            admin_url(SeatAssignment, query={"partner__id__exact": obj.pk}),
            admin_url(Service, "add", query={"partner": obj.pk}),
            admin_url(AuditLog, query={"partner__id__exact": obj.pk}),
        )

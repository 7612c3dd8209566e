"""The admin's view of rebilling: the partners' price lists and own items, read-only (partners set them in the portal
or by the resale-prices import, both audited through invoicing.rebilling.services); the customer invoices, read-only
with their PDF and lines; the charges not rebilled; and the rebilling and customer billing profiles, editable and
audited."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe

from invoicing.admin.common import DocumentDatesMixin, money_html
from invoicing.choices import InvoiceState
from invoicing.rebilling.choices import CustomerInvoiceKind
from invoicing.rebilling.invoices import customer_credit_note_issue, customer_invoice_issue_draft
from invoicing.rebilling.models import (
    CustomerBillingProfile,
    CustomerInvoice,
    CustomerInvoiceLine,
    CustomerPayment,
    CustomerTransaction,
    RebillingProfile,
    ResaleItem,
    ResalePrice,
    UnbilledCharge,
)
from invoicing.rebilling.pdf import customer_invoice_pdf_content
from invoicing.rebilling.reports import customer_invoice_xlsx
from invoicing.rebilling.text import price_text, unit_of
from invoicing.services.errors import BillingError
from partners.admin.kit import (
    AuditedSaveMixin,
    CustomerFilter,
    EmptyStateInlineMixin,
    PageStatsMixin,
    ReadOnlyAdminMixin,
    actor_of,
)
from partners.audit import jsonable


@admin.register(ResaleItem)
class ResaleItemAdmin(PageStatsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "code", "partner", "unit", "meter", "created_at")
    list_filter = ("partner",)
    search_fields = ("name", "code", "partner__name", "partner__slug")
    list_select_related = ("partner",)
    ordering = ("partner__name", "name")


class ListFilter(admin.SimpleListFilter):
    """The default list or the customers' own prices."""

    title = "list"
    parameter_name = "list"

    def lookups(self, request, model_admin):
        return [("default", "Default list"), ("customer", "A customer's prices")]

    def queryset(self, request, queryset):
        if self.value() == "default":
            return queryset.filter(customer__isnull=True)
        if self.value() == "customer":
            return queryset.filter(customer__isnull=False)
        return queryset


@admin.register(ResalePrice)
class ResalePriceAdmin(PageStatsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("partner", "list_name", "priced", "mode", "price", "effective_from", "source")
    list_filter = ("partner", ListFilter, CustomerFilter, "mode", "service", "effective_from")
    search_fields = ("partner__name", "partner__slug", "customer__name", "customer__slug", "service__code",
                     "service__name", "item__code", "item__name")
    list_select_related = ("partner", "customer", "service", "item")
    date_hierarchy = "effective_from"
    ordering = ("partner__name", "customer__name", "-effective_from")

    @admin.display(description="list", ordering="customer__name")
    def list_name(self, obj):
        return obj.customer.name if obj.customer_id else "Default list"

    @admin.display(description="service or own item")
    def priced(self, obj):
        return obj.service or obj.item

    @admin.display(description="price")
    def price(self, obj):
        return price_text(obj, obj.partner.currency, unit_of(obj))



# --- customer invoices and the profiles behind them (billing-rules 12.4-12.7) ---------------------------------
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@admin.register(RebillingProfile)
class RebillingProfileAdmin(AuditedSaveMixin, admin.ModelAdmin):
    """A partner's rebilling settings: editable by our clerks, each change audited (the portal's Billing tab will
    set them too)."""

    audit_kind = "rebilling_profile"
    list_display = ("partner", "enabled", "number_prefix", "review_drafts", "email_invoices", "customer_billing")
    list_filter = ("enabled", "review_drafts", "email_invoices", "customer_billing")
    search_fields = ("partner__name", "partner__slug", "number_prefix", "legal_name")
    list_select_related = ("partner",)
    autocomplete_fields = ("partner",)
    fieldsets = (
        (None, {"fields": ("partner", "enabled", "number_prefix", "payment_terms_days")}),
        ("Issuer printed on the customer invoices", {
            "fields": ("legal_name", "address", "tax_id", "email", "phone", "website", "bank_details",
                       "invoice_footer", "logo")}),
        ("Delivery", {"fields": ("review_drafts", "email_invoices", "customer_billing")}),
    )

    def audit_snapshot(self, obj) -> dict:
        return {field: jsonable(getattr(obj, field)) for field in PROFILE_FIELDS} | {
            "partner": obj.partner.slug, "logo": obj.logo.name if obj.logo else ""}


PROFILE_FIELDS = ("enabled", "number_prefix", "payment_terms_days", "legal_name", "address", "tax_id", "email",
                  "phone", "website", "bank_details", "invoice_footer", "review_drafts", "email_invoices",
                  "customer_billing")
CUSTOMER_PROFILE_FIELDS = ("legal_name", "address", "tax_id", "purchase_order", "tax_rate", "billing_emails")


@admin.register(CustomerBillingProfile)
class CustomerBillingProfileAdmin(AuditedSaveMixin, admin.ModelAdmin):
    """A customer as its partner invoices it: recipient details, tax rate and billing emails; audited."""

    audit_kind = "customer_billing_profile"
    list_display = ("customer", "partner_name", "tax_rate", "billing_emails")
    search_fields = ("customer__name", "customer__slug", "customer__partner__slug", "legal_name")
    list_select_related = ("customer__partner",)
    autocomplete_fields = ("customer",)

    @admin.display(description="partner", ordering="customer__partner__name")
    def partner_name(self, obj):
        return obj.customer.partner

    def audit_partner(self, obj):
        return obj.customer.partner

    def audit_snapshot(self, obj) -> dict:
        return {field: jsonable(getattr(obj, field)) for field in CUSTOMER_PROFILE_FIELDS} | {
            "customer": obj.customer.slug}


class CustomerInvoiceLineInline(EmptyStateInlineMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = CustomerInvoiceLine
    extra = 0
    can_delete = False
    fields = ("description", "service", "item", "line_type", "period", "quantity", "unit_price", "amount", "cost",
              "taxable", "details")
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("rebilling.view_customerinvoice")


@admin.register(CustomerInvoice)
class CustomerInvoiceAdmin(DocumentDatesMixin, PageStatsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The partners' invoices to their customers: read-only (issued by the billing run, corrected by credit notes),
    with their PDF and lines."""

    # as the invoice list (issue 19, item 8): dates as 2026-12-01, the total with its currency, and a long partner
    # or customer name wraps (billing/static/billing/admin.css), so the PDF column stays in view at 1440 px
    list_display = ("__str__", "kind", "state", "partner", "customer", "issued_on", "due_on", "total_shown",
                    "pdf_link")
    list_filter = ("kind", "state", "partner", CustomerFilter)
    search_fields = ("number", "partner__slug", "partner__name", "customer__slug", "customer__name")
    list_select_related = ("partner", "customer")
    date_hierarchy = "issue_date"
    inlines = [CustomerInvoiceLineInline]
    fields = ("number", "kind", "state", "partner", "customer", "month", "issue_date", "due_date", "currency",
              "tax_rate", "subtotal", "tax_amount", "total", "account_shown", "source", "credits", "issuer_shown",
              "recipient_shown", "issued_at", "emailed_at", "downloads")
    readonly_fields = fields
    actions = ("issue_drafts", "credit_in_full")

    def has_act_permission(self, request) -> bool:
        """Issuing drafts and crediting: the change permission (a Billing clerk), though nothing is edited here."""
        return request.user.has_perm("rebilling.change_customerinvoice")

    @admin.action(permissions=["act"], description="Issue the selected drafts (in date order)")
    def issue_drafts(self, request, queryset):
        """Issue drafts the partner asked to review, each numbered now in the partner's sequence."""
        self._each(request, queryset.filter(state=InvoiceState.DRAFT).order_by("issue_date", "pk"),
                   lambda invoice, actor: customer_invoice_issue_draft(invoice=invoice, actor=actor), "issued")

    @admin.action(permissions=["act"], description="Credit the selected invoices in full")
    def credit_in_full(self, request, queryset):
        """A credit note for each whole issued invoice (billing-rules 12.7)."""
        self._each(request, queryset.filter(state=InvoiceState.ISSUED, kind=CustomerInvoiceKind.INVOICE),
                   lambda invoice, actor: customer_credit_note_issue(invoice=invoice, actor=actor,
                                                                     reason="credited in the admin"), "credited")

    def _each(self, request, invoices, write, verb: str) -> None:
        done, refused = [], []
        for invoice in invoices:
            try:
                written = write(invoice, actor_of(request))
                done.append(str(invoice if written.credits_id == invoice.pk else written))
            except BillingError as exc:
                refused.append(f"{invoice}: {exc}")
        if done:
            self.message_user(request, f"{len(done)} {verb}: {', '.join(done)}", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.ERROR)
        if not done and not refused:
            self.message_user(request, f"nothing to be {verb} among the selected invoices", messages.WARNING)

    @admin.display(description="issuer (the partner)")
    def issuer_shown(self, obj):
        return _party(obj.issuer, "legal_name")

    @admin.display(description="account summary")
    def account_shown(self, obj):
        """The account printed on it under Customer Billing (billing-rules 12.8), or why there is none."""
        if not obj.account:
            return "none: Customer Billing was off when it was issued (new charges only)"
        labels = (("previous_balance", "Previous balance"), ("new_charges", "New charges"), ("taxes", "Taxes"),
                  ("credits", "Credits"), ("payments", "Payments"), ("amount_due", "Amount due"))
        return format_html_join(mark_safe("<br>"), "{}: {} {}",
                                ((label, obj.account[key], obj.currency) for key, label in labels))

    @admin.display(description="recipient (the customer)")
    def recipient_shown(self, obj):
        return _party(obj.recipient, "name")

    @admin.display(description="total", ordering="total")
    def total_shown(self, obj):
        return money_html(obj.total, obj.currency)

    @admin.display(description="PDF")
    def pdf_link(self, obj):
        return format_html('<a href="{}">PDF</a>', reverse("admin:rebilling_customerinvoice_pdf", args=[obj.pk]))

    @admin.display(description="files")
    def downloads(self, obj):
        return format_html('<a href="{}">PDF</a> · <a href="{}">Lines (XLSX)</a>',
                           reverse("admin:rebilling_customerinvoice_pdf", args=[obj.pk]),
                           reverse("admin:rebilling_customerinvoice_xlsx", args=[obj.pk]))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:object_id>/pdf/", wrap(self.pdf_view), name="rebilling_customerinvoice_pdf"),
            path("<int:object_id>/xlsx/", wrap(self.xlsx_view), name="rebilling_customerinvoice_xlsx"),
            *super().get_urls(),
        ]

    def _invoice(self, request, object_id) -> CustomerInvoice:
        if not self.has_view_permission(request):
            raise PermissionDenied
        invoice = self.get_object(request, str(object_id))
        if invoice is None:
            raise Http404("no such customer invoice")
        return invoice

    def pdf_view(self, request, object_id):
        invoice = self._invoice(request, object_id)
        try:
            content = customer_invoice_pdf_content(invoice)
        except (ImportError, OSError) as exc:  # WeasyPrint without its libraries
            self.message_user(request, f"Cannot render the PDF here: {exc}", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:rebilling_customerinvoice_change", args=[invoice.pk]))
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(True, f"{invoice}.pdf".replace(" ", "-"))
        return response

    def xlsx_view(self, request, object_id):
        invoice = self._invoice(request, object_id)
        response = HttpResponse(customer_invoice_xlsx(invoice), content_type=XLSX_TYPE)
        response["Content-Disposition"] = content_disposition_header(True, f"{invoice}-lines.xlsx".replace(" ", "-"))
        return response


def _party(snapshot: dict | None, name_key: str):
    """An issuer or recipient as printed: name, address, tax id (a draft's are taken when it is issued)."""
    if not snapshot:
        return "(kept when issued)"
    lines = [snapshot.get(name_key, ""), *snapshot.get("address", "").splitlines()]
    if snapshot.get("tax_id"):
        lines.append(f"Tax ID {snapshot['tax_id']}")
    return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines if line))


@admin.register(UnbilledCharge)
class UnbilledChargeAdmin(PageStatsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Charges of ours to a partner that no customer invoice carries, and why (billing-rules 12.6)."""

    list_display = ("partner", "customer", "service", "period", "line_type", "quantity", "reason", "source",
                    "created_at")
    list_filter = ("reason", "partner", CustomerFilter)
    search_fields = ("partner__slug", "customer__slug", "service__code")
    list_select_related = ("partner", "customer", "service", "source")


@admin.register(CustomerPayment)
class CustomerPaymentAdmin(PageStatsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """What the partners' customers paid them, as the partners recorded it (portal or customer-payments import):
    read-only here; a mistake is voided by the partner (billing-rules 12.10)."""

    list_display = ("received_on", "partner", "customer", "amount", "currency", "reference", "invoice", "method",
                    "voided", "source")
    list_filter = ("partner", CustomerFilter)
    search_fields = ("reference", "partner__slug", "customer__slug", "customer__name", "invoice__number")
    list_select_related = ("partner", "customer", "invoice")
    ordering = ("-received_on", "-id")

    @admin.display(boolean=True, description="voided")
    def voided(self, obj):
        return obj.voided_at is not None


@admin.register(CustomerTransaction)
class CustomerTransactionAdmin(PageStatsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every movement of a customer's account with its partner (billing-rules 12.10): written once, never
    changed; the balance at a date is their sum. The full ledger with running balances is the
    customer-transactions export."""

    list_display = ("date", "partner", "customer", "kind", "reference", "description", "amount", "currency")
    list_filter = ("kind", "partner", CustomerFilter)
    search_fields = ("reference", "partner__slug", "customer__slug", "customer__name")
    list_select_related = ("partner", "customer")
    ordering = ("-date", "-id")

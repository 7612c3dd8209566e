"""Payments in the admin: recorded through payment_record (audited, the invoice's status refreshed) from
the Payments list or an invoice's page, read-only afterwards. Both forms check the rules of a payment that
the import and payment_record check (billing-rules 4.8)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminDateWidget, AutocompleteSelect
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone
from django.utils.html import format_html

from billing.core.idempotency import OnceField
from billing.core.periods import utc_date
from invoicing.admin.common import change_url, money_html, money_text
from invoicing.models import AMOUNT, Invoice, InvoiceKind, Payment
from invoicing.selectors import open_amount
from invoicing.services import BillingError, payment_record, payment_refusals
from partners.admin.kit import ServiceAddViewMixin, actor_of


# --- forms --------------------------------------------------------------------------------------
class PaymentFieldsForm(forms.Form):
    """Amount, date and reference of a payment; the service (payment_record) checks the rest."""

    amount = forms.DecimalField(max_digits=AMOUNT["max_digits"], decimal_places=AMOUNT["decimal_places"],
                                help_text="in the invoice's currency")
    paid_on = forms.DateField(widget=AdminDateWidget, help_text="the day the money arrived (UTC)")
    reference = forms.CharField(max_length=200, required=False,
                                help_text="bank reference; two equal payments on one day need distinct ones")
    once_token = OnceField()  # sent twice, recorded once (billing/core/idempotency.py)

    def check_against(self, invoice: Invoice | None) -> None:
        """The rules of a payment, the import's and payment_record's (invoicing.services.payment_refusals,
        billing-rules 4.8), each on its field: a positive amount in the currency's places, a date within the
        invoice's life, an issued CI or INV."""
        fields = {"invoice_number": "invoice" if "invoice" in self.fields else None}
        for column, reason in payment_refusals(invoice=invoice, amount=self.cleaned_data.get("amount"),
                                               paid_on=self.cleaned_data.get("paid_on"),
                                               today=utc_date(timezone.now())):
            self.add_error(fields.get(column, column), reason)


class InvoicePaymentForm(PaymentFieldsForm):
    def __init__(self, *args, invoice: Invoice, **kwargs):
        self.invoice = invoice
        super().__init__(*args, **kwargs)
        # what is still open on this invoice itself (billing-rules 4.7), not the account's amount due of a CI
        remainder = open_amount(invoice) if invoice.pk else None
        if remainder is not None:
            self.fields["amount"].help_text = (
                f"in {invoice.currency}; {money_text(remainder, invoice.currency)} still open on this invoice"
            )
        else:
            self.fields["amount"].help_text = f"in {invoice.currency}"

    def clean(self):
        cleaned = super().clean()
        self.check_against(self.invoice)
        return cleaned


class InvoiceChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.number} {obj.partner.name} ({money_text(obj.total, obj.currency)} {obj.currency})"


class PaymentAddForm(PaymentFieldsForm):
    invoice = InvoiceChoiceField(
        queryset=Invoice.objects.issued().exclude(kind=InvoiceKind.CN).select_related("partner"),
        help_text="an issued CI or INV, by number",
    )
    field_order = ("invoice", "amount", "paid_on", "reference")

    def __init__(self, *args, admin_site=None, **kwargs):
        super().__init__(*args, **kwargs)
        if admin_site is not None:
            field = self.fields["invoice"]
            field.widget = AutocompleteSelect(Payment._meta.get_field("invoice"), admin_site)
            field.widget.choices = field.choices
            field.widget.is_required = True

    def clean(self):
        cleaned = super().clean()
        self.check_against(cleaned.get("invoice"))
        return cleaned


# --- payments -----------------------------------------------------------------------------------
@admin.register(Payment)
class PaymentAdmin(ServiceAddViewMixin, admin.ModelAdmin):
    """Payments: added through payment_record (audited, the invoice's status refreshed), never edited."""

    add_form_class = PaymentAddForm
    add_title = "Record a payment"
    list_display = ("paid_on", "invoice_link", "partner", "amount_shown", "reference", "source", "recorded_by",
                    "recorded_at")
    list_filter = ("partner", "source", "paid_on", "invoice__kind")
    search_fields = ("invoice__number", "reference")
    search_help_text = "Invoice number or payment reference."
    list_select_related = ("invoice", "partner", "recorded_by")
    date_hierarchy = "paid_on"
    fields = ("partner", "invoice_link", "amount_shown", "paid_on", "reference", "source", "recorded_by",
              "recorded_at")
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if not str(initial.get("invoice", "")).isdigit():
            initial.pop("invoice", None)
        initial.setdefault("paid_on", utc_date(timezone.now()))
        return initial

    def perform_add(self, request, form):
        data = form.cleaned_data
        try:
            return payment_record(invoice=data["invoice"], amount=data["amount"], paid_on=data["paid_on"],
                                  reference=data["reference"], actor=actor_of(request), source="admin")
        except BillingError as exc:
            raise ValidationError(str(exc)) from exc
        except IntegrityError as exc:
            raise ValidationError("this payment (same date, amount and reference) is already recorded") from exc

    def response_add(self, request, obj, post_url_continue=None):
        invoice = Invoice.objects.get(pk=obj.invoice_id)
        self.message_user(request, f"{invoice} is {invoice.get_payment_status_display().lower()}.", messages.INFO)
        return super().response_add(request, obj, post_url_continue)

    @admin.display(description="invoice", ordering="invoice__number")
    def invoice_link(self, obj):
        return format_html('<a href="{}">{}</a>', change_url(obj.invoice), obj.invoice)

    @admin.display(description="amount", ordering="amount")
    def amount_shown(self, obj):
        return money_html(obj.amount, obj.invoice.currency)

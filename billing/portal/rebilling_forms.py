"""The portal's rebilling forms: the Price lists page's (set a resale price, add an own item), a customer payment,
a reason to credit or void, the customer's billing details and the partner's rebilling settings. Scoped to the
partner they are built for: a customer, service, item or invoice of another partner is not a choice (the view
answers 404 before that)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings

from billing.core.idempotency import OnceField
from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.models import CustomerBillingProfile, RebillingProfile
from invoicing.rebilling.pricing import MARKUP_PLACES, MODE_FIELDS
from invoicing.rebilling.profiles import billing_emails_errors
from invoicing.templatetags.invoice_format import format_money
from partners.choices import TierMode

PRICE = {"max_digits": settings.PRICE_MAX_DIGITS, "decimal_places": settings.PRICE_DECIMAL_PLACES}


def _date(**attrs):
    return forms.DateInput(attrs={"type": "date", **attrs}, format="%Y-%m-%d")


class ResalePriceForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=None, required=False, label="List",
                                      empty_label="Default list (every customer)")
    target = forms.ChoiceField(label="Service or own item")
    mode = forms.ChoiceField(choices=ResaleMode.choices, initial=ResaleMode.UNIT, label="Charge")
    unit_price = forms.DecimalField(required=False, min_value=0, label="Unit price",
                                    help_text="per unit; in a package, each unit above it", **PRICE)
    markup_percent = forms.DecimalField(required=False, min_value=0, max_digits=7, decimal_places=MARKUP_PLACES,
                                        label="Markup (%)", help_text="added to our unit price")
    package_units = forms.IntegerField(required=False, min_value=1, max_value=2_147_483_647,
                                       label="Package: up to (units)")
    package_price = forms.DecimalField(required=False, min_value=0, label="Package price", **PRICE)
    tiers = forms.CharField(required=False, max_length=500, label="Tiers",
                            widget=forms.TextInput(attrs={"placeholder": "10:5.00;50:4.00;inf:3.00"}),
                            help_text="UP_TO:PRICE;...;inf:PRICE")
    tier_mode = forms.ChoiceField(choices=TierMode.choices, initial=TierMode.VOLUME, label="Tier mode")
    effective_from = forms.DateField(label="Effective from", widget=_date())
    once_token = OnceField()  # sent twice, set once

    def __init__(self, *args, customers, targets: dict, **kwargs):
        """`targets`: {"service:ID" or "item:ID": (label, the service or item)} of the partner."""
        super().__init__(*args, **kwargs)
        self.targets = targets
        self.fields["customer"].queryset = customers
        self.fields["customer"].label_from_instance = lambda customer: customer.name
        self.fields["target"].choices = [(key, label) for key, (label, _obj) in targets.items()]

    def clean_target(self):
        return self.targets[self.cleaned_data["target"]][1]  # a choice: always one of the partner's

    def amounts(self) -> dict:
        """The amounts the chosen mode uses, as resale_price_set takes them (the others are ignored: they may
        hold what was typed before the mode was changed)."""
        mode = self.cleaned_data["mode"]
        data = {name: self.cleaned_data[name] for name in MODE_FIELDS[mode]}
        if mode == ResaleMode.TIERS:
            data["tier_mode"] = self.cleaned_data["tier_mode"]
        return data


class ResaleItemForm(forms.Form):
    code = forms.SlugField(max_length=64, label="Code", help_text="its key in files: item:CODE",
                           widget=forms.TextInput(attrs={"placeholder": "e.g. helpdesk-hours"}))
    name = forms.CharField(max_length=200, label="Name",
                           widget=forms.TextInput(attrs={"placeholder": "e.g. Helpdesk hours", "class": "full"}))
    unit = forms.CharField(max_length=40, required=False, label="Unit",
                           widget=forms.TextInput(attrs={"placeholder": "e.g. hour"}))
    meter = forms.CharField(
        max_length=100, required=False, label="Billed from meter",
        help_text="optional: a usage-record meter gives each customer's monthly quantity, e.g. "
                  "call_minutes:outbound:* or meeting_minutes",
        widget=forms.TextInput(attrs={"placeholder": "e.g. call_minutes:outbound:*"}))
    once_token = OnceField()


# --- customer invoices, payments and the rebilling profiles -----------------------------------------------------
def _text(placeholder: str = "", **attrs):
    return forms.TextInput(attrs={"placeholder": placeholder, **attrs} if placeholder else attrs)


def _area(rows: int = 3):
    return forms.Textarea(attrs={"rows": rows})


class ReasonForm(forms.Form):
    """Why a customer invoice is credited or a payment voided: written in the audit log (and a void's
    transaction)."""

    reason = forms.CharField(max_length=300, label="Reason", widget=_text("e.g. billed twice", **{"class": "full"}))
    once_token = OnceField()


class CustomerPaymentForm(forms.Form):
    """A payment a customer made to the partner. The invoice is optional (the payment then goes to the account);
    the checks that need the partner (currency places, a date not in the future, the invoice's customer) are
    the service's (invoicing.rebilling.accounts.customer_payment_errors)."""

    customer = forms.ModelChoiceField(queryset=None, empty_label=None, label="Customer")
    received_on = forms.DateField(label="Date received", widget=_date())
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_value=Decimal("999999999999.99"), label="Amount")
    reference = forms.CharField(max_length=200, required=False, label="Reference",
                                help_text="the bank's or the customer's reference", widget=_text("e.g. TRX-88121"))
    method = forms.CharField(max_length=60, required=False, label="Method",
                             widget=_text("e.g. bank transfer"))
    note = forms.CharField(max_length=300, required=False, label="Note")
    invoice = forms.ModelChoiceField(queryset=None, required=False, label="Invoice it pays",
                                     empty_label="None: to the account")
    once_token = OnceField()  # a double click records once

    # the service's error keys, by the form's field names
    SERVICE_FIELDS = {"date": "received_on", "currency": "amount"}

    def __init__(self, *args, customers, invoices, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = customers
        self.fields["customer"].label_from_instance = lambda customer: customer.name
        self.fields["invoice"].queryset = invoices
        self.fields["invoice"].label_from_instance = (
            lambda invoice: f"{invoice.number} · {invoice.month} · {format_money(invoice.total, currency)}")
        self.fields["amount"].label = f"Amount ({currency})"
        for name in ("customer", "invoice", "note"):
            self.fields[name].widget.attrs["class"] = "full"

    def add_service_errors(self, errors: dict[str, str]) -> None:
        for key, message in errors.items():
            field = self.SERVICE_FIELDS.get(key, key)
            self.add_error(field if field in self.fields else None, message)


class CustomerBillingProfileForm(forms.ModelForm):
    """A customer's billing details (saved by invoicing.rebilling.profiles.customer_billing_profile_save)."""

    class Meta:
        model = CustomerBillingProfile
        fields = ["legal_name", "address", "tax_id", "purchase_order", "tax_rate", "billing_emails"]
        labels = {"tax_rate": "Tax rate (%)", "billing_emails": "Billing emails"}
        widgets = {"address": _area(),
                   "billing_emails": _text("ap@customer.example, cfo@customer.example", **{"class": "full"}),
                   "tax_rate": forms.NumberInput(attrs={"step": "0.001", "min": "0"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:  # 8.250 as it was typed: 8.25
            self.initial["tax_rate"] = format(self.instance.tax_rate.normalize(), "f")

    def clean_billing_emails(self):
        """Each address checked here too, so a refused form shows every error at once (the service checks
        again)."""
        text = self.cleaned_data.get("billing_emails", "")
        if errors := billing_emails_errors(text):
            raise forms.ValidationError(errors)
        return text


CUSTOMER_BILLING_HELP = ("on: customer invoices show previous balance, new charges, taxes, credits, payments and "
                         "amount due; off: only new charges")


class RebillingProfileForm(forms.ModelForm):
    """The partner's rebilling settings (saved by invoicing.rebilling.profiles.rebilling_profile_save). The
    prefix is unique across partners: one taken is an error of its field."""

    class Meta:
        model = RebillingProfile
        fields = ["enabled", "number_prefix", "payment_terms_days", "legal_name", "address", "tax_id", "email",
                  "phone", "website", "bank_details", "invoice_footer", "logo", "email_invoices", "review_drafts",
                  "customer_billing"]
        labels = {"enabled": "Rebilling on", "number_prefix": "Number prefix", "tax_id": "Tax ID",
                  "email_invoices": "Email customer invoices", "review_drafts": "Draft for review",
                  "customer_billing": "Customer Billing", "payment_terms_days": "Payment terms (days)"}
        help_texts = {"customer_billing": CUSTOMER_BILLING_HELP}
        error_messages = {"number_prefix": {"unique": "This prefix is already another partner's: choose another."}}
        widgets = {"number_prefix": _text("e.g. NWIT", autocomplete="off", **{"class": "full"}), "address": _area(),
                   "payment_terms_days": forms.NumberInput(attrs={"min": "0", "class": "full"}),
                   "email": _text("billing@your-company.example", inputmode="email"),
                   "bank_details": _area(), "invoice_footer": _area(2), "logo": forms.ClearableFileInput(
                       attrs={"accept": "image/png,image/jpeg"})}

    def clean_number_prefix(self):
        return (self.cleaned_data.get("number_prefix") or "").strip().upper()

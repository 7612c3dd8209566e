"""The Price lists page's forms: set a resale price, add an own item. Scoped to the partner they are built for:
a customer, service or item of another partner is not a choice (the view answers 404 before that)."""

from __future__ import annotations

from django import forms
from django.conf import settings

from billing.core.idempotency import OnceField
from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.pricing import MARKUP_PLACES, MODE_FIELDS
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
    once_token = OnceField()

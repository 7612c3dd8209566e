"""Portal forms: small, and scoped to the partner they are built for."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import PasswordResetForm
from django.core.validators import RegexValidator

from billing.core.idempotency import OnceField
from billing.core.periods import Period, PeriodError
from partners.seating import SEATS_PER_PURCHASE_MAX


class AssignSeatForm(forms.Form):
    """Each refusal says what is wrong with the name typed (the portal shows it as the page's message)."""

    member = forms.CharField(
        max_length=200, label="Member name",
        error_messages={"required": "Enter the member's name.",
                        "max_length": "A member's name is at most %(limit_value)d characters; this one has "
                                      "%(show_value)d."},
        validators=[RegexValidator(r"^[^\x00-\x1f\x7f]+$", "A member's name cannot hold a tab, a line break or "
                                                            "another control character (pasted from a "
                                                            "spreadsheet?): type it again.")],
        widget=forms.TextInput(attrs={"placeholder": "e.g. ana@oakridge"}))

    def error_text(self) -> str:
        """Why the name was refused, in a sentence or two."""
        return " ".join(str(message) for message in self.errors.get("member", ())) or "Enter the member's name."


class SeatCapForm(forms.Form):
    seat_cap = forms.IntegerField(min_value=0, max_value=2_147_483_647, required=False, label="Seat cap",
                                  help_text="blank: no cap")


class AddSeatsForm(forms.Form):
    service = forms.ModelChoiceField(queryset=None, empty_label=None, label="Service")
    seats = forms.IntegerField(min_value=1, max_value=SEATS_PER_PURCHASE_MAX, initial=1, label="Seats to add")
    once_token = OnceField()  # a double click buys once (billing/core/idempotency.py)

    def __init__(self, *args, services, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = services
        self.fields["service"].label_from_instance = lambda s: f"{s.name} ({s.scope_label})"


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, label="Key name",
                           widget=forms.TextInput(attrs={"placeholder": "e.g. PSA sync"}))
    once_token = OnceField()  # sent twice, one key


class PeriodForm(forms.Form):
    period = forms.CharField(label="Month", widget=forms.TextInput(attrs={"type": "month"}))

    def clean_period(self):
        try:
            return Period.parse(self.cleaned_data["period"])
        except PeriodError as exc:
            raise forms.ValidationError(str(exc)) from exc


class PortalPasswordResetForm(PasswordResetForm):
    """Reset links for portal users only: a staff account without a partner login gets no email (its password is
    reset by a superuser, operations 14), and the page answers alike whoever the address belongs to."""

    def get_users(self, email):
        return (user for user in super().get_users(email) if hasattr(user, "partner_user"))

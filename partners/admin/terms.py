"""What the partner, customer and service pages share: terms that change from a date (billing-rules 3.11),
the history of an object's terms, and saving through the partners' services, which date changed terms."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminDateWidget
from django.utils.html import format_html, format_html_join

from partners.admin.kit import AuditedSaveMixin, actor_of
from partners.services import terms_history
from partners.terms import TERM_FIELDS, TermsDateError, changed_terms, check_effective, copied, kind_of, values_of


# --- terms with effective dates (billing-rules 3.11) --------------------------------------------
class DatedTermsForm(forms.ModelForm):
    """A change form whose terms (prices, tiers, commitment, host limit, tax, payment terms) change from a
    date: blank is the day the change is made (UTC), a price change the next month's 1st."""

    terms_effective_from = forms.DateField(
        required=False, label="Changed terms take effect on", widget=AdminDateWidget,
        help_text="blank: today (UTC); a change of a price, tiers or tier mode: the next month's 1st. A price "
                  "change takes effect on a 1st. Months before it keep the terms then in force; a date in a "
                  "month already invoiced is trued up on the next invoice.")

    def clean(self):
        cleaned = super().clean()
        effective = cleaned.get("terms_effective_from")
        if effective is not None and self.instance.pk:
            saved = type(self.instance).objects.get(pk=self.instance.pk)
            edited = copied(saved)  # the saved object with the form's terms: values_of reads both alike
            for name in TERM_FIELDS[kind_of(saved)]:
                if name in cleaned:
                    setattr(edited, name, cleaned[name])
            try:
                check_effective(changed_terms(values_of(saved), values_of(edited)), effective)
            except TermsDateError as exc:
                self.add_error("terms_effective_from", str(exc))
        return cleaned


class TermsHistoryMixin:
    """The admin's history of an object's terms: what held from when until when (on a saved object)."""

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else [f for f in fieldsets if f[0] != "Terms over time"]

    @admin.display(description="history of terms")
    def terms_history_table(self, obj):
        if obj is None or not obj.pk:
            return "-"
        rows = terms_history(type(obj).objects.get(pk=obj.pk))  # as saved (a form sent back holds its edits)
        return format_html(
            '<table class="terms-history"><thead><tr><th>from</th><th>until</th><th>terms</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", (
                (row["from"] or "the start", row["until"] or "now on",
                 "; ".join(f"{label} {value}" for label, value in row["values"].items() if value not in (None, ""))
                 or "-")
                for row in rows)))


class WriteServicesMixin(AuditedSaveMixin):
    """Partners, customers and services are saved and deleted by their services (partners.services:
    `<noun>_create`, `<noun>_update`, `<noun>_delete`), which check the rules, audit with the model's one
    snapshot and date changed terms from the form's "Changed terms take effect on" (billing-rules 3.11).
    A ValidationError they raise comes back as a message (AuditedSaveMixin.changeform_view)."""

    create_service = update_service = delete_service = None  # staticmethods, set by each admin

    def save_model(self, request, obj, form, change):
        if not change:
            self.create_service(**{kind_of(obj): obj}, actor=actor_of(request))
            return
        _, effective = self.update_service(**{kind_of(obj): obj}, actor=actor_of(request),
                                           effective=form.cleaned_data.get("terms_effective_from"))
        if effective is not None:
            self.message_user(request, f"The new terms take effect on {effective:%-d %B %Y}; "
                                       f"months before keep the terms then in force.", messages.INFO)

    def delete_model(self, request, obj):
        self.delete_service(**{kind_of(obj): obj}, actor=actor_of(request))

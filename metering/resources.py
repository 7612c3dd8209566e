"""django-import-export resources for usage files (billing-rules 9)."""

import re

from import_export import resources
from import_export.fields import Field

from billing.core.widgets import ChoiceWidget, DateWidget, InstantWidget, IntegerWidget, SlugWidget, TextWidget
from metering.choices import CallDirection
from metering.models import AgentPresence, Suspension, UsageSnapshot

BIG = 2**63 - 1
COUNT = 2**31 - 1


class TenantUsageResource(resources.ModelResource):
    partner = Field(attribute="customer__partner__slug", column_name="partner", widget=SlugWidget())
    customer = Field(attribute="customer__slug", column_name="customer", widget=SlugWidget())
    date = Field(attribute="date", column_name="date", widget=DateWidget())
    users_count = Field(attribute="users_count", column_name="users_count", widget=IntegerWidget(max_value=COUNT))
    storage_bytes = Field(attribute="storage_bytes", column_name="storage_bytes", widget=IntegerWidget(max_value=BIG))
    messages_count = Field(attribute="messages_count", column_name="messages_count",
                           widget=IntegerWidget(max_value=BIG), default=None)

    class Meta:
        model = UsageSnapshot
        fields = ("partner", "customer", "date", "users_count", "storage_bytes", "messages_count")
        import_id_fields = ("partner", "customer", "date")


class TenantEventResource(resources.ModelResource):
    partner = Field(column_name="partner", widget=SlugWidget())
    customer = Field(column_name="customer", widget=SlugWidget())
    action = Field(column_name="action", widget=ChoiceWidget(["suspend", "unsuspend"], "action"))
    at = Field(column_name="at", widget=InstantWidget())

    class Meta:
        model = Suspension
        fields = ("partner", "customer", "action", "at")
        import_id_fields = ()


class SuspensionResource(resources.ModelResource):
    """Suspension history as intervals, for the admin's Export button."""

    partner = Field(attribute="customer__partner__slug", column_name="partner")
    customer = Field(attribute="customer__slug", column_name="customer")
    suspended_at = Field(attribute="suspended_at", column_name="suspended_at", widget=InstantWidget())
    unsuspended_at = Field(attribute="unsuspended_at", column_name="unsuspended_at", widget=InstantWidget())

    class Meta:
        model = Suspension
        fields = ("partner", "customer", "suspended_at", "unsuspended_at")


class RmmAssetResource(resources.ModelResource):
    """A whole RMM inventory as of a date (with --partner and --as-of)."""

    agent_id = Field(column_name="agent_id", widget=TextWidget(max_length=200))
    machine_name = Field(column_name="machine_name", widget=TextWidget(max_length=200))
    organization = Field(column_name="organization", widget=TextWidget(max_length=200))
    group = Field(column_name="group", widget=TextWidget(max_length=200), default="")
    os = Field(column_name="os", widget=TextWidget(max_length=200), default="")
    last_seen = Field(column_name="last_seen", widget=InstantWidget(), default=None)

    class Meta:
        model = AgentPresence
        fields = ("agent_id", "machine_name", "organization", "group", "os", "last_seen")
        import_id_fields = ()


class DestinationWidget(TextWidget):
    """A destination class in the vendor's words, normalised (billing-rules 3.12): letters, digits, spaces, - and
    _; lower case, each run of spaces and _ one - ("Toll Free" and "toll_free" are "toll-free")."""

    _re = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _-]*")
    max_class = 40  # the column's max_length

    def clean(self, value, row=None, **kwargs):
        text = super().clean(value, row, **kwargs)
        if not self._re.fullmatch(text):
            raise ValueError(f"{text!r} is not a destination class: use letters, digits, spaces, - and _ "
                             f"(such as international or toll-free)")
        normalised = re.sub(r"[ _]+", "-", text.lower())
        if len(normalised) > self.max_class:
            raise ValueError(f"longer than {self.max_class} characters")
        return normalised


def usage_record_resource(model, columns) -> type[resources.Resource]:
    """The resource of a usage record kind (metering.usage_records): partner, customer, then `columns` (each a
    `usage_records.Column`), a widget per form."""
    widgets = {
        "text": lambda c: TextWidget(max_length=c.max_length),
        "instant": lambda c: InstantWidget(),
        "seconds": lambda c: IntegerWidget(max_value=COUNT),
        "count": lambda c: IntegerWidget(min_value=1, max_value=COUNT),
        "direction": lambda c: ChoiceWidget(list(CallDirection.values), "direction"),
        "destination": lambda c: DestinationWidget(),
    }
    fields = {
        "partner": Field(column_name="partner", widget=SlugWidget()),
        "customer": Field(column_name="customer", widget=SlugWidget()),
        **{c.name: Field(column_name=c.name, widget=widgets[c.form](c), default="" if c.blank else None)
           for c in columns},
    }
    meta = type("Meta", (), {"model": model, "fields": tuple(fields), "import_id_fields": ()})
    return type(f"{model.__name__}Resource", (resources.ModelResource,), {**fields, "Meta": meta})

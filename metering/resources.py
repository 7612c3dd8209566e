"""django-import-export resources for usage files (billing-rules 9)."""

from import_export import resources
from import_export.fields import Field

from billing.core.widgets import ChoiceWidget, DateWidget, InstantWidget, IntegerWidget, SlugWidget, TextWidget
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

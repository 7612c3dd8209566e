"""What was used. The calendar lets metering count member-days in plain SQL on any database."""

from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from billing.core.periods import whole_days_between
from billing.core.sealed import SealedTextField
from metering.choices import CallDirection
from partners.models import rmm_filter_validator

CALENDAR_FIRST = date(2000, 1, 1)  # the first day metering counts (Day: 2000-01-01 to 2100-12-31)


class Day(models.Model):
    """One UTC date, with the first day of its month (filled 2000-01-01 to 2100-12-31)."""

    day = models.DateField(primary_key=True)
    month = models.DateField(db_index=True)

    class Meta:
        ordering = ["day"]

    def __str__(self):
        return self.day.isoformat()


class UsageSnapshot(models.Model):
    """A tenant's usage on a UTC date (the last snapshot of a date wins; values carry forward)."""

    # no index of its own: one_snapshot_per_day begins with it
    customer = models.ForeignKey("partners.Customer", on_delete=models.PROTECT, db_index=False,
                                 related_name="usage_snapshots")
    date = models.DateField()
    users_count = models.PositiveIntegerField("users")
    storage_bytes = models.PositiveBigIntegerField("storage (bytes)")
    messages_count = models.PositiveBigIntegerField("messages", null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now=True)
    source = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["customer", "-date"]
        constraints = [models.UniqueConstraint(fields=["customer", "date"], name="one_snapshot_per_day")]

    def __str__(self):
        return f"{self.customer.slug} {self.date}: {self.users_count} users"


class Suspension(models.Model):
    """A tenant suspended from `suspended_at` until `unsuspended_at` (open while blank).

    Suspending stops counting from the next whole day, unsuspending counts the day it
    happens (billing-rules 3.6, 6.8): the whole days suspended are kept beside the instants so
    that metering can exclude them in plain SQL.
    """

    customer = models.ForeignKey("partners.Customer", on_delete=models.PROTECT, related_name="suspensions")
    suspended_at = models.DateTimeField()
    unsuspended_at = models.DateTimeField(null=True, blank=True)
    first_full_day = models.DateField(editable=False)
    last_full_day = models.DateField(null=True, blank=True, editable=False)
    source = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["customer", "-suspended_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"], condition=models.Q(unsuspended_at__isnull=True), name="one_open_suspension"
            ),
        ]

    def __str__(self):
        return f"{self.customer.slug} suspended {self.suspended_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        self.set_days()
        super().save(*args, **kwargs)

    def set_days(self):
        self.first_full_day, self.last_full_day = whole_days_between(self.suspended_at, self.unsuspended_at)
        return self


class RmmAgent(models.Model):
    """An RMM agent (asset) of a partner, as last reported."""

    # no index of its own: agent_unique_id begins with it
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, db_index=False, related_name="rmm_agents")
    agent_id = models.CharField("agent ID", max_length=200)
    machine_name = models.CharField(max_length=200, blank=True)
    os = models.CharField("OS", max_length=200, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True, help_text="informative only")

    class Meta:
        ordering = ["partner", "machine_name"]
        verbose_name = "RMM agent"
        constraints = [models.UniqueConstraint(fields=["partner", "agent_id"], name="agent_unique_id")]

    def __str__(self):
        return self.machine_name or self.agent_id


class AgentPresence(models.Model):
    """An agent in an organization/group from `present_from` through `present_until` (inclusive;
    open while blank), as detected by inventories (billing-rules 3.7: a change takes effect on the
    date it was detected, never earlier)."""

    # no index of its own: one_presence_per_agent_start begins with it
    agent = models.ForeignKey(RmmAgent, on_delete=models.CASCADE, db_index=False, related_name="presences")
    # no index of its own: the (partner, organization, present_from) index begins with it
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, db_index=False, related_name="+")
    organization = models.CharField(max_length=200)
    group = models.CharField(max_length=200, blank=True)  # a path from the top, "/"-separated
    # the organization's short reference and id in the RMM, and the machine views the agent is in
    # ("|a|b|", so that SQL finds a view by its delimited name), each part of its place (docs/rmm.md)
    org_ref = models.CharField("organization reference", max_length=200, blank=True, default="", db_default="")
    org_id = models.CharField("organization ID", max_length=200, blank=True, default="", db_default="")
    views = models.TextField(blank=True, default="", db_default="")
    present_from = models.DateField()
    present_until = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["agent", "-present_from"]
        indexes = [models.Index(fields=["partner", "organization", "present_from"])]
        constraints = [
            models.UniqueConstraint(
                fields=["agent"], condition=models.Q(present_until__isnull=True), name="one_open_presence"
            ),
            # an inventory applied again (a rerun, a same-day correction) never doubles an agent on a date
            models.UniqueConstraint(fields=["agent", "present_from"], name="one_presence_per_agent_start"),
            models.CheckConstraint(
                condition=models.Q(present_until__isnull=True)
                | models.Q(present_until__gte=models.F("present_from")),
                name="presence_ends_after_it_starts",
            ),
        ]

    def __str__(self):
        return f"{self.agent} in {self.organization}/{self.group} from {self.present_from}"


class InventorySync(models.Model):
    """One whole inventory of a partner's RMM as of a date (an import or a nightly sync)."""

    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, related_name="inventory_syncs")
    as_of = models.DateField()
    agents = models.PositiveIntegerField()
    added = models.PositiveIntegerField(default=0)
    moved = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=200, blank=True)
    synced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["partner", "-as_of", "-synced_at"]

    def __str__(self):
        return f"{self.partner.slug} inventory as of {self.as_of}"


# --- RMM syncs (billing-rules 3.7, 9.5: a sync is a whole inventory as of the date it ran) -------------------
class IntegrationKind(models.TextChoices):
    KASEYA_VSA = "kaseya-vsa", "Kaseya VSA 9 REST API"
    DATTO = "datto", "Datto RMM API v2"
    NINJAONE = "ninjaone", "NinjaOne public API v2"
    JSON = "json", "JSON inventory feed (the product's own format, for home-made exporters)"
    FOLDER = "folder", "Drop folder (newest rmm-assets CSV)"


# what each kind needs (docs/rmm.md): the credential fields' meaning per vendor, shown in the admin
CREDENTIAL_HELP = {
    IntegrationKind.KASEYA_VSA: ("the VSA user name of the API user", "that user's personal access token"),
    IntegrationKind.DATTO: ("the API key (Setup > Users > API keys)", "the API secret key"),
    IntegrationKind.NINJAONE: ("the client id of an API client app (client credentials, scope monitoring)",
                               "the client secret"),
    IntegrationKind.JSON: ("(not used)", "sent as Authorization: Bearer"),
}
NEEDS_USERNAME = (IntegrationKind.KASEYA_VSA, IntegrationKind.DATTO, IntegrationKind.NINJAONE)


class RmmIntegration(models.Model):
    """Where a partner's RMM inventory is fetched from, nightly and on "Get units now" (docs/rmm.md).

    The secret is write-only in the admin and sealed in the database (billing/core/sealed.py): the sync
    must send it, so it is encrypted, not hashed; a dump or backup holds no usable secret.
    """

    partner = models.OneToOneField("partners.Partner", on_delete=models.CASCADE, related_name="rmm_integration")
    kind = models.CharField("RMM", max_length=20, choices=IntegrationKind.choices, default=IntegrationKind.KASEYA_VSA)
    base_url = models.URLField("base URL", max_length=500, blank=True,
                               help_text="the RMM's API address: e.g. https://vsa.example.com (Kaseya VSA), "
                                         "https://pinotage-api.centrastage.net (Datto RMM), "
                                         "https://app.ninjarmm.com (NinjaOne)")
    username = models.CharField(max_length=200, blank=True, default="", db_default="",
                                help_text="Kaseya VSA: the API user's name; Datto RMM: the API key; "
                                          "NinjaOne: the client id")
    api_token = SealedTextField("secret", blank=True,
                                help_text="Kaseya VSA: the personal access token; Datto RMM: the API secret key; "
                                          "NinjaOne: the client secret; JSON feed: the bearer token "
                                          "(stored encrypted)")
    folder_path = models.CharField(max_length=500, blank=True,
                                   help_text="drop folder: the newest *.csv file in it is the inventory")
    enabled = models.BooleanField(default=True, help_text="off: no sync runs, nightly or manual")
    # which agents are billed (docs/rmm.md, "Which agents count"); deleted agents never are
    count_offline = models.BooleanField("bill offline agents", default=True, db_default=True,
                                        help_text="an agent that is installed but offline at the sync is billed")
    count_suspended = models.BooleanField("bill suspended agents", default=False, db_default=False,
                                          help_text="agents suspended in the RMM")
    count_never_checked_in = models.BooleanField(
        "bill agents that never checked in", default=False, db_default=False,
        help_text="templates and agents awaiting approval that never reported to the RMM")
    inventory_filter = models.TextField(
        "only agents of", blank=True, default="", db_default="",
        help_text="one a line (ORG, ORG/GROUP, view:NAME): only the agents some line takes are the partner's "
                  "inventory (an RMM that also holds machines billed elsewhere); blank: every agent")
    removal_guard_percent = models.PositiveSmallIntegerField(
        "hold for review above (% removed)", default=20, db_default=20,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="a sync that would remove more than this share of the partner's agents, or take a service "
                  "that has units to 0, is held until staff approve it (100: never held for the share)")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["partner__name"]
        verbose_name = "RMM integration"

    def __str__(self):
        return f"{self.partner} ({self.get_kind_display()})"

    def clean(self):
        errors = {}
        bad = []
        for line in self.filters:
            try:
                rmm_filter_validator(line)
            except ValidationError:
                bad.append(line)
        if bad:
            errors["inventory_filter"] = (f"{', '.join(map(repr, bad))}: one filter a line, ORG, ORG/GROUP, "
                                          f"ORG/GROUP/SUB or view:NAME")
        if self.kind == IntegrationKind.FOLDER:
            if not self.folder_path.strip():
                errors["folder_path"] = "required for a drop-folder integration"
        else:
            if not self.base_url:
                errors["base_url"] = "required: the RMM's API address"
            elif not self.base_url.lower().startswith(("http://", "https://")):
                errors["base_url"] = "use an http:// or https:// address"
            if self.kind in NEEDS_USERNAME and not self.username.strip():
                errors["username"] = f"required: {CREDENTIAL_HELP[self.kind][0]}"
        if errors:
            raise ValidationError(errors)

    @property
    def has_token(self) -> bool:
        return bool(self.api_token)

    @property
    def filters(self) -> list[str]:
        return [line.strip() for line in self.inventory_filter.splitlines() if line.strip()]


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    OK = "ok", "OK"
    FAILED = "failed", "Failed"
    HELD = "held", "Held for review"
    REJECTED = "rejected", "Rejected"


class SyncTrigger(models.TextChoices):
    NIGHTLY = "nightly", "Nightly job"
    MANUAL = "manual", "Manual (Get units now)"
    COMMAND = "command", "Command line (sync_inventory)"


class SyncRun(models.Model):
    """One attempt to sync a partner's inventory: recorded before the fetch, finished ok or failed.

    A failed run wrote nothing to the inventory. A nightly retry is a new run (`attempt` counts).
    """

    # no index of its own: syncrun_partner_started begins with it
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, db_index=False, related_name="sync_runs")
    integration = models.ForeignKey(RmmIntegration, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="runs")
    as_of = models.DateField()
    trigger = models.CharField(max_length=10, choices=SyncTrigger.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    actor_label = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    agents_seen = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    moved = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=200, blank=True, help_text="the API address or the file read")
    error = models.TextField(blank=True)
    retryable = models.BooleanField(default=False, help_text="the fault looked transient (timeout, HTTP 5xx)")
    inventory = models.ForeignKey(InventorySync, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+", help_text="the inventory it recorded, when anything changed")
    pages = models.PositiveIntegerField(default=0, db_default=0, help_text="pages of the RMM's API read")
    agents_billed = models.PositiveIntegerField(default=0, db_default=0,
                                                help_text="agents of the inventory that count (docs/rmm.md)")
    # {reason: count} of the agents read but not billed (offline, suspended, never checked in, deleted)
    skipped = models.JSONField(default=dict, blank=True)
    # [{"organization": name, "agents": n}]: agents that match no customer's RMM organization nor any filter
    unmatched = models.JSONField(default=list, blank=True)
    # held for review: what applying it would do, and the inventory to apply on approval
    review = models.JSONField(default=dict, blank=True)
    held_inventory = models.JSONField(null=True, blank=True, editable=False)
    reviewed_by = models.CharField(max_length=200, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "RMM sync run"
        indexes = [models.Index(fields=["partner", "-started_at"], name="syncrun_partner_started")]

    def __str__(self):
        return f"{self.partner.slug} sync as of {self.as_of}: {self.status}"


class UnitChangeNotice(models.Model):
    """A per_asset service's units changed because of a sync: emailed once to its notification emails.

    Unique per (service, effective date, units after): syncing the same inventory again never emails again.
    """

    # no index of its own: one_notice_per_unit_change begins with it
    service = models.ForeignKey("partners.Service", on_delete=models.CASCADE, db_index=False,
                                related_name="unit_change_notices")
    effective_date = models.DateField()
    units_before = models.PositiveIntegerField()
    units_after = models.PositiveIntegerField()
    sync_run = models.ForeignKey(SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="notices")
    recipients = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-effective_date", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["service", "effective_date", "units_after"],
                                    name="one_notice_per_unit_change"),
        ]

    def __str__(self):
        return f"{self.service.code}: {self.units_before} -> {self.units_after} units from {self.effective_date}"


# --- usage records: calls and meetings (billing-rules 3.12) -------------------------------------------------------
# Tens of millions of rows a month: compact columns, two indexes each (the record's own key, unique per partner,
# and customer + start for the monthly sums), no audit row of their own (one per import: metering.imports).
# No foreign key constraint in the database either: its check runs once per row, locking the customer's row each
# time (a third of a month's import: docs/performance.md, "Usage records"). The import writes a record only for
# a customer it found in the same statement, of the partner named, and holds those customers' rows under KEY
# SHARE until it commits, as the constraint would (metering/usage_staging.py); Django's PROTECT refuses to
# delete a partner or customer that has records.
class CallUsageRecord(models.Model):
    """One call as the phone system rated it: its customer, user or extension, start, duration, direction and
    destination class. `record_id` is the vendor's id of the call, the record's key within the partner."""

    # no index of its own: call_record_unique_id begins with it
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, db_index=False, db_constraint=False,
                                related_name="+")
    # no index of its own: the (customer, started_at) index begins with it
    customer = models.ForeignKey("partners.Customer", on_delete=models.PROTECT, db_index=False, db_constraint=False,
                                 related_name="+")
    record_id = models.CharField("record ID", max_length=100)
    user = models.CharField("user or extension", max_length=100, blank=True)
    started_at = models.DateTimeField("started (UTC)")
    duration_seconds = models.PositiveIntegerField("duration (s)")
    direction = models.CharField(max_length=8, choices=CallDirection.choices)
    destination = models.CharField("destination class", max_length=40,
                                   help_text="the vendor's words, in lower case with - for spaces (billing-rules 3.12)")
    source = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = "call usage record"
        constraints = [models.UniqueConstraint(fields=["partner", "record_id"], name="call_record_unique_id")]
        indexes = [models.Index(fields=["customer", "started_at"], name="call_record_customer_start")]

    def __str__(self):
        return self.record_id


class CallDetailRecord(models.Model):
    """One leg of a call (a transfer, a forward, a ring group's answer): legs of one call share `call_id`.
    `leg_id` is the leg's key within the partner. Detail only: the billed minutes are the call usage
    records' (billing-rules 3.12)."""

    # no index of its own: call_leg_unique_id begins with it
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, db_index=False, db_constraint=False,
                                related_name="+")
    # no index of its own: the (customer, started_at) index begins with it
    customer = models.ForeignKey("partners.Customer", on_delete=models.PROTECT, db_index=False, db_constraint=False,
                                 related_name="+")
    leg_id = models.CharField("leg ID", max_length=100)
    call_id = models.CharField("call ID", max_length=100)
    user = models.CharField("user or extension", max_length=100, blank=True)
    from_number = models.CharField("from", max_length=100, blank=True)
    to_number = models.CharField("to", max_length=100, blank=True)
    started_at = models.DateTimeField("started (UTC)")
    duration_seconds = models.PositiveIntegerField("duration (s)")
    direction = models.CharField(max_length=8, choices=CallDirection.choices)
    destination = models.CharField("destination class", max_length=40, blank=True)
    source = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = "call detail record"
        constraints = [models.UniqueConstraint(fields=["partner", "leg_id"], name="call_leg_unique_id")]
        indexes = [models.Index(fields=["customer", "started_at"], name="call_leg_customer_start")]

    def __str__(self):
        return f"{self.call_id} / {self.leg_id}"


class MeetingSummaryRecord(models.Model):
    """One meeting held: its customer, host, start, duration and how many took part. `meeting_id` is the id of
    that one meeting (of the occurrence, for a recurring meeting), its key within the partner."""

    # no index of its own: meeting_record_unique_id begins with it
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, db_index=False, db_constraint=False,
                                related_name="+")
    # no index of its own: the (customer, started_at) index begins with it
    customer = models.ForeignKey("partners.Customer", on_delete=models.PROTECT, db_index=False, db_constraint=False,
                                 related_name="+")
    meeting_id = models.CharField("meeting ID", max_length=100)
    host = models.CharField(max_length=200)
    started_at = models.DateTimeField("started (UTC)")
    duration_seconds = models.PositiveIntegerField("duration (s)")
    participants = models.PositiveIntegerField()
    source = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = "meeting summary record"
        constraints = [models.UniqueConstraint(fields=["partner", "meeting_id"], name="meeting_record_unique_id")]
        indexes = [models.Index(fields=["customer", "started_at"], name="meeting_record_customer_start")]

    def __str__(self):
        return self.meeting_id

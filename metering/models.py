"""What was used. The calendar lets metering count member-days in plain SQL on any database."""

from django.db import models

from billing.periods import whole_days_between


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

    customer = models.ForeignKey("partners.Customer", on_delete=models.PROTECT, related_name="usage_snapshots")
    date = models.DateField()
    users_count = models.PositiveIntegerField()
    storage_bytes = models.PositiveBigIntegerField()
    messages_count = models.PositiveBigIntegerField(null=True, blank=True)
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
    happens (RULES 3.5, 9.8): the whole days suspended are kept beside the instants so
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

    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, related_name="rmm_agents")
    agent_id = models.CharField(max_length=200)
    machine_name = models.CharField(max_length=200, blank=True)
    os = models.CharField(max_length=200, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True, help_text="informative only")

    class Meta:
        ordering = ["partner", "machine_name"]
        verbose_name = "RMM agent"
        constraints = [models.UniqueConstraint(fields=["partner", "agent_id"], name="agent_unique_id")]

    def __str__(self):
        return self.machine_name or self.agent_id


class AgentPresence(models.Model):
    """An agent in an organization/group from `present_from` through `present_until` (inclusive;
    open while blank), as detected by inventories (RULES 3.6: a change takes effect on the
    date it was detected, never earlier)."""

    agent = models.ForeignKey(RmmAgent, on_delete=models.CASCADE, related_name="presences")
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, related_name="+")
    organization = models.CharField(max_length=200)
    group = models.CharField(max_length=200, blank=True)
    present_from = models.DateField()
    present_until = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["agent", "-present_from"]
        indexes = [models.Index(fields=["partner", "organization", "present_from"])]
        constraints = [
            models.UniqueConstraint(
                fields=["agent"], condition=models.Q(present_until__isnull=True), name="one_open_presence"
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

"""factory_boy factories for the metering app: usage snapshots, suspensions, RMM agents.

They write history straight into the tables (no import rules), for building metering and rating
fixtures. Inventories that must obey billing-rules 3.7 (forward in time, effective on the as-of date) are
better built through `metering.services.inventory_apply`.
"""

from datetime import UTC, date, datetime

import factory

from metering.models import AgentPresence, RmmAgent, Suspension, UsageSnapshot
from partners.tests.factories import CustomerFactory, PartnerFactory


class UsageSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageSnapshot

    customer = factory.SubFactory(CustomerFactory)
    date = date(2026, 4, 1)
    users_count = 0
    storage_bytes = 0
    source = "factory"


class SuspensionFactory(factory.django.DjangoModelFactory):
    """A suspension; `save()` derives the whole days suspended (billing-rules 6.8)."""

    class Meta:
        model = Suspension

    customer = factory.SubFactory(CustomerFactory)
    suspended_at = datetime(2026, 4, 14, 17, 0, tzinfo=UTC)
    unsuspended_at = None
    source = "factory"


class RmmAgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RmmAgent

    partner = factory.SubFactory(PartnerFactory)
    agent_id = factory.Sequence(lambda n: f"agent-{n}")
    machine_name = factory.LazyAttribute(lambda a: f"pc-{a.agent_id}")


class AgentPresenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentPresence

    agent = factory.SubFactory(RmmAgentFactory)
    partner = factory.LazyAttribute(lambda p: p.agent.partner)
    organization = "ACME"
    group = ""
    present_from = date(2026, 4, 1)
    present_until = None


def acme_and_globex(**north):
    """The import tests' partners: acme with customers north (with `north`'s fields) and south; globex with east,
    a customer of another partner. Returns acme."""
    partner = PartnerFactory(slug="acme", name="Acme MSP")
    CustomerFactory(partner=partner, slug="north", name="North", **north)
    CustomerFactory(partner=partner, slug="south", name="South")
    CustomerFactory(partner=PartnerFactory(slug="globex", name="Globex"), slug="east", name="East")
    return partner

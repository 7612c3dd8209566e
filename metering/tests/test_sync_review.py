"""What a sync applies: which agents are billed, agents of no customer, and the removal
guard that holds a sync for staff to approve or reject (the admin's Review page).

The connector is replaced by an in-memory one here (the vendors' connectors are tested against their
loopback servers in test_connector_*.py; metering/tests/test_rmm_vendor_syncs.py runs whole syncs through them).
"""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from djmoney.money import Money

from billing.core.actor import Actor
from metering import sync as sync_module
from metering.connectors import ConnectorError, Inventory
from metering.models import AgentPresence, InventorySync, RmmIntegration, SyncRun, SyncStatus, UnitChangeNotice
from metering.notices import asset_units_on
from metering.selectors import unmatched_summary
from metering.services import AgentRow, inventory_apply
from metering.sync import ReviewError, inventory_sync, sync_run_approve, sync_run_reject
from partners.models import AuditLog, Method, Service
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="test")
MAY_1, MAY_10 = date(2026, 5, 1), date(2026, 5, 10)


class Fixed:
    """A connector that answers what the test says (or raises)."""

    def __init__(self):
        self.agents: list[AgentRow] | Exception = []

    def fetch_inventory(self, integration):
        if isinstance(self.agents, Exception):
            raise self.agents
        return Inventory(self.agents, source="https://rmm.example.com")


@pytest.fixture
def rmm(monkeypatch):
    connector = Fixed()
    monkeypatch.setattr(sync_module, "connector_for", lambda integration: connector)
    return connector


def org(name: str, n: int, *, start: int = 0, group: str = "", **flags) -> list[AgentRow]:
    return [AgentRow(f"{name}-{i}", f"PC-{name}-{i}", name, group, **flags) for i in range(start, start + n)]


@pytest.fixture
def keystone():
    """Keystone: Acme (organization ACME) and Birch (BIRCH), a per_asset service for each, emailed."""
    partner = PartnerFactory(slug="keystone", name="Keystone MSP")
    RmmIntegration.objects.create(partner=partner, kind="json", base_url="https://rmm.example.com", api_token="t")
    for slug, organization in (("acme", "ACME"), ("birch", "BIRCH")):
        customer = CustomerFactory(partner=partner, slug=slug, rmm_organization=organization)
        ServiceFactory(partner=partner, customer=customer, code=f"{slug}-agents", name=f"{slug.title()} agents",
                       method=Method.PER_ASSET, unit_price=Money("10.00", partner.currency),
                       start_date=date(2026, 3, 1), notification_emails=f"ops@{slug}.example")
    return partner


def recorded(partner, as_of: date, agents: list[AgentRow]) -> None:
    inventory_apply(partner=partner, as_of=as_of, agents={a.agent_id: a for a in agents}, actor=ACTOR)


def units(partner) -> dict[str, int]:
    services = list(Service.objects.filter(partner=partner).order_by("code"))
    got = asset_units_on(services=services, day=MAY_10)
    return {s.code: got[s.pk] for s in services}


def sync(partner, **options) -> SyncRun:
    return inventory_sync(partner=partner, as_of=MAY_10, actor=ACTOR, trigger="manual", **options)


# --- which agents are billed ------------------------------------------------------------------------------

def test_deleted_suspended_and_never_seen_agents_are_not_billed_offline_ones_are(rmm, keystone, committed):
    rmm.agents = (org("ACME", 4) + org("ACME", 2, start=4, deleted=True) + org("ACME", 1, start=6, suspended=True)
                  + org("ACME", 1, start=7, never_checked_in=True) + org("BIRCH", 3, online=False))
    with committed():
        run = sync(keystone)
    assert (run.status, run.agents_seen, run.agents_billed) == (SyncStatus.OK, 11, 7)
    assert run.skipped == {"deleted": 2, "suspended": 1, "never checked in": 1}
    assert units(keystone) == {"acme-agents": 4, "birch-agents": 3}

    integration = keystone.rmm_integration
    integration.count_offline, integration.count_suspended, integration.removal_guard_percent = False, True, 100
    integration.save()
    run = inventory_sync(partner=keystone, as_of=date(2026, 5, 11), actor=ACTOR, trigger="manual")
    assert run.skipped == {"deleted": 2, "never checked in": 1, "offline": 3}
    assert run.status == SyncStatus.HELD  # BIRCH's service would go to 0: held even with the share off
    assert "1 service(s) with units to 0" in run.review["reason"]


# --- agents of no customer ----------------------------------------------------------------------------------

def test_agents_that_match_no_customer_are_listed_on_the_run(rmm, keystone):
    ServiceFactory(partner=keystone, code="all-servers", name="Servers", method=Method.PER_ASSET,
                   rmm_filter="Unnamed/Servers", unit_price=Money("20.00", keystone.currency), start_date=MAY_1)
    rmm.agents = org("ACME", 2) + org("Unnamed", 12) + org("Unnamed", 2, start=12, group="Servers") + org("Lab", 1)
    run = sync(keystone)
    assert run.status == SyncStatus.OK
    assert run.unmatched == [
        {"organization": "Unnamed", "agents": 14, "billed_by": ["all-servers"]},
        {"organization": "Lab", "agents": 1, "billed_by": []},
    ]
    assert unmatched_summary(run.unmatched) == [
        "14 agent(s) in organization 'Unnamed' match no customer (billed by all-servers)",
        "1 agent(s) in organization 'Lab' match no customer (not billed)",
    ]


def test_a_customer_names_its_organization_by_reference_or_id_in_any_case(rmm, keystone):
    rmm.agents = [AgentRow(f"a{i}", f"PC{i}", "Acme Corporation", "", org_ref="acme", org_id="7") for i in range(3)]
    keystone.customers.filter(slug="acme").update(rmm_organization=" ACME ")
    keystone.customers.filter(slug="birch").update(rmm_organization="7")
    run = sync(keystone)
    assert run.unmatched == []
    assert units(keystone) == {"acme-agents": 3, "birch-agents": 3}


# --- the removal guard --------------------------------------------------------------------------------------

def test_a_half_drop_is_held_nothing_changes_nobody_is_emailed_then_approved(rmm, keystone, committed, client):
    recorded(keystone, MAY_1, org("ACME", 10) + org("BIRCH", 10))
    before = (list(AgentPresence.objects.values_list("pk", "present_until")), InventorySync.objects.count())
    rmm.agents = org("ACME", 5) + org("BIRCH", 5)  # half of each

    with committed():
        run = sync(keystone)

    assert run.status == SyncStatus.HELD
    assert run.review["reason"] == "it would remove 10 of 20 agents (50%, more than 20%)"
    assert [(s["code"], s["before"], s["after"]) for s in run.review["services"]] == [
        ("acme-agents", 10, 5), ("birch-agents", 10, 5)]
    assert {a["agent_id"] for a in run.review["removed_agents"]} == {f"ACME-{i}" for i in range(5, 10)} | {
        f"BIRCH-{i}" for i in range(5, 10)}
    assert (list(AgentPresence.objects.values_list("pk", "present_until")), InventorySync.objects.count()) == before
    assert units(keystone) == {"acme-agents": 10, "birch-agents": 10}
    assert mail.outbox == [] and not UnitChangeNotice.objects.exists()

    # the review page, then Approve (as a clerk who may start syncs)
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    page = client.get(reverse("admin:metering_syncrun_review", args=[run.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Held for review: it would remove 10 of 20 agents" in text and "BIRCH-9" in text
    assert "Approve and apply" in text
    with committed():
        response = client.post(reverse("admin:metering_syncrun_review", args=[run.pk]), {"approve": "1"})
    assert response.status_code == 302

    run.refresh_from_db()
    assert (run.status, run.removed, run.held_inventory) == (SyncStatus.OK, 10, None)
    assert run.reviewed_by.startswith(str(staff))
    assert units(keystone) == {"acme-agents": 5, "birch-agents": 5}
    assert sorted(m.to[0] for m in mail.outbox) == ["ops@acme.example", "ops@birch.example"]
    assert AuditLog.objects.filter(action="inventory.approve").count() == 1
    page = client.get(reverse("admin:metering_syncrun_change", args=[run.pk])).content.decode()
    assert "it would remove 10 of 20 agents" in page and "what it changed" in page  # why it was held stays
    with pytest.raises(ReviewError):
        sync_run_approve(run=run, actor=ACTOR)  # once


def test_a_held_sync_rejected_changes_nothing(rmm, keystone):
    recorded(keystone, MAY_1, org("ACME", 10) + org("BIRCH", 10))
    rmm.agents = org("ACME", 10)  # BIRCH gone: its service to 0
    run = sync(keystone)
    assert run.status == SyncStatus.HELD
    assert "1 service(s) with units to 0" in run.review["reason"]
    sync_run_reject(run=run, actor=ACTOR)
    run.refresh_from_db()
    assert (run.status, run.held_inventory) == (SyncStatus.REJECTED, None)
    assert units(keystone) == {"acme-agents": 10, "birch-agents": 10}
    assert AuditLog.objects.filter(action="inventory.reject").count() == 1


def test_an_empty_answer_is_held_not_applied(rmm, keystone):
    recorded(keystone, MAY_1, org("ACME", 3))
    rmm.agents = []
    run = sync(keystone)
    assert run.status == SyncStatus.HELD and run.review["removed"] == 3


def test_a_small_drop_under_the_share_applies(rmm, keystone):
    recorded(keystone, MAY_1, org("ACME", 10) + org("BIRCH", 10))
    rmm.agents = org("ACME", 8) + org("BIRCH", 10)  # 2 of 20: 10%
    assert sync(keystone).status == SyncStatus.OK
    assert units(keystone) == {"acme-agents": 8, "birch-agents": 10}


def test_a_dry_run_says_what_would_change_and_records_nothing(rmm, keystone):
    recorded(keystone, MAY_1, org("ACME", 10))
    rmm.agents = org("ACME", 9) + org("BIRCH", 2)
    run = sync(keystone, dry_run=True)
    assert run.pk is None and run.status == SyncStatus.RUNNING
    assert [(s["code"], s["before"], s["after"]) for s in run.review["services"]] == [
        ("acme-agents", 10, 9), ("birch-agents", 0, 2)]
    assert not run.review["held"]
    assert not SyncRun.objects.exists() and InventorySync.objects.count() == 1


def test_a_failed_fetch_applies_nothing(rmm, keystone):
    recorded(keystone, MAY_1, org("ACME", 10))
    rmm.agents = ConnectorError("https://rmm.example.com: HTTP 502 on page 2", transient=True)
    run = sync(keystone)
    assert (run.status, run.retryable, run.error) == (SyncStatus.FAILED, True,
                                                       "https://rmm.example.com: HTTP 502 on page 2")
    assert units(keystone)["acme-agents"] == 10


def test_only_staff_who_may_sync_can_decide(rmm, keystone, client):
    recorded(keystone, MAY_1, org("ACME", 10))
    rmm.agents = []
    run = sync(keystone)
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_syncrun"))
    client.force_login(viewer)
    page = client.get(reverse("admin:metering_syncrun_review", args=[run.pk]))
    assert page.status_code == 200 and "Approve and apply" not in page.content.decode()
    assert client.post(reverse("admin:metering_syncrun_review", args=[run.pk]), {"approve": "1"}).status_code == 403
    run.refresh_from_db()
    assert run.status == SyncStatus.HELD

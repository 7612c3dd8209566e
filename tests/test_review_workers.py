from datetime import UTC, date, datetime
import pytest, time_machine
from djmoney.money import Money
from billing.core.actor import Actor
from metering.models import AgentPresence, RmmIntegration, SyncRun
from metering.services import AgentRow, inventory_apply
from metering.tasks import sync_partner_inventory_task
from metering.tests.rmm_stub import agent
from partners.tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

def test_stale(rmm):
    partner = PartnerFactory(slug="keystone")
    RmmIntegration.objects.create(partner=partner, kind="json", base_url=rmm.url, api_token="tok", removal_guard_percent=100)
    inventory_apply(partner=partner, as_of=date(2026, 4, 1), actor=Actor(label="t"),
                    agents={f"a{i}": AgentRow(f"a{i}", f"PC{i}", "ACME", "") for i in range(3)})
    rmm.account("tok", [agent(f"a{i}") for i in range(5)])
    with time_machine.travel(datetime(2026, 5, 3, 9, tzinfo=UTC), tick=False):
        r = sync_partner_inventory_task.apply(args=(partner.pk, "2026-05-01"))
    print(r.result, list(SyncRun.objects.values_list("as_of", "status", "error")))
    print(sorted(AgentPresence.objects.values_list("agent__agent_id", "present_from", "present_until")))

"""Review: the RMM integrations against the vendors' own shapes (connectors, exports and presets).

Each fixture names the public source its shape is copied from. Tests marked xfail(strict=True) are findings: they
fail on the current code for the reason given and pass once the bug is fixed.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from djmoney.money import Money

from metering.models import AgentPresence, RmmAgent, SyncRun
from metering.tests.fake_datto import FakeDatto, datto_device, datto_site
from metering.tests.fake_kaseya_vsa import FakeKaseyaVsa, vsa_agent, vsa_org, vsa_view
from metering.tests.test_rmm_vendor_syncs import connect, units_on
from partners.models import Method, Service
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

USER, PAT = "billing-api", "pat-5f2d1c9e7b"

# The columns of VSAModule's Get-VSAAgent objects (the REST API's agent record, "Get Agent",
# help.vsa9.kaseya.com/help/Content/Modules/rest-api/31655.htm; Kaseya-Automation-Team/Kaseya-Automation-Team
# VSAModule/public/Get-VSAAgent.ps1, api/v1.0/assetmgmt/agents), as PowerShell 7's
# `Export-Csv -NoTypeInformation` writes them (every cell quoted): tests/data/rmm-exports/kaseya-vsa-agents.csv.
VSA_COLUMNS = ("AgentId", "AgentName", "Online", "OSType", "OSInfo", "OrgId", "MachineGroupId", "MachineGroup",
               "ComputerName", "IPv6Address", "IPAddress", "OperatingSystem", "OSVersion", "LastLoggedInUser",
               "LastRebootTime", "LastCheckInTime", "Country", "CurrentUser", "Contact", "TimeZone")


def vsa_export(agents: list[dict]) -> str:
    """The agent records as `Get-VSAAgent | Export-Csv -NoTypeInformation` (PowerShell 7) writes them."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(VSA_COLUMNS)
    for agent in agents:
        writer.writerow(["" if agent.get(c) is None else agent.get(c) for c in VSA_COLUMNS])
    return out.getvalue()


def per_asset(partner, code: str, rmm_filter: str = "", customer=None) -> Service:
    return ServiceFactory(partner=partner, customer=customer, code=code, method=Method.PER_ASSET,
                          rmm_filter=rmm_filter, unit_price=Money(Decimal("10.00"), partner.currency),
                          start_date=date(2026, 3, 1))


@pytest.fixture
def vsa():
    with FakeKaseyaVsa({USER: PAT}) as server:
        yield server


def birchwood(vsa):
    """Birchwood Dental, OrgRef birchwood: 3 workstations, 2 servers in the view "Servers only"."""
    org = vsa_org("birchwood", "Birchwood Dental", org_id=381746928105532)
    vsa.orgs.append(org)
    agents = [vsa_agent(org, "workstations") for _ in range(3)] + [vsa_agent(org, "servers") for _ in range(2)]
    vsa.agents += agents
    view = vsa_view("Servers only")
    vsa.views.append(view)
    vsa.members[view["ViewDefId"]] = [a["AgentId"] for a in agents if a["MachineGroup"].startswith("servers.")]
    return agents


# --- 1. A VSA export back-filling a night drops agents from view and name filters --------------------------------

def test_vsa_export_back_filling_a_night_keeps_view_and_name_filtered_units(cli, tmp_path, vsa):
    partner = PartnerFactory(slug="keystone", name="Keystone MSP")
    customer = CustomerFactory(partner=partner, slug="birchwood", name="Birchwood Dental",
                               rmm_organization="birchwood")  # the reference, as import-formats 9 asks
    per_asset(partner, "bw-all", customer=customer)
    per_asset(partner, "bw-servers", "view:Servers only")
    per_asset(partner, "bw-workstations", "Birchwood Dental/Workstations")
    agents = birchwood(vsa)
    connect(cli, tmp_path, partner, "kaseya-vsa", vsa.url, USER, PAT)
    with time_machine.travel("2026-05-08 02:00:00Z", tick=True):
        assert cli("sync_inventory", "--partner", "keystone").status == 0
    with time_machine.travel("2026-05-10 02:00:00Z", tick=True):
        assert cli("sync_inventory", "--partner", "keystone").status == 0
        before = units_on(partner, date(2026, 5, 9))
        assert before == {"bw-all": 5, "bw-servers": 2, "bw-workstations": 3}
        # the night of the 9th filled in from the same agents' export (nothing changed in VSA)
        path = tmp_path / "vsa-2026-05-09.csv"
        path.write_text(vsa_export(agents), encoding="utf-8")
        result = cli("import_csv", "rmm-assets", str(path), "--partner", "keystone", "--as-of", "2026-05-09")
        assert result.status == 0, result.err
    assert units_on(partner, date(2026, 5, 9)) == before


def test_vsa_export_with_an_integration_kept_to_a_view_keeps_its_agents(cli, tmp_path, vsa):
    partner = PartnerFactory(slug="keystone", name="Keystone MSP")
    customer = CustomerFactory(partner=partner, slug="birchwood", name="Birchwood Dental",
                               rmm_organization="birchwood")
    per_asset(partner, "bw-all", customer=customer)
    agents = birchwood(vsa)
    connect(cli, tmp_path, partner, "kaseya-vsa", vsa.url, USER, PAT, "--filter", "view:Servers only")
    with time_machine.travel("2026-05-08 02:00:00Z", tick=True):
        assert cli("sync_inventory", "--partner", "keystone").status == 0
        assert units_on(partner, date(2026, 5, 8)) == {"bw-all": 2}
    with time_machine.travel("2026-05-10 02:00:00Z", tick=True):
        path = tmp_path / "vsa-2026-05-09.csv"
        path.write_text(vsa_export(agents), encoding="utf-8")
        result = cli("import_csv", "rmm-assets", str(path), "--partner", "keystone", "--as-of", "2026-05-09")
        assert result.status == 0, result.err
    assert units_on(partner, date(2026, 5, 9)) == {"bw-all": 2}


# --- 2. $skip paging loses an agent when the list shifts under it with the same TotalRecords --------------------

def test_vsa_agent_present_throughout_is_not_lost_at_a_page_boundary(cli, tmp_path, vsa):
    # Paging as Kaseya-Automation-Team/Kaseya-Automation-Team VSAModule/private/Invoke-VSARestMethod.ps1 pages:
    # $top (at most 100) and $skip until TotalRecords; the envelope of the VSA help's "Sample Request and
    # Response" (TotalRecords, Result, ResponseCode, Status, Error).
    partner = PartnerFactory(slug="keystone", name="Keystone MSP")
    customer = CustomerFactory(partner=partner, slug="birchwood", name="Birchwood Dental",
                               rmm_organization="birchwood")
    per_asset(partner, "bw-all", customer=customer)
    org = vsa_org("birchwood", "Birchwood Dental", org_id=381746928105532)
    vsa.orgs.append(org)
    vsa.agents += [vsa_agent(org, "workstations") for _ in range(150)]
    at_boundary = vsa.agents[100]["AgentId"]  # the first agent of page 2
    connect(cli, tmp_path, partner, "kaseya-vsa", vsa.url, USER, PAT)

    uninstalled = vsa.agents[10]["AgentId"]
    installed = []

    def during_sync(skip: int) -> None:
        if skip == 100 and not installed:  # between page 1 and page 2: one uninstalled (read on page 1), one installed
            vsa.agents.remove(next(a for a in vsa.agents if a["AgentId"] == uninstalled))
            installed.append(vsa_agent(org, "workstations"))
            vsa.agents.append(installed[0])

    vsa.on_agents_page = during_sync
    with time_machine.travel("2026-05-10 02:00:00Z", tick=True):
        result = cli("sync_inventory", "--partner", "keystone")
    # the first read missed the agent at the boundary; the next two agree, and are the inventory
    assert result.status == 0, result.err
    billed = set(AgentPresence.objects.filter(present_until__isnull=True).values_list("agent__agent_id", flat=True))
    assert str(at_boundary) in billed and str(installed[0]["AgentId"]) in billed
    assert str(uninstalled) not in billed and len(billed) == 150



def test_datto_device_present_throughout_is_not_lost_at_a_page_boundary(cli, tmp_path):
    # Paging as aaronengels/DattoRMM functions/Get-DrmmAccountDevices.ps1 pages (/v2/account/devices?max=250&page=N,
    # until pageDetails.nextPageUrl is null); the fake answers the DevicesPage model (metering/tests/fake_datto.py).
    partner = PartnerFactory(slug="keystone", name="Keystone MSP")
    customer = CustomerFactory(partner=partner, slug="birchwood", name="Birchwood Dental",
                               rmm_organization="Birchwood Dental")
    per_asset(partner, "bw-all", customer=customer)
    with FakeDatto({"key-1": "secret-1"}) as datto:
        site = datto_site("Birchwood Dental")
        datto.devices += [datto_device(site) for _ in range(300)]
        at_boundary = datto.devices[250]["uid"]  # the first device of page 1
        connect(cli, tmp_path, partner, "datto", datto.url, "key-1", "secret-1")

        uninstalled = datto.devices[10]["uid"]
        installed = []

        def during_sync(page: int) -> None:
            if page == 1 and not installed:
                datto.devices.remove(next(d for d in datto.devices if d["uid"] == uninstalled))
                installed.append(datto_device(site))
                datto.devices.append(installed[0])

        datto.on_devices_page = during_sync
        with time_machine.travel("2026-05-10 02:00:00Z", tick=True):
            result = cli("sync_inventory", "--partner", "keystone")
    assert result.status == 0, result.err
    billed = set(AgentPresence.objects.filter(present_until__isnull=True).values_list("agent__agent_id", flat=True))
    assert at_boundary in billed and installed[0]["uid"] in billed
    assert uninstalled not in billed and len(billed) == 300


def test_an_inventory_that_moves_under_every_read_is_not_applied(cli, tmp_path, vsa):
    """Agents deleted and added during each of the three reads: no two agree, so the sync fails as a transient
    fault (tried again later), and nothing is applied."""
    partner = PartnerFactory(slug="keystone", name="Keystone MSP")
    customer = CustomerFactory(partner=partner, slug="birchwood", name="Birchwood Dental",
                               rmm_organization="birchwood")
    per_asset(partner, "bw-all", customer=customer)
    org = vsa_org("birchwood", "Birchwood Dental", org_id=381746928105532)
    vsa.orgs.append(org)
    vsa.agents += [vsa_agent(org, "workstations") for _ in range(150)]
    connect(cli, tmp_path, partner, "kaseya-vsa", vsa.url, USER, PAT)

    def during_sync(skip: int) -> None:
        if skip == 100:  # on every read: one read on page 1 uninstalled, one installed
            del vsa.agents[10]
            vsa.agents.append(vsa_agent(org, "workstations"))

    vsa.on_agents_page = during_sync
    with time_machine.travel("2026-05-10 02:00:00Z", tick=True):
        result = cli("sync_inventory", "--partner", "keystone")
    assert result.status != 0
    assert "the agents changed between each of 3 reads" in result.err and "try again later" in result.err
    assert not AgentPresence.objects.exists() and not RmmAgent.objects.exists()
    run = SyncRun.objects.get()
    assert run.retryable and run.inventory is None

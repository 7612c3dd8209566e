"""Whole syncs through the vendors' APIs: `rmm_connect`, then `sync_inventory` and the
nightly task against loopback servers that answer as each vendor documents its API (metering/tests/fake_*.py
name their sources), and what the partner is billed for.

Per vendor: 250 agents over three pages with the units per service right; a session or token expiring during
a sync; an error on page 2 (nothing applied, the run failed); agents moved between groups and between
organizations; agents the RMM reports deleted, suspended or never seen; sub-groups and a view (VSA); a 50%
drop held for review, then approved.
"""

from __future__ import annotations

from datetime import date

import pytest
import time_machine
from djmoney.money import Money

from billing.core.actor import Actor
from metering.models import RmmIntegration, SyncRun, SyncStatus
from metering.notices import asset_units_on
from metering.sync import sync_run_approve
from metering.tests.fake_datto import FakeDatto, datto_device, datto_site
from metering.tests.fake_kaseya_vsa import FakeKaseyaVsa, vsa_agent, vsa_org, vsa_view
from metering.tests.fake_ninjaone import FakeNinjaOne, ninja_device, ninja_location, ninja_organization
from partners.models import AuditLog, Method, Service
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 5, 10)
USER, PAT = "billing-api", "pat-5f2d1c9e7b"


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel("2026-05-10 02:00:00Z", tick=True):
        yield


def per_asset(partner, code: str, rmm_filter: str = "", customer=None) -> Service:
    return ServiceFactory(partner=partner, customer=customer, code=code, name=code.replace("-", " ").title(),
                          method=Method.PER_ASSET, rmm_filter=rmm_filter, start_date=date(2026, 3, 1),
                          unit_price=Money("10.00", partner.currency))


def units_on(partner, day: date) -> dict[str, int]:
    """Each per_asset service's units on `day`, by code."""
    services = list(Service.objects.filter(partner=partner, method=Method.PER_ASSET).order_by("code"))
    got = asset_units_on(services=services, day=day)
    return {s.code: got[s.pk] for s in services}


def units(partner) -> dict[str, int]:
    return units_on(partner, TODAY)


def connect(cli, tmp_path, partner, vendor: str, url: str, username: str, secret: str, *extra: str):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(secret + "\n")
    result = cli("rmm_connect", "--partner", partner.slug, "--vendor", vendor, "--url", url, "--username", username,
                 "--secret-file", str(secret_file), *extra)
    assert result.status == 0, result.err
    return result


def sync_now(cli, partner, *extra: str):
    return cli("sync_inventory", "--partner", partner.slug, *extra)


# --- Kaseya VSA 9 ---------------------------------------------------------------------------------------------

@pytest.fixture
def vsa():
    with FakeKaseyaVsa({USER: PAT}) as server:
        yield server


def birchwood_vsa(vsa, workstations: int = 200, lab: int = 30, servers: int = 20):
    """Birchwood Dental (OrgRef birchwood): `workstations` in workstations.birchwood, `lab` in
    lab.workstations.birchwood, `servers` in servers.birchwood, the servers in the view "Servers only"."""
    org = vsa_org("birchwood", "Birchwood Dental", org_id=35217233916592159121111312)
    vsa.orgs.append(org)
    agents = ([vsa_agent(org, "workstations") for _ in range(workstations)]
              + [vsa_agent(org, "lab.workstations") for _ in range(lab)]
              + [vsa_agent(org, "servers", os="Windows Server 2022") for _ in range(servers)])
    vsa.agents += agents
    view = vsa_view("Servers only")
    vsa.views.append(view)
    vsa.members[view["ViewDefId"]] = [a["AgentId"] for a in agents if a["MachineGroup"].startswith("servers.")]
    return org


@pytest.fixture
def keystone():
    """Keystone MSP: Birchwood named by its VSA reference, in another case, with services on the whole
    organization, its workstations (sub-groups included), the lab alone and the view."""
    partner = PartnerFactory(slug="keystone", name="Keystone MSP")
    birchwood = CustomerFactory(partner=partner, slug="birchwood", name="Birchwood Dental",
                                rmm_organization="BIRCHWOOD")
    per_asset(partner, "bw-all", customer=birchwood)
    per_asset(partner, "bw-workstations", "Birchwood Dental/Workstations")
    per_asset(partner, "bw-lab", "birchwood/workstations/lab")
    per_asset(partner, "bw-servers", "view:Servers only")
    return partner


def test_vsa_250_agents_over_three_pages_billed_per_organization_sub_group_and_view(cli, tmp_path, vsa, keystone):
    birchwood_vsa(vsa)
    connect(cli, tmp_path, keystone, "kaseya-vsa", vsa.url, USER, PAT)

    result = sync_now(cli, keystone)

    assert result.status == 0, result.err
    run = SyncRun.objects.get()
    assert (run.status, run.agents_seen, run.agents_billed, run.trigger) == (SyncStatus.OK, 250, 250, "command")
    # 100 + 100 + 50, read twice: until two reads agree (the pages are by position)
    assert sum(1 for r in vsa.requests if r.path == "/api/v1.0/assetmgmt/agents") == 2 * 3
    assert units(keystone) == {"bw-all": 250, "bw-lab": 30, "bw-servers": 20, "bw-workstations": 230}
    assert [line.split() for line in result.out.splitlines() if "bw-workstations" in line] == [
        ["bw-workstations", "0", "230", "+230"]]
    assert "applied as of 2026-05-10: 250 added, 0 moved, 0 removed" in result.out
    assert run.unmatched == []


def test_vsa_a_session_cut_short_mid_sync_logs_in_again_and_completes(cli, tmp_path, vsa, keystone):
    birchwood_vsa(vsa)
    vsa.requests_per_session = 3  # the server ends each session after three calls (VSA SaaS does)
    connect(cli, tmp_path, keystone, "kaseya-vsa", vsa.url, USER, PAT)
    assert sync_now(cli, keystone).status == 0
    assert vsa.logins() >= 2 and vsa.denied >= 1
    assert units(keystone)["bw-all"] == 250


def test_vsa_an_error_on_page_2_applies_nothing_and_fails_the_run(cli, tmp_path, vsa, keystone):
    birchwood_vsa(vsa)
    connect(cli, tmp_path, keystone, "kaseya-vsa", vsa.url, USER, PAT)
    assert sync_now(cli, keystone).status == 0
    vsa.agents = vsa.agents[:240]
    vsa.fail(lambda r: r.path == "/api/v1.0/assetmgmt/agents" and r.query.get("$skip") == "100", 500)

    result = sync_now(cli, keystone)

    assert result.status == 1 and "the sync failed" in result.err and "500" in result.err
    failed = SyncRun.objects.order_by("pk").last()
    assert (failed.status, failed.retryable, failed.added, failed.removed) == (SyncStatus.FAILED, True, 0, 0)
    assert units(keystone)["bw-all"] == 250


def test_vsa_a_short_read_is_refused(cli, tmp_path, vsa, keystone):
    birchwood_vsa(vsa)
    vsa.total_extra = 2  # TotalRecords announces 252, 250 are served
    connect(cli, tmp_path, keystone, "kaseya-vsa", vsa.url, USER, PAT)
    assert sync_now(cli, keystone).status == 1
    assert units(keystone)["bw-all"] == 0


def test_vsa_moves_between_groups_and_organizations_suspended_and_templates(cli, tmp_path, vsa, keystone):
    org = birchwood_vsa(vsa)
    acme = vsa_org("acme", "Acme Corp")
    vsa.orgs.append(acme)
    connect(cli, tmp_path, keystone, "kaseya-vsa", vsa.url, USER, PAT)
    assert sync_now(cli, keystone).status == 0

    # 10 workstations moved to the lab, 5 to Acme (another organization); 3 suspended; 2 new templates
    workstations = [a for a in vsa.agents if a["MachineGroup"] == "workstations.birchwood"]
    for agent in workstations[:10]:
        agent["MachineGroup"] = "lab.workstations.birchwood"
    for agent in workstations[10:15]:
        agent.update(OrgId=acme["OrgId"], MachineGroup="root.acme")
    for agent in workstations[15:18]:
        agent["Online"] = 198
    vsa.agents += [vsa_agent(org, "workstations", online=199, last_check_in=None) for _ in range(2)]

    result = sync_now(cli, keystone)

    assert result.status == 0, result.err
    run = SyncRun.objects.order_by("pk").last()
    assert run.skipped == {"suspended": 3, "never checked in": 2}
    assert (run.moved, run.removed) == (15, 3)
    assert units(keystone) == {"bw-all": 242, "bw-lab": 40, "bw-servers": 20, "bw-workstations": 222}
    assert run.unmatched == [{"organization": "Acme Corp", "agents": 5, "billed_by": []}]
    assert "5 agent(s) in organization 'Acme Corp' match no customer (not billed)" in result.out


def test_vsa_a_half_drop_is_held_then_approved(cli, tmp_path, vsa, keystone, committed):
    birchwood_vsa(vsa)
    connect(cli, tmp_path, keystone, "kaseya-vsa", vsa.url, USER, PAT)
    assert sync_now(cli, keystone).status == 0
    vsa.agents = vsa.agents[:125]  # the API user's scope lost half of the machines

    dry = sync_now(cli, keystone, "--dry-run")
    assert dry.status == 0 and "would be held for review" in dry.out

    held = sync_now(cli, keystone)

    assert held.status == 3  # held for review
    assert "held for review: it would remove 125 of 250 agents (50%, more than 20%)" in held.out
    run = SyncRun.objects.order_by("pk").last()
    assert run.status == SyncStatus.HELD
    assert units(keystone)["bw-all"] == 250
    with committed():
        sync_run_approve(run=run, actor=_actor())
    assert units(keystone)["bw-all"] == 125


def test_vsa_a_wrong_token_fails_and_says_what_to_check(cli, tmp_path, vsa, keystone):
    connect(cli, tmp_path, keystone, "kaseya-vsa", vsa.url, USER, "wrong-pat")
    result = sync_now(cli, keystone)
    assert result.status == 1 and "401" in result.err


def test_rmm_connect_updates_and_audits_without_the_secret(cli, tmp_path, vsa, keystone):
    connect(cli, tmp_path, keystone, "kaseya-vsa", vsa.url, USER, PAT, "--guard-percent", "35",
            "--bill-offline", "no", "--filter", "birchwood")
    connect(cli, tmp_path, keystone, "kaseya-vsa", vsa.url, USER, "pat-rotated")
    integration = RmmIntegration.objects.get(partner=keystone)
    assert (integration.api_token, integration.removal_guard_percent, integration.count_offline,
            integration.inventory_filter) == ("pat-rotated", 35, False, "birchwood")
    audit = list(AuditLog.objects.filter(action__startswith="rmm_integration.").order_by("pk"))
    assert [a.action for a in audit] == ["rmm_integration.create", "rmm_integration.update"]
    assert PAT not in str([(a.before, a.after) for a in audit]) and "pat-rotated" not in str(audit[1].after)

    bad = cli("rmm_connect", "--partner", keystone.slug, "--vendor", "datto", "--url", "ftp://x",
              "--secret-file", str(tmp_path / "secret.txt"))
    assert bad.status == 1 and "base_url" in bad.err
    assert cli("rmm_connect", "--partner", "nobody", "--vendor", "json", "--url", "https://x.example",
               "--secret-file", str(tmp_path / "secret.txt")).status == 1


def _actor():
    return Actor(label="test reviewer")





# --- Datto RMM API v2 -----------------------------------------------------------------------------------------
KEY, SECRET = "R7UH3LQG0B6D2K8T", "Q2W3E4R5T6Y7U8I9O0P1A2S3D4F5G6H7"


@pytest.fixture
def datto():
    with FakeDatto({KEY: SECRET}) as server:
        yield server


@pytest.fixture
def ridgeline():
    """Ridgeline: Cedar Valley named by its Datto site name, Bluestone by its site uid (set once known)."""
    partner = PartnerFactory(slug="ridgeline", name="Ridgeline IT")
    cedar = CustomerFactory(partner=partner, slug="cedar", name="Cedar Valley", rmm_organization="cedar valley clinic")
    bluestone = CustomerFactory(partner=partner, slug="bluestone", name="Bluestone Engineering")
    per_asset(partner, "cedar-agents", customer=cedar)
    per_asset(partner, "bluestone-agents", customer=bluestone)
    return partner


def datto_sites(datto, ridgeline):
    cedar, bluestone = datto_site("Cedar Valley Clinic"), datto_site("Bluestone Engineering")
    ridgeline.customers.filter(slug="bluestone").update(rmm_organization=bluestone["uid"])
    datto.devices += [datto_device(cedar) for _ in range(180)] + [datto_device(bluestone) for _ in range(120)]
    return cedar, bluestone


def test_datto_devices_over_two_pages_deleted_and_suspended_left_out(cli, tmp_path, datto, ridgeline):
    cedar, bluestone = datto_sites(datto, ridgeline)
    datto.devices += [datto_device(cedar, deleted=True) for _ in range(4)]
    datto.devices += [datto_device(bluestone, suspended=True), datto_device(bluestone, online=False)]
    connect(cli, tmp_path, ridgeline, "datto", datto.url, KEY, SECRET)

    result = sync_now(cli, ridgeline)

    assert result.status == 0, result.err
    run = SyncRun.objects.get()
    assert (run.agents_seen, run.agents_billed, run.skipped) == (306, 301, {"deleted": 4, "suspended": 1})
    # 250 a page at most, read twice: until two reads agree (the pages are numbered)
    assert sum(1 for r in datto.requests if r.path == "/api/v2/account/devices") == 2 * 2
    assert units(ridgeline) == {"bluestone-agents": 121, "cedar-agents": 180}


def test_datto_a_token_expiring_mid_sync_is_renewed(cli, tmp_path, datto, ridgeline):
    datto_sites(datto, ridgeline)
    datto.requests_per_token = 1  # the token dies after one page
    connect(cli, tmp_path, ridgeline, "datto", datto.url, KEY, SECRET)
    assert sync_now(cli, ridgeline).status == 0
    assert datto.token_requests() >= 2
    assert units(ridgeline) == {"bluestone-agents": 120, "cedar-agents": 180}


def test_datto_an_error_on_page_2_applies_nothing(cli, tmp_path, datto, ridgeline):
    datto_sites(datto, ridgeline)
    connect(cli, tmp_path, ridgeline, "datto", datto.url, KEY, SECRET)
    assert sync_now(cli, ridgeline).status == 0
    datto.devices = datto.devices[:260]
    datto.fail(lambda r: r.path == "/api/v2/account/devices" and r.query.get("page") == "1", 503)
    result = sync_now(cli, ridgeline)
    assert result.status == 1 and "503" in result.err
    assert units(ridgeline) == {"bluestone-agents": 120, "cedar-agents": 180}


def test_datto_devices_moved_between_sites_and_a_half_drop_held_then_approved(cli, tmp_path, datto, ridgeline,
                                                                               committed):
    _, bluestone = datto_sites(datto, ridgeline)
    connect(cli, tmp_path, ridgeline, "datto", datto.url, KEY, SECRET)
    assert sync_now(cli, ridgeline).status == 0
    for device in datto.devices[:10]:  # ten Cedar Valley devices moved to Bluestone's site
        device.update(siteId=bluestone["id"], siteName=bluestone["name"], siteUid=bluestone["uid"])
    assert sync_now(cli, ridgeline).status == 0
    assert SyncRun.objects.order_by("pk").last().moved == 10
    assert units(ridgeline) == {"bluestone-agents": 130, "cedar-agents": 170}

    datto.devices = datto.devices[:150]  # the ten moved and 140 of Cedar Valley's: half of them
    assert sync_now(cli, ridgeline).status == 3
    run = SyncRun.objects.order_by("pk").last()
    assert run.status == SyncStatus.HELD and units(ridgeline)["bluestone-agents"] == 130
    with committed():
        sync_run_approve(run=run, actor=_actor())
    assert units(ridgeline) == {"bluestone-agents": 10, "cedar-agents": 140}


# --- NinjaOne -------------------------------------------------------------------------------------------------
CLIENT_ID, CLIENT_SECRET = "Yb5nR2xq-client", "s3cr3t-Ninja-0ne"


@pytest.fixture
def ninja():
    with FakeNinjaOne({CLIENT_ID: CLIENT_SECRET}) as server:
        yield server


@pytest.fixture
def summit():
    """Summit: Alpine named by its NinjaOne organization name; a service on Alpine's "Chalet" location."""
    partner = PartnerFactory(slug="summit", name="Summit Cloud Partners")
    alpine = CustomerFactory(partner=partner, slug="alpine", name="Alpine Ski House",
                             rmm_organization="Alpine Ski House")
    per_asset(partner, "alpine-agents", customer=alpine)
    per_asset(partner, "alpine-chalet", "alpine ski house/chalet")
    return partner


def ninja_alpine(ninja, lodge: int = 200, chalet: int = 50):
    org = ninja_organization("Alpine Ski House")
    lodge_location, chalet_location = ninja_location(org, "Lodge"), ninja_location(org, "Chalet")
    ninja.organizations.append(org)
    ninja.locations += [lodge_location, chalet_location]
    ninja.devices += ([ninja_device(org, lodge_location) for _ in range(lodge)]
                      + [ninja_device(org, chalet_location) for _ in range(chalet)])
    return org, lodge_location, chalet_location


def test_ninjaone_250_devices_with_organization_and_location_names(cli, tmp_path, ninja, summit):
    org, _, chalet = ninja_alpine(ninja)
    ninja.devices += [ninja_device(org, chalet, approval="PENDING", last_contact=None) for _ in range(3)]
    connect(cli, tmp_path, summit, "ninjaone", ninja.url, CLIENT_ID, CLIENT_SECRET)

    result = sync_now(cli, summit)

    assert result.status == 0, result.err
    run = SyncRun.objects.get()
    assert (run.agents_seen, run.agents_billed, run.skipped) == (253, 250, {"never checked in": 3})
    assert units(summit) == {"alpine-agents": 250, "alpine-chalet": 50}


def test_ninjaone_a_token_expiring_mid_sync_and_an_error_on_page_2(cli, tmp_path, ninja, summit):
    ninja_alpine(ninja)
    ninja.requests_per_token = 2
    connect(cli, tmp_path, summit, "ninjaone", ninja.url, CLIENT_ID, CLIENT_SECRET)
    assert sync_now(cli, summit).status == 0
    assert ninja.token_requests() >= 2

    pages = []
    ninja.on_devices_page = pages.append
    ninja.fail(lambda r: r.path == "/v2/devices" and r.query.get("after") not in (None, ""), 500, times=10)
    result = sync_now(cli, summit)
    assert result.status == 1 and "500" in result.err
    assert units(summit) == {"alpine-agents": 250, "alpine-chalet": 50}


def test_ninjaone_devices_moved_between_locations_and_organizations_and_a_drop_held(cli, tmp_path, ninja, summit,
                                                                                   committed):
    _, lodge, chalet = ninja_alpine(ninja)
    other = ninja_organization("Fourth Coffee")
    ninja.organizations.append(other)
    connect(cli, tmp_path, summit, "ninjaone", ninja.url, CLIENT_ID, CLIENT_SECRET)
    assert sync_now(cli, summit).status == 0
    for device in ninja.devices[:20]:
        device["locationId"] = chalet["id"]  # lodge -> chalet
    for device in ninja.devices[20:25]:
        device.update(organizationId=other["id"], locationId=None)
    result = sync_now(cli, summit)
    assert result.status == 0, result.err
    assert units(summit) == {"alpine-agents": 245, "alpine-chalet": 70}
    assert SyncRun.objects.order_by("pk").last().unmatched == [
        {"organization": "Fourth Coffee", "agents": 5, "billed_by": []}]

    lodge_left = [d for d in ninja.devices if d["locationId"] == lodge["id"]][60:]
    ninja.devices = [d for d in ninja.devices if d["locationId"] is None] + lodge_left  # 130 of 250 gone
    assert sync_now(cli, summit).status == 3
    run = SyncRun.objects.order_by("pk").last()
    assert run.review["reason"] == ("it would remove 130 of 250 agents (52%, more than 20%); it would take 1 "
                                    "service(s) with units to 0")
    assert units(summit) == {"alpine-agents": 245, "alpine-chalet": 70}
    with committed():
        sync_run_approve(run=run, actor=_actor())
    assert units(summit) == {"alpine-agents": 115, "alpine-chalet": 0}

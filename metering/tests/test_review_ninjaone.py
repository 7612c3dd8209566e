"""Review of the NinjaOne integration by an outside tester: the API connector, the sync path and the device report
import, against answers shaped after NinjaOne's own published documents, not after what our code expects.

Sources of every shape below (billing-rules 3.7 and 9.5 say what the product must do with them):
- NinjaOne's OpenAPI document "NinjaOne Public API 2.0", as shipped in the maintained PowerShell client
  (repository homotechsual/NinjaOne, ninjaOne-API-core-resources.yaml, the version before commit 5a8ef3a):
  `GET /v2/devices` (df, pageSize, after = "Last Node ID from previous page") answers an array of
  NodeWithDetailedReferences: id, uid, assignedOwnerUid, parentDeviceId, organizationId, locationId, nodeClass
  (WINDOWS_SERVER, WINDOWS_WORKSTATION, ..., VMWARE_VM_GUEST, CLOUD_MONITOR_TARGET, NMS_SWITCH ... NMS_PRINTER ...,
  UNMANAGED_DEVICE, MANAGED_DEVICE), nodeRoleId, rolePolicyId, policyId, approvalStatus (PENDING, STAGED,
  APPROVED, DECOMMISSIONED), offline, displayName, systemName, dnsName, netbiosName, created / lastContact /
  lastUpdate (numbers, epoch seconds, format double), userData, tags, maintenance, references.
  `GET /v2/organizations` (pageSize, after = "Last Organization Identifier from previous page", of) answers an
  array of Organization: name, description, userData, nodeApprovalMode (AUTOMATIC, MANUAL, REJECT), id.
  `GET /v2/locations` (pageSize, after = "Last Location Identifier ...") answers "a flat list of all locations
  for all organizations": LocationWithOrganizationRef name, address, description, userData, id, organizationId.
- The token: the same client's Connect-NinjaOne (Source/Public/PSModule/Connect/Connect-NinjaOne.ps1): POST
  {instance}/ws/oauth/token, form body grant_type=client_credentials, client_id, client_secret, scope; the
  answer's access_token sent as Bearer and fetched again after expires_in (Update-NinjaOneToken). Instances
  (Source/Initialisation.ps1): https://app.ninjarmm.com (us), https://us2.ninjarmm.com, https://eu.ninjarmm.com,
  https://ca.ninjarmm.com, https://oc.ninjarmm.com, https://fed.ninjarmm.com.
- The device report: repository walker-AU/NinjaOne-Scripts, Reports/Get-NinjaDeviceReport/Get-NinjaDeviceReport.ps1:
  organizations, locations and devices read with pageSize/after, each device exported as
  `created, systemName, nodeClass, organizationName, locationName, approvalStatus, offline, lastContact`
  (DateTimes from epoch seconds), sorted by organizationName and systemName, `Export-Csv -NoTypeInformation`.
  The script's API base is `https://$Region.ninjarmm.com/api/v2`.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from datetime import date

import pytest
import time_machine
from djmoney.money import Money

from metering.connectors import ConnectorError, NinjaOneConnector
from metering.models import AgentPresence, RmmAgent, RmmIntegration, SyncRun, SyncStatus
from metering.notices import asset_units_on
from metering.tests.fake_server import Clock, FakeServer, Reply, Request
from partners.models import Method, Service
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory
from tests.clerk import bill, lines

pytestmark = pytest.mark.django_db

TODAY = date(2026, 5, 10)
CLIENT_ID, CLIENT_SECRET = "k3Fq9ZaB-ninja-client", "Nq8-secret-0f-the-client-app"
EPOCH_MAY_9 = 1778320800.25  # 2026-05-09T10:00:00.25Z, lastContact as NinjaOne writes it (a double)


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel("2026-05-10 02:00:00Z", tick=True):
        yield


# --- a NinjaOne instance, as its documents describe it ------------------------------------------------------------
_ids = itertools.count(1001)


class NinjaOneDocs(FakeServer):
    """NinjaOne public API 2.0 as documented (the module docstring names each source). Every list is sorted by id
    and `after` is the last id of the previous page (exclusive), as the parameter's description says."""

    def __init__(self, *, clock=None, token_seconds: int = 3600):
        super().__init__(**({"clock": clock} if clock else {}))
        self.organizations: list[dict] = []
        self.locations: list[dict] = []
        self.devices: list[dict] = []
        self.tokens: dict[str, float] = {}
        self.token_seconds = token_seconds
        self.before_devices_page = None

    # records ------------------------------------------------------------------------------------------------------
    def organization(self, name: str, *, approval_mode: str = "AUTOMATIC") -> dict:
        org = {"name": name, "description": "", "userData": {}, "nodeApprovalMode": approval_mode, "id": next(_ids)}
        self.organizations.append(org)
        return org

    def location(self, org: dict, name: str) -> dict:
        loc = {"name": name, "address": "", "description": "", "userData": {}, "id": next(_ids),
               "organizationId": org["id"]}
        self.locations.append(loc)
        return loc

    def device(self, org: dict, loc: dict | None, system_name: str | None, *, node_class="WINDOWS_WORKSTATION",
               approval="APPROVED", offline=False, last_contact: float | None = EPOCH_MAY_9, parent=None,
               display_name: str | None = None, dns_name: str | None = None) -> dict:
        device_id = next(_ids)
        record = {
            "id": device_id, "uid": str(uuid.uuid4()), "assignedOwnerUid": None, "parentDeviceId": parent,
            "organizationId": org["id"], "locationId": loc["id"] if loc else None, "nodeClass": node_class,
            "nodeRoleId": 1, "rolePolicyId": 2, "policyId": None, "approvalStatus": approval, "offline": offline,
            "displayName": display_name if display_name is not None else (system_name or f"node {device_id}"),
            "systemName": system_name, "dnsName": dns_name, "netbiosName": system_name,
            "created": 1735689600.5, "lastContact": last_contact, "lastUpdate": last_contact, "userData": {},
            "tags": [], "maintenance": None, "references": None,
        }
        self.devices.append(record)
        return record

    # HTTP ---------------------------------------------------------------------------------------------------------
    def answer(self, request: Request) -> Reply:
        if request.path == "/ws/oauth/token" and request.method == "POST":
            form = request.form
            if (form.get("grant_type") != "client_credentials" or form.get("client_id") != CLIENT_ID
                    or form.get("client_secret") != CLIENT_SECRET):
                return Reply(401, {"error": "invalid_client"})
            token = secrets.token_urlsafe(24)
            self.tokens[token] = self.clock() + self.token_seconds
            return Reply(200, {"access_token": token, "expires_in": self.token_seconds,
                               "scope": form.get("scope", ""), "token_type": "bearer"})
        lists = {"/v2/devices": self.devices, "/v2/organizations": self.organizations,
                 "/v2/locations": self.locations}
        if request.method != "GET" or request.path not in lists:
            return Reply(404, b"<html><body>Not Found</body></html>")
        expires = self.tokens.get(request.bearer or "")
        if expires is None or self.clock() >= expires:
            return Reply(401, {"error": "invalid_token"})
        if request.path == "/v2/devices" and self.before_devices_page:
            self.before_devices_page(request)
        after = int(request.query["after"]) if request.query.get("after") else None
        size = int(request.query.get("pageSize") or 1000)
        rows = sorted(lists[request.path], key=lambda r: r["id"])
        return Reply(200, [r for r in rows if after is None or r["id"] > after][:size])

    def list_requests(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


@pytest.fixture
def ninja():
    with NinjaOneDocs() as server:
        yield server


def integration(server, **fields) -> RmmIntegration:
    return RmmIntegration(kind="ninjaone", base_url=server.url, username=CLIENT_ID, api_token=CLIENT_SECRET, **fields)


def fetch(server, **options):
    return NinjaOneConnector(timeout=5, **options).fetch_inventory(integration(server))


def per_asset(partner, code: str, rmm_filter: str = "", customer=None) -> Service:
    return ServiceFactory(partner=partner, customer=customer, code=code, name=code, method=Method.PER_ASSET,
                          rmm_filter=rmm_filter, start_date=date(2026, 3, 1), unit_price=Money("10.00", "USD"))


def units(partner, day: date = TODAY) -> dict[str, int]:
    services = list(Service.objects.filter(partner=partner, method=Method.PER_ASSET).order_by("code"))
    got = asset_units_on(services=services, day=day)
    return {s.code: got[s.pk] for s in services}


def connect(cli, tmp_path, partner, url: str, *extra: str, secret: str = CLIENT_SECRET):
    secret_file = tmp_path / "ninja-secret.txt"
    secret_file.write_text(secret + "\n")
    return cli("rmm_connect", "--partner", partner.slug, "--vendor", "ninjaone", "--url", url, "--username",
               CLIENT_ID, "--secret-file", str(secret_file), *extra)


def sync(cli, partner, *extra: str):
    return cli("sync_inventory", "--partner", partner.slug, *extra)


@pytest.fixture
def alps(cli, tmp_path, ninja):
    """Alps IT (USD), connected to the NinjaOne instance: Alpine Ski House named by its NinjaOne organization name
    in another case and with spaces, Zürich Dental by its NinjaOne organization id; a partner-level service over
    every agent and one on Alpine's "Chalet" location."""
    partner = PartnerFactory(slug="alps", name="Alps IT")
    alpine_org = ninja.organization("Alpine Ski House")
    zurich_org = ninja.organization("Zürich Dental")
    alpine = CustomerFactory(partner=partner, slug="alpine", name="Alpine", rmm_organization="  ALPINE SKI house ")
    zurich = CustomerFactory(partner=partner, slug="zurich", name="Zurich", rmm_organization=str(zurich_org["id"]))
    per_asset(partner, "all")
    per_asset(partner, "alpine", customer=alpine)
    per_asset(partner, "zurich", customer=zurich)
    per_asset(partner, "chalet", "Alpine Ski House/Chalet")
    result = connect(cli, tmp_path, partner, ninja.url)
    assert result.status == 0, result.err
    partner.orgs = {"alpine": alpine_org, "zurich": zurich_org}
    return partner


def fill(ninja, partner, lodge: int = 3, chalet: int = 2, zurich: int = 2):
    alpine, zurich_org = partner.orgs["alpine"], partner.orgs["zurich"]
    lodge_loc, chalet_loc = ninja.location(alpine, "Lodge"), ninja.location(alpine, "Chalet")
    clinic = ninja.location(zurich_org, "Praxis")
    for n in range(lodge):
        ninja.device(alpine, lodge_loc, f"LODGE-{n:02}")
    for n in range(chalet):
        ninja.device(alpine, chalet_loc, f"CHALET-{n:02}")
    for n in range(zurich):
        ninja.device(zurich_org, clinic, f"ZD-{n:02}")
    return lodge_loc, chalet_loc, clinic


# --- what holds -------------------------------------------------------------------------------------------------
def test_organizations_locations_and_devices_are_all_paged_and_every_device_counted_once(ninja):
    """billing-rules 3.7 (the whole inventory) and rmm.md 2 (complete or nothing): with a page of 2, the
    organizations (3), the locations (3) and the devices (7) are each read with pageSize/after until an empty
    page, and each device is one agent with its organization and location names."""
    orgs = [ninja.organization(name) for name in ("Alpine Ski House", "Zürich Dental", "Harbor Freight")]
    locs = [ninja.location(org, name) for org, name in zip(orgs, ("Lodge", "Praxis", "Dock"), strict=True)]
    devices = [ninja.device(orgs[n % 3], locs[n % 3], f"PC-{n}") for n in range(7)]

    rows = fetch(ninja, page_size=2)

    assert sorted(r.agent_id for r in rows) == sorted(str(d["id"]) for d in devices)
    assert len(rows) == 7
    assert {(r.machine_name, r.organization, r.org_id, r.group) for r in rows if r.machine_name == "PC-4"} == {
        ("PC-4", "Zürich Dental", str(orgs[1]["id"]), "Praxis")}
    # 3 orgs: pages of 2, 1, then empty; same for locations; 7 devices: 2, 2, 2, 1, empty
    assert (ninja.list_requests("/v2/organizations"), ninja.list_requests("/v2/locations"),
            ninja.list_requests("/v2/devices")) == (3, 3, 5)
    last_org = sorted(o["id"] for o in orgs)[1]
    assert f"/v2/organizations?pageSize=2&after={last_org}" in ninja.paths("/v2/organizations")


def test_sync_matches_customers_by_organization_name_or_id_and_bills_by_location(cli, ninja, alps):
    """billing-rules 3.7 and rmm.md 3: a customer's RMM organization is NinjaOne's organization name (any case,
    trimmed) or its id; `ORG/GROUP` takes a location. Pending devices are not billed and decommissioned ones
    never are (decision (ak)); an offline device is billed."""
    lodge, chalet, _ = fill(ninja, alps)
    alpine = alps.orgs["alpine"]
    ninja.device(alpine, lodge, "LODGE-OFF", offline=True, last_contact=1777000000.0)
    ninja.device(alpine, chalet, "CHALET-NEW", approval="PENDING", last_contact=None)
    ninja.device(alpine, chalet, "CHALET-OLD", approval="DECOMMISSIONED", offline=True)

    result = sync(cli, alps)

    assert result.status == 0, result.err
    run = SyncRun.objects.get()
    assert (run.status, run.agents_seen, run.agents_billed) == (SyncStatus.OK, 10, 8)
    assert run.skipped == {"deleted": 1, "never checked in": 1}
    assert units(alps) == {"all": 8, "alpine": 6, "chalet": 2, "zurich": 2}
    assert run.unmatched == []


def test_a_token_expiring_mid_sync_is_renewed_and_every_device_read_once():
    """rmm.md (NinjaOne): the token is renewed when it expires (expires_in), here between two pages of devices;
    every device is still read once, none twice."""
    clock = Clock()
    with NinjaOneDocs(clock=clock) as ninja:
        org = ninja.organization("Alpine Ski House")
        devices = [ninja.device(org, None, f"PC-{n:03}") for n in range(25)]

        def later(request):
            if request.query.get("after"):
                clock.offset += 3600  # each next page an hour later: every page needs a fresh token
        ninja.before_devices_page = later
        rows = NinjaOneConnector(timeout=5, page_size=10, clock=clock).fetch_inventory(integration(ninja))

    assert sorted(r.agent_id for r in rows) == sorted(str(d["id"]) for d in devices)
    tokens = [r for r in ninja.requests if r.path == "/ws/oauth/token"]
    assert len(tokens) >= 3
    assert all(t.form["scope"] == "monitoring" and t.form["grant_type"] == "client_credentials" for t in tokens)


def test_a_429_on_page_2_applies_nothing_keeps_the_units_and_is_retried(cli, ninja, alps):
    """billing-rules 3.7 and rmm.md 2: a sync applies an inventory only when complete. A 429 (rate limit, with
    Retry-After) on the second page of devices fails the run as transient (the nightly job tries again); the
    units of the previous inventory stay, nothing is half-written."""
    fill(ninja, alps)
    assert sync(cli, alps).status == 0  # the devices' second page is the empty one that ends the list
    before = (AgentPresence.objects.count(), RmmAgent.objects.count())
    for _ in range(3):
        ninja.device(alps.orgs["zurich"], None, "ZD-NEW")
    ninja.fail(lambda r: r.path == "/v2/devices" and bool(r.query.get("after")), 429,
               {"error": "too_many_requests"}, headers={"Retry-After": "30"})

    with time_machine.travel("2026-05-11 02:00:00Z", tick=True):
        result = sync(cli, alps)

    assert result.status == 1
    assert "HTTP 429" in result.err
    run = SyncRun.objects.order_by("pk").last()
    assert (run.status, run.retryable) == (SyncStatus.FAILED, True)
    assert (AgentPresence.objects.count(), RmmAgent.objects.count()) == before
    assert units(alps, date(2026, 5, 11)) == {"all": 7, "alpine": 5, "chalet": 2, "zurich": 2}


def test_a_bad_device_on_the_last_page_writes_nothing_and_names_the_device(cli, ninja, alps):
    """rmm.md 2 (complete or nothing) and the clerk's error: a device whose lastContact is not a number fails the
    whole sync, naming the page, the position and the device id; nothing is written."""
    fill(ninja, alps)
    bad = ninja.device(alps.orgs["alpine"], None, "BROKEN")
    bad["lastContact"] = "yesterday"

    result = sync(cli, alps)

    assert result.status == 1
    assert f"(id {bad['id']}): lastContact: not an epoch timestamp ('yesterday')" in result.err
    assert (RmmAgent.objects.count(), AgentPresence.objects.count()) == (0, 0)
    assert SyncRun.objects.get().status == SyncStatus.FAILED


def test_an_organization_renamed_in_ninjaone_is_held_when_named_by_name_and_kept_when_named_by_id(cli, ninja, alps):
    """rmm.md 3 and 5, billing-rules decision (ag): Alpine is named by its NinjaOne name, Zürich Dental by its id.
    Renaming Alpine's organization in NinjaOne moves its 5 agents out of the customer's reach: that would take
    the `alpine` and `chalet` services to 0, so the sync is held for review and the units stay. Renaming Zürich
    Dental changes nothing of what it is billed (the id is the same)."""
    fill(ninja, alps)
    assert sync(cli, alps).status == 0
    alps.orgs["zurich"]["name"] = "Zahnarztpraxis Zürich AG"
    with time_machine.travel("2026-05-11 02:00:00Z", tick=True):
        assert sync(cli, alps).status == 0
    assert units(alps, date(2026, 5, 11)) == {"all": 7, "alpine": 5, "chalet": 2, "zurich": 2}

    alps.orgs["alpine"]["name"] = "Alpine Resorts Group"
    with time_machine.travel("2026-05-12 02:00:00Z", tick=True):
        result = sync(cli, alps)
    assert result.status == 3, result.err
    run = SyncRun.objects.order_by("pk").last()
    assert run.status == SyncStatus.HELD
    assert "it would take 2 service(s) with units to 0" in run.review["reason"]
    assert units(alps, date(2026, 5, 12)) == {"all": 7, "alpine": 5, "chalet": 2, "zurich": 2}


@pytest.mark.parametrize("suffix", ["/api/v2", "/ws"])
def test_a_base_url_copied_with_an_api_path_says_to_check_the_base_url(ninja, suffix):
    """rmm.md 1: the base URL is the instance (https://eu.ninjarmm.com ...). The device report script's
    `https://$Region.ninjarmm.com/api/v2`, or an instance with `/ws`, gets a 404 on the token request, and the
    message says to check the base URL."""
    with pytest.raises(ConnectorError, match=r"HTTP 404 on the token request: check the base URL"):
        NinjaOneConnector(timeout=5).fetch_inventory(
            RmmIntegration(kind="ninjaone", base_url=ninja.url + suffix, username=CLIENT_ID, api_token=CLIENT_SECRET))


def test_units_found_by_a_sync_are_billed_on_the_next_ci_with_a_proration(cli, ninja, alps):
    """billing-rules 3.7 and 4.12 (no month left unbilled): the first NinjaOne sync on 10 May finds 2 agents at
    Zürich Dental (customer-level per_asset at 10.00). The June CI bills June, 2 x 10.00 = 20.00, and a May
    proration of 2 x 10.00 x 22/31 (10 to 31 May, inclusive) = 14.1935... -> 14.19."""
    fill(ninja, alps, lodge=0, chalet=0, zurich=2)
    Service.objects.filter(partner=alps).exclude(code="zurich").delete()
    assert sync(cli, alps).status == 0
    with time_machine.travel("2026-06-01 03:00:00Z", tick=True):
        bill("2026-06-01", "--partner", "alps")
        got = sorted((r["line_type"], r["period"], r["quantity"], r["amount"])
                     for r in lines("--partner", "alps") if r["invoice_number"].startswith("CI-")
                     and r["issue_date"] == "2026-06-01")
    assert got == [("proration", "2026-05", "2.0000", "14.19"), ("recurring", "2026-06", "2.0000", "20.00")]


# --- the device report (walker-AU/NinjaOne-Scripts Get-NinjaDeviceReport) -----------------------------------------
HEADER = '"created","systemName","nodeClass","organizationName","locationName","approvalStatus","offline","lastContact"'


def device_report(tmp_path, *rows: str):
    """The report as PowerShell 7's Export-Csv -NoTypeInformation writes it on Windows: every cell quoted, UTF-8
    without a byte-order mark, CRLF; DateTimes from epoch seconds in the en-US culture; sorted by
    organizationName, systemName."""
    path = tmp_path / "NinjaDeviceReport.csv"
    path.write_bytes(("\r\n".join([HEADER, *rows]) + "\r\n").encode("utf-8"))
    return path


def report_row(name: str, org: str = "Alpine Ski House", loc: str = "Lodge", *, node_class="WINDOWS_WORKSTATION",
               approval="APPROVED", offline="False", created="2/12/2025 10:42:11 AM",
               last_contact="5/9/2026 10:00:00 AM") -> str:
    return ",".join(f'"{v}"' for v in (created, name, node_class, org, loc, approval, offline, last_contact))


@pytest.fixture
def alps_plain():
    """Alps IT without an integration (imports by hand): Alpine Ski House's agents, and its Chalet location."""
    partner = PartnerFactory(slug="alps", name="Alps IT")
    alpine = CustomerFactory(partner=partner, slug="alpine", name="Alpine", rmm_organization="Alpine Ski House")
    per_asset(partner, "alpine", customer=alpine)
    per_asset(partner, "chalet", "alpine ski house/chalet")
    return partner


def import_report(cli, path, as_of="2026-05-10"):
    return cli("import_csv", "rmm-assets", str(path), "--partner", "alps", "--as-of", as_of)


def test_device_report_imported_as_downloaded(cli, tmp_path, alps_plain):
    """import-formats 9 and rmm.md 4: the report's agent is organizationName/systemName, locationName its group;
    offline True is billed, PENDING is left out (named on the error output), the same file again changes
    nothing."""
    path = device_report(
        tmp_path,
        report_row("AL-CH-01", loc="Chalet", offline="True", last_contact="4/30/2026 6:05:00 PM"),
        report_row("AL-CH-02", loc="Chalet", approval="PENDING", offline="True", last_contact=""),
        report_row("AL-FD-01"),
        report_row("AL-FD-02", loc=""),
    )
    first = import_report(cli, path)
    assert first.status == 0, first.err
    assert "row 3: systemName: 'Alpine Ski House/AL-CH-02' is not billed (never checked in)" in first.err
    assert units(alps_plain) == {"alpine": 3, "chalet": 1}
    again = import_report(cli, path)
    assert again.status == 0 and "0 created, 0 updated" in again.out
    assert units(alps_plain) == {"alpine": 3, "chalet": 1}


# --- defects ----------------------------------------------------------------------------------------------------
def test_nodes_without_an_agent_are_not_billed_as_agents(cli, ninja, alps):
    """billing-rules decision (ak): "We bill an agent that is installed and known to the RMM". NinjaOne's device
    list (NodeWithDetailedReferences.nodeClass) also holds nodes with no agent: SNMP-monitored network devices
    (NMS_*), cloud monitor targets, VM guests seen through their host (VMWARE_VM_GUEST, with parentDeviceId) and
    ITAM's unmanaged devices (UNMANAGED_DEVICE). With 7 agents installed, these 4 nodes must not raise the units
    of Alpine's per_asset service (3.7)."""
    fill(ninja, alps)
    alpine = alps.orgs["alpine"]
    host = ninja.device(alpine, None, "ESX-01", node_class="VMWARE_VM_HOST")
    ninja.device(alpine, None, None, node_class="VMWARE_VM_GUEST", parent=host["id"], display_name="vm-web-02")
    ninja.device(alpine, None, None, node_class="NMS_PRINTER", display_name="HP LaserJet lobby",
                 dns_name="printer-lobby.alpine.local")
    ninja.device(alpine, None, None, node_class="CLOUD_MONITOR_TARGET", display_name="https://alpine.example")
    ninja.device(alpine, None, None, node_class="UNMANAGED_DEVICE", display_name="Front desk iPad")

    assert sync(cli, alps).status == 0

    assert units(alps)["alpine"] == 5 + 1  # the 5 workstations and the ESXi host's agent


def test_an_organization_created_during_the_sync_is_not_a_permanent_failure(cli, ninja, alps):
    """rmm.md 1 ("Every connector": a fault that may pass by itself is transient, the nightly job tries again) and
    billing-rules 3.7. The organizations are read before the devices; an MSP onboarding a customer meanwhile (the
    02:00 UTC sync is midday for an oc.ninjarmm.com partner) adds an organization and its first device. The
    device's organizationId is then not in the list read a moment earlier: the sync must read the organizations
    again, or at least fail as transient so the nightly job tries again; today it fails for the night as "1 bad
    agent row(s)", retryable False."""
    fill(ninja, alps)

    def onboarding(request):
        if not any(o["name"] == "Fourth Coffee" for o in ninja.organizations):
            ninja.device(ninja.organization("Fourth Coffee"), None, "FC-01")
    ninja.before_devices_page = onboarding

    sync(cli, alps)

    run = SyncRun.objects.get()
    assert run.status == SyncStatus.OK or run.retryable, run.error


@pytest.mark.parametrize("body", [{"error": "too_many_requests"}, {"message": "Too Many Requests"}])
def test_a_429_on_the_token_request_is_transient_and_does_not_blame_the_credentials(ninja, body):
    """rmm.md 1 ("Every connector"): HTTP 429 is transient, the nightly job tries again. A rate limit on
    /ws/oauth/token (a gateway answering 429 with a JSON body, with Retry-After) must say HTTP 429 and be
    transient; today it reads "the token request was refused (...): check the client id and client secret" or
    "the token answer has no usable access_token", not transient, and nobody retries."""
    ninja.fail(lambda r: r.path == "/ws/oauth/token", 429, body, headers={"Retry-After": "30"})
    with pytest.raises(ConnectorError) as caught:
        fetch(ninja)
    assert caught.value.transient
    assert "429" in str(caught.value)
    assert "check the client id" not in str(caught.value)


def test_a_decommissioned_twin_does_not_refuse_the_device_report(cli, tmp_path, alps_plain):
    """rmm.md 4 and decision (ak): a DECOMMISSIONED device is never billed and is left out of the inventory.
    NinjaOne keeps it listed after the machine is re-enrolled under the same name, so the report holds both rows.
    The import must bill AL-FD-01 once (the approved one) and leave the old record out with a warning; today the
    second row is "same agent as row 2 with different values" and nothing is imported."""
    path = device_report(
        tmp_path,
        report_row("AL-FD-01", approval="DECOMMISSIONED", offline="True", last_contact="3/1/2026 9:00:00 AM"),
        report_row("AL-FD-01", created="4/2/2026 8:00:00 AM"),
        report_row("AL-FD-02"),
    )
    result = import_report(cli, path)
    assert result.status == 0, result.err
    assert units(alps_plain) == {"alpine": 2, "chalet": 0}


def test_a_blank_system_name_is_one_error(cli, tmp_path, alps_plain):
    """billing-rules 8.1 / import-formats 7: every bad row is reported as `row N: column: reason`, once. A report row
    with a blank systemName prints `row 3: systemName: is required` twice and counts 2 errors for 1 bad row."""
    path = device_report(tmp_path, report_row("AL-FD-01"), report_row(""))
    result = import_report(cli, path)
    assert result.status == 1
    errors = [line for line in result.err.splitlines() if line.strip().startswith("row ")]
    assert errors == ["row 3: systemName: is required"], result.err
    assert "1 bad row(s), 1 error(s)" in result.err


def missed_night_report(cli, tmp_path, ninja, alps):
    """Alps syncs on 10 May (7 agents), the 11 May sync fails, and the clerk imports NinjaOne's device report of
    11 May (the same 7 devices, as Get-NinjaDeviceReport exports them), as rmm.md 6 says."""
    fill(ninja, alps)
    assert sync(cli, alps).status == 0
    names = {o["id"]: o["name"] for o in ninja.organizations}
    locations = {loc["id"]: loc["name"] for loc in ninja.locations}
    rows = sorted((names[d["organizationId"]], d["systemName"], locations[d["locationId"]]) for d in ninja.devices)
    path = device_report(tmp_path, *(report_row(name, org, loc) for org, name, loc in rows))
    with time_machine.travel("2026-05-11 09:00:00Z", tick=True):
        imported = cli("import_csv", "rmm-assets", str(path), "--partner", "alps", "--as-of", "2026-05-11")
    assert imported.status == 0, imported.err


def test_a_missed_night_from_the_device_report_keeps_a_customer_named_by_organization_id(cli, tmp_path, ninja, alps):
    """rmm.md 3 (a customer's RMM organization may be NinjaOne's organization id) and rmm.md 6 (a missed night filled
    in from an export: "what the file cannot say is taken from the API ... keeps that organization's ... id").
    The report names organizations only by name, and its agents (`Zürich Dental/ZD-00`) are never the API's
    (numeric ids), so the API's placement is never found: Zürich Dental, named by its id, has 0 agents on 11 May
    instead of 2. On an invoiced month that is a proration of -2 x 10.00 x 21/31 = -13.55 from 11 May (and
    +12.90 back from 12 May once a sync applies): 0.65 credited for a night where nothing changed."""
    missed_night_report(cli, tmp_path, ninja, alps)
    assert units(alps, date(2026, 5, 11)) == {"all": 7, "alpine": 5, "chalet": 2, "zurich": 2}


def test_a_missed_night_from_the_device_report_does_not_hold_the_next_sync(cli, tmp_path, ninja, alps):
    """rmm.md 5 and 6: nothing changed in NinjaOne between 10 and 12 May, so the 12 May sync must apply with no
    agent removed. Today the report's agents (`Alpine Ski House/LODGE-00`, ...) are not the API's, so the sync
    "would remove every agent" and is held for review, night after night until staff approve it."""
    missed_night_report(cli, tmp_path, ninja, alps)
    with time_machine.travel("2026-05-12 02:00:00Z", tick=True):
        result = sync(cli, alps)
    run = SyncRun.objects.order_by("pk").last()
    assert (result.status, run.status, run.removed) == (0, SyncStatus.OK, 0), run.error

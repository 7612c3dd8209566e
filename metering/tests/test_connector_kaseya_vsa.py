"""The Kaseya VSA 9 connector against a fake VSA answering as Kaseya documents it (fake_kaseya_vsa.py)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from metering.connectors import ConnectorError, KaseyaVsaConnector
from metering.connectors.kaseya_vsa import group_path
from metering.models import RmmIntegration
from metering.tests.fake_kaseya_vsa import FakeKaseyaVsa, vsa_agent, vsa_org, vsa_view
from metering.tests.fake_server import Clock

USER, PAT = "api-billing", "4b5c0c2e-6f5e-4a71-9d1a-0f6c1e2d3a4b"


@pytest.fixture
def vsa():
    with FakeKaseyaVsa({USER: PAT}) as server:
        yield server


def integration(server, user: str = USER, pat: str = PAT) -> RmmIntegration:
    return RmmIntegration(kind="kaseya-vsa", base_url=server.url + "/", username=user, api_token=pat)


def fetch(server, **options):
    return KaseyaVsaConnector(timeout=5, **options).fetch_inventory(integration(server))


def birchwood(server) -> dict:
    org = vsa_org("birchwood", "Birchwood Dental", org_id=35217233916592159121111312)
    server.orgs.append(org)
    return org


def test_login_then_agents_with_organization_group_and_views(vsa):
    org = birchwood(vsa)
    other = vsa_org("acme", "ACME Corp")
    vsa.orgs.append(other)
    lab = vsa_agent(org, "lab.workstations", "BW-LAB-01")
    root = vsa_agent(org, "root", "BW-FRONT")
    acme = vsa_agent(other, "servers", "ACME-DC1", os="Windows Server 2022")
    vsa.agents += [lab, root, acme]
    servers, dental = vsa_view("Servers"), vsa_view("Dental chairs")
    vsa.views += [servers, dental]
    vsa.members = {servers["ViewDefId"]: [acme["AgentId"]], dental["ViewDefId"]: [lab["AgentId"], root["AgentId"]]}

    rows = fetch(vsa)

    by_id = {r.agent_id: r for r in rows}
    first = by_id[str(lab["AgentId"])]
    assert (first.machine_name, first.organization, first.org_ref, first.org_id, first.group) == (
        "BW-LAB-01", "Birchwood Dental", "birchwood", "35217233916592159121111312", "workstations/lab")
    assert first.os == "Windows 11 Professional Edition"
    assert first.last_seen == datetime(2026, 5, 1, 8, 0, 0, 30000, tzinfo=UTC)
    assert first.views == ("Dental chairs",)
    assert first.online is True and not (first.suspended or first.deleted or first.never_checked_in)
    assert by_id[str(root["AgentId"])].group == "root"  # VSA's default group keeps its name
    assert by_id[str(acme["AgentId"])].views == ("Servers",)
    assert (rows.source, rows.announced) == (vsa.url, 3)
    assert rows.pages == 2 * (1 + 1 + 2 + 1)  # orgs, views, each view's agents, agents; read twice (OffsetPaged)
    assert vsa.logins() == 1  # one session for both reads
    login = vsa.requests[0]
    assert login.path == "/api/v1.0/auth"
    assert login.headers["authorization"] == "Basic " + base64.b64encode(f"{USER}:{PAT}".encode()).decode()
    assert all(r.bearer in vsa.tokens for r in vsa.requests[1:])


def test_250_agents_over_three_pages(vsa):
    org = birchwood(vsa)
    vsa.agents += [vsa_agent(org, "root", f"PC-{n:03}") for n in range(250)]
    rows = fetch(vsa)
    assert len(rows) == 250 and rows.announced == 250
    assert vsa.paths("/api/v1.0/assetmgmt/agents") == [
        f"/api/v1.0/assetmgmt/agents?$top=100&$skip={skip}" for skip in (0, 100, 200)] * 2  # until two reads agree
    assert rows.pages == 2 * (1 + 1 + 3)


def test_sub_groups_are_a_path_from_the_top():
    assert group_path("lab.workstations.birchwood", "birchwood") == "workstations/lab"
    assert group_path("root.birchwood", "birchwood") == "root"
    assert group_path("birchwood", "birchwood") == ""
    assert group_path("a.b.Kids.Acme", "kids.acme") == "b/a"  # a dotted reference, any case
    with pytest.raises(ValueError, match="does not end with"):
        group_path("lab.other", "birchwood")


def test_states_online_offline_suspended_never_checked_in_and_templates(vsa):
    org = birchwood(vsa)
    vsa.agents += [vsa_agent(org, agent_id=1, online=11), vsa_agent(org, agent_id=2, online=0),
                   vsa_agent(org, agent_id=3, online=198), vsa_agent(org, agent_id=4, online=199, last_check_in=None),
                   vsa_agent(org, agent_id=5, online=0, last_check_in="0001-01-01T00:00:00"),
                   vsa_agent(org, agent_id=6, online=1, last_check_in="2026-05-02T10:00:00")]
    rows = {r.agent_id: r for r in fetch(vsa)}
    assert [(rows[k].online, rows[k].suspended, rows[k].never_checked_in) for k in "123456"] == [
        (True, False, False), (False, False, False), (None, True, False), (False, False, True),
        (False, False, True), (True, False, False)]
    assert rows["5"].last_seen is None  # VSA's minimum date is "never"
    assert rows["6"].last_seen == datetime(2026, 5, 2, 10, tzinfo=UTC)  # no zone: UTC


def test_a_session_expiring_during_the_sync_is_renewed_before_the_next_page():
    clock = Clock()
    with FakeKaseyaVsa({USER: PAT}, clock=clock) as vsa:
        org = birchwood(vsa)
        vsa.agents += [vsa_agent(org) for _ in range(250)]

        def late(skip):
            if skip == 100:
                clock.offset = 31 * 60  # past the 30-minute session (the server expires it too)
        vsa.on_agents_page = late
        rows = fetch(vsa, clock=clock)
    assert len(rows) == 250
    assert vsa.logins() == 2  # renewed before page 3 of the agents (a minute before it expires)...
    assert vsa.denied == 0  # ...so the server never had to refuse it


def test_a_session_cut_short_on_the_server_is_renewed_once(vsa):
    org = birchwood(vsa)
    vsa.agents += [vsa_agent(org) for _ in range(250)]
    vsa.requests_per_session = 3  # orgs, views, agents page 1; then 401
    rows = fetch(vsa)
    # two reads of 5 requests: every session cut after 3 requests, and renewed once each time it is
    assert len(rows) == 250 and vsa.logins() == 4 and vsa.denied == 3


def test_a_401_right_after_a_fresh_login_is_an_authentication_failure(vsa):
    birchwood(vsa)
    vsa.fail(lambda r: r.path == "/api/v1.0/system/orgs", 401, {"ResponseCode": 401, "Status": "Unauthorized"})
    with pytest.raises(ConnectorError, match=r"authentication failed \(HTTP 401\)") as caught:
        fetch(vsa)
    assert not caught.value.transient
    assert vsa.logins() == 2


def test_wrong_credentials(vsa):
    with pytest.raises(ConnectorError,
                       match=r"/api/v1.0/auth: authentication failed \(HTTP 401\): check the VSA user") as caught:
        KaseyaVsaConnector(timeout=5).fetch_inventory(integration(vsa, pat="wrong"))
    assert not caught.value.transient
    with pytest.raises(ConnectorError, match="no VSA user name"):
        KaseyaVsaConnector().fetch_inventory(integration(vsa, user=" "))


@pytest.mark.parametrize("status, transient", [(500, True), (503, True), (429, True), (400, False)])
def test_an_error_on_page_2_fails_the_whole_fetch(vsa, status, transient):
    org = birchwood(vsa)
    vsa.agents += [vsa_agent(org) for _ in range(250)]
    vsa.fail(lambda r: r.path.endswith("/agents") and r.query.get("$skip") == "100", status, {"Message": "boom"})
    with pytest.raises(ConnectorError, match=f"HTTP {status} on agents, page 2") as caught:
        fetch(vsa)
    assert caught.value.transient is transient


def test_an_error_envelope_with_http_200_is_an_error(vsa):
    org = birchwood(vsa)
    vsa.agents += [vsa_agent(org) for _ in range(150)]
    vsa.fail(lambda r: r.path.endswith("/agents") and r.query.get("$skip") == "100", 200,
             {"Result": None, "ResponseCode": 500, "Status": "Error", "Error": "Database timeout"})
    with pytest.raises(ConnectorError, match="ResponseCode 500 on agents, page 2: Database timeout") as caught:
        fetch(vsa)
    assert caught.value.transient
    vsa.fail(lambda r: r.path.endswith("/orgs"), 200, {"Result": [], "ResponseCode": 1, "Status": "?"})
    with pytest.raises(ConnectorError, match="not the VSA answer envelope"):
        fetch(vsa)


def test_a_short_read_is_refused(vsa):
    org = birchwood(vsa)
    vsa.agents += [vsa_agent(org) for _ in range(250)]
    vsa.total_extra = 5  # TotalRecords 255, 250 served
    with pytest.raises(ConnectorError, match="empty after 250 of 255 records: a short read"):
        fetch(vsa)


def test_the_list_changing_between_pages_is_refused(vsa):
    org = birchwood(vsa)
    vsa.agents += [vsa_agent(org) for _ in range(150)]

    def grow(skip):
        if skip == 100:
            vsa.agents.append(vsa_agent(org))
    vsa.on_agents_page = grow
    with pytest.raises(ConnectorError, match="TotalRecords of agents changed from 150 to 151") as caught:
        fetch(vsa)
    assert caught.value.transient


def test_an_agent_seen_twice_as_the_list_shifts_is_a_short_read(vsa):
    org = birchwood(vsa)
    vsa.agents += [vsa_agent(org) for _ in range(150)]

    def shift(skip):
        if skip == 100:  # an agent of page 2 moves to the top: page 2 starts with page 1's last again
            vsa.agents.insert(0, vsa.agents.pop(120))
    vsa.on_agents_page = shift
    with pytest.raises(ConnectorError, match="149 distinct agents read, the API announced 150"):
        fetch(vsa)


def test_bad_agents_are_named(vsa):
    org = birchwood(vsa)
    vsa.agents += [vsa_agent(org, "lab.elsewhere", agent_id=7),
                   {**vsa_agent(org, agent_id=8), "ComputerName": "x" * 201},
                   {**vsa_agent(org, agent_id=9), "OrgId": 42}, {**vsa_agent(org, agent_id=10), "Online": "yes"}]
    vsa.agents[0]["MachineGroup"] = "lab.elsewhere"
    with pytest.raises(ConnectorError) as caught:
        fetch(vsa)
    message = str(caught.value)
    assert "4 bad agent row(s)" in message
    assert "agents page 1, agent 1 (AgentId 7): MachineGroup 'lab.elsewhere' does not end with" in message
    assert "(AgentId 8): machine_name: longer than 200 characters" in message
    assert "(AgentId 9): OrgId '42' is not among the organizations" in message
    assert "(AgentId 10): Online: not a status code ('yes')" in message


def test_too_many_pages_and_redirects(vsa):
    org = birchwood(vsa)
    vsa.agents += [vsa_agent(org) for _ in range(250)]
    with pytest.raises(ConnectorError, match="250 agents need 3 pages, more than RMM_SYNC_MAX_PAGES"):
        fetch(vsa, max_pages=4)
    vsa.fail(lambda r: r.path.endswith("/orgs"), 302, b"", headers={"Location": "https://elsewhere.example/x"})
    with pytest.raises(ConnectorError, match=r"redirected \(HTTP 302\) to https://elsewhere.example/x"):
        fetch(vsa)

"""RMM connectors: the JSON inventory feed against a stub RMM on a real local socket, and the drop
folder. A connector returns the whole inventory or raises ConnectorError, never a partial list; through
inventory_sync, every fault is a failed SyncRun that wrote nothing to the inventory."""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from billing.core.actor import Actor
from billing.core.importing import unreadable_text
from metering.connectors import ConnectorError, FolderConnector, JsonFeedConnector
from metering.connectors.common import Agents, FetchWatch, fetch_watched
from metering.models import AgentPresence, InventorySync, RmmAgent, RmmIntegration, SyncRun, SyncStatus
from metering.services import AgentRow, inventory_apply
from metering.sync import inventory_sync
from metering.tests.rmm_stub import agent
from partners.tests.factories import PartnerFactory

TOKEN = "s3cret-token"
HEADER = "agent_id,machine_name,organization,group,os,last_seen\n"


def feed(url: str, token: str = TOKEN) -> RmmIntegration:
    return RmmIntegration(kind="json", base_url=url, api_token=token)


def folder(path) -> RmmIntegration:
    return RmmIntegration(kind="folder", folder_path=str(path))


def fetch(integration, **limits) -> list[AgentRow]:
    if integration.kind == "folder":
        return FolderConnector().fetch_inventory(integration)
    return JsonFeedConnector(**limits).fetch_inventory(integration)


FIVE = [agent("a1", "ACME", "WS"), agent("a2", "ACME", "WS"), agent("a3", "ACME", "Servers"),
        agent("b1", "BETA", last_seen=None), agent("b2", "BETA", last_seen="2026-05-01T10:00:00+02:00")]


# --- JSON feed ---------------------------------------------------------------------------------------
def test_feed_follows_next_page_numbers_and_sends_the_bearer_token(rmm):
    rmm.account(TOKEN, FIVE, per_page=2)
    rows = fetch(feed(rmm.url + "/"))  # a trailing slash on the base URL is fine
    assert [r.agent_id for r in rows] == ["a1", "a2", "a3", "b1", "b2"]
    assert rows[0] == AgentRow("a1", "PC-a1", "ACME", "WS", "Windows 11", datetime(2026, 5, 1, 8, tzinfo=UTC))
    assert rows[3].last_seen is None
    assert rows[4].last_seen == datetime(2026, 5, 1, 8, tzinfo=UTC)  # read in UTC
    # read twice, until two reads agree (common.OffsetPaged: the pages are numbered)
    assert rmm.requests == [(f"/api/v1/agents?page={n}", f"Bearer {TOKEN}") for n in (1, 2, 3)] * 2
    assert (rows.source, rows.announced, rows.pages) == (rmm.url, None, 6)


def test_feed_follows_next_links(rmm):
    rmm.account(TOKEN, FIVE, per_page=3, links=True)
    assert [r.agent_id for r in fetch(feed(rmm.url))] == ["a1", "a2", "a3", "b1", "b2"]
    assert rmm.pages_served(TOKEN) == ["/api/v1/agents?page=1", "/api/v1/agents?page=2"] * 2


def test_feed_never_follows_a_link_or_a_redirect_to_another_host(rmm):
    """The bearer token is only ever sent to the configured host."""
    account = rmm.account(TOKEN, FIVE, per_page=2)
    account.raw[1] = b'{"agents": [], "next": "http://elsewhere.example/api/v1/agents?page=2"}'
    with pytest.raises(ConnectorError, match="another host"):
        fetch(feed(rmm.url))
    rmm.account(TOKEN, FIVE, redirect="http://elsewhere.example/agents")
    with pytest.raises(ConnectorError, match=r"redirected \(HTTP 302\)") as caught:
        fetch(feed(rmm.url))
    assert not caught.value.transient


@pytest.mark.parametrize("status", [401, 403])
def test_feed_authentication_failure(rmm, status):
    account = rmm.account(TOKEN, FIVE)
    if status == 401:
        integration = feed(rmm.url, token="wrong")
    else:
        account.always_status[1] = 403
        integration = feed(rmm.url)
    with pytest.raises(ConnectorError, match=f"authentication failed \\(HTTP {status}\\)") as caught:
        fetch(integration)
    assert not caught.value.transient  # a person must fix the token


def test_feed_timeout_is_transient(rmm):
    rmm.account(TOKEN, FIVE, delay=2.0)
    started = time.monotonic()
    with pytest.raises(ConnectorError, match=r"no answer within 0.3 s") as caught:
        fetch(feed(rmm.url), timeout=0.3)
    assert caught.value.transient
    assert time.monotonic() - started < 1.5


def test_feed_invalid_json(rmm):
    account = rmm.account(TOKEN, FIVE)
    account.raw[1] = b"<html>maintenance</html>"
    with pytest.raises(ConnectorError, match="page 1 is not valid JSON") as caught:
        fetch(feed(rmm.url))
    assert not caught.value.transient
    account.raw[1] = b'{"machines": []}'
    with pytest.raises(ConnectorError, match='no "agents" list'):
        fetch(feed(rmm.url))


def test_feed_page_larger_than_the_limit(rmm):
    rmm.account(TOKEN, FIVE, per_page=5)
    with pytest.raises(ConnectorError, match="page 1 is larger than 200 bytes") as caught:
        fetch(feed(rmm.url), max_page_bytes=200)
    assert not caught.value.transient
    assert len(fetch(feed(rmm.url), max_page_bytes=2000)) == 5


def test_feed_server_error_half_way_fails_the_whole_fetch(rmm):
    rmm.account(TOKEN, FIVE, per_page=2, always_status={2: 500})
    with pytest.raises(ConnectorError, match="HTTP 500 on page 2") as caught:
        fetch(feed(rmm.url))
    assert caught.value.transient
    assert len(rmm.pages_served(TOKEN)) == 2


def test_feed_too_many_pages_and_paging_loops(rmm):
    rmm.account(TOKEN, endless=True)
    with pytest.raises(ConnectorError, match="more than 5 pages"):
        fetch(feed(rmm.url), max_pages=5)
    assert len(rmm.pages_served(TOKEN)) == 5
    rmm.account(TOKEN, FIVE, loop=True)
    with pytest.raises(ConnectorError, match="paging loop"):
        fetch(feed(rmm.url))


def test_feed_names_every_bad_agent(rmm):
    rows = [agent("a1"), {**agent("a2"), "last_seen": "2026-05-01T08:00:00"}, {**agent(""), "agent_id": None},
            agent("a1", machine_name="OTHER"), "not an object"]
    rmm.account(TOKEN, rows, per_page=3)
    with pytest.raises(ConnectorError) as caught:
        fetch(feed(rmm.url))
    message = str(caught.value)
    assert "4 bad agent row(s)" in message
    assert "page 1, agent 2: last_seen: instant '2026-05-01T08:00:00' has no time zone" in message
    assert "page 1, agent 3: agent_id: is required" in message
    assert "page 2, agent 1: agent_id: same agent as page 1, agent 1 with different values" in message
    assert "page 2, agent 2: not a JSON object" in message


def test_feed_same_agent_on_two_pages_with_the_same_values_counts_once(rmm):
    rmm.account(TOKEN, [agent("a1"), agent("a2"), agent("a2"), agent("a3")], per_page=2)
    assert [r.agent_id for r in fetch(feed(rmm.url))] == ["a1", "a2", "a3"]


def test_feed_unreachable_host_and_bad_settings():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectorError, match="cannot connect") as caught:
        fetch(feed(f"http://127.0.0.1:{port}"), timeout=2)
    assert caught.value.transient
    with pytest.raises(ConnectorError, match="not an http:// or https:// address"):
        fetch(feed("file:///etc"))
    with pytest.raises(ConnectorError, match="no API token"):
        fetch(feed("http://127.0.0.1:9", token=""))


# --- the collector's rules are the import's ---------------------------------------------------------
@pytest.mark.parametrize("value", ["PC-1", "  padded  ", "", "x" * 200, "x" * 201, "'=HYPERLINK(1)", "''quoted",
                                   "Zürich", " é" * 100 + "é", "nul\x00inside", "bad \udc80 byte", "tab\tinside"])
def test_the_collector_checks_text_as_the_rmm_assets_import_does(value):
    """Agents._text takes a shortcut for plain text: it must give what the import's widget and
    unreadable_text give, for every value."""

    agents = Agents()
    widget = agents.widgets["machine_name"]
    text = value.strip()
    reason = unreadable_text(text)
    if reason is None:
        try:
            expected = (widget.clean(text), None)
        except ValueError as exc:
            expected = ("", str(exc))
    else:
        expected = ("", reason)
    assert agents._text(value, widget) == expected


def test_the_collector_names_bad_typed_agents_and_keeps_the_first_of_twins():
    agents = Agents()
    agents.add("a", agent_id=" 1 ", machine_name="PC", organization="ACME", group="ws", views=["b", "a", "a"],
               last_seen=datetime(2026, 5, 1, 10, tzinfo=UTC))
    agents.add("b", agent_id="1", machine_name="PC", organization="ACME", group="ws", views=["a", "b"],
               last_seen=datetime(2026, 5, 1, 10, tzinfo=UTC))
    inventory = agents.result("src", announced=2, pages=1)
    assert inventory == [AgentRow("1", "PC", "ACME", "ws", last_seen=datetime(2026, 5, 1, 10, tzinfo=UTC),
                                  views=("a", "b"))]
    assert (inventory.source, inventory.announced, inventory.pages) == ("src", 2, 1)
    agents.add("c", agent_id="1", machine_name="PC-2", organization="ACME")
    agents.add("d", agent_id="", machine_name="PC", organization=" ", last_seen=datetime(2026, 5, 1))
    with pytest.raises(ConnectorError) as caught:
        agents.result("src")
    assert str(caught.value) == ("src: 4 bad agent row(s): c: agent_id: same agent as a with different values; "
                                 "d: agent_id: is required; d: organization: is required; "
                                 "d: last_seen: not an instant with a time zone")


# --- drop folder --------------------------------------------------------------------------------
def write(path, text: str, mtime: float):
    path.write_text(text, encoding="utf-8")
    os.utime(path, (mtime, mtime))
    return path


def test_folder_reads_the_newest_csv(tmp_path):
    now = time.time()
    write(tmp_path / "monday.csv", HEADER + "a1,PC-1,ACME,WS,,\n", now - 7200)
    write(tmp_path / "tuesday.csv", "\ufeff" + HEADER.replace("\n", ",extra\n")
          + "a1,PC-1,ACME,WS,Linux,,x\nb1,PC-2,BETA,,,2026-05-02T00:00:00Z,y\n", now - 60)
    write(tmp_path / "partial.csv.tmp", "garbage", now)  # not a *.csv yet
    write(tmp_path / ".hidden.csv", "garbage", now)
    (tmp_path / "archive.csv").mkdir()
    rows = fetch(folder(tmp_path))
    assert rows == [AgentRow("a1", "PC-1", "ACME", "WS", "Linux", None),
                    AgentRow("b1", "PC-2", "BETA", "", "", datetime(2026, 5, 2, tzinfo=UTC))]
    assert rows.source == str(tmp_path / "tuesday.csv")


def test_folder_without_a_file_fails(tmp_path):
    (tmp_path / "notes.txt").write_text("no csv here")
    with pytest.raises(ConnectorError, match=r"no \*\.csv file to read"):
        fetch(folder(tmp_path))
    with pytest.raises(ConnectorError, match="no such folder"):
        fetch(folder(tmp_path / "missing"))


@pytest.mark.parametrize("text, reason", [
    ("agent_id,machine_name,group\na1,PC-1,WS\n", "missing column(s): organization"),
    (HEADER + "a1,PC-1,ACME,WS,,2026-05-01 08:00\n", "row 2: last_seen"),
    (HEADER + "a1,PC-1,ACME,WS\na1,PC-9,ACME,WS\n", "row 3: agent_id: same agent as row 2 with different values"),
    ("", "the file is empty"),
])
def test_folder_with_a_bad_file_fails(tmp_path, text, reason):
    write(tmp_path / "inventory.csv", text, time.time())
    with pytest.raises(ConnectorError, match=r"inventory\.csv") as caught:
        fetch(folder(tmp_path))
    assert reason in str(caught.value)


# --- every fault is a failed run that wrote nothing ---------------------------------------------
def inventory_state(partner) -> tuple:
    return (
        sorted(AgentPresence.objects.filter(partner=partner).values_list(
            "agent__agent_id", "organization", "group", "present_from", "present_until")),
        sorted(RmmAgent.objects.filter(partner=partner).values_list("agent_id", "machine_name", "os", "last_seen")),
        InventorySync.objects.filter(partner=partner).count(),
    )


FAULTS = {
    # name: (how the stub or the folder is set up, expected message, retryable)
    "auth": (lambda stub, path: stub.account("other-token", FIVE), "authentication failed", False),
    "timeout": (lambda stub, path: stub.account(TOKEN, FIVE, delay=2.0), "no answer within", True),
    "invalid json": (lambda stub, path: stub.account(TOKEN, FIVE, raw={1: b"{not json"}), "not valid JSON", False),
    "500 on page 2": (lambda stub, path: stub.account(TOKEN, FIVE, per_page=2, always_status={2: 500}),
                      "HTTP 500 on page 2", True),
    "too many pages": (lambda stub, path: stub.account(TOKEN, endless=True), "more than 4 pages", False),
    "empty folder": (lambda stub, path: None, "no *.csv file", False),
    "bad file": (lambda stub, path: write(path / "inv.csv", HEADER + "a9,PC,,WS\n", time.time()),
                 "row 2: organization: is required", False),
}


@pytest.mark.django_db
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_is_a_failed_run_and_writes_nothing(rmm, tmp_path, settings, fault):
    settings.RMM_SYNC_TIMEOUT_SECONDS = 0.3
    settings.RMM_SYNC_MAX_PAGES = 4
    setup, message, retryable = FAULTS[fault]
    partner = PartnerFactory(slug="keystone")
    kind = "folder" if "folder" in fault or "file" in fault else "json"
    RmmIntegration.objects.create(partner=partner, kind=kind, base_url=rmm.url, api_token=TOKEN,
                                  folder_path=str(tmp_path))
    inventory_apply(partner=partner, as_of=date(2026, 5, 1), actor=Actor(label="test"), agents={
        "a1": AgentRow("a1", "PC-a1", "ACME", "WS"), "z9": AgentRow("z9", "OLD", "ACME", "WS")})
    before = inventory_state(partner)
    setup(rmm, tmp_path)

    run = inventory_sync(partner=partner, as_of=date(2026, 5, 10), actor=Actor(label="test"), trigger="nightly")

    assert run.status == SyncStatus.FAILED
    assert message in run.error
    assert run.retryable is retryable
    assert run.finished_at is not None and run.inventory is None
    assert (run.added, run.moved, run.removed) == (0, 0, 0)
    assert inventory_state(partner) == before
    assert list(SyncRun.objects.values_list("status", flat=True)) == [SyncStatus.FAILED]


def test_the_drop_folder_reads_an_rmm_export_as_downloaded(tmp_path):
    """A Datto RMM device export (tests/data/rmm-exports, its source in SOURCES.md there) dropped in the folder
    is read as `import_csv rmm-assets` reads it: sites as organizations, deleted devices flagged."""

    data = Path(__file__).resolve().parents[2] / "tests" / "data" / "rmm-exports" / "datto-devices.csv"
    (tmp_path / "datto-2026-12-07.csv").write_bytes(data.read_bytes())
    rows = FolderConnector().fetch_inventory(RmmIntegration(kind="folder", folder_path=str(tmp_path)))
    assert "Datto RMM" in rows.source
    assert {r.organization for r in rows} and all(r.organization for r in rows)
    assert any(r.deleted for r in rows) and any(not r.deleted for r in rows)


# --- a fetch watched while it runs (sync_inventory's bar) ------------------------------------------------------
def test_a_watched_fetch_reports_each_page_and_the_rows_read_so_far(rmm):
    """sync_inventory's bar moves as the pages come in: each page asked for is reported with the agent rows of
    the read before it, the second read (OffsetPaged) from no rows, and a watch outside the block sees nothing of a
    later fetch."""
    rmm.account(TOKEN, FIVE, per_page=2)
    seen = []
    with fetch_watched(lambda watch: seen.append((watch.reads, watch.pages, watch.rows))) as watch:
        assert len(fetch(feed(rmm.url))) == 5
    assert seen == [(1, 1, 0), (1, 2, 2), (1, 3, 4), (2, 3, 0), (2, 4, 0), (2, 5, 2), (2, 6, 4)]
    assert watch.rows == 5
    fetch(feed(rmm.url))
    assert len(seen) == 7


def test_a_watched_folder_reports_its_rows_every_thousand(tmp_path, monkeypatch):
    monkeypatch.setattr(FetchWatch, "ROWS_SHOWN", 2)
    (tmp_path / "agents.csv").write_text(HEADER + "".join(f"a{n},PC-{n},ACME,WS,,\n" for n in range(5)))
    seen = []
    with fetch_watched(lambda watch: seen.append((watch.pages, watch.rows))):
        assert len(fetch(folder(tmp_path))) == 5
    assert seen == [(0, 2), (0, 4)]

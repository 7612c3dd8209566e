"""The Datto RMM connector against a fake Datto RMM API v2 answering as documented (fake_datto.py)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from metering.connectors import ConnectorError, DattoConnector
from metering.models import RmmIntegration
from metering.tests.fake_datto import FakeDatto, datto_device, datto_site
from metering.tests.fake_server import Clock

KEY, SECRET = "R7UH3LQG0B6D2K8T", "Q2W3E4R5T6Y7U8I9O0P1A2S3D4F5G6H7"


@pytest.fixture
def datto():
    with FakeDatto({KEY: SECRET}) as server:
        yield server


def integration(server, key: str = KEY, secret: str = SECRET, base: str = "") -> RmmIntegration:
    return RmmIntegration(kind="datto", base_url=base or server.url, username=key, api_token=secret)


def fetch(server, **options):
    return DattoConnector(timeout=5, **options).fetch_inventory(integration(server))


def fill(server, count: int, site=None) -> dict:
    site = site or datto_site("Birchwood Dental")
    server.devices += [datto_device(site) for _ in range(count)]
    return site


def test_token_then_devices_with_their_site(datto):
    site = datto_site("Birchwood Dental")
    device = datto_device(site, "BW-FRONT-01")
    datto.devices.append(device)

    rows = fetch(datto)

    [row] = rows
    assert (row.agent_id, row.machine_name, row.organization, row.org_id, row.org_ref, row.group) == (
        device["uid"], "BW-FRONT-01", "Birchwood Dental", site["uid"], "", "")
    assert row.os == "Microsoft Windows 11 Pro 23H2"
    assert row.last_seen == datetime(2026, 5, 1, 8, tzinfo=UTC)  # epoch milliseconds
    assert row.online is True and not (row.suspended or row.deleted or row.never_checked_in)
    assert (rows.source, rows.announced, rows.pages) == (datto.url, 1, 2)  # read twice (common.OffsetPaged)
    token, devices, again = datto.requests  # one token for both reads
    assert again.target == devices.target
    assert token.headers["authorization"] == "Basic " + base64.b64encode(b"public-client:public").decode()
    assert token.form == {"grant_type": "password", "username": KEY, "password": SECRET}
    assert devices.target == "/api/v2/account/devices?max=250&page=0"
    assert devices.bearer in datto.tokens


def test_250_devices_over_three_pages_following_next_page_urls(datto):
    fill(datto, 250)
    rows = fetch(datto, page_size=100)
    assert len(rows) == 250 and rows.announced == 250 and rows.pages == 6  # twice, until two reads agree
    assert datto.paths("/api/v2") == [f"/api/v2/account/devices?max=100&page={n}" for n in range(3)] * 2


def test_the_base_url_may_end_with_api(datto):
    fill(datto, 3)
    assert len(DattoConnector().fetch_inventory(integration(datto, base=datto.url + "/api/"))) == 3


def test_deleted_suspended_offline_and_never_seen_devices(datto):
    site = datto_site("ACME")
    datto.devices += [datto_device(site, "A", online=False), datto_device(site, "B", suspended=True),
                      datto_device(site, "C", deleted=True, online=False), datto_device(site, "D", last_seen=None)]
    rows = {r.machine_name: r for r in fetch(datto)}
    assert [(rows[k].online, rows[k].suspended, rows[k].deleted, rows[k].never_checked_in) for k in "ABCD"] == [
        (False, False, False, False), (True, True, False, False), (False, False, True, False),
        (True, False, False, True)]
    assert rows["D"].last_seen is None


def test_a_token_expiring_during_the_sync_is_renewed():
    clock = Clock()
    with FakeDatto({KEY: SECRET}, clock=clock) as datto:
        fill(datto, 250)

        def late(page):
            if page == 1:
                clock.offset = 101 * 3600  # past the 100 hours, on both sides
        datto.on_devices_page = late
        rows = fetch(datto, page_size=100, clock=clock)
    assert len(rows) == 250
    assert datto.token_requests() == 2 and datto.denied == 0  # renewed before page 3, never refused


def test_a_token_revoked_on_the_server_is_renewed_once(datto):
    fill(datto, 250)
    datto.requests_per_token = 1
    rows = fetch(datto, page_size=100)
    assert len(rows) == 250
    # each of the two reads' three pages but the first needed a new token
    assert datto.token_requests() == 6 and datto.denied == 5


def test_a_401_right_after_a_new_token_is_an_authentication_failure(datto):
    fill(datto, 3)
    datto.fail(lambda r: r.path.startswith("/api/"), 401, {"error": "invalid_token"})
    with pytest.raises(ConnectorError, match=r"authentication failed \(HTTP 401\): check the API key") as caught:
        fetch(datto)
    assert not caught.value.transient and datto.token_requests() == 2


def test_refused_credentials(datto):
    with pytest.raises(ConnectorError, match=r"token request was refused \(invalid_grant: Bad credentials\): "
                                             r"check the API key") as caught:
        DattoConnector().fetch_inventory(integration(datto, secret="wrong"))
    assert not caught.value.transient
    with pytest.raises(ConnectorError, match="no API key"):
        DattoConnector().fetch_inventory(integration(datto, key=""))


@pytest.mark.parametrize("status, transient", [(500, True), (503, True), (429, True), (404, False)])
def test_an_error_on_page_2_fails_the_whole_fetch(datto, status, transient):
    fill(datto, 250)
    datto.fail(lambda r: r.query.get("page") == "1", status, {"error": "x"})
    with pytest.raises(ConnectorError, match=f"HTTP {status} on devices, page 2") as caught:
        fetch(datto, page_size=100)
    assert caught.value.transient is transient


def test_a_token_endpoint_down_is_transient(datto):
    datto.fail(lambda r: r.path == "/auth/oauth/token", 503, b"<html>Service Unavailable</html>")
    with pytest.raises(ConnectorError, match=r"HTTP 503 on the token request") as caught:
        fetch(datto)
    assert caught.value.transient


def test_short_reads_are_refused(datto):
    fill(datto, 250)
    datto.total_extra = 5
    with pytest.raises(ConnectorError, match="250 devices read, the API announced 255: a short read"):
        fetch(datto, page_size=100)
    datto.total_extra = 0
    page = {"pageDetails": {"count": 100, "totalCount": 250, "nextPageUrl": None, "prevPageUrl": None},
            "devices": datto.devices[100:190]}
    datto.fail(lambda r: r.query.get("page") == "1", 200, page)
    with pytest.raises(ConnectorError, match="page 2 announces 100 devices and holds 90: a short read"):
        fetch(datto, page_size=100)


def test_without_a_total_the_pages_are_read_to_the_end(datto):
    fill(datto, 250)
    datto.total_count = False
    rows = fetch(datto, page_size=100)
    assert len(rows) == 250 and rows.announced is None


def test_a_next_page_on_another_host_is_refused(datto):
    fill(datto, 250)
    datto.next_host = "http://elsewhere.example"
    with pytest.raises(ConnectorError, match=r"next page is on another host \(http://elsewhere.example/api/v2"):
        fetch(datto, page_size=100)
    assert len(datto.paths("/api/v2")) == 1


def test_bad_devices_are_named(datto):
    site = fill(datto, 2)
    datto.devices += [{**datto_device(site), "hostname": None}, {**datto_device(site), "online": "yes"},
                      {**datto_device(site), "lastSeen": "yesterday"}]
    with pytest.raises(ConnectorError) as caught:
        fetch(datto)
    message = str(caught.value)
    assert "3 bad agent row(s)" in message
    assert "devices page 1, device 3 (uid " in message and "machine_name: is required" in message
    assert "online: not true or false ('yes')" in message
    assert "lastSeen: not an epoch timestamp ('yesterday')" in message

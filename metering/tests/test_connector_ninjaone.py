"""The NinjaOne connector against a fake NinjaOne public API v2 answering as documented (fake_ninjaone.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from metering.connectors import ConnectorError, NinjaOneConnector
from metering.models import RmmIntegration
from metering.tests.fake_ninjaone import FakeNinjaOne, ninja_device, ninja_location, ninja_organization
from metering.tests.fake_server import Clock

CLIENT_ID, CLIENT_SECRET = "bGk3cW9uZS1iaWxsaW5n", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


@pytest.fixture
def ninja():
    with FakeNinjaOne({CLIENT_ID: CLIENT_SECRET}) as server:
        yield server


def integration(server, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> RmmIntegration:
    return RmmIntegration(kind="ninjaone", base_url=server.url, username=client_id, api_token=secret)


def fetch(server, **options):
    return NinjaOneConnector(timeout=5, **options).fetch_inventory(integration(server))


def fill(server, count: int) -> tuple[dict, dict]:
    org = ninja_organization("Birchwood Dental")
    location = ninja_location(org, "Main office")
    server.organizations.append(org)
    server.locations.append(location)
    server.devices += [ninja_device(org, location) for _ in range(count)]
    return org, location


def test_token_then_devices_with_organization_and_location_names(ninja):
    org, location = fill(ninja, 0)
    other = ninja_organization("ACME Corp")
    ninja.organizations.append(other)
    device = ninja_device(org, location, "BW-FRONT-01")
    server = ninja_device(other, None, node_class="WINDOWS_SERVER", system_name="")
    server["systemName"] = None
    ninja.devices += [device, server]

    rows = {r.agent_id: r for r in fetch(ninja)}

    first = rows[str(device["id"])]
    assert (first.machine_name, first.organization, first.org_id, first.org_ref, first.group, first.os) == (
        "BW-FRONT-01", "Birchwood Dental", str(org["id"]), "", "Main office", "WINDOWS_WORKSTATION")
    assert first.last_seen == datetime(2026, 5, 1, 8, 0, 0, 500000, tzinfo=UTC)  # epoch seconds, a fraction
    assert first.online is True and not (first.never_checked_in or first.deleted or first.suspended)
    second = rows[str(server["id"])]
    assert (second.machine_name, second.organization, second.group) == (server["dnsName"], "ACME Corp", "")
    token = ninja.requests[0]
    assert token.form == {"grant_type": "client_credentials", "client_id": CLIENT_ID,
                          "client_secret": CLIENT_SECRET, "scope": "monitoring"}
    assert all(r.bearer in ninja.tokens for r in ninja.requests[1:])


def test_250_devices_over_three_pages_with_the_after_cursor(ninja):
    fill(ninja, 250)
    rows = fetch(ninja, page_size=100)
    assert len(rows) == 250 and rows.announced is None
    ids = sorted(d["id"] for d in ninja.devices)
    assert ninja.paths("/v2/devices") == ["/v2/devices?pageSize=100"] + [
        f"/v2/devices?pageSize=100&after={ids[n]}" for n in (99, 199, 249)]  # the end is an empty page
    assert rows.pages == 2 + 2 + 4  # organizations, locations, devices


def test_a_page_shorter_than_asked_is_not_the_end(ninja):
    fill(ninja, 250)
    ids = sorted(d["id"] for d in ninja.devices)
    short = [d for d in sorted(ninja.devices, key=lambda d: d["id"]) if d["id"] > ids[99]][:60]
    ninja.fail(lambda r: r.path == "/v2/devices" and r.query.get("after") == str(ids[99]), 200, short, times=1)
    assert len(fetch(ninja, page_size=100)) == 250  # a server capping pageSize lower still gives everything


def test_approval_states_and_offline(ninja):
    org, location = fill(ninja, 0)
    ninja.devices += [ninja_device(org, location, "A", offline=True),
                      ninja_device(org, location, "P", approval="PENDING", last_contact=None),
                      ninja_device(org, location, "D", approval="DECOMMISSIONED", offline=True),
                      ninja_device(org, location, "S", approval="STAGED")]
    rows = {r.machine_name: r for r in fetch(ninja)}
    assert [(rows[k].online, rows[k].never_checked_in, rows[k].deleted) for k in "APDS"] == [
        (False, False, False), (True, True, False), (False, False, True), (True, False, False)]
    assert rows["P"].last_seen is None


def test_a_token_expiring_during_the_sync_is_renewed():
    clock = Clock()
    with FakeNinjaOne({CLIENT_ID: CLIENT_SECRET}, clock=clock) as ninja:
        fill(ninja, 250)

        def late(after):
            if after is not None:
                clock.offset = 2 * 3600
        ninja.on_devices_page = late
        rows = fetch(ninja, page_size=100, clock=clock)
    assert len(rows) == 250
    assert ninja.token_requests() == 2  # renewed before the next page (a minute before expires_in)...
    assert ninja.denied == 0  # ...so the server never had to refuse it


def test_a_401_is_renewed_once_then_an_authentication_failure(ninja):
    fill(ninja, 250)
    ninja.requests_per_token = 3
    assert len(fetch(ninja, page_size=100)) == 250
    ninja.fail(lambda r: r.path == "/v2/locations", 401, {"error": "invalid_token"})
    with pytest.raises(ConnectorError, match=r"authentication failed \(HTTP 401\): check the client id") as caught:
        fetch(ninja)
    assert not caught.value.transient


def test_refused_credentials(ninja):
    with pytest.raises(ConnectorError, match=r"token request was refused \(invalid_client\): check the client id"):
        NinjaOneConnector().fetch_inventory(integration(ninja, secret="wrong"))
    with pytest.raises(ConnectorError, match="no client id"):
        NinjaOneConnector().fetch_inventory(integration(ninja, client_id=""))


@pytest.mark.parametrize("status, transient", [(502, True), (429, True), (400, False)])
def test_an_error_on_page_2_fails_the_whole_fetch(ninja, status, transient):
    fill(ninja, 250)
    ninja.fail(lambda r: r.path == "/v2/devices" and "after" in r.query, status, {"errorMessage": "x"})
    with pytest.raises(ConnectorError, match=f"HTTP {status} on devices, page 2") as caught:
        fetch(ninja, page_size=100)
    assert caught.value.transient is transient


def test_a_cursor_that_does_not_move_forward_is_refused(ninja):
    fill(ninja, 250)
    first = sorted(ninja.devices, key=lambda d: d["id"])[:100]
    ninja.fail(lambda r: r.path == "/v2/devices", 200, first)  # `after` ignored: page 1 again and again
    with pytest.raises(ConnectorError, match="devices page 2 goes back to id"):
        fetch(ninja, page_size=100)


def test_devices_of_unlisted_organizations_or_locations_are_named(ninja):
    org, location = fill(ninja, 1)
    stranger = ninja_organization("Not listed")
    ninja.devices += [ninja_device(stranger), ninja_device(org, ninja_location(org, "Gone")),
                      {**ninja_device(org, location), "offline": "no"}]
    with pytest.raises(ConnectorError) as caught:
        fetch(ninja)
    message = str(caught.value)
    assert "3 bad agent row(s)" in message
    assert f"organizationId {stranger['id']} is not among the organizations listed" in message
    assert "is not among the locations listed" in message
    assert "offline: not true or false ('no')" in message

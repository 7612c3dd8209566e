"""A fake NinjaOne public API v2 on 127.0.0.1, answering as NinjaOne's OpenAPI document says.

Public sources of each shape:
- NinjaOne's OpenAPI document "NinjaOne Public API 2.0" (app.ninjarmm.com/apidocs; the copy shipped in
  the maintained PowerShell client, repository homotechsual/NinjaOne, ninjaOne-API-core-resources.yaml):
  GET /v2/devices, /v2/organizations and /v2/locations answer plain JSON arrays, paged by `pageSize`
  and `after` ("Last Node ID from previous page", "Last Organization Identifier...", "Last Location
  Identifier..."); the records are NodeWithDetailedReferences (id, uid, parentDeviceId, organizationId,
  locationId, nodeClass, nodeRoleId, rolePolicyId, policyId, approvalStatus PENDING / STAGED /
  APPROVED / DECOMMISSIONED, offline, displayName, systemName, dnsName, netbiosName, created,
  lastContact and lastUpdate as numbers (epoch seconds with a fraction), userData, tags, maintenance,
  references), Organization (id, name, description, userData, nodeApprovalMode) and
  LocationWithOrganizationRef (id, name, address, description, userData, organizationId).
- Token, POST /ws/oauth/token with grant_type=client_credentials, client_id, client_secret and scope in
  the form body: the same client's Connect-NinjaOne; the answer is RFC 6749 section 5.1 ({"access_token",
  "token_type", "expires_in", "scope"}), refused credentials section 5.2 (HTTP 401 {"error":
  "invalid_client"}).
- Not documented, chosen here: a 401 on an API request answers {"error": "invalid_token"} (RFC 6750),
  tokens last an hour, and a page is sorted by id and holds at most `pageSize` records.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from collections.abc import Callable

from metering.tests.fake_server import FakeServer, Reply, Request, page_of

TOKEN_SECONDS = 3600
_ids = itertools.count(1)


def ninja_organization(name: str) -> dict:
    return {"id": next(_ids), "name": name, "description": "", "userData": {}, "nodeApprovalMode": "AUTOMATIC"}


def ninja_location(org: dict, name: str) -> dict:
    return {"id": next(_ids), "name": name, "address": "", "description": "", "userData": {},
            "organizationId": org["id"]}


def ninja_device(org: dict, location: dict | None = None, system_name: str = "", *, offline: bool = False,
                 approval: str = "APPROVED", last_contact: float | None = 1777622400.5,
                 node_class: str = "WINDOWS_WORKSTATION") -> dict:
    device_id = next(_ids)
    return {
        "id": device_id, "uid": str(uuid.uuid4()), "parentDeviceId": None, "organizationId": org["id"],
        "locationId": location["id"] if location else None, "nodeClass": node_class, "nodeRoleId": 1,
        "rolePolicyId": 3, "policyId": None, "approvalStatus": approval, "offline": offline,
        "displayName": f"Desk {device_id}", "systemName": system_name or f"WS-{device_id:05}",
        "dnsName": f"ws-{device_id:05}.corp.example", "netbiosName": f"WS-{device_id:05}",
        "created": 1735689600.123, "lastContact": last_contact, "lastUpdate": last_contact, "userData": {},
        "tags": [], "maintenance": None, "references": None,
    }


class FakeNinjaOne(FakeServer):
    def __init__(self, clients: dict[str, str] | None = None, *, clock: Callable[[], float] | None = None):
        super().__init__(**({"clock": clock} if clock else {}))
        self.clients = dict(clients or {})  # client id -> client secret
        self.organizations: list[dict] = []
        self.locations: list[dict] = []
        self.devices: list[dict] = []
        self.tokens: dict[str, list] = {}
        self.token_seconds = TOKEN_SECONDS
        self.requests_per_token: int | None = None
        self.on_devices_page: Callable[[int | None], None] | None = None  # called with `after`
        self.denied = 0

    def answer(self, request: Request) -> Reply:
        if request.path == "/ws/oauth/token" and request.method == "POST":
            return self._token(request)
        session = self.tokens.get(request.bearer or "")
        if session is None or self.clock() >= session[0] or session[1] == 0:
            self.denied += 1
            return Reply(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if session[1] is not None:
            session[1] -= 1
        lists = {"/v2/devices": self.devices, "/v2/organizations": self.organizations, "/v2/locations": self.locations}
        if request.path not in lists or request.method != "GET":
            return Reply(404, {"resultCode": "NOT_FOUND", "errorMessage": "Not found"})
        after = page_of(request, "after", -1) if "after" in request.query else None
        if request.path == "/v2/devices" and self.on_devices_page:
            self.on_devices_page(after)
        size = max(page_of(request, "pageSize", 1000), 1)
        rows = sorted(lists[request.path], key=lambda r: r["id"])
        return Reply(200, [r for r in rows if after is None or r["id"] > after][:size])

    def _token(self, request: Request) -> Reply:
        form = request.form
        if (form.get("grant_type") != "client_credentials"
                or self.clients.get(form.get("client_id", "")) != form.get("client_secret")):
            return Reply(401, {"error": "invalid_client"})
        token = secrets.token_urlsafe(32)
        self.tokens[token] = [self.clock() + self.token_seconds, self.requests_per_token]
        return Reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_seconds,
                           "scope": form.get("scope", "monitoring")})

    def token_requests(self) -> int:
        return sum(1 for r in self.requests if r.path == "/ws/oauth/token")

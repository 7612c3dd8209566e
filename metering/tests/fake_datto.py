"""A fake Datto RMM API v2 on 127.0.0.1, answering as Datto and public clients document it.

Public sources of each shape:
- Token, POST /auth/oauth/token with HTTP Basic `public-client:public` and the form grant_type=password,
  username=API key, password=API secret key: the DattoRMM PowerShell module's New-ApiAccessToken
  (repository aaronengels/DattoRMM) and Datto's help "Datto RMM API" (rmm.datto.com/help/en/Content/
  2SETUP/APIv2.htm: tokens expire after 100 hours, then every request gets HTTP 401; 600 requests a
  minute, HTTP 429 past it). The token answer is RFC 6749 section 5.1 ({"access_token", "token_type",
  "expires_in", "scope"}); refused credentials are section 5.2 (HTTP 400 {"error": "invalid_grant"}),
  a wrong client is HTTP 401 {"error": "unauthorized"}.
- Devices, GET /api/v2/account/devices?max=&page= (page from 0): Get-DrmmAccountDevices of the same
  module, its DevicesPage model {"devices": [Device], "pageDetails": {"count", "nextPageUrl",
  "prevPageUrl"}} and Device fields (id, uid, siteId, siteName, siteUid, deviceType {category, type},
  hostname, intIpAddress, operatingSystem, lastLoggedInUser, domain, cagVersion, displayVersion,
  extIpAddress, description, a64Bit, rebootRequired, online, suspended, deleted, lastSeen,
  lastReboot, lastAuditDate, creationDate (epoch milliseconds), udf, snmpEnabled, deviceClass,
  portalUrl, warrantyDate, antivirus, patchManagement, softwareStatus); nextPageUrl an absolute URL
  on the API host (as DattoRMM.Core's Invoke-APIMethod follows it), null on the last page;
  pageDetails.totalCount as pages of the live API carry it (count is the page's devices).
- Not documented, chosen here: the body of a 401 on an API request ({"error": "invalid_token"}, as an
  OAuth 2.0 resource server answers, RFC 6750 section 3.1) and `max` capped at 250.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import uuid
from collections.abc import Callable

from metering.tests.fake_server import FakeServer, Reply, Request, page_of

MAX_PER_PAGE = 250
TOKEN_SECONDS = 100 * 3600
_ids = itertools.count(8_100_000)


def datto_site(name: str) -> dict:
    return {"id": next(_ids), "uid": str(uuid.uuid4()), "name": name}


def datto_device(site: dict, hostname: str = "", *, online: bool = True, suspended: bool = False,
                 deleted: bool = False, last_seen: int | None = 1777622400000,
                 operating_system: str = "Microsoft Windows 11 Pro 23H2") -> dict:
    device_id = next(_ids)
    return {
        "id": device_id, "uid": str(uuid.uuid4()), "siteId": site["id"], "siteName": site["name"],
        "siteUid": site["uid"], "deviceType": {"category": "Desktop", "type": "Desktop"},
        "hostname": hostname or f"DESKTOP-{device_id}", "intIpAddress": "192.168.1.20",
        "operatingSystem": operating_system, "lastLoggedInUser": "CONTOSO\\jdoe", "domain": "CONTOSO",
        "cagVersion": "4.4.2200", "displayVersion": "23H2", "extIpAddress": "203.0.113.9", "description": "",
        "a64Bit": True, "rebootRequired": False, "online": online, "suspended": suspended, "deleted": deleted,
        "lastSeen": last_seen, "lastReboot": 1777536000000, "lastAuditDate": 1777600000000,
        "creationDate": 1735689600000, "udf": {f"udf{n}": None for n in range(1, 31)}, "snmpEnabled": False,
        "deviceClass": "device", "portalUrl": f"https://pinotage.centrastage.net/csm/search?dev={device_id}",
        "warrantyDate": None, "antivirus": {"antivirusProduct": "Windows Defender",
                                            "antivirusStatus": "RunningAndUpToDate"},
        "patchManagement": {"patchStatus": "FullyPatched", "patchesApprovedPending": 0, "patchesNotApproved": 0,
                            "patchesInstalled": 42},
        "softwareStatus": "Compliant",
    }


class FakeDatto(FakeServer):
    def __init__(self, keys: dict[str, str] | None = None, *, clock: Callable[[], float] | None = None):
        super().__init__(**({"clock": clock} if clock else {}))
        self.keys = dict(keys or {})  # API key -> API secret key
        self.devices: list[dict] = []
        self.tokens: dict[str, list] = {}  # token -> [expires (server clock), requests left or None]
        self.token_seconds = TOKEN_SECONDS
        self.requests_per_token: int | None = None
        self.total_count = True  # pageDetails.totalCount present
        self.total_extra = 0  # totalCount announces this many more devices than are served
        self.next_host: str | None = None  # nextPageUrl on this origin instead of the API's
        self.on_devices_page: Callable[[int], None] | None = None
        self.denied = 0

    def answer(self, request: Request) -> Reply:
        if request.path == "/auth/oauth/token" and request.method == "POST":
            return self._token(request)
        session = self.tokens.get(request.bearer or "")
        if session is None or self.clock() >= session[0] or session[1] == 0:
            self.denied += 1
            return Reply(401, {"error": "invalid_token", "error_description": "Access token expired"},
                         {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if session[1] is not None:
            session[1] -= 1
        if request.path == "/api/v2/account/devices" and request.method == "GET":
            return self._devices(request)
        return Reply(404, {"timestamp": "2026-05-01T08:00:00.000+0000", "status": 404, "error": "Not Found",
                           "path": request.path})

    def _token(self, request: Request) -> Reply:
        basic = "Basic " + base64.b64encode(b"public-client:public").decode()
        if request.headers.get("authorization") != basic:
            return Reply(401, {"error": "unauthorized", "error_description": "Full authentication is required"})
        form = request.form
        if form.get("grant_type") != "password" or self.keys.get(form.get("username", "")) != form.get("password"):
            return Reply(400, {"error": "invalid_grant", "error_description": "Bad credentials"})
        token = secrets.token_urlsafe(24)
        self.tokens[token] = [self.clock() + self.token_seconds, self.requests_per_token]
        return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": self.token_seconds - 1,
                           "scope": "default", "jti": str(uuid.uuid4())})

    def _devices(self, request: Request) -> Reply:
        per_page = min(max(page_of(request, "max", MAX_PER_PAGE), 1), MAX_PER_PAGE)
        page = max(page_of(request, "page", 0), 0)
        if self.on_devices_page:
            self.on_devices_page(page)
        rows = self.devices[page * per_page:(page + 1) * per_page]
        host = self.next_host or self.url
        more = (page + 1) * per_page < len(self.devices)
        details = {
            "count": len(rows),
            "nextPageUrl": f"{host}/api/v2/account/devices?max={per_page}&page={page + 1}" if more else None,
            "prevPageUrl": f"{self.url}/api/v2/account/devices?max={per_page}&page={page - 1}" if page else None,
        }
        if self.total_count:
            details["totalCount"] = len(self.devices) + self.total_extra
        return Reply(200, {"pageDetails": details, "devices": rows})

    def token_requests(self) -> int:
        return sum(1 for r in self.requests if r.path == "/auth/oauth/token")

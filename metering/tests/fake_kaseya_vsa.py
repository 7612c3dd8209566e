"""A fake Kaseya VSA 9 REST API on 127.0.0.1, answering as Kaseya documents it (not as our code expects).

Public sources of each shape:
- Login, GET /api/v1.0/auth with `Authorization: Basic base64(user:PAT)`: the VSA help's "Get
  Authentication" (help.kaseya.com/webhelp/EN/RESTAPI/9050000/33677.htm): {"Result": {"TenantId",
  "Token", "UserName", "RoleId", "ScopeId", "AdminId", "MachineId", "MachineGroupName",
  "SessionExpiration": "2019-03-21T11:33:04.833" (no zone), "CultureInfo", "TimePref",
  "OffSetInMinutes": 420, "ApiToken", "Attributes"}, "ResponseCode": 0, "Status": "OK", "Error": "None"};
  PAT login per Kaseya's "How to migrate REST API authentication from Basic to PAT method" and
  VSAModule's New-VSAConnection (repository Kaseya-Automation-Team/Kaseya-Automation-Team). The
  expiration is the user's local time, OffSetInMinutes behind UTC (VSAModule's
  ConvertTo-VSALocalExpiration adds it).
- Collections: the envelope of the VSA help's "Sample Request and Response" (31616.htm): {"TotalRecords",
  "Result": [...], "ResponseCode": 0, "Status": "OK", "Error": "None"}; `$top` capped at 100 and
  `$skip` (VSAModule README, "API Limits"; Invoke-VSARestMethod).
- Agents, GET /api/v1.0/assetmgmt/agents: the record of the help's "Get Agent" (31655.htm), numeric ids,
  Online codes 0 / 1 / 2 / 11 / 12 / 198 (suspended) / 199 (never checked in), LastCheckInTime like
  "2016-02-02T17:55:17.030Z"; MachineGroup dotted "group.org" as "root.unnamed" in "Get Agents on
  Network" (37926.htm).
- Organizations GET /api/v1.0/system/orgs (OrgId, OrgName, OrgRef: VSAModule's Get-VSAOrganization and
  its tests), views GET /api/v1.0/system/views (ViewDefId, ViewDefName: "Get Agent Views", 33829.htm,
  as public VSA clients read it) and GET /api/v1.0/assetmgmt/agentsinview/{viewId} (VSAEndpointMaps).
- Not documented, chosen here: the body of an HTTP 401 (an envelope with ResponseCode 401).
"""

from __future__ import annotations

import base64
import itertools
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from metering.tests.fake_server import FakeServer, Reply, Request, page_of

OK = {"ResponseCode": 0, "Status": "OK", "Error": "None"}
MAX_TOP = 100
_ids = itertools.count(694825728222021)


def vsa_org(ref: str, name: str = "", org_id: int | None = None) -> dict:
    return {"OrgId": org_id or next(_ids), "OrgName": name or ref.title(), "OrgRef": ref, "OrgType": "Customer",
            "DefaultDepartmentName": "root", "DefaultMachineGroupName": "root", "ParentOrgId": None,
            "Website": None, "NoOfEmployees": 0, "AnnualRevenue": 0, "ContactInfo": {}, "CustomFields": [],
            "Attributes": None}


def vsa_agent(org: dict, machine_group: str = "root", computer_name: str = "", *, agent_id: int | None = None,
              online: int = 1, last_check_in: str | None = "2026-05-01T08:00:00.030Z",
              os: str = "Windows 11 Professional Edition") -> dict:
    """An agent record of "Get Agent"; `machine_group` without the organization (added as VSA writes it)."""
    agent_id = agent_id or next(_ids)
    computer_name = computer_name or f"pc-{agent_id % 100000}"
    group = f"{machine_group}.{org['OrgRef']}" if machine_group else org["OrgRef"]
    return {
        "AgentId": agent_id, "AgentName": f"{computer_name}.{group}", "Online": online, "OSType": "10",
        "OSInfo": "Professional Edition x64 Build 22631", "OrgId": org["OrgId"], "MachineGroupId": next(_ids),
        "MachineGroup": group, "ComputerName": computer_name, "IPv6Address": "", "IPAddress": "10.0.0.12",
        "OperatingSystem": os, "OSVersion": "10.0.22631", "LastLoggedInUser": "jdoe",
        "LastRebootTime": "2026-04-30T07:12:00.000Z", "LastCheckInTime": last_check_in, "Country": "US",
        "CurrentUser": "", "Contact": "", "TimeZone": "Eastern Standard Time", "RamMBytes": 16384, "CpuCount": 8,
        "CpuSpeed": 2400, "CpuType": "Intel(R) Core(TM) i7", "DomainWorkgroup": "WORKGROUP", "AgentFlags": 0,
        "AgentVersion": 9050012, "ToolTipNotes": "", "ShowToolTip": 0, "DefaultGateway": "10.0.0.1",
        "DNSServer1": "10.0.0.1", "DNSServer2": "", "DHCPServer": "10.0.0.1", "PrimaryWINS": "",
        "SecondaryWINS": "", "ConnectionGatewayIP": "203.0.113.7", "FirstCheckIn": "2025-01-13T18:47:34.029Z",
        "PrimaryKServer": "vsa.example.com", "SecondaryKServer": "", "Attributes": {},
    }


def vsa_view(name: str, view_id: int | None = None) -> dict:
    return {"ViewDefId": view_id or next(_ids), "ViewDefName": name, "Attributes": None}


class FakeKaseyaVsa(FakeServer):
    def __init__(self, users: dict[str, str] | None = None, *, clock: Callable[[], float] | None = None,
                 session_minutes: int = 30, offset_minutes: int = 420):
        super().__init__(**({"clock": clock} if clock else {}))
        self.users = dict(users or {})  # user name -> personal access token
        self.orgs: list[dict] = []
        self.agents: list[dict] = []
        self.views: list[dict] = []
        self.members: dict[int, list[int]] = {}  # view id -> agent ids
        self.session_minutes = session_minutes
        self.offset_minutes = offset_minutes  # the user's time zone: OffSetInMinutes behind UTC
        self.tokens: dict[str, list] = {}  # token -> [expires (server clock), requests left or None]
        self.requests_per_session: int | None = None  # a session cut short on the server after N requests
        self.total_extra = 0  # TotalRecords of agents announces this many more than are served
        self.on_agents_page: Callable[[int], None] | None = None  # called with $skip before answering
        self.denied = 0  # API requests answered 401

    # --- answers ---------------------------------------------------------------------------------------
    def answer(self, request: Request) -> Reply:
        path = request.path
        if path.lower() == "/api/v1.0/auth":
            return self._login(request)
        denied = self._check_token(request)
        if denied:
            return denied
        if path == "/api/v1.0/assetmgmt/agents":
            if self.on_agents_page:
                self.on_agents_page(page_of(request, "$skip", 0))
            return self._collection(request, self.agents, extra=self.total_extra)
        if path == "/api/v1.0/system/orgs":
            return self._collection(request, self.orgs)
        if path == "/api/v1.0/system/views":
            return self._collection(request, self.views)
        if path.startswith("/api/v1.0/assetmgmt/agentsinview/"):
            view_id = path.rsplit("/", 1)[1]
            if not any(str(v["ViewDefId"]) == view_id for v in self.views):
                return Reply(404, {"Result": None, "ResponseCode": 404, "Status": "Not Found",
                                   "Error": "View not found"})
            members = {str(a) for a in self.members.get(int(view_id), [])}
            return self._collection(request, [a for a in self.agents if str(a["AgentId"]) in members])
        return Reply(404, {"Result": None, "ResponseCode": 404, "Status": "Not Found", "Error": "No such resource"})

    def _login(self, request: Request) -> Reply:
        auth = request.headers.get("authorization", "")
        try:
            user, _, pat = base64.b64decode(auth.removeprefix("Basic ")).decode("utf-8").partition(":")
        except ValueError:
            user, pat = "", ""
        if not auth.startswith("Basic ") or self.users.get(user) != pat:
            return Reply(401, {"Result": None, "ResponseCode": 401, "Status": "Unauthorized",
                               "Error": "Invalid credentials"})
        token = str(secrets.randbelow(10 ** 8))
        expires = self.clock() + self.session_minutes * 60
        self.tokens[token] = [expires, self.requests_per_session]
        local = datetime.fromtimestamp(expires, UTC).replace(tzinfo=None) - timedelta(minutes=self.offset_minutes)
        return Reply(200, {"Result": {
            "TenantId": "1", "Token": token, "UserName": user, "RoleId": 2, "ScopeId": "2", "AdminId": 55957651,
            "MachineId": None, "MachineGroupName": None,
            "SessionExpiration": local.isoformat(timespec="milliseconds"), "CultureInfo": "en-US",
            "TimePref": "Browser", "OffSetInMinutes": self.offset_minutes,
            "ApiToken": base64.b64encode(secrets.token_bytes(48)).decode(), "Attributes": None}, **OK})

    def _check_token(self, request: Request) -> Reply | None:
        token = request.bearer
        session = self.tokens.get(token or "")
        if session is None or self.clock() >= session[0] or session[1] == 0:
            self.denied += 1
            return Reply(401, {"Result": None, "ResponseCode": 401, "Status": "Unauthorized",
                               "Error": "Session expired or invalid"})
        if session[1] is not None:
            session[1] -= 1
        return None

    @staticmethod
    def _collection(request: Request, records: list[dict], *, extra: int = 0) -> Reply:
        top = min(max(page_of(request, "$top", MAX_TOP), 0), MAX_TOP)
        skip = max(page_of(request, "$skip", 0), 0)
        return Reply(200, {"TotalRecords": len(records) + extra, "Result": records[skip:skip + top], **OK})

    # --- helpers for tests -----------------------------------------------------------------------------
    def logins(self) -> int:
        return sum(1 for r in self.requests if r.path.lower() == "/api/v1.0/auth")


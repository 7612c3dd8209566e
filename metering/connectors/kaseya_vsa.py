"""Kaseya VSA 9 REST API (kind "kaseya-vsa"): agents with their organization, machine group and views.

Sources (the shapes the fake server metering/tests/fake_kaseya_vsa.py answers with):
- Kaseya's VSA 9 REST API help (help.kaseya.com/webhelp/EN/RESTAPI/9050000, help.vsa9.kaseya.com):
  "Get Authentication" (GET /auth: Result.Token, SessionExpiration, OffSetInMinutes), "Sample Request
  and Response" (the envelope: TotalRecords, Result, ResponseCode, Status, Error), "Get Agent" (the
  agent record; Online 0 offline, 1/2/11/12 online, 198 suspended, 199 never checked in) and "Get
  Agents on Network" (GroupName "root.unnamed": every organization has a machine group "root").
- Kaseya's own PowerShell client, repository Kaseya-Automation-Team/Kaseya-Automation-Team,
  VSAModule: New-VSAConnection / Update-VSAConnection (Basic base64(user:PAT) on api/v1.0/auth, the
  token then sent as Bearer, renewed a minute before SessionExpiration + OffSetInMinutes),
  Invoke-VSARestMethod ($top at most 100, $skip until TotalRecords; one new login on a 401, a second
  401 is final; a fresh login every 25,000 records because VSA SaaS cuts sessions short),
  ConvertFrom-VSAResponseBody (ResponseCode 40x/50x in an HTTP 200 is an error; 0/20x or Status OK is
  success) and VSAEndpointMaps (assetmgmt/agents, system/orgs, system/views, assetmgmt/agentsinview/{id}).
- Views are listed with ViewDefId / ViewDefName (the VSA help's "Get Agent Views", as used by public
  VSA clients); ViewId / ViewName are read too.

What an agent becomes (metering.services.AgentRow): agent_id AgentId; machine_name ComputerName (else
AgentName); organization, org_ref, org_id the OrgName, OrgRef and OrgId of the agent's OrgId; group
the machine group as a path from the top: MachineGroup `lab.workstations.birchwood` of the
organization whose OrgRef is `birchwood` is `workstations/lab`, and `root.birchwood` is `root` (VSA's
default group keeps its name); views the names of the views listing the agent; online from Online;
suspended Online 198; never_checked_in Online 199 or no LastCheckInTime (null, empty or VSA's minimum
date 0001-01-01); last_seen LastCheckInTime (ISO 8601; without a zone it is UTC).

Complete or nothing: every list is read page by page until TotalRecords records have been read; an
empty page before that, TotalRecords changing between pages, more records than announced, or fewer
distinct agents than announced fail the sync. The lists are paged by $skip: the whole inventory is read
again in the same session until two reads agree (common.OffsetPaged).
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from metering.connectors.common import (
    Agents,
    BadValue,
    ConnectorError,
    Inventory,
    Limits,
    OffsetPaged,
    PageBudget,
    Unauthorized,
    base_url,
    http_client,
    instant_from_iso,
    plain,
    read_json,
    secret_of,
    text_of,
    token_is_sendable,
    username_of,
)

AUTH_PATH = "/api/v1.0/auth"
AGENTS_PATH = "/api/v1.0/assetmgmt/agents"
ORGS_PATH = "/api/v1.0/system/orgs"
VIEWS_PATH = "/api/v1.0/system/views"
VIEW_AGENTS_PATH = "/api/v1.0/assetmgmt/agentsinview/{}"
PAGE_SIZE = 100  # $top: the API returns at most 100 records per request
RENEW_EVERY_RECORDS = 25_000  # VSAModule's MaxRecordsPerSession: SaaS sessions are cut short
RENEW_EARLY = timedelta(minutes=1)  # Update-VSAConnection renews a minute before SessionExpiration

ONLINE, OFFLINE, SUSPENDED, NEVER_CHECKED_IN = {1, 2, 11, 12}, 0, 198, 199
LOGIN_HINT = ("check the VSA user name and its personal access token (System > User Security > Users > Access "
              "Tokens: a token with the REST API scope, allowed from this server's address)")
API_HINT = "check the personal access token's access rights (agents, organizations, views)"
_ERROR_CODE = re.compile(r"^(40\d|50\d)$")
_OK_CODE = re.compile(r"^(0|20\d+)$")


class _Listing:
    """What a paged list announced (TotalRecords) and how much of it was read."""

    def __init__(self):
        self.total: int | None = None
        self.read = 0


class _Session:
    """A VSA REST session: Basic login for a token, the token sent as Bearer, renewed before it expires,
    every RENEW_EVERY_RECORDS records and once on a 401."""

    def __init__(self, *, base: str, limits: Limits, user: str, pat: str, budget: PageBudget,
                 page_size: int, clock: Callable[[], float]):
        self.base, self.limits, self.budget, self.page_size, self.clock = base, limits, budget, page_size, clock
        self.basic = "Basic " + base64.b64encode(f"{user}:{pat}".encode()).decode("ascii")
        self.client = http_client(limits)
        self.token: str | None = None
        self.renew_at: float | None = None
        self.records = 0  # read since the last login
        self.logins = 0

    def close(self) -> None:
        self.client.close()

    def login(self) -> None:
        url = self.base + AUTH_PATH
        try:
            payload = read_json(self.client, url, base=self.base, limits=self.limits, what="the login",
                                auth_hint=LOGIN_HINT, headers={"Authorization": self.basic})
            result = _envelope(payload, url, "the login", LOGIN_HINT).get("Result")
        except ConnectorError as exc:
            raise plain(exc) from None
        token = result.get("Token") if isinstance(result, dict) else None
        if isinstance(token, int) and not isinstance(token, bool):
            token = str(token)
        if not isinstance(token, str) or not token or not token_is_sendable(token):
            raise ConnectorError(f"{url}: the login answer has no usable Result.Token")
        self.token, self.records = token, 0
        self.renew_at = _renew_at(result, self.clock())
        self.logins += 1

    def get(self, url: str, what: str) -> dict:
        if (self.token is None or self.records >= RENEW_EVERY_RECORDS
                or (self.renew_at is not None and self.clock() >= self.renew_at)):
            self.login()
        try:
            return self._get(url, what)
        except Unauthorized:
            self.login()  # the session was cut short on the server: once
        try:
            return self._get(url, what)
        except Unauthorized as exc:
            raise plain(exc) from None

    def _get(self, url: str, what: str) -> dict:
        payload = read_json(self.client, url, base=self.base, limits=self.limits, what=what, auth_hint=API_HINT,
                            headers={"Authorization": f"Bearer {self.token}"})
        return _envelope(payload, url, what, API_HINT)

    def pages(self, path: str, what: str, listing: _Listing) -> Iterator[tuple[int, list]]:
        """(page number, records) of a whole list, $top/$skip until TotalRecords records are read."""
        page = 0
        while True:
            page += 1
            self.budget.take(what)
            url = f"{self.base}{path}?$top={self.page_size}&$skip={listing.read}"
            payload = self.get(url, f"{what}, page {page}")
            records = payload.get("Result")
            if not isinstance(records, list):
                raise ConnectorError(f"{url}: the answer has no Result list ({what}, page {page})")
            total = payload.get("TotalRecords")
            if total is None and page == 1 and len(records) < self.page_size:
                total = len(records)  # a list that fits one page may come without TotalRecords
            if isinstance(total, bool) or not isinstance(total, int) or total < 0:
                raise ConnectorError(f"{url}: TotalRecords is not a count ({total!r}): cannot tell whether the "
                                     f"list of {what} is complete")
            if listing.total is None:
                listing.total = total
                needed = -(-total // self.page_size) - 1
                if needed > self.budget.left():
                    raise ConnectorError(f"{self.base}: {total} {what} need {needed + page} pages, more than "
                                         f"RMM_SYNC_MAX_PAGES ({self.budget.max_pages}) allows; raise it")
            elif total != listing.total:
                raise ConnectorError(f"{url}: TotalRecords of {what} changed from {listing.total} to {total} "
                                     f"between pages (the list changed during the sync)", transient=True)
            if not records and listing.read < total:
                raise ConnectorError(f"{url}: page {page} of {what} is empty after {listing.read} of {total} "
                                     f"records: a short read, nothing applied")
            listing.read += len(records)
            if listing.read > total:
                raise ConnectorError(f"{url}: {listing.read} {what} read, more than the {total} announced")
            self.records += len(records)
            yield page, records
            if listing.read >= total:
                return


def _envelope(payload: object, url: str, what: str, hint: str) -> dict:
    """The VSA answer envelope, checked as VSAModule's Resolve-VSAResponse does: ResponseCode 40x/50x is an
    error even with HTTP 200; ResponseCode 0/20x or Status OK is success; anything else is refused."""
    if not isinstance(payload, dict):
        raise ConnectorError(f"{url}: {what} is not a JSON object")
    code = payload.get("ResponseCode")
    code_text = "" if code is None or isinstance(code, bool) else str(code)
    error = payload.get("Error")
    if _ERROR_CODE.match(code_text):
        message = f"{url}: VSA answered ResponseCode {code_text} on {what}: {error or payload.get('Status') or '?'}"
        if code_text == "401":
            raise Unauthorized(f"{message}: {hint}")
        if code_text == "403":
            raise ConnectorError(f"{message}: {hint}")
        raise ConnectorError(message, transient=code_text.startswith("50") or code_text == "429")
    if _OK_CODE.match(code_text) or payload.get("Status") == "OK":
        return payload
    raise ConnectorError(f"{url}: not the VSA answer envelope on {what} (ResponseCode {code!r}, Status "
                         f"{payload.get('Status')!r}, Error {error!r})")


def _renew_at(result: dict, now: float) -> float | None:
    """When to log in again: a minute before SessionExpiration. Without a zone it is the user's local time,
    OffSetInMinutes behind UTC (the VSA help's sample: OffSetInMinutes 420 for UTC-7), as VSAModule's
    ConvertTo-VSALocalExpiration reads it. None (rely on a 401) when missing, unreadable or already past."""
    raw = result.get("SessionExpiration")
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        instant = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if instant.tzinfo is None:
        offset = result.get("OffSetInMinutes")
        minutes = offset if isinstance(offset, int | float) and not isinstance(offset, bool) else 0
        instant = instant.replace(tzinfo=UTC) + timedelta(minutes=minutes)
    at = (instant - RENEW_EARLY).timestamp()
    return at if at > now else None


def _online(status: int | None) -> bool | None:
    if status in ONLINE:
        return True
    if status in (OFFLINE, NEVER_CHECKED_IN):
        return False
    return None  # suspended (198), absent, or a code the help does not list


def group_path(machine_group: str, org_ref: str) -> str:
    """VSA's dotted machine group (sub-groups first, the organization's reference last) as a path from the
    top: `lab.workstations.birchwood` of `birchwood` is `workstations/lab`. Raises BadValue when the
    group does not end with the organization's reference."""
    parts = machine_group.strip().split(".") if machine_group.strip() else []
    ref = org_ref.strip().split(".") if org_ref.strip() else []
    if ref and [p.lower() for p in parts[-len(ref):]] == [r.lower() for r in ref]:
        parts = parts[:-len(ref)]
    elif parts:
        raise BadValue(f"MachineGroup {machine_group!r} does not end with its organization's reference {org_ref!r}")
    if any(not part.strip() for part in parts):
        raise BadValue(f"MachineGroup {machine_group!r} has an empty group name")
    return "/".join(part.strip() for part in reversed(parts))


class KaseyaVsaConnector(OffsetPaged):
    """Every agent of a Kaseya VSA 9 server (the module docstring has the API and the mapping)."""

    page_size_default = PAGE_SIZE

    @contextmanager
    def reader(self, integration) -> Iterator[Callable[[], Inventory]]:
        limits = self.limits()
        base = base_url(integration)
        user = username_of(integration, "VSA user name")
        if ":" in user:
            raise ConnectorError("the VSA user name holds a colon, which HTTP Basic authentication cannot carry")
        pat = secret_of(integration, "personal access token")
        session = _Session(base=base, limits=limits, user=user, pat=pat, budget=PageBudget(base, limits.max_pages),
                           page_size=self.page_size, clock=self.clock)
        try:
            session.login()
            yield lambda: self._read(session)
        finally:
            session.close()

    def _read(self, session: _Session) -> Inventory:
        """Every agent, with its organization and views, read once (each read has RMM_SYNC_MAX_PAGES pages)."""
        base = session.base
        budget = session.budget = PageBudget(base, session.limits.max_pages)  # each read its own pages
        orgs = self._organizations(session)
        views = self._views(session)
        agents, listing, groups = Agents(), _Listing(), {}
        for page, records in session.pages(AGENTS_PATH, "agents", listing):
            for position, record in enumerate(records, start=1):
                self._agent(agents, f"agents page {page}, agent {position}", record, orgs, views, groups)
        inventory = agents.result(base, announced=listing.total, pages=budget.read)
        if len(inventory) != listing.total:
            raise ConnectorError(f"{base}: {len(inventory)} distinct agents read, the API announced {listing.total} "
                                 f"(agents moved between pages): a short read, nothing applied", transient=True)
        return inventory

    @staticmethod
    def _organizations(session: _Session) -> dict[str, tuple[str, str]]:
        orgs = {}
        for page, records in session.pages(ORGS_PATH, "organizations", _Listing()):
            for position, record in enumerate(records, start=1):
                try:
                    org_id = text_of(record, "OrgId").strip()
                    name, ref = text_of(record, "OrgName"), text_of(record, "OrgRef")
                except (BadValue, AttributeError) as exc:
                    raise ConnectorError(f"{session.base}{ORGS_PATH}: organizations page {page}, record {position}: "
                                         f"{exc}") from None
                if org_id:
                    orgs[org_id] = (name, ref)
        return orgs

    @staticmethod
    def _views(session: _Session) -> dict[str, set[str]]:
        """Agent id -> the names of the views listing it."""
        views = []
        for page, records in session.pages(VIEWS_PATH, "views", _Listing()):
            for position, record in enumerate(records, start=1):
                try:
                    view_id = text_of(record, "ViewDefId") or text_of(record, "ViewId")
                    name = text_of(record, "ViewDefName") or text_of(record, "ViewName")
                except (BadValue, AttributeError) as exc:
                    raise ConnectorError(f"{session.base}{VIEWS_PATH}: views page {page}, record {position}: "
                                         f"{exc}") from None
                if view_id.strip() and name.strip():
                    views.append((view_id.strip(), name.strip()))
        in_views: dict[str, set[str]] = defaultdict(set)
        for view_id, name in views:
            path = VIEW_AGENTS_PATH.format(urllib.parse.quote(view_id, safe=""))
            for page, records in session.pages(path, f"agents in view {name!r}", _Listing()):
                for record in records:
                    try:
                        agent_id = text_of(record, "AgentId").strip()
                    except (BadValue, AttributeError) as exc:
                        raise ConnectorError(f"{session.base}{path}: page {page}: {exc}") from None
                    if agent_id:
                        in_views[agent_id].add(name)
        return in_views

    @staticmethod
    def _agent(agents: Agents, where: str, record: object, orgs: dict, views: dict, groups: dict) -> None:
        if not isinstance(record, dict):
            agents.error(where, "not a JSON object")
            return
        try:
            agent_id = text_of(record, "AgentId").strip()
            if agent_id:
                where = f"{where} (AgentId {agent_id[:40]})"
            org_id = text_of(record, "OrgId").strip()
            if org_id not in orgs:
                raise BadValue(f"OrgId {org_id!r} is not among the organizations the API user can see")
            name, ref = orgs[org_id]
            machine_group = text_of(record, "MachineGroup")
            group = groups.get((machine_group, ref))  # a few groups for many agents: each read once
            if group is None:
                group = groups[(machine_group, ref)] = group_path(machine_group, ref)
            status = record.get("Online")
            if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
                raise BadValue(f"Online: not a status code ({status!r})")
            checked_in = instant_from_iso(record.get("LastCheckInTime"), "LastCheckInTime")
            if checked_in is not None and checked_in.year == 1:  # .NET DateTime.MinValue: never
                checked_in = None
            agents.add(where, agent_id=agent_id,
                       machine_name=text_of(record, "ComputerName").strip() or text_of(record, "AgentName"),
                       organization=name, org_ref=ref, org_id=org_id, group=group,
                       os=text_of(record, "OperatingSystem"), last_seen=checked_in,
                       views=views.get(agent_id, ()),
                       online=_online(status),
                       suspended=status == SUSPENDED,
                       never_checked_in=status == NEVER_CHECKED_IN or checked_in is None)
        except BadValue as exc:
            agents.error(where, str(exc))

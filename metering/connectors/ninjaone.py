"""NinjaOne public API v2 (kind "ninjaone"): every device, with its organization and location names.

Sources (the shapes the fake server metering/tests/fake_ninjaone.py answers with):
- NinjaOne's OpenAPI document "NinjaOne Public API 2.0" (app.ninjarmm.com/apidocs; a copy ships in
  the maintained PowerShell client, repository homotechsual/NinjaOne, ninjaOne-API-core-resources.yaml):
  GET /v2/devices, /v2/organizations and /v2/locations are plain JSON arrays, each paged with
  `pageSize` and `after` (the last id of the previous page); a device (NodeWithDetailedReferences)
  has id, organizationId, locationId, nodeClass, approvalStatus (PENDING, STAGED, APPROVED,
  DECOMMISSIONED), offline, displayName, systemName, dnsName, lastContact (a number: epoch seconds
  with a fraction); an organization has id and name; a location has id, name and organizationId.
- The same client's Connect-NinjaOne: client credentials (POST {instance}/ws/oauth/token,
  grant_type=client_credentials with client_id and client_secret in the form body and a scope), the
  access_token sent as Bearer, fetched again when it expires (expires_in).

What a device becomes (metering.services.AgentRow): agent_id id; machine_name systemName (else dnsName,
else displayName); organization the name of organizationId, org_id that id (NinjaOne has no short
reference); group the name of locationId; os the nodeClass (the device list has no OS name);
last_seen lastContact; online the opposite of offline; never_checked_in approvalStatus PENDING;
deleted approvalStatus DECOMMISSIONED (kept by NinjaOne, no longer managed).

Complete or nothing: the API announces no count, so a list ends only with an empty page (a page
shorter than asked is not taken as the end: a server that caps pageSize lower would otherwise cut the
inventory short); ids must grow from page to page (else the cursor is looping), and a device whose
organization or location is not listed fails the sync.
"""

from __future__ import annotations

from collections.abc import Iterator

from metering.connectors.common import (
    Agents,
    ApiConnector,
    BadValue,
    ConnectorError,
    Inventory,
    OAuthSession,
    PageBudget,
    base_url,
    flag_of,
    instant_from_epoch,
    secret_of,
    text_of,
    username_of,
)
from metering.counting import has_no_agent

TOKEN_PATH = "/ws/oauth/token"
DEVICES_PATH = "/v2/devices"
ORGANIZATIONS_PATH = "/v2/organizations"
LOCATIONS_PATH = "/v2/locations"
SCOPE = "monitoring"  # read-only: devices, organizations, locations
PAGE_SIZE = 1000
AUTH_HINT = ("check the client id and client secret of the API client app (Administration > Apps > API: a "
             "client credentials app with the monitoring scope)")


class NinjaOneConnector(ApiConnector):
    """Every device of a NinjaOne instance (the module docstring has the API and the mapping)."""

    page_size_default = PAGE_SIZE

    def fetch_inventory(self, integration) -> Inventory:
        limits = self.limits()
        base = base_url(integration)
        client_id = username_of(integration, "client id")
        secret = secret_of(integration, "client secret")
        budget = PageBudget(base, limits.max_pages)
        agents = Agents()
        with OAuthSession(base=base, limits=limits, token_url=base + TOKEN_PATH, client_id=client_id,
                          client_secret=secret, auth_method="client_secret_post",
                          grant={"grant_type": "client_credentials", "scope": SCOPE},
                          auth_hint=AUTH_HINT, clock=self.clock) as session:
            organizations = self._names(session, budget, base, ORGANIZATIONS_PATH, "organizations")
            locations = self._names(session, budget, base, LOCATIONS_PATH, "locations")
            later = []  # devices of an organization or location created after its list was read
            for page, position, _, device in self._pages(session, budget, base, DEVICES_PATH, "devices"):
                where = f"devices page {page}, device {position}"
                if self._unknown_place(device, organizations, locations):
                    later.append((where, device))
                    continue
                self._device(agents, where, device, organizations, locations)
            if later:  # an MSP onboarding a customer while the sync ran: the lists are read again, once
                organizations = self._names(session, budget, base, ORGANIZATIONS_PATH, "organizations")
                locations = self._names(session, budget, base, LOCATIONS_PATH, "locations")
                for where, device in later:
                    self._device(agents, where, device, organizations, locations)
        # a device whose place is still not listed: named, and tried again by the nightly job (rmm.md 1), as a
        # list that changed while it was read (an organization deleted meanwhile)
        return agents.result(base, announced=None, pages=budget.read, transient=bool(later))

    @staticmethod
    def _unknown_place(device, organizations: dict, locations: dict) -> bool:
        if not isinstance(device, dict):
            return False  # refused by _device, with its reason
        org_id, location_id = device.get("organizationId"), device.get("locationId")
        return ((org_id is not None and str(org_id) not in organizations)
                or (location_id not in (None, "") and str(location_id) not in locations))

    def _names(self, session: OAuthSession, budget: PageBudget, base: str, path: str, what: str) -> dict[str, str]:
        names = {}
        for page, position, key, record in self._pages(session, budget, base, path, what):
            try:
                names[key] = text_of(record, "name")
            except BadValue as exc:
                raise ConnectorError(f"{base}{path}: {what} page {page}, record {position}: {exc}") from None
        return names

    def _pages(self, session: OAuthSession, budget: PageBudget, base: str, path: str,
               what: str) -> Iterator[tuple[int, int, str, dict]]:
        """(page, position, id, record) of a whole list: pageSize/after until an empty page."""
        after, page = None, 0
        while True:
            page += 1
            budget.take(what)
            url = f"{base}{path}?pageSize={self.page_size}" + ("" if after is None else f"&after={after}")
            records = session.get_json(url, f"{what}, page {page}")
            if not isinstance(records, list):
                raise ConnectorError(f"{url}: the answer is not a JSON array ({what}, page {page})")
            if not records:
                return
            for position, record in enumerate(records, start=1):
                key = record.get("id") if isinstance(record, dict) else None
                if isinstance(key, bool) or not isinstance(key, int):
                    raise ConnectorError(f"{url}: {what} page {page}, record {position} has no numeric id")
                if after is not None and key <= after:
                    raise ConnectorError(f"{url}: {what} page {page} goes back to id {key} after {after} (the "
                                         f"paging cursor is not moving forward)")
                after = key
                yield page, position, str(key), record

    @staticmethod
    def _device(agents: Agents, where: str, device: dict, organizations: dict, locations: dict) -> None:
        where = f"{where} (id {device['id']})"
        try:
            org_id = text_of(device, "organizationId")
            if org_id not in organizations:
                raise BadValue(f"organizationId {org_id or 'null'} is not among the organizations listed")
            location_id = text_of(device, "locationId")
            if location_id and location_id not in locations:
                raise BadValue(f"locationId {location_id} is not among the locations listed")
            status = device.get("approvalStatus")
            if status is not None and not isinstance(status, str):
                raise BadValue(f"approvalStatus: not a text value ({status!r})")
            offline = flag_of(device, "offline")
            name = (text_of(device, "systemName").strip() or text_of(device, "dnsName").strip()
                    or text_of(device, "displayName"))
            agents.add(where, agent_id=str(device["id"]), machine_name=name, organization=organizations[org_id],
                       org_id=org_id, group=locations.get(location_id, ""), os=text_of(device, "nodeClass"),
                       last_seen=instant_from_epoch(device.get("lastContact"), "lastContact"),
                       online=None if offline is None else not offline,
                       never_checked_in=status == "PENDING", deleted=status == "DECOMMISSIONED",
                       no_agent=has_no_agent(text_of(device, "nodeClass"), device.get("parentDeviceId")))
        except BadValue as exc:
            agents.error(where, str(exc))

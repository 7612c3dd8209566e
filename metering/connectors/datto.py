"""Datto RMM API v2 (kind "datto"): every device of the account, with its site.

Sources (the shapes the fake server metering/tests/fake_datto.py answers with):
- Datto RMM help, "Datto RMM API" (rmm.datto.com/help/en/Content/2SETUP/APIv2.htm): OAuth 2.0 access
  tokens that expire after 100 hours (then HTTP 401), 600 requests a minute (HTTP 429 past it).
- The DattoRMM PowerShell module (repository aaronengels/DattoRMM): New-ApiAccessToken (POST
  {api}/auth/oauth/token with HTTP Basic public-client:public and grant_type=password, username=the
  API key, password=the API secret key; the answer's access_token sent as Bearer) and
  Get-DrmmAccountDevices (GET {api}/api/v2/account/devices?max=&page=, following
  pageDetails.nextPageUrl until it is null; the DevicesPage model: devices[] with uid, hostname,
  siteId, siteName, siteUid, operatingSystem, lastSeen, online, suspended, deleted, deviceType...,
  and pageDetails {count, nextPageUrl, prevPageUrl}). Other public clients (DattoRMM.Core's
  Invoke-APIMethod) follow the absolute nextPageUrl the same way; pages seen from the live API also
  carry pageDetails.totalCount (the account's total), read here where present.

What a device becomes (metering.services.AgentRow): agent_id uid; machine_name hostname; organization
siteName; org_id siteUid (Datto sites have no short reference: org_ref stays empty); group "" (the
device record has no group); os operatingSystem; last_seen lastSeen (epoch milliseconds); online,
suspended, deleted as the API says (Datto keeps deleted devices in its lists); never_checked_in when
lastSeen is absent or 0.

Complete or nothing: a page whose devices are fewer or more than its pageDetails.count, a total that
changes between pages or is not reached, a nextPageUrl on another host or seen before, fail the sync. The
pages are numbered: the whole inventory is read again in the same session until two reads agree
(common.OffsetPaged).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from metering.connectors.common import (
    Agents,
    BadValue,
    ConnectorError,
    Inventory,
    Limits,
    OAuthSession,
    OffsetPaged,
    PageBudget,
    base_url,
    flag_of,
    instant_from_epoch,
    origin,
    secret_of,
    text_of,
    username_of,
)

TOKEN_PATH = "/auth/oauth/token"
DEVICES_PATH = "/api/v2/account/devices"
PAGE_SIZE = 250  # `max`: the most the API serves per page
PUBLIC_CLIENT = ("public-client", "public")  # Datto's documented OAuth client for the password grant
AUTH_HINT = ("check the API key and API secret key (Setup > Users > the API user > Generate API Keys) and that "
             "API access is enabled (Setup > Global Settings > Access Control); an HTTP 403 is also Datto's "
             "temporary block after too many requests")


class DattoConnector(OffsetPaged):
    """Every device of a Datto RMM account (the module docstring has the API and the mapping)."""

    page_size_default = PAGE_SIZE

    @contextmanager
    def reader(self, integration) -> Iterator[Callable[[], Inventory]]:
        limits = self.limits()
        base = base_url(integration).removesuffix("/api")  # the API URL with or without Datto's /api
        key = username_of(integration, "API key")
        secret = secret_of(integration, "API secret key")
        with OAuthSession(base=base, limits=limits, token_url=base + TOKEN_PATH, client_id=PUBLIC_CLIENT[0],
                          client_secret=PUBLIC_CLIENT[1], auth_method="client_secret_basic",
                          grant={"grant_type": "password", "username": key, "password": secret},
                          auth_hint=AUTH_HINT, clock=self.clock) as session:
            yield lambda: self._read(session, base, limits)

    def _read(self, session: OAuthSession, base: str, limits: Limits) -> Inventory:
        """Every device, read once (each read has RMM_SYNC_MAX_PAGES pages)."""
        budget = PageBudget(base, limits.max_pages)
        agents = Agents()
        total = None  # pageDetails.totalCount, where the API gives it
        counted = 0  # the sum of the pages' pageDetails.count
        url, page, seen = f"{base}{DEVICES_PATH}?max={self.page_size}&page=0", 0, set()
        while url is not None:
            page += 1
            if url in seen:
                raise ConnectorError(f"{base}: page {page} links back to {url}, already read (a paging loop)")
            seen.add(url)
            budget.take("devices")
            payload = session.get_json(url, f"devices, page {page}")
            if not isinstance(payload, dict) or not isinstance(payload.get("devices"), list):
                raise ConnectorError(f"{url}: the answer has no \"devices\" list (page {page})")
            details = payload.get("pageDetails")
            if not isinstance(details, dict):
                raise ConnectorError(f"{url}: the answer has no pageDetails (page {page})")
            devices = payload["devices"]
            count = _count(details, "count", url)
            if count is not None and count != len(devices):
                raise ConnectorError(f"{url}: page {page} announces {count} devices and holds {len(devices)}: "
                                     f"a short read, nothing applied")
            counted += len(devices)
            announced = _count(details, "totalCount", url)
            if announced is not None:
                if total is not None and announced != total:
                    raise ConnectorError(f"{url}: totalCount changed from {total} to {announced} between pages "
                                         f"(devices changed during the sync)", transient=True)
                total = announced
            for position, device in enumerate(devices, start=1):
                self._device(agents, f"devices page {page}, device {position}", device)
            url = self._next(details, url, base)
        if total is not None and counted != total:
            raise ConnectorError(f"{base}: {counted} devices read, the API announced {total}: a short read, "
                                 f"nothing applied")
        inventory = agents.result(base, announced=total, pages=budget.read)
        if total is not None and len(inventory) != total:
            raise ConnectorError(f"{base}: {len(inventory)} distinct devices read, the API announced {total} "
                                 f"(devices moved between pages): a short read, nothing applied", transient=True)
        return inventory

    @staticmethod
    def _next(details: dict, url: str, base: str) -> str | None:
        link = details.get("nextPageUrl")
        if link is None or link == "":
            return None
        if not isinstance(link, str):
            raise ConnectorError(f"{url}: pageDetails.nextPageUrl is not a link")
        target = urllib.parse.urljoin(url, link)
        if origin(target) != origin(base):
            raise ConnectorError(f"{url}: the next page is on another host ({target}); refused (the token is only "
                                 f"sent to {base})")
        return target

    @staticmethod
    def _device(agents: Agents, where: str, device: object) -> None:
        if not isinstance(device, dict):
            agents.error(where, "not a JSON object")
            return
        try:
            uid = text_of(device, "uid").strip()
            if uid:
                where = f"{where} (uid {uid[:40]})"
            seen = instant_from_epoch(device.get("lastSeen"), "lastSeen", millis=True)
            agents.add(where, agent_id=uid, machine_name=text_of(device, "hostname"),
                       organization=text_of(device, "siteName"), org_id=text_of(device, "siteUid"),
                       os=text_of(device, "operatingSystem"), last_seen=seen,
                       online=flag_of(device, "online"), suspended=bool(flag_of(device, "suspended")),
                       deleted=bool(flag_of(device, "deleted")), never_checked_in=seen is None)
        except BadValue as exc:
            agents.error(where, str(exc))


def _count(details: dict, key: str, url: str) -> int | None:
    value = details.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConnectorError(f"{url}: pageDetails.{key} is not a count ({value!r})")
    return value

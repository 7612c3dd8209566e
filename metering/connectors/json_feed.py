"""The JSON inventory feed (kind "json"): the product's own format, for home-made exporters.

An exporter (a script on the partner's side, a small web app) serves the RMM's agents as pages of
JSON, and the sync reads them like a vendor API:

    GET {base}/api/v1/agents?page=1
    Authorization: Bearer TOKEN              (the integration's secret)
    Accept: application/json

    200 {"agents": [{"agent_id": "a1", "machine_name": "PC-1", "organization": "ACME",
                     "group": "workstations/lab", "os": "Windows 11",
                     "last_seen": "2026-05-01T08:00:00Z"}, ...],
         "next_page": 2}                      (or null on the last page)

Instead of "next_page" (a page number) a page may give "next": a link, relative or absolute, on the
same host. Each agent has the rmm-assets columns (import-formats 5.8) and is checked as an import row is:
agent_id, machine_name and organization required, texts of at most 200 characters, last_seen an
ISO 8601 instant with Z or an offset (or null). Values are strings (numbers are read as text).
Any other HTTP status than 200, a body that is not this JSON, or a bad agent fails the whole sync.
The pages are numbered: the whole feed is read again until two reads agree (common.OffsetPaged).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from metering.connectors.common import (
    Agents,
    ConnectorError,
    Inventory,
    Limits,
    OffsetPaged,
    PageBudget,
    base_url,
    http_client,
    origin,
    plain,
    read_json,
    secret_of,
)

AGENTS_PATH = "/api/v1/agents"
AUTH_HINT = "check the API token and the integrator user's rights"


class JsonFeedConnector(OffsetPaged):
    """GET {base}/api/v1/agents?page=N with `Authorization: Bearer TOKEN`, following `next_page` (a page
    number) or `next` (a link on the same host) until there is none (the module docstring has the format)."""

    @contextmanager
    def reader(self, integration) -> Iterator[Callable[[], Inventory]]:
        limits = self.limits()
        base = base_url(integration)
        token = secret_of(integration)
        with http_client(limits) as client:
            yield lambda: self._read(client, base, token, limits)

    def _read(self, client: httpx.Client, base: str, token: str, limits: Limits) -> Inventory:
        """Every agent, read once (each read has RMM_SYNC_MAX_PAGES pages)."""
        agents = Agents()
        budget = PageBudget(base, limits.max_pages)
        url, page, seen = f"{base}{AGENTS_PATH}?page=1", 1, set()
        while url is not None:
            if url in seen:
                raise ConnectorError(f"{base}: page {page} links back to {url}, already read (a paging loop)")
            seen.add(url)
            budget.take("agents")
            try:
                payload = read_json(client, url, base=base, limits=limits, what=f"page {page}",
                                    auth_hint=AUTH_HINT, headers={"Authorization": f"Bearer {token}"})
            except ConnectorError as exc:
                raise plain(exc) from None
            if not isinstance(payload, dict):
                raise ConnectorError(f"{url}: page {page} is not a JSON object")
            rows = payload.get("agents")
            if not isinstance(rows, list):
                raise ConnectorError(f"{url}: the response has no \"agents\" list")
            where = f"page {page}"
            for position, item in enumerate(rows, start=1):
                self._agent(agents, f"{where}, agent {position}", item)
            url, page = self._next(payload, url, base, page)
        return agents.result(base, announced=None, pages=budget.read)

    @staticmethod
    def _agent(agents: Agents, where: str, item: object) -> None:
        if not isinstance(item, dict):
            agents.error(where, "not a JSON object")
            return
        raw = {}
        for name in agents.fields:
            value = item.get(name)
            if value is not None and (not isinstance(value, str | int) or isinstance(value, bool)):
                agents.error(where, f"{name}: not a text value")
                return
            raw[name] = "" if value is None else str(value)
        agents.add_raw(where, raw)

    @staticmethod
    def _next(payload: dict, url: str, base: str, page: int) -> tuple[str | None, int]:
        link = payload.get("next")
        if link:
            if not isinstance(link, str):
                raise ConnectorError(f"{url}: \"next\" is not a link")
            target = urllib.parse.urljoin(url, link)
            if origin(target) != origin(base):
                raise ConnectorError(f"{url}: the next page is on another host ({target}); refused")
            return target, page + 1
        number = payload.get("next_page")
        if number is None:
            return None, page
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ConnectorError(f"{url}: \"next_page\" is not a page number: {number!r}")
        return f"{base}{AGENTS_PATH}?page={number}", number

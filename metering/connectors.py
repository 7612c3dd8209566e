"""RMM connectors: fetch a partner's whole inventory, or fail with one clear line (RULES 3.6, 6).

`fetch_inventory(integration) -> list[AgentRow]` returns every agent of the RMM or raises
ConnectorError: never a partial list, because the inventory is applied as a whole and an agent
missing from it is an agent removed (a credit on the next invoice). A fault that may pass by
itself (a timeout, HTTP 5xx or 429, a dropped connection) is marked `transient`, so the nightly
task tries again later; the others (a refused token, a body that is not the API's JSON, a bad
row) need a person.

Both connectors read agents with the rmm-assets import's own columns and widgets (lengths,
instants with a time zone, required cells), so a sync accepts exactly what an import accepts.

The REST connector uses the standard library (urllib.request) rather than `requests`: one GET per
page with a timeout is all it needs, and it adds no dependency to pin. Redirects are refused
rather than followed, so the bearer token is only ever sent to the configured host.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Protocol

from django.conf import settings

from billing.importing import ImportContext, ImportFileError, read_csv
from billing.sealed import NO_KEY_OPENS, Unreadable
from metering.imports import RmmAssetsImport, agent_row
from metering.services import AgentRow

AGENTS_PATH = "/api/v1/agents"
REPORTED_ROW_ERRORS = 5  # a message names the first few bad agents and counts the rest


class ConnectorError(Exception):
    """The inventory could not be fetched whole; `transient` when trying again later may succeed."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class Inventory(list):
    """The agents fetched (a plain list of AgentRow), and where they came from."""

    def __init__(self, agents=(), *, source: str = ""):
        super().__init__(agents)
        self.source = source


class Connector(Protocol):
    def fetch_inventory(self, integration) -> list[AgentRow]: ...


class _Agents:
    """Agents collected row by row with the rmm-assets rules: each row checked by the import's
    widgets; the same agent twice is fine only with the same values (RULES 6)."""

    fields = ("agent_id", "machine_name", "organization", "group", "os", "last_seen")

    def __init__(self):
        self.kind = RmmAssetsImport()
        self.ctx = ImportContext(kind=self.kind.name)
        self.rows: dict[str, tuple[str, AgentRow]] = {}
        self.errors: list[str] = []
        self.count = 0

    def add(self, where: str, raw: dict) -> None:
        self.count += 1
        before = len(self.ctx.errors)
        parsed = self.kind.parse_row(self.count, raw, self.ctx)
        if parsed is None:
            self.errors += [f"{where}: {e.column}: {e.reason}" for e in self.ctx.errors[before:]]
            return
        agent = agent_row(parsed.values)
        first = self.rows.get(agent.agent_id)
        if first is None:
            self.rows[agent.agent_id] = (where, agent)
        elif first[1] != agent:
            self.errors.append(f"{where}: agent_id: same agent as {first[0]} with different values")

    def error(self, where: str, reason: str) -> None:
        self.errors.append(f"{where}: {reason}")

    def result(self, source: str) -> Inventory:
        if self.errors:
            shown = "; ".join(self.errors[:REPORTED_ROW_ERRORS])
            more = len(self.errors) - REPORTED_ROW_ERRORS
            raise ConnectorError(f"{source}: {len(self.errors)} bad agent row(s): {shown}"
                                 + (f" (and {more} more)" if more > 0 else ""))
        return Inventory((agent for _, agent in self.rows.values()), source=source)


# --- REST (VSA-style) -----------------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises the 3xx as an HTTPError


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def token_is_sendable(token: str) -> bool:
    """A bearer token is visible ASCII (RFC 6750 b64token and the like): nothing that could break or
    be refused in a header, and be quoted back in the error."""
    return all("!" <= char <= "~" for char in token)


class RestConnector:
    """GET {base}/api/v1/agents?page=N with `Authorization: Bearer TOKEN`, following `next_page` (a
    page number) or `next` (a link on the same host) until there is none.

    A page is {"agents": [{"agent_id", "machine_name", "organization", "group", "os",
    "last_seen"}, ...], "next_page": N | null}. Limits come from settings: a timeout per request,
    a number of pages and a size per page (a runaway API fails the sync instead of filling memory).
    """

    def __init__(self, *, timeout: float | None = None, max_pages: int | None = None,
                 max_page_bytes: int | None = None):
        self.timeout = timeout
        self.max_pages = max_pages
        self.max_page_bytes = max_page_bytes

    def fetch_inventory(self, integration) -> list[AgentRow]:
        timeout = self.timeout or settings.RMM_SYNC_TIMEOUT_SECONDS
        max_pages = self.max_pages or settings.RMM_SYNC_MAX_PAGES
        base = (integration.base_url or "").strip().rstrip("/")
        if _origin(base)[0] not in ("http", "https") or not _origin(base)[1]:
            raise ConnectorError(f"the base URL {base!r} is not an http:// or https:// address")
        if isinstance(integration.api_token, Unreadable):
            raise ConnectorError(f"the stored API token {NO_KEY_OPENS}, or type the token again")
        token = (integration.api_token or "").strip()
        if not token:
            raise ConnectorError("no API token is set on the integration")
        if not token_is_sendable(token):  # urllib would refuse it quoting the whole header, token included
            raise ConnectorError("the API token holds spaces, line breaks or other characters an HTTP header cannot "
                                 "carry: type it again")
        opener = urllib.request.build_opener(_NoRedirect)
        agents = _Agents()
        url, page, seen = f"{base}{AGENTS_PATH}?page=1", 1, set()
        while url is not None:
            if len(seen) >= max_pages:
                raise ConnectorError(f"{base}: more than {max_pages} pages of agents; stopped (is the API "
                                     f"paging in a loop? raise RMM_SYNC_MAX_PAGES if the RMM is that large)")
            if url in seen:
                raise ConnectorError(f"{base}: page {page} links back to {url}, already read (a paging loop)")
            seen.add(url)
            payload = self._page(opener, url, token, page, timeout)
            where = f"page {page}"
            rows = payload.get("agents")
            if not isinstance(rows, list):
                raise ConnectorError(f"{url}: the response has no \"agents\" list")
            for position, item in enumerate(rows, start=1):
                if not isinstance(item, dict):
                    agents.error(f"{where}, agent {position}", "not a JSON object")
                    continue
                raw = {}
                for name in agents.fields:
                    value = item.get(name)
                    if value is not None and not isinstance(value, str | int):
                        agents.error(f"{where}, agent {position}", f"{name}: not a text value")
                        break
                    raw[name] = "" if value is None else str(value)
                else:
                    agents.add(f"{where}, agent {position}", raw)
            url, page = self._next(payload, url, base, page)
        return agents.result(base)

    def _page(self, opener, url: str, token: str, page: int, timeout: float) -> dict:
        request = urllib.request.Request(url, headers={"Accept": "application/json",
                                                       "User-Agent": "msp-billing-rmm-sync"})
        request.add_unredirected_header("Authorization", f"Bearer {token}")
        limit = self.max_page_bytes or settings.RMM_SYNC_MAX_PAGE_BYTES
        try:
            with opener.open(request, timeout=timeout) as response:
                body = response.read(limit + 1)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, url, page) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise ConnectorError(f"{url}: no answer within {timeout:g} s (page {page})", transient=True) from None
            raise ConnectorError(f"{url}: cannot connect: {exc.reason}", transient=True) from None
        except TimeoutError:
            raise ConnectorError(f"{url}: no answer within {timeout:g} s (page {page})", transient=True) from None
        except (OSError, http.client.HTTPException) as exc:
            raise ConnectorError(f"{url}: the connection failed on page {page}: {exc or type(exc).__name__}",
                                 transient=True) from None
        except ValueError as exc:  # a URL urllib cannot use
            raise ConnectorError(f"{url}: {exc}") from None
        if len(body) > limit:
            raise ConnectorError(f"{url}: page {page} is larger than {limit} bytes")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConnectorError(f"{url}: page {page} is not valid JSON ({exc})") from None
        if not isinstance(payload, dict):
            raise ConnectorError(f"{url}: page {page} is not a JSON object")
        return payload

    @staticmethod
    def _http_error(exc: urllib.error.HTTPError, url: str, page: int) -> ConnectorError:
        code = exc.code
        exc.close()
        if code in (401, 403):
            return ConnectorError(f"{url}: authentication failed (HTTP {code}): check the API token and the "
                                  f"integrator user's rights")
        if 300 <= code < 400:
            return ConnectorError(f"{url}: redirected (HTTP {code}) to {exc.headers.get('Location', '?')}: set "
                                  f"the base URL to the final address (the token is never sent elsewhere)")
        if code == 429 or code >= 500:
            return ConnectorError(f"{url}: HTTP {code} on page {page}", transient=True)
        return ConnectorError(f"{url}: HTTP {code} on page {page}" + (": check the base URL" if code == 404 else ""))

    @staticmethod
    def _next(payload: dict, url: str, base: str, page: int) -> tuple[str | None, int]:
        link = payload.get("next")
        if link:
            if not isinstance(link, str):
                raise ConnectorError(f"{url}: \"next\" is not a link")
            target = urllib.parse.urljoin(url, link)
            if _origin(target) != _origin(base):
                raise ConnectorError(f"{url}: the next page is on another host ({target}); refused")
            return target, page + 1
        number = payload.get("next_page")
        if number is None:
            return None, page
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ConnectorError(f"{url}: \"next_page\" is not a page number: {number!r}")
        return f"{base}{AGENTS_PATH}?page={number}", number


# --- drop folder ----------------------------------------------------------------------------------
class FolderConnector:
    """The newest *.csv file of a folder, in the rmm-assets format (RULES 6: agent_id, machine_name,
    organization, group, [os], [last_seen]; extra columns ignored).

    Newest by modification time (then by name). Hidden files are skipped. Whoever drops files
    should write them under another name and rename them to *.csv when complete (a rename is
    atomic), so a half-copied file is never read.
    """

    def fetch_inventory(self, integration) -> list[AgentRow]:
        folder = Path((integration.folder_path or "").strip())
        if not str(folder) or str(folder) == ".":
            raise ConnectorError("no folder is set on the integration")
        try:
            files = [p for p in folder.iterdir() if p.suffix.lower() == ".csv" and not p.name.startswith(".")
                     and p.is_file()]
        except FileNotFoundError:
            raise ConnectorError(f"{folder}: no such folder") from None
        except OSError as exc:
            raise ConnectorError(f"{folder}: cannot list the folder: {exc.strerror or exc}") from None
        if not files:
            raise ConnectorError(f"{folder}: no *.csv file to read")
        newest = max(files, key=lambda p: (p.stat().st_mtime_ns, p.name))
        return self.read(newest)

    def read(self, path: Path) -> Inventory:
        agents = _Agents()
        try:
            with open(path, encoding="utf-8-sig", newline="") as stream:
                header, rows = read_csv(stream)
                agents.kind.check_header(header)
                for number, raw in rows:
                    if "__too_many__" in raw:
                        agents.error(f"row {number}", f"{raw['__too_many__']} cells for {len(header)} columns")
                        continue
                    agents.add(f"row {number}", raw)
        except ImportFileError as exc:
            raise ConnectorError(f"{path}: {exc}") from None
        except OSError as exc:
            raise ConnectorError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
        return agents.result(str(path))


CONNECTORS: dict[str, Connector] = {"rest": RestConnector(), "folder": FolderConnector()}


def connector_for(integration) -> Connector:
    try:
        return CONNECTORS[integration.kind]
    except KeyError:
        raise ConnectorError(f"unknown integration kind {integration.kind!r}") from None

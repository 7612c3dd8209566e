"""What every RMM connector shares: the HTTP client, reading a page of JSON, the errors, the agent collector.

A connector returns the whole inventory or raises ConnectorError, never a partial list (billing-rules 3.7, 9.5):
the inventory is applied as a whole and an agent missing from it is an agent removed. A fault that
may pass by itself (a timeout, HTTP 5xx or 429, a dropped connection) is `transient`, so the nightly
task tries again later; the others (refused credentials, a body that is not the API's JSON, a bad
row, a short read) need a person.

HTTP goes through httpx (a maintained client with per-request timeouts and streamed bodies):
redirects are never followed (a 3xx is an error naming its Location), and every request is checked
to go to the configured origin first, so credentials and tokens are only ever sent to the host the
partner configured. A page body is read in chunks and refused past RMM_SYNC_MAX_PAGE_BYTES, and a
sync reads at most RMM_SYNC_MAX_PAGES pages (a runaway API fails the sync instead of filling memory).
OAuth tokens (Datto RMM, NinjaOne) are fetched with authlib's httpx OAuth2Client (OAuthSession).
"""

from __future__ import annotations

import functools
import json
import ssl
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import authlib.deprecate  # noqa: F401  (sets its own "always" warnings filter on import: before ours, below)
import httpx
from django.conf import settings

from billing.core.importing import ImportContext, unreadable_text
from billing.core.sealed import NO_KEY_OPENS, Unreadable
from metering.imports import RmmAssetsImport, agent_row
from metering.services import AgentRow

with warnings.catch_warnings():
    # authlib 1.9 prefers the httpx2 fork and warns once when it falls back to httpx; httpx 0.28 is the
    # client this project pins (requirements.txt), so the warning says nothing to act on here.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated", category=DeprecationWarning)
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client

USER_AGENT = "msp-billing-rmm-sync"
REPORTED_ROW_ERRORS = 5  # a message names the first few bad agents and counts the rest


class ConnectorError(Exception):
    """The inventory could not be fetched whole; `transient` when trying again later may succeed."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class Unauthorized(ConnectorError):
    """HTTP 401 on an API request: the session or token may have expired, so a connector logs in again
    once and retries; a second 401 right after a fresh login is reported as is (an auth failure)."""


class Inventory(list):
    """The agents fetched (a plain list of AgentRow), where they came from (`source`, the base URL or the
    file), the count the RMM announced (`announced`, None when the API gives none) and the pages read."""

    def __init__(self, agents: Iterable[AgentRow] = (), *, source: str = "", announced: int | None = None,
                 pages: int = 0):
        super().__init__(agents)
        self.source = source
        self.announced = announced
        self.pages = pages


class Connector(Protocol):
    def fetch_inventory(self, integration) -> Inventory: ...


# --- settings and credentials -----------------------------------------------------------------------
class ApiConnector:
    """What every vendor connector is built with: the limits (None: the settings), its page size and a clock
    (tests move time to expire tokens)."""

    page_size_default = 100

    def __init__(self, *, timeout: float | None = None, max_pages: int | None = None,
                 max_page_bytes: int | None = None, page_size: int | None = None,
                 clock: Callable[[], float] = time.time):
        self.timeout, self.max_pages, self.max_page_bytes = timeout, max_pages, max_page_bytes
        self.page_size = page_size or self.page_size_default
        self.clock = clock

    def limits(self) -> Limits:
        return Limits.of(self.timeout, self.max_pages, self.max_page_bytes)


AGREEING_READS_TRIED = 3  # an offset-paged inventory is read at most this many times, until two in a row agree


class OffsetPaged(ApiConnector):
    """A connector whose lists are paged by position ($skip, a page number). An agent deleted on a page already
    read moves every later agent one place up: the first agent of the next page is never read, and when another
    agent was added meanwhile the RMM's total still matches (docs/rmm.md section 2). So the inventory is read
    again, in the same session, until two reads in a row hold the same agents in the same places; the later one
    is the inventory."""

    def reader(self, integration) -> AbstractContextManager[Callable[[], Inventory]]:
        """A session with the RMM (logged in once), as a function that reads the whole inventory once."""
        raise NotImplementedError

    def fetch_inventory(self, integration) -> Inventory:
        with self.reader(integration) as read:
            earlier = read()
            pages = earlier.pages
            for _ in range(AGREEING_READS_TRIED - 1):
                if (watch := _WATCH.get()) is not None:
                    watch.again()
                inventory = read()
                pages += inventory.pages
                if billed_shape(inventory) == billed_shape(earlier):
                    inventory.pages = pages  # every page the sync asked for
                    return inventory
                earlier = inventory
        raise ConnectorError(f"{earlier.source}: the agents changed between each of {AGREEING_READS_TRIED} reads of "
                             f"the inventory (agents added or removed while it was read): nothing applied",
                             transient=True)


def billed_shape(inventory: Inventory) -> set[tuple]:
    """What of an inventory billing reads: each agent's id, place and state; not what changes from one minute to
    the next (last seen, online) nor what no count reads (machine name, system)."""
    return {(a.agent_id, a.organization, a.group, a.org_ref, a.org_id, a.views, a.suspended, a.deleted,
             a.never_checked_in, a.no_agent) for a in inventory}


@dataclass(frozen=True)
class Limits:
    timeout: float
    max_pages: int
    max_page_bytes: int

    @classmethod
    def of(cls, timeout: float | None = None, max_pages: int | None = None,
           max_page_bytes: int | None = None) -> Limits:
        """A connector's own limits where given (tests, the bench), else the settings'."""
        return cls(timeout=timeout or settings.RMM_SYNC_TIMEOUT_SECONDS,
                   max_pages=max_pages or settings.RMM_SYNC_MAX_PAGES,
                   max_page_bytes=max_page_bytes or settings.RMM_SYNC_MAX_PAGE_BYTES)


def origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def base_url(integration) -> str:
    """The integration's API address without a trailing slash, refused unless http(s)://host."""
    base = (integration.base_url or "").strip().rstrip("/")
    scheme, host = origin(base)
    if scheme not in ("http", "https") or not host:
        raise ConnectorError(f"the base URL {base!r} is not an http:// or https:// address")
    return base


def token_is_sendable(token: str) -> bool:
    """A bearer token or secret is visible ASCII (RFC 6750 b64token and the like): nothing that could break
    or be refused in a header, and be quoted back in the error."""
    return all("!" <= char <= "~" for char in token)


def secret_of(integration, what: str = "API token") -> str:
    """The integration's secret, trimmed; refused when no key opens it, empty, or not sendable."""
    if isinstance(integration.api_token, Unreadable):
        raise ConnectorError(f"the stored {what} {NO_KEY_OPENS}, or type the {what} again")
    token = (integration.api_token or "").strip()
    if not token:
        raise ConnectorError(f"no {what} is set on the integration")
    if not token_is_sendable(token):  # never quoted back: it is a secret
        raise ConnectorError(f"the {what} holds spaces, line breaks or other characters an HTTP header cannot "
                             f"carry: type it again")
    return token


def username_of(integration, what: str) -> str:
    name = (integration.username or "").strip()
    if not name:
        raise ConnectorError(f"no {what} is set on the integration (the user name field)")
    if any(char < " " or char == "\x7f" for char in name):
        raise ConnectorError(f"the {what} holds line breaks or control characters: type it again")
    return name


# --- HTTP ---------------------------------------------------------------------------------------------
@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certificates verified against certifi's roots, or SSL_CERT_FILE), made
    once: loading the roots costs tens of milliseconds per client, and a sync makes one or two clients."""
    return httpx.create_ssl_context()


def http_client(limits: Limits, *, client_class: type[httpx.Client] = httpx.Client, **kwargs) -> httpx.Client:
    """An httpx client with the sync's timeout that never follows a redirect (a 3xx is an error)."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    return client_class(timeout=limits.timeout, follow_redirects=False, headers=headers, verify=tls_context(),
                        **kwargs)


class FetchWatch:
    """What a fetch has read so far, for whoever shows it while it runs (sync_inventory's bar): the pages asked
    for (every list request), the read of the inventory (an offset-paged one is read again, OffsetPaged) and the
    agent rows of that read. `show(watch)` is called at each page and read and every ROWS_SHOWN rows (a page of
    a folder's CSV file is the whole file)."""

    ROWS_SHOWN = 1000

    def __init__(self, show: Callable[[FetchWatch], None]):
        self.show, self.pages, self.reads, self.rows = show, 0, 1, 0

    def again(self) -> None:
        self.reads += 1
        self.rows = 0
        self.show(self)

    def page(self) -> None:
        self.pages += 1
        self.show(self)

    def row(self) -> None:
        self.rows += 1
        if self.rows % self.ROWS_SHOWN == 0:
            self.show(self)


_WATCH: ContextVar[FetchWatch | None] = ContextVar("rmm_fetch_watch", default=None)


@contextmanager
def fetch_watched(show: Callable[[FetchWatch], None]) -> Iterator[FetchWatch]:
    """Every connector's fetch in the block reports its pages and rows to `show` as it reads them."""
    watch = FetchWatch(show)
    token = _WATCH.set(watch)
    try:
        yield watch
    finally:
        _WATCH.reset(token)


class PageBudget:
    """Counts the pages a sync reads (every list request: agents, organizations, views...) and stops at
    RMM_SYNC_MAX_PAGES."""

    def __init__(self, base: str, max_pages: int):
        self.base, self.max_pages, self.read = base, max_pages, 0
        self.watch = _WATCH.get()

    def take(self, what: str) -> None:
        if self.read >= self.max_pages:
            raise ConnectorError(f"{self.base}: more than {self.max_pages} pages ({what}); stopped (is the API "
                                 f"paging in a loop? raise RMM_SYNC_MAX_PAGES if the RMM is that large)")
        self.read += 1
        if self.watch is not None:
            self.watch.page()

    def left(self) -> int:
        return self.max_pages - self.read


def status_error(status: int, url: str, what: str, auth_hint: str, location: str | None = None) -> ConnectorError:
    """The ConnectorError for an HTTP status other than 200 (401 is Unauthorized, for a connector to
    log in again once)."""
    if 300 <= status < 400:
        return ConnectorError(f"{url}: redirected (HTTP {status}) to {location or '?'}: set the base URL to the "
                              f"final address (credentials are never sent elsewhere)")
    if status == 401:
        return Unauthorized(f"{url}: authentication failed (HTTP 401): {auth_hint}")
    if status == 403:
        return ConnectorError(f"{url}: authentication failed (HTTP 403): {auth_hint}")
    if status == 429 or status >= 500:
        return ConnectorError(f"{url}: HTTP {status} on {what}", transient=True)
    return ConnectorError(f"{url}: HTTP {status} on {what}" + (": check the base URL" if status == 404 else ""))


def transport_error(exc: Exception, url: str, what: str, timeout: float) -> ConnectorError:
    """The ConnectorError for a request that got no HTTP answer."""
    if isinstance(exc, httpx.TimeoutException):
        return ConnectorError(f"{url}: no answer within {timeout:g} s ({what})", transient=True)
    if isinstance(exc, httpx.ConnectError):
        return ConnectorError(f"{url}: cannot connect: {exc or type(exc).__name__}", transient=True)
    if isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.UnsupportedProtocol):
        return ConnectorError(f"{url}: the connection failed on {what}: {exc or type(exc).__name__}",
                              transient=True)
    return ConnectorError(f"{url}: {exc or type(exc).__name__}")


def read_json(client: httpx.Client, url: str, *, base: str, limits: Limits, what: str, auth_hint: str,
              headers: dict | None = None, method: str = "GET") -> object:
    """One request to the configured origin, its body read up to RMM_SYNC_MAX_PAGE_BYTES and parsed as JSON.

    Raises ConnectorError (Unauthorized on HTTP 401) for anything but a 200 answer with JSON."""
    if origin(url) != origin(base):
        raise ConnectorError(f"{url}: not on the configured host {base}; refused (credentials are never sent "
                             f"elsewhere)")
    limit = limits.max_page_bytes
    # the whole request within the timeout (operations 5): httpx's timeout holds each read of the socket, so an
    # answer trickled a byte at a time would never end
    deadline = time.monotonic() + limits.timeout
    try:
        with client.stream(method, url, headers=headers) as response:
            if response.status_code != 200:
                raise status_error(response.status_code, url, what, auth_hint, response.headers.get("Location"))
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ConnectorError(f"{url}: {what} is larger than {limit} bytes")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ConnectorError(f"{url}: {what} is larger than {limit} bytes")
                if time.monotonic() > deadline:
                    raise ConnectorError(f"{url}: no whole answer within {limits.timeout:g} s ({what})",
                                         transient=True)
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise transport_error(exc, url, what, limits.timeout) from None
    except (ValueError, httpx.InvalidURL) as exc:  # a URL httpx cannot use
        raise ConnectorError(f"{url}: {exc}") from None
    body = b"".join(chunks)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConnectorError(f"{url}: {what} is not valid JSON ({exc})") from None


def _rate_limit_is_a_status(response):
    if response.status_code == 429:
        response.raise_for_status()
    return response


class OAuthSession:
    """An OAuth 2.0 API session (Datto RMM, NinjaOne): authlib's httpx OAuth2Client fetches the token from
    `token_url` with the vendor's grant; the token is fetched again when it expires (by its expires_in,
    a minute early, on `clock`) and once on an HTTP 401 (a token revoked or cut short on the server)."""

    LEEWAY = 60.0

    def __init__(self, *, base: str, limits: Limits, token_url: str, client_id: str, client_secret: str,
                 auth_method: str, grant: dict, auth_hint: str, clock: Callable[[], float] = time.time):
        self.base, self.limits, self.token_url = base, limits, token_url
        self.grant, self.auth_hint, self.clock = grant, auth_hint, clock
        self.client = http_client(limits, client_class=OAuth2Client, client_id=client_id,
                                  client_secret=client_secret, token_endpoint_auth_method=auth_method,
                                  leeway=0)  # renewal is ours (get_json): authlib must not refresh on its own
        # authlib reads a 4xx answer's body as an OAuth error: a rate limit (429) would blame the credentials and
        # never be retried; it is an HTTP status, transient (status_error), as on every other request
        self.client.register_compliance_hook("access_token_response", _rate_limit_is_a_status)
        self.logins = 0
        self.renew_at: float | None = None

    def __enter__(self) -> OAuthSession:
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()

    def login(self) -> None:
        url = self.token_url
        if origin(url) != origin(self.base):
            raise ConnectorError(f"{url}: not on the configured host {self.base}; refused")
        try:
            token = self.client.fetch_token(url, **self.grant)
        except OAuthError as exc:
            transient = exc.error in ("server_error", "temporarily_unavailable")
            detail = f"{exc.error}: {exc.description}" if exc.description else str(exc.error)
            raise ConnectorError(f"{url}: the token request was refused ({detail})"
                                 + ("" if transient else f": {self.auth_hint}"), transient=transient) from None
        except httpx.HTTPStatusError as exc:
            response = exc.response
            error = status_error(response.status_code, url, "the token request", self.auth_hint,
                                 response.headers.get("Location"))
            raise plain(error) from None
        except httpx.HTTPError as exc:
            raise transport_error(exc, url, "the token request", self.limits.timeout) from None
        except httpx.InvalidURL as exc:
            raise ConnectorError(f"{url}: {exc}") from None
        except ValueError as exc:  # a body that is not a JSON object
            raise ConnectorError(f"{url}: the token answer is not the OAuth JSON ({exc})") from None
        access = token.get("access_token")
        if not isinstance(access, str) or not access or not token_is_sendable(access):
            raise ConnectorError(f"{url}: the token answer has no usable access_token")
        expires_in = token.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            # renewed a minute early (half the lifetime of a token shorter than two minutes)
            self.renew_at = self.clock() + expires_in - min(self.LEEWAY, expires_in / 2)
        else:
            self.renew_at = None  # no lifetime given: renewed on a 401 only
        self.logins += 1

    def expired(self) -> bool:
        return self.renew_at is not None and self.clock() >= self.renew_at

    def get_json(self, url: str, what: str) -> object:
        if self.logins == 0 or self.expired():
            self.login()
        try:
            return read_json(self.client, url, base=self.base, limits=self.limits, what=what,
                             auth_hint=self.auth_hint)
        except Unauthorized:
            self.login()  # once: a second 401 right after a fresh token is an authentication failure
        try:
            return read_json(self.client, url, base=self.base, limits=self.limits, what=what,
                             auth_hint=self.auth_hint)
        except Unauthorized as exc:
            raise ConnectorError(str(exc)) from None


def plain(error: ConnectorError) -> ConnectorError:
    """The same error as a plain ConnectorError (a 401 from a login is no reason to log in again)."""
    return ConnectorError(str(error), transient=error.transient) if isinstance(error, Unauthorized) else error


# --- values -------------------------------------------------------------------------------------------
class BadValue(ValueError):
    """A field of an API record that is not of the documented type (reported as a row error)."""


def text_of(record: dict, key: str) -> str:
    """A text field of an API record: a string or a number (ids), "" when absent or null."""
    value = record.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise BadValue(f"{key}: not a text value ({type(value).__name__})")


def flag_of(record: dict, key: str) -> bool | None:
    """A boolean field: True/False, None when absent or null."""
    value = record.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise BadValue(f"{key}: not true or false ({value!r})")


def instant_from_epoch(value: object, key: str, *, millis: bool = False) -> datetime | None:
    """An epoch timestamp (seconds, or milliseconds with `millis`) as an aware UTC datetime; None or 0 is None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue(f"{key}: not an epoch timestamp ({value!r})")
    if value == 0:
        return None
    try:
        return datetime.fromtimestamp(value / 1000 if millis else value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise BadValue(f"{key}: epoch timestamp {value!r} is out of range") from None


def instant_from_iso(value: object, key: str) -> datetime | None:
    """An ISO 8601 timestamp as an aware UTC datetime; one without a zone is read as UTC; None or "" is None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadValue(f"{key}: not a timestamp ({value!r})")
    try:
        instant = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadValue(f"{key}: not an ISO 8601 timestamp ({value!r})") from None
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    try:
        return instant.astimezone(UTC)
    except OverflowError:
        raise BadValue(f"{key}: timestamp {value!r} is out of range") from None


# --- the agents of one sync ---------------------------------------------------------------------------
class Agents:
    """Agents collected row by row with the rmm-assets import's own rules (import-formats 5.8): every text value
    trimmed and checked by the import's widgets (TextWidget: at most 200 characters; readable text),
    agent_id, machine_name and organization required, last_seen an aware instant in UTC. The same agent
    twice is fine only with the same values. Row errors are reported together, naming the first few."""

    fields = ("agent_id", "machine_name", "organization", "group", "os", "last_seen")  # the JSON feed's rows
    TEXT = ("agent_id", "machine_name", "organization", "group", "os", "org_ref", "org_id")

    def __init__(self):
        self.kind = RmmAssetsImport()
        self.ctx = ImportContext(kind=self.kind.name)
        columns = self.kind.fields()
        self.required = frozenset(c for c in self.kind.required_columns if c not in self.kind.blank_allowed)
        # org_ref, org_id and view names are no import columns: they follow the text columns' rule
        self.widgets = {name: columns[name if name in columns else "organization"].widget for name in self.TEXT}
        self.view_widget = columns["group"].widget
        # the values an inventory repeats (organizations, groups, systems) are checked once each
        self.seen: dict[str, dict[str, tuple[str, str | None]]] = {
            name: {} for name in ("organization", "group", "os", "org_ref", "org_id")}
        # per text field, in AgentRow's order: (name, its cache or None, its widget, required)
        self.specs = tuple((name, self.seen.get(name), self.widgets[name], name in self.required)
                           for name in self.TEXT)
        self.rows: dict[str, tuple[str, AgentRow]] = {}
        self.errors: list[str] = []
        self.count = 0
        self.watch = _WATCH.get()

    # rows as the import reads them (CSV cells, the JSON feed's values): parsed by the import itself
    def add_raw(self, where: str, raw: dict) -> None:
        self.count += 1
        if self.watch is not None:
            self.watch.row()
        before = len(self.ctx.errors)
        parsed = self.kind.parse_row(self.count, raw, self.ctx)
        if parsed is None:
            self.errors += [f"{where}: {e.column}: {e.reason}" for e in self.ctx.errors[before:]]
            return
        self._keep(where, agent_row(parsed.values))

    # rows a vendor connector read from the API's typed JSON
    def add(self, where: str, *, agent_id: str, machine_name: str, organization: str, group: str = "",
            os: str = "", last_seen: datetime | None = None, org_ref: str = "", org_id: str = "",
            views: Iterable[str] = (), online: bool | None = None, suspended: bool = False,
            deleted: bool = False, never_checked_in: bool = False, no_agent: bool = False) -> None:
        self.count += 1
        if self.watch is not None:
            self.watch.row()
        # one pass over the seven text fields (a sync checks 100,000 agents): a repeated value's verdict is
        # cached, a unique one (the id, the machine name) is checked each time
        texts, problems = [], []
        for (name, cache, widget, required), value in zip(
                self.specs, (agent_id, machine_name, organization, group, os, org_ref, org_id), strict=True):
            result = cache.get(value) if cache is not None and value.__class__ is str else None
            if result is None:
                result = self._text(value, widget)
                if result[1] is None and required and not result[0]:
                    result = ("", "is required")
                if cache is not None and value.__class__ is str:
                    cache[value] = result
            if result[1] is not None:
                problems.append(f"{name}: {result[1]}")
            texts.append(result[0])
        names = ()
        if views:
            names = set()
            for view in views:
                text, reason = self._text(view, self.view_widget)
                if reason is not None:
                    problems.append(f"view {str(view)[:40]!r}: {reason}")
                elif text:
                    names.add(text)
            names = tuple(sorted(names))
        if last_seen is not None:
            if not isinstance(last_seen, datetime) or last_seen.utcoffset() is None:
                problems.append("last_seen: not an instant with a time zone")
            elif last_seen.tzinfo is not UTC:
                last_seen = last_seen.astimezone(UTC)
        if problems:
            self.errors += [f"{where}: {p}" for p in problems]
            return
        agent_id, machine_name, organization, group, os, org_ref, org_id = texts
        self._keep(where, AgentRow(agent_id, machine_name, organization, group, os, last_seen, org_ref, org_id, names,
                                   online, bool(suspended), bool(deleted), bool(never_checked_in), bool(no_agent)))

    @staticmethod
    def _text(value: str, widget) -> tuple[str, str | None]:
        """(the trimmed text, None) or ("", why not), by the import's rules: unreadable_text, then the
        column's widget. Plain ASCII text within the length (nearly every value) gives what the widget
        gives without the call; anything else goes through the widget itself."""
        if not isinstance(value, str):
            return "", "not a text value"
        text = value.strip()
        if text.isascii() and "\x00" not in text and not text.startswith("'") and len(text) <= widget.max_length:
            return text, None
        reason = unreadable_text(text)
        if reason:
            return "", reason
        try:
            return widget.clean(text), None
        except ValueError as exc:
            return "", str(exc)

    def _keep(self, where: str, agent: AgentRow) -> None:
        first = self.rows.get(agent.agent_id)
        if first is None:
            self.rows[agent.agent_id] = (where, agent)
        elif first[1] != agent:
            self.errors.append(f"{where}: agent_id: same agent as {first[0]} with different values")

    def error(self, where: str, reason: str) -> None:
        self.errors.append(f"{where}: {reason}")

    def __len__(self) -> int:
        return len(self.rows)

    def result(self, source: str, *, announced: int | None = None, pages: int = 0,
               transient: bool = False) -> Inventory:
        """The inventory, or the agent rows refused, each named; `transient`: rows that may be right on the next
        try (a list that changed while it was read)."""
        if self.errors:
            shown = "; ".join(self.errors[:REPORTED_ROW_ERRORS])
            more = len(self.errors) - REPORTED_ROW_ERRORS
            raise ConnectorError(f"{source}: {len(self.errors)} bad agent row(s): {shown}"
                                 + (f" (and {more} more)" if more > 0 else ""), transient=transient)
        return Inventory((agent for _, agent in self.rows.values()), source=source, announced=announced,
                         pages=pages)

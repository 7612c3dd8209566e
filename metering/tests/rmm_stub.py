"""A stub VSA-style RMM API on 127.0.0.1 (real sockets, an ephemeral port), for connector and sync tests.

Each bearer token is one RMM account (a partner): its agents, served `per_page` at a time with a
`next_page` number (or a relative `next` link), and faults to inject per page: an HTTP status,
a raw body, a delay. An unknown token gets 401.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def agent(agent_id: str, organization: str = "ACME", group: str = "", machine_name: str = "", os: str = "Windows 11",
          last_seen: str | None = "2026-05-01T08:00:00Z") -> dict:
    return {"agent_id": agent_id, "machine_name": machine_name or f"PC-{agent_id}", "organization": organization,
            "group": group, "os": os, "last_seen": last_seen}


@dataclass
class Account:
    agents: list[dict] = field(default_factory=list)
    per_page: int = 2
    links: bool = False  # `next` links instead of `next_page` numbers
    endless: bool = False  # every page says there is another one
    loop: bool = False  # every page says the next one is page 1
    status: dict[int, list[int]] = field(default_factory=dict)  # page -> statuses to answer, one per request
    always_status: dict[int, int] = field(default_factory=dict)  # page -> status answered every time
    raw: dict[int, bytes] = field(default_factory=dict)  # page -> body answered instead of the JSON
    delay: float = 0.0  # seconds before answering any page
    redirect: str = ""  # answer 302 to this location

    def payload(self, page: int) -> dict:
        start = (page - 1) * self.per_page
        rows = [] if self.endless else self.agents[start:start + self.per_page]
        more = self.endless or start + self.per_page < len(self.agents)
        body: dict = {"agents": rows}
        if self.loop:
            body["next_page"] = 1
        elif self.links:
            body["next"] = f"/api/v1/agents?page={page + 1}" if more else None
        else:
            body["next_page"] = page + 1 if more else None
        return body


class StubRmm:
    def __init__(self):
        self.accounts: dict[str, Account] = {}
        self.requests: list[tuple[str, str]] = []  # (path with query, Authorization header)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def do_GET(self):
                stub._answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.server.handle_error = lambda request, address: None  # a client that gave up (timeout tests)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def account(self, token: str, agents=(), **options) -> Account:
        self.accounts[token] = Account(agents=list(agents), **options)
        return self.accounts[token]

    def pages_served(self, token: str) -> list[str]:
        return [path for path, auth in self.requests if auth == f"Bearer {token}"]

    def __enter__(self) -> StubRmm:
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()  # wakes handlers sleeping in a delay
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        auth = handler.headers.get("Authorization", "")
        with self._lock:
            self.requests.append((handler.path, auth))
        parts = urllib.parse.urlsplit(handler.path)
        if parts.path != "/api/v1/agents":
            return self._send(handler, 404, b'{"error": "not found"}')
        account = self.accounts.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if account is None:
            return self._send(handler, 401, b'{"error": "invalid token"}')
        if account.delay and self._stop.wait(account.delay):
            return None
        try:
            page = int(urllib.parse.parse_qs(parts.query).get("page", ["1"])[0])
        except ValueError:
            return self._send(handler, 400, b'{"error": "bad page"}')
        if account.redirect:
            return self._send(handler, 302, b"", {"Location": account.redirect})
        with self._lock:
            queued = account.status.get(page)
            status = queued.pop(0) if queued else account.always_status.get(page)
        if status:
            return self._send(handler, status, b'{"error": "injected"}')
        if page in account.raw:
            return self._send(handler, 200, account.raw[page])
        return self._send(handler, 200, json.dumps(account.payload(page)).encode())

    @staticmethod
    def _send(handler, status: int, body: bytes, headers: dict | None = None) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the client gave up

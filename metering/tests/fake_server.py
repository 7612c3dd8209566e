"""The loopback HTTP server under the fake RMM APIs (fake_kaseya_vsa, fake_datto, fake_ninjaone).

Real sockets on 127.0.0.1 with an ephemeral port (like rmm_stub.py), HTTP/1.1 with keep-alive. A
subclass answers `answer(request) -> Reply`; every request is recorded, and faults can be injected
before the vendor logic runs: `fail(when, status, body)` answers `status` to the requests `when`
matches (`times` of them, or all).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    form: dict[str, str]  # an application/x-www-form-urlencoded body
    target: str  # path and query as sent

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth[:7].lower() == "bearer " else None


@dataclass
class Reply:
    status: int
    body: object = None  # JSON (dict, list) or bytes as they are
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    when: Callable[[Request], bool]
    reply: Reply
    times: int | None


class FakeServer:
    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock  # the server's "now" (tests may share a clock with the connector)
        self.requests: list[Request] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed-ACK stalls)

            def log_message(self, format, *args):
                pass

            def do_GET(self):
                server._serve(self, "GET")

            def do_POST(self):
                server._serve(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.server.handle_error = lambda request, address: None  # a client that gave up
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def fail(self, when: Callable[[Request], bool], status: int, body: object = None, *, times: int | None = None,
             headers: dict | None = None) -> None:
        self._faults.append(_Fault(when, Reply(status, body, headers or {}), times))

    def paths(self, prefix: str = "") -> list[str]:
        return [r.target for r in self.requests if r.path.startswith(prefix)]

    def answer(self, request: Request) -> Reply:
        raise NotImplementedError

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        form = {}
        if "application/x-www-form-urlencoded" in handler.headers.get("Content-Type", ""):
            form = dict(urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        request = Request(method=method, path=parts.path, form=form, target=handler.path,
                          query=dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)),
                          headers={k.lower(): v for k, v in handler.headers.items()})
        with self._lock:
            self.requests.append(request)
            reply = None
            for fault in self._faults:
                if fault.times != 0 and fault.when(request):
                    if fault.times is not None:
                        fault.times -= 1
                    reply = fault.reply
                    break
        if reply is None:
            reply = self.answer(request)
        body = reply.body if isinstance(reply.body, bytes) else (
            b"" if reply.body is None else json.dumps(reply.body).encode())
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the client gave up


class Clock:
    """Real time moved forward by `offset` seconds on demand (shared by a connector and its fake server, so that
    a test can expire a token or a session)."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def page_of(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, default))
    except ValueError:
        return -1

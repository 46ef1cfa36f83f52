"""A hostile sync server: stdlib HTTP on a free loopback port, scripted per test.

It speaks just enough of the protocol (policy, head, a one-page feed) for a sync to reach the
part a test is about, and every answer can be replaced by a :class:`Reply` that drips, stalls,
bombs, loops, redirects or lies. It is bounded in time: a stall or a drip ends by itself after
``HostileServer.lifetime_s``, and leaving the ``with`` block stops everything.

Usage::

    with HostileServer() as srv:
        srv.route("/offline/policy", Reply.drip(b'{"offline_enabled": true', every_s=0.2))
        client = srv.client()          # a SyncClient for srv.url with srv.session's token
        ...
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hookspecs import Session

from .records import last_page, upsert

TOKEN = "tok-Tz9!hostile-net-5f1c2a7e9b3d4c6a"
PASSWORD = "pw-Tz9!hostile-net"
CLIENT_ID = "hostile-client-7q2w"
DATABASE = "hostiledb"
USER_ID = "u-hostile-1"


@dataclass
class Reply:
    """What the server does with one request."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    drip_every_s: float | None = None
    """Send the body (after the headers) one byte per this many seconds."""
    drip_headers: bool = False
    """Drip the status line and headers too."""
    stall: bool = False
    """Read the request and never answer (until the server's lifetime ends)."""

    @classmethod
    def json(
        cls,
        value: Any,
        status: int = 200,
        *,
        gzipped: bool = False,
        headers: list[tuple[str, str]] | None = None,
    ) -> Reply:
        body = value if isinstance(value, bytes) else json.dumps(value).encode()
        extra = list(headers or [])
        if gzipped:
            body = gzip.compress(body, 9)
            extra.append(("Content-Encoding", "gzip"))
        return cls(status, [("Content-Type", "application/json"), *extra], body)

    @classmethod
    def problem(
        cls, status: int, code: str, *, headers: list[tuple[str, str]] | None = None
    ) -> Reply:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "refused",
                "status": status,
                "code": code,
                "detail": "refused by the hostile server",
            }
        ).encode()
        return cls(status, [("Content-Type", "application/problem+json"), *(headers or [])], body)

    @classmethod
    def drip(cls, body: bytes, every_s: float, *, headers_too: bool = False) -> Reply:
        return cls(
            200,
            [("Content-Type", "application/json")],
            body,
            drip_every_s=every_s,
            drip_headers=headers_too,
        )

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status, [("Location", location)], b"")


Handler = Callable[[str, dict[str, list[str]], dict[str, str]], Reply]


def policy_body(**overrides: Any) -> dict[str, Any]:
    return {
        "offline_enabled": True,
        "offline_right": True,
        "validity_seconds": 7 * 86400,
        "server_time": time.time(),
        **overrides,
    }


class HostileServer:
    """A scripted loopback server; a context manager that starts and stops it."""

    def __init__(self, *, lifetime_s: float = 20.0, records: int = 3) -> None:
        self.lifetime_s = lifetime_s
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.feed = [upsert(f"r{i}") for i in range(records)]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._killer = threading.Timer(lifetime_s, self._stop.set)
        self._killer.daemon = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def session(self) -> Session:
        return Session(self.url, DATABASE, USER_ID, "mallory", CLIENT_ID, TOKEN, PASSWORD)

    def route(self, path_part: str, reply: Reply | Handler) -> None:
        """Answer requests whose path contains ``path_part`` with ``reply`` (or a function of
        path, query and headers returning one)."""
        handler: Handler = reply if callable(reply) else (lambda _p, _q, _h: reply)
        with self._lock:
            self._routes[path_part] = handler

    def hits(self, path_part: str) -> int:
        with self._lock:
            return sum(1 for path, _q, _h in self.requests if path_part in path)

    def client(self, **kwargs: Any) -> Any:
        from offline_addon.sync.transport import SyncClient

        kwargs.setdefault("sleep", lambda _s: None)
        return SyncClient(self.url, TOKEN, CLIENT_ID, **kwargs)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        self._killer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._killer.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # -- defaults: a tiny valid server ----------------------------------------------------

    def _default(self, path: str, query: dict[str, list[str]]) -> Reply:
        if path.endswith("/offline/policy"):
            return Reply.json(policy_body())
        if path.endswith("/offline/head"):
            return Reply.json({"seq": 1, **policy_body()}, headers=[("ETag", '"e-1-604800"')])
        if path.endswith("/offline/changes"):
            return Reply.json(last_page(self.feed))
        return Reply.problem(404, "not_found")

    def _pick(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append((path, query, headers))
            routes = list(self._routes.items())
        for part, handler in routes:
            if part in path:
                return handler(path, query, headers)
        return self._default(path, query)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                try:
                    self._serve()
                except OSError:
                    self.close_connection = True

            def do_PUT(self) -> None:
                self._read_body()
                self.do_GET()

            def do_DELETE(self) -> None:
                self._read_body()
                self.do_GET()

            def _read_body(self) -> None:
                # A write's body is read (and dropped) so that the connection stays usable.
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = server._pick(parts.path, parse_qs(parts.query), headers)
                if reply.stall:
                    server._stop.wait()
                    self.close_connection = True
                    return
                head = [f"HTTP/1.1 {reply.status} X\r\n".encode()]
                for key, value in reply.headers:
                    head.append(f"{key}: {value}\r\n".encode())
                head.append(f"Content-Length: {len(reply.body)}\r\n\r\n".encode())
                head_bytes = b"".join(head)
                if reply.drip_headers and reply.drip_every_s:
                    self._drip(head_bytes, reply.drip_every_s)
                else:
                    self.wfile.write(head_bytes)
                    self.wfile.flush()
                if reply.drip_every_s:
                    self._drip(reply.body, reply.drip_every_s)
                else:
                    self.wfile.write(reply.body)
                    self.wfile.flush()

            def _drip(self, data: bytes, every_s: float) -> None:
                for i in range(len(data)):
                    if server._stop.wait(every_s):
                        self.close_connection = True
                        return
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()

        return _Handler

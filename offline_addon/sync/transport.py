"""The client side of the sync protocol: endpoints, retries, error mapping, over one HTTP seam.

:class:`SyncClient` speaks the protocol; it sends every request through an
:class:`HttpTransport`, the one narrow interface to HTTP (one method: GET a URL and get the
status, headers and whole body back). :class:`RequestsTransport` is the real one: one
``requests.Session`` (keep-alive), TLS verification on, no redirects, a short connect timeout,
a read timeout, a deadline on the *whole* request (a watchdog shuts the socket down, so a
server that drips one byte a second is cut off), and caps on the compressed and the
decompressed body (gzip is decoded here, in bounded steps, so a gzip bomb never expands in
memory). Tests give :class:`SyncClient` a transport with canned answers instead.

What may be talked to is decided once, by :func:`check_server_url`: ``https``, or plain
``http`` to a loopback address only (the network is not trusted; see ``docs/sync-protocol.md``).

Idempotent GETs are retried a few times with full-jitter backoff, honouring ``Retry-After``
(seconds or an HTTP date) up to a cap, and only within :data:`RETRY_BUDGET_S`, so a failing
server is reported within seconds and the schedule retries later; a longer ``Retry-After`` is
handed to the caller as :class:`ServerBusy` so that the worker can wait without holding a
thread. Every answer is validated by :mod:`offline_addon.protocol.answers` before it is
returned. The token never appears in a message, a log line or ``repr``.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import random
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from offline_addon.errors import (
    AuthenticationRequired,
    ConfigurationError,
    CursorExpired,
    OfflineNotAllowed,
    ProtocolError,
    ServerBusy,
    ServerError,
    ServerUnreachable,
)
from offline_addon.protocol.accountability import (
    AccessReceipt,
    CopyReport,
    load_access_receipt,
)
from offline_addon.protocol.answers import (
    OFFLINE_REFUSALS,
    ChangePage,
    Head,
    HeadUnchanged,
    OfflinePolicy,
    WriteAnswer,
    decode_json,
    load_head,
    load_page,
    load_policy,
    load_problem,
    load_record,
    load_unchanged,
    load_write_answer,
    retry_after_seconds,
)
from offline_addon.protocol.merge import RecordContent, ServerRecord
from offline_addon.protocol.page_rows import with_rows

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 4.0
"""TCP connect: a reachable server accepts in well under a second, even across continents; 4 s
tells the user "unreachable" in seconds (the old 3 x 30 s kept them waiting 90 s)."""
READ_TIMEOUT_S = 20.0
"""Silence allowed between two reads, the first byte included: the server builds a page of
2500 records in well under a second; 20 s covers a loaded server without letting a dead one
hold the sync for long."""
DEFAULT_TIMEOUT = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
REQUEST_DEADLINE_S = 60.0
"""The whole request (connect, headers, whole body), however the bytes trickle in: a page of
2500 records is about 1 MB (about 300 KB gzipped), 10 s at 256 kbit/s; 60 s is six times that."""
MAX_BODY_BYTES = 32 * 1024 * 1024
"""A change page, decompressed: a page of 2500 typical records is about 1 MB, so 32 MiB leaves
room for records with long notes while the pages in memory (two decoded and one body, see
``prefetch``) stay bounded."""
MAX_COMPRESSED_BYTES = MAX_BODY_BYTES
"""A change page as sent (gzip): never legitimately larger than the page itself."""
MAX_SMALL_BODY_BYTES = 64 * 1024
"""Policy, head and error answers: a few hundred bytes in the protocol; 64 KiB is generous."""
DEFAULT_RETRIES = 2
RETRY_WAIT_CAP = 10.0
RETRY_BUDGET_S = 12.0
"""Retries of one request stop once this much time has passed since its first attempt: the
user hears about a failing server within seconds; the schedule retries later (with back-off)."""
BACKOFF_BASE = 0.5
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_GET_ANSWERS = frozenset({200, 304})
_CHANGE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_LARGE_WRITE_ANSWERS = (200, 201, 409, 412)
"""The answers to a write that may carry a whole record (the stored one, or ``current``)."""
_WRITE_ANSWERS = frozenset({200, 201, 204, 400, 403, 404, 409, 410, 412})
"""The answers to a pushed change that speak about the change itself (see
:func:`~offline_addon.protocol.answers.load_write_answer`); the others are the usual errors."""
_CHUNK = 64 * 1024
_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def check_server_url(server_url: str) -> str:
    """``server_url`` if the add-on may send a token there, else ConfigurationError.

    ``https`` always; plain ``http`` only to a loopback address (127.0.0.0/8, ::1,
    ``localhost``), where no network lies in between. Anything else would show the token and
    the records to whoever is on the path (hotel networks, proxies)."""
    try:
        parts = urlsplit(server_url.strip())
        scheme, host = parts.scheme.lower(), (parts.hostname or "")
        _ = parts.port  # ValueError for a port outside 0..65535
    except (ValueError, AttributeError, TypeError):
        raise ConfigurationError(
            "The server address is not a valid URL; check the server address of your login."
        ) from None
    if not host or scheme not in ("http", "https"):
        raise ConfigurationError(
            "The server address must start with https:// and name a host; check the server "
            "address of your login."
        )
    if scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            "The Offline Add-on synchronises only over https:// (plain http:// is allowed only "
            "to this computer itself); ask your administrator for the server's https address."
        )
    return server_url


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HttpAnswer:
    """A whole HTTP answer: status, headers (keys lower-case) and the decompressed body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """The header ``name`` (any case), or None."""
        return self.headers.get(name.lower())


class NoAnswer(ServerUnreachable):
    """The request got no answer at all (connection refused or reset before the headers):
    safe to send again."""


class TimedOut(ServerUnreachable):
    """The request ran out of time (connect, read or deadline); not retried within the sync:
    a server that is slow now is asked again by the schedule."""


class HttpTransport(Protocol):
    """The one seam between the sync client and HTTP."""

    def get(
        self,
        url: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str],
        *,
        deadline: float | None = None,
        max_bytes: int | None = None,
    ) -> HttpAnswer:
        """GET ``url`` without following redirects, ending by ``deadline`` (``time.monotonic``)
        at the latest; raise :class:`NoAnswer` when nothing came back, :class:`TimedOut` when
        time ran out, ServerUnreachable when the body broke off, ProtocolError when the body
        is over ``max_bytes`` (decompressed) or cannot be decoded."""
        ...

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        deadline: float | None = None,
        max_bytes: int | None = None,
    ) -> HttpAnswer:
        """A write (``PUT``, ``DELETE``) with ``body``, bounded and failing like :meth:`get`.
        Whether the server applied a write whose answer was lost is unknown: the caller's
        ``X-Change-Id`` makes the resend safe."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


# -- the watchdog that ends a request at its deadline -------------------------------------------

_watched = threading.local()


class _Cutoff:
    """Shuts down the sockets of one request when its deadline passes.

    Socket timeouts bound each read, not the sum of them: a server dripping a byte every few
    seconds would keep a request (and with it the sync and every job queued behind it) alive
    for ever. ``shutdown`` from the watchdog thread ends any read blocked on the socket. The
    sockets are watched through duplicates of their descriptors, so TLS sockets (which cannot
    be duplicated themselves) are covered from the TCP handshake on."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.fired = False
        self._seconds = max(0.0, seconds)

    def __enter__(self) -> _Cutoff:
        _watched.cutoff = self
        _WATCHDOG.add(self, time.monotonic() + self._seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        _watched.cutoff = None
        _WATCHDOG.remove(self)
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()  # the duplicate only; the connection stays the pool's

    def watch(self, sock: socket.socket) -> None:
        try:
            duplicate = socket.socket(
                sock.family, sock.type, sock.proto, fileno=socket.dup(sock.fileno())
            )
        except (OSError, ValueError):
            return
        with self._lock:
            self._sockets.append(duplicate)
            fired = self.fired
        if fired:
            _shut(duplicate)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


class _Watchdog:
    """One daemon thread for the deadlines of every request under way (a timer thread per
    request cost about 0.8 ms to start: a third of a sync with nothing new). Started on
    first use; idle (waiting on its condition) while no request runs."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._due: dict[_Cutoff, float] = {}
        self._thread: threading.Thread | None = None

    def add(self, cutoff: _Cutoff, deadline: float) -> None:
        with self._lock:
            self._due[cutoff] = deadline
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="offline-request-watchdog", daemon=True
                )
                self._thread.start()
            self._lock.notify()

    def remove(self, cutoff: _Cutoff) -> None:
        with self._lock:
            self._due.pop(cutoff, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                expired = [c for c, at in self._due.items() if at <= now]
                for cutoff in expired:
                    del self._due[cutoff]
                if not expired:
                    wait = min(self._due.values(), default=now + 60.0) - now
                    self._lock.wait(max(0.0, wait))
                    continue
            for cutoff in expired:  # outside the lock: shutting sockets may take a moment
                cutoff.fire()


_WATCHDOG = _Watchdog()


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watch(sock: Any) -> None:
    cutoff: _Cutoff | None = getattr(_watched, "cutoff", None)
    if cutoff is not None and sock is not None:
        cutoff.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)  # a kept-alive connection: no new socket
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)  # before the TLS handshake, which a server may drip as well
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter with connections the request deadline can cut off (also through a
    proxy from the environment)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


class RequestsTransport:
    """:class:`HttpTransport` over one ``requests.Session`` (keep-alive)."""

    def __init__(
        self,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_body_bytes: int = MAX_BODY_BYTES,
        verify: bool | str = True,
        request_deadline_s: float = REQUEST_DEADLINE_S,
    ) -> None:
        self._timeout = timeout
        self._max_body = max_body_bytes
        self._request_deadline = request_deadline_s
        self._verify = verify
        self._http = requests.Session()
        self._http.verify = verify
        # The environment (proxies, NO_PROXY, a CA bundle) is read once per server (see
        # _settings), and a ~/.netrc entry for the server never replaces the token: requests
        # reads both on every request otherwise, and applies .netrc over our Authorization.
        self._http.trust_env = False
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}
        self._adapter = _WatchedAdapter()
        self._http.mount("http://", self._adapter)
        self._http.mount("https://", self._adapter)

    def get(
        self,
        url: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str],
        *,
        deadline: float | None = None,
        max_bytes: int | None = None,
    ) -> HttpAnswer:
        """GET with the timeouts and the deadline; the body read in chunks, gzip decoded in
        bounded steps, refused beyond the caps."""
        return self._request("GET", url, params, headers, None, deadline, max_bytes)

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        deadline: float | None = None,
        max_bytes: int | None = None,
    ) -> HttpAnswer:
        """A write, with the same timeouts, deadline and caps as :meth:`get`."""
        return self._request(method, url, None, headers, body, deadline, max_bytes)

    def _request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str],
        body: bytes | None,
        deadline: float | None,
        max_bytes: int | None,
    ) -> HttpAnswer:
        now = time.monotonic()
        end = now + self._request_deadline
        if deadline is not None:
            end = min(end, deadline)
        if end <= now:
            raise TimedOut(_timed_out_message())
        cap = self._max_body if max_bytes is None else min(max_bytes, self._max_body)
        with _Cutoff(end - now) as cutoff:
            try:
                answer = self._exchange(method, url, params, headers, body, cap, end)
            except ProtocolError:
                if cutoff.fired:  # what was cut off may look malformed: say why
                    raise TimedOut(_timed_out_message()) from None
                raise
            except (requests.RequestException, OSError, ValueError) as exc:
                if cutoff.fired or time.monotonic() >= end:
                    raise TimedOut(_timed_out_message()) from None
                raise _no_answer(exc) from None
            except _BodyBroke:
                if cutoff.fired or time.monotonic() >= end:
                    raise TimedOut(_timed_out_message()) from None
                raise ServerUnreachable(
                    "The server's answer broke off (incomplete); check your network "
                    "connection. The offline copy is unchanged."
                ) from None
            if cutoff.fired:  # http.client takes headers cut short for whole ones
                raise TimedOut(_timed_out_message())
            return answer

    def close(self) -> None:
        """Close the keep-alive connections."""
        self._http.close()

    def _settings(self, url: str) -> dict[str, Any]:
        """What requests takes from the environment for ``url`` (proxies and NO_PROXY, a CA
        bundle), read once per scheme and host: on every request it cost 0.3 ms of a 9 ms
        sync. A proxy setting changed later counts from the next login (a new transport)."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        if origin not in self._environment:
            with requests.Session() as reader:  # trust_env: what requests would read
                read = reader.merge_environment_settings(url, {}, True, self._verify, None)
            self._environment[origin] = dict(read)
        return self._environment[origin]

    def _exchange(
        self,
        method: str,
        url: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str],
        body: bytes | None,
        cap: int,
        end: float,
    ) -> HttpAnswer:
        connect, read = self._timeout
        left = max(0.001, end - time.monotonic())
        # The adapter directly: requests' Session.send would work out where a redirect leads
        # even when not following it (and raise ValueError on a Location with a bad port).
        prepared = self._http.prepare_request(
            requests.Request(
                method, url, params=dict(params or {}), headers=dict(headers), data=body
            )
        )
        settings = self._settings(prepared.url or url)
        response = self._adapter.send(
            prepared,
            stream=True,
            timeout=(min(connect, left), min(read, left)),
            verify=settings["verify"] or self._verify,
            proxies=settings["proxies"],
            cert=settings["cert"],
        )
        with response:
            lowered = {key.lower(): value for key, value in response.headers.items()}
            if response.status_code == 304:
                # No body by the rules of HTTP; reading its end hands the connection back
                # to the pool (closing an unread answer closes the connection: a new
                # connection for every sync with nothing new).
                content = b""
                with suppress(_BodyBroke):
                    for _chunk in _raw_chunks(response):
                        break
            elif 300 <= response.status_code < 400:
                content = b""
            else:
                large_ones = _LARGE_WRITE_ANSWERS if method != "GET" else (200,)
                large = response.status_code in large_ones
                limit = cap if large else min(cap, MAX_SMALL_BODY_BYTES)
                content = _read_body(response, lowered, limit)
            return HttpAnswer(response.status_code, lowered, content)


class _BodyBroke(Exception):
    """The body ended early or the connection failed while it was read (internal)."""


def _read_body(response: requests.Response, headers: Mapping[str, str], cap: int) -> bytes:
    """The body, decompressed, refused when its compressed or decompressed size exceeds the
    caps; gzip is decoded here in steps of at most the room left, so a bomb never expands."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip"):
        raise ProtocolError(
            f"The server sent an answer in an encoding the add-on did not ask for "
            f"({encoding[:20]}); nothing was changed. Tell your administrator."
        )
    length = headers.get("content-length", "")
    # gzip never legitimately makes a body larger (beyond its few bytes of framing).
    compressed_cap = min(cap, MAX_COMPRESSED_BYTES) + 1024
    if length.strip().isdigit() and int(length) > compressed_cap:
        raise _too_large(cap)
    body = _Body(cap, gzip=encoding in ("gzip", "x-gzip"))
    received = 0
    try:
        for chunk in _raw_chunks(response):
            received += len(chunk)
            if received > compressed_cap:
                raise _too_large(cap)
            body.feed(chunk)
    except (requests.RequestException, OSError, ValueError) as exc:
        raise _BodyBroke from exc
    if length.strip().isdigit() and received < int(length):
        raise _BodyBroke
    return body.finish()


def _raw_chunks(response: requests.Response) -> Iterator[bytes]:
    raw = response.raw
    while True:
        try:
            chunk = raw.read(_CHUNK, decode_content=False)
        except Exception as exc:  # urllib3 wraps socket errors in its own types
            raise _BodyBroke from exc
        if not chunk:
            return
        yield chunk


class _Body:
    """Collects a body, gunzipping it (also multi-member) without ever exceeding ``cap``."""

    def __init__(self, cap: int, *, gzip: bool) -> None:
        self._cap = cap
        self._parts: list[bytes] = []
        self._size = 0
        self._fed = False
        self._inflate = zlib.decompressobj(31) if gzip else None

    def feed(self, data: bytes) -> None:
        if self._inflate is None:
            self._add(data)
            return
        self._fed = True
        while data:
            room = self._cap - self._size + 1
            try:
                out = self._inflate.decompress(data, room)
            except zlib.error:
                raise _not_gzip() from None
            self._add(out)
            if self._inflate.eof:
                data = self._inflate.unused_data
                if data:
                    self._inflate = zlib.decompressobj(31)
                continue
            data = self._inflate.unconsumed_tail

    def _add(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._cap:
            raise _too_large(self._cap)
        if data:
            self._parts.append(data)

    def finish(self) -> bytes:
        if self._inflate is not None and self._fed and not self._inflate.eof:
            self._add(self._inflate.flush())
            if not self._inflate.eof:
                raise _BodyBroke
        return b"".join(self._parts)


def _load_changes(body: bytes, limit: int) -> ChangePage:
    return with_rows(load_page(decode_json(body, max_items=limit), limit=limit))


def _not_gzip() -> ProtocolError:
    return ProtocolError(
        "The server sent an answer marked as gzip that does not decompress; nothing was "
        "changed. Tell your administrator."
    )


def _no_answer(exc: BaseException) -> ServerUnreachable:
    if isinstance(exc, requests.Timeout):
        return TimedOut(_timed_out_message())
    return NoAnswer(
        "The server could not be reached; check your network connection. The offline copy is "
        "unchanged."
    )


def _timed_out_message() -> str:
    return (
        "The server timed out (it answered too slowly or not at all); check your network "
        "connection. The offline copy is unchanged."
    )


class SyncClient:
    """Talks to one server with one token (``with SyncClient(...) as client:``).

    ``server_url`` must pass :func:`check_server_url` (ConfigurationError otherwise).
    ``transport`` is the HTTP seam (default: :class:`RequestsTransport` with ``timeout``
    (connect, read), ``max_body_bytes``, ``verify`` and ``request_deadline_s``); ``retries``,
    ``retry_wait_cap``, ``retry_budget_s`` and ``sleep`` shape the retries of idempotent
    requests; ``clock`` is the wall clock an HTTP-date ``Retry-After`` is read against when
    the answer has no ``Date``. Each endpoint takes an optional ``deadline``
    (``time.monotonic``) by which it ends, retries included."""

    def __init__(
        self,
        server_url: str,
        token: str,
        client_id: str,
        *,
        transport: HttpTransport | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        retry_wait_cap: float = RETRY_WAIT_CAP,
        retry_budget_s: float = RETRY_BUDGET_S,
        max_body_bytes: int = MAX_BODY_BYTES,
        verify: bool | str = True,
        request_deadline_s: float = REQUEST_DEADLINE_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_server_url(server_url)
        _check_header_value(token, "login token")
        _check_header_value(client_id, "client id")
        self._base = server_url.strip().rstrip("/") + "/api/v1"
        self._retries = retries
        self._retry_wait_cap = retry_wait_cap
        self._retry_budget = retry_budget_s
        self._sleep = sleep
        self._clock = clock
        self._transport = transport or RequestsTransport(
            timeout=timeout,
            max_body_bytes=max_body_bytes,
            verify=verify,
            request_deadline_s=request_deadline_s,
        )
        self._headers = {
            "Authorization": f"Bearer {token}",
            "X-Client-Id": client_id,
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
        }

    def __repr__(self) -> str:
        return f"SyncClient({self._base!r})"

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the keep-alive connections."""
        self._transport.close()

    # -- endpoints ----------------------------------------------------------------------

    def policy(self, database: str, *, deadline: float | None = None) -> OfflinePolicy:
        """``GET /databases/{db}/offline/policy``."""
        answer = self._get(
            self._db_url(database, "offline/policy"),
            deadline=deadline,
            max_bytes=MAX_SMALL_BODY_BYTES,
        )
        return load_policy(decode_json(answer.body, max_items=0))

    def head(
        self, database: str, etag: str | None = None, *, deadline: float | None = None
    ) -> Head | HeadUnchanged:
        """``GET /databases/{db}/offline/head``: the feed position and the policy.

        :class:`HeadUnchanged` when the head still matches ``etag`` (``304``; its server time
        is the ``Date`` header's). A database or user without offline use raises
        :class:`OfflineNotAllowed` (``403``), so head doubles as the policy check.
        """
        headers = {"If-None-Match": etag} if etag else None
        answer = self._get(
            self._db_url(database, "offline/head"),
            headers=headers,
            deadline=deadline,
            max_bytes=MAX_SMALL_BODY_BYTES,
        )
        if answer.status == 304:
            return load_unchanged(answer.header("ETag"), answer.header("Date"))
        return load_head(decode_json(answer.body, max_items=0), answer.header("ETag"))

    # -- offline accountability (sync/accountability) -------------------------------------

    def post_access_events(
        self, database: str, events: list[dict[str, Any]], *, deadline: float | None = None
    ) -> AccessReceipt:
        """``POST /databases/{db}/offline/audit`` with a batch of access events (retried
        like a GET: the server records each event id once)."""
        answer = self._call(
            "POST",
            self._db_url(database, "offline/audit"),
            _json_body({"events": events}),
            deadline,
            frozenset({200}),
            _JSON_CONTENT,
            max_bytes=MAX_SMALL_BODY_BYTES,
        )
        return load_access_receipt(decode_json(answer.body, max_items=0), len(events))

    def put_copy_report(
        self, database: str, client_id: str, report: CopyReport, *, deadline: float | None = None
    ) -> None:
        """``PUT /databases/{db}/offline/copies/{client_id}``: the copy as it is now."""
        self._call(
            "PUT",
            self._copy_url(database, client_id),
            _json_body(report.as_json()),
            deadline,
            frozenset({200}),
            _JSON_CONTENT,
            max_bytes=MAX_SMALL_BODY_BYTES,
        )

    def delete_copy_report(
        self, database: str, client_id: str, *, deadline: float | None = None
    ) -> None:
        """``DELETE /databases/{db}/offline/copies/{client_id}``: the copy is gone."""
        self._call(
            "DELETE",
            self._copy_url(database, client_id),
            None,
            deadline,
            frozenset({204}),
            max_bytes=MAX_SMALL_BODY_BYTES,
        )

    def _copy_url(self, database: str, client_id: str) -> str:
        return self._db_url(database, f"offline/copies/{quote(client_id, safe='')}")

    def changes(
        self, database: str, cursor: str | None, limit: int, *, deadline: float | None = None
    ) -> ChangePage:
        """``GET /databases/{db}/offline/changes`` from ``cursor`` (None: the beginning).

        A page with more than ``limit`` changes is refused before its changes become objects
        (:func:`~offline_addon.protocol.answers.decode_json`)."""
        return self.fetch_changes(database, cursor, limit, deadline=deadline)()

    def fetch_changes(
        self, database: str, cursor: str | None, limit: int, *, deadline: float | None = None
    ) -> Callable[[], ChangePage]:
        """:meth:`changes` in two steps: the answer is fetched now (its body whole and
        decompressed), and the call returned decodes and validates it."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        answer = self._get(
            self._db_url(database, "offline/changes"), params=params, deadline=deadline
        )
        return functools.partial(_load_changes, answer.body, limit)

    # -- the write side (offline edits) ---------------------------------------------------

    def get_record(
        self, database: str, record_id: str, *, deadline: float | None = None
    ) -> ServerRecord | None:
        """``GET /databases/{db}/records/{id}``: the record as the user may read it now;
        None when the server says it does not exist for the user (``404``)."""
        answer = self._call(
            "GET", self._record_url(database, record_id), None, deadline, frozenset({200, 404})
        )
        if answer.status == 404:
            return None
        return load_record(decode_json(answer.body, max_items=2), record_id)

    def put_record(
        self,
        database: str,
        record_id: str,
        content: RecordContent,
        *,
        if_match: int | None,
        change_id: str,
        offline_time: float,
        deadline: float | None = None,
    ) -> WriteAnswer:
        """The conditional ``PUT`` of a pushed change: an update on ``if_match`` (the base
        revision) or, with None, a create under the client-made ``record_id``
        (``If-None-Match: *``). ``change_id`` (``X-Change-Id``) is the same on every resend
        of this write, so the server recognises one it applied already; ``offline_time``
        (``X-Offline-Change``) is the local time the change was made."""
        headers = self._write_headers(change_id, offline_time)
        headers["Content-Type"] = "application/json"
        if if_match is None:
            headers["If-None-Match"] = "*"
        else:
            headers["If-Match"] = f'"{if_match}"'
        body = _encode_record(content)
        answer = self._call(
            "PUT", self._record_url(database, record_id), body, deadline, _WRITE_ANSWERS, headers
        )
        return self._write_answer(answer, record_id)

    def delete_record(
        self,
        database: str,
        record_id: str,
        *,
        if_match: int,
        change_id: str,
        offline_time: float,
        deadline: float | None = None,
    ) -> WriteAnswer:
        """The conditional ``DELETE`` of a pushed change, on ``if_match``; see
        :meth:`put_record`."""
        headers = self._write_headers(change_id, offline_time)
        headers["If-Match"] = f'"{if_match}"'
        answer = self._call(
            "DELETE", self._record_url(database, record_id), None, deadline, _WRITE_ANSWERS, headers
        )
        return self._write_answer(answer, record_id)

    def _write_headers(self, change_id: str, offline_time: float) -> dict[str, str]:
        if not _CHANGE_ID.fullmatch(change_id):
            raise ValueError("a change id is 1 to 128 letters, digits and ._:-")
        moment = min(max(0.0, offline_time), 999_999_999_999.0)
        return {"X-Change-Id": change_id, "X-Offline-Change": f"{moment:.6f}"}

    def _write_answer(self, answer: HttpAnswer, record_id: str) -> WriteAnswer:
        meaning = load_write_answer(
            answer.status, answer.header("Content-Type"), answer.body, record_id=record_id
        )
        if meaning is None:  # not about the change (an unknown database): the usual error
            raise self._http_error(answer)
        return meaning

    def _record_url(self, database: str, record_id: str) -> str:
        return self._db_url(database, f"records/{quote(record_id, safe='')}")

    # -- plumbing -----------------------------------------------------------------------

    def _db_url(self, database: str, tail: str) -> str:
        return f"{self._base}/databases/{quote(database, safe='')}/{tail}"

    def _get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        max_bytes: int | None = None,
    ) -> HttpAnswer:
        """GET with retries; a 200 or 304 answer, else the add-on error for it."""
        return self._call(
            "GET", url, None, deadline, _GET_ANSWERS, headers, params=params, max_bytes=max_bytes
        )

    def _call(
        self,
        method: str,
        url: str,
        body: bytes | None,
        deadline: float | None,
        answered: frozenset[int],
        headers: Mapping[str, str] | None = None,
        *,
        params: Mapping[str, str | int] | None = None,
        max_bytes: int | None = None,
    ) -> HttpAnswer:
        """One request with retries (a write too: its ``X-Change-Id`` makes a resend safe);
        an answer whose status is in ``answered``, else the add-on error for it."""
        attempt = 0
        sent = {**self._headers, **(headers or {})}
        give_up = time.monotonic() + self._retry_budget
        if deadline is not None:
            give_up = min(give_up, deadline)
        while True:
            try:
                if method == "GET":
                    answer = self._transport.get(
                        url, params, sent, deadline=deadline, max_bytes=max_bytes
                    )
                else:
                    answer = self._transport.send(
                        method, url, sent, body, deadline=deadline, max_bytes=max_bytes
                    )
            except NoAnswer:
                if attempt < self._retries and self._pause(attempt, None, give_up):
                    attempt += 1
                    continue
                raise
            if answer.status in _RETRY_STATUSES and attempt < self._retries:
                retry_after = self._retry_after(answer)
                if (retry_after is None or retry_after <= self._retry_wait_cap) and self._pause(
                    attempt, retry_after, give_up
                ):
                    attempt += 1
                    continue
            if answer.status not in answered:
                raise self._http_error(answer)
            return answer

    def _pause(self, attempt: int, retry_after: float | None, give_up: float) -> bool:
        """Wait before the next attempt; False (no wait) when it would end past ``give_up``."""
        if retry_after is not None:
            wait = retry_after
        else:  # full jitter
            wait = random.uniform(0, BACKOFF_BASE * 2**attempt)
        wait = min(wait, self._retry_wait_cap)
        if time.monotonic() + wait > give_up:
            return False
        self._sleep(wait)
        return True

    def _retry_after(self, answer: HttpAnswer) -> float | None:
        return retry_after_seconds(
            answer.header("Retry-After"), answer.header("Date"), self._clock()
        )

    def _http_error(self, answer: HttpAnswer) -> Exception:
        """The add-on error for an answer other than 200 or 304."""
        status = answer.status
        problem = load_problem(answer.header("Content-Type"), answer.body)
        code = problem.code if problem is not None else ""
        if status == 401:
            return AuthenticationRequired(
                "The server no longer accepts your login; log in again to synchronise."
            )
        if status == 403 and problem is not None and problem.code in OFFLINE_REFUSALS:
            # Only this documented answer deletes the copy: an HTML page, a bare 403 or an
            # unknown code (a proxy, a captive portal) changes nothing.
            return OfflineNotAllowed(problem.code)  # type: ignore[arg-type]
        if status == 410 or (status == 400 and code == "bad_cursor"):
            return CursorExpired(
                "The server no longer knows this copy's sync position; a full sync is needed."
            )
        if status in (429, 503):
            return ServerBusy(
                "The server is busy; the sync will be retried later.", self._retry_after(answer)
            )
        if 300 <= status < 400:
            return ProtocolError(
                f"The server answered with a redirect (HTTP {status}), which the sync protocol "
                "never uses; nothing was changed. Check the server address (https://) or tell "
                "your administrator."
            )
        if status >= 500:
            return ServerError(
                f"The server failed (HTTP {status}); the sync will be retried later. "
                "If it persists, tell your administrator."
            )
        if status == 404 and code == "unknown_database":
            return ProtocolError(
                "The server does not know this database (HTTP 404); the offline copy is kept. "
                "Ask your administrator whether the database was renamed or removed."
            )
        label = f"HTTP {status}" + (f", {code}" if code else "")
        return ProtocolError(
            f"The server refused the sync request ({label}); nothing was changed. "
            "Tell your administrator."
        )


def parse_retry_after(
    value: str | None, date: str | None = None, now: float | None = None
) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds, or an HTTP date (read against the
    answer's ``Date`` when given, else against ``now``/the system clock)."""
    return retry_after_seconds(value, date, time.time() if now is None else now)


def _check_header_value(value: object, what: str) -> None:
    if not isinstance(value, str) or not value or not value.isascii() or not value.isprintable():
        raise ConfigurationError(
            f"The {what} of this session cannot be sent to the server (empty or with "
            "characters a header cannot carry); log in again."
        )


def _too_large(cap: int) -> ProtocolError:
    size = f"{cap // (1024 * 1024)} MiB" if cap >= 1024 * 1024 else f"{cap // 1024} KiB"
    return ProtocolError(
        f"The server sent an answer larger than {size}; nothing was changed. Tell your "
        "administrator."
    )


def _encode_record(content: RecordContent) -> bytes:
    """A record write's body: the whole record as it should be (``name`` and ``fields``)."""
    payload = {"name": content.name, "fields": dict(content.fields)}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_JSON_CONTENT = {"Content-Type": "application/json"}


def _json_body(payload: object) -> bytes:
    """A JSON request body (UTF-8, compact)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

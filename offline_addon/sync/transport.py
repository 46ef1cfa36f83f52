"""The client side of the sync protocol: endpoints, retries, error mapping, over one HTTP seam.

:class:`SyncClient` speaks the protocol; it sends every request through an
:class:`HttpTransport`, the one narrow interface to HTTP (one method: GET a URL and get the
status, headers and whole body back). :class:`RequestsTransport` is the real one: one
``requests.Session`` (keep-alive), TLS verification on, a connect and a read timeout on every
call, gzip accepted, the body capped while it is read. Tests give :class:`SyncClient` a
transport with canned answers instead.

Idempotent GETs are retried a few times with full-jitter backoff, honouring ``Retry-After`` up
to a cap; a longer ``Retry-After`` is handed to the caller as :class:`ServerBusy` so that the
worker can wait without holding a thread. Every answer is validated by
:mod:`offline_addon.protocol.answers` before it is returned. The token never appears in a
message, a log line or ``repr``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import requests

from offline_addon.errors import (
    AuthenticationRequired,
    CursorExpired,
    OfflineNotAllowed,
    ProtocolError,
    ServerBusy,
    ServerError,
    ServerUnreachable,
)
from offline_addon.protocol.answers import (
    ChangePage,
    Head,
    HeadUnchanged,
    OfflinePolicy,
    load_head,
    load_page,
    load_policy,
    load_unchanged,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 30.0)
MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_RETRIES = 2
RETRY_WAIT_CAP = 10.0
BACKOFF_BASE = 0.5
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_CHUNK = 256 * 1024


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
    """The request got no answer at all (connection refused, reset, timeout before the
    headers): safe to send again."""


class HttpTransport(Protocol):
    """The one seam between the sync client and HTTP."""

    def get(self, url: str, params: Mapping[str, str | int] | None,
            headers: Mapping[str, str]) -> HttpAnswer:
        """GET ``url``; raise :class:`NoAnswer` when nothing came back, ServerUnreachable when
        the body broke off, ProtocolError when it is over the transport's cap."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class RequestsTransport:
    """:class:`HttpTransport` over one ``requests.Session`` (keep-alive)."""

    def __init__(self, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 max_body_bytes: int = MAX_BODY_BYTES, verify: bool | str = True) -> None:
        self._timeout = timeout
        self._max_body = max_body_bytes
        self._http = requests.Session()
        self._http.verify = verify

    def get(self, url: str, params: Mapping[str, str | int] | None,
            headers: Mapping[str, str]) -> HttpAnswer:
        """GET with the timeouts; the body read in chunks and refused beyond the cap."""
        try:
            response = self._http.get(url, params=params, headers=dict(headers),
                                      timeout=self._timeout, stream=True)
        except requests.RequestException as exc:
            raise NoAnswer(_unreachable_message(exc)) from None
        with response:
            body = b"" if response.status_code == 304 else self._read(response)
            lowered = {key.lower(): value for key, value in response.headers.items()}
            return HttpAnswer(response.status_code, lowered, body)

    def close(self) -> None:
        """Close the keep-alive connections."""
        self._http.close()

    def _read(self, response: requests.Response) -> bytes:
        """The (decompressed) body, refused when it exceeds the cap."""
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            raise _too_large(self._max_body)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > self._max_body:
                    raise _too_large(self._max_body)
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise ServerUnreachable(_unreachable_message(exc)) from None
        return b"".join(chunks)


class SyncClient:
    """Talks to one server with one token (``with SyncClient(...) as client:``).

    ``transport`` is the HTTP seam (default: :class:`RequestsTransport` with ``timeout``,
    ``max_body_bytes`` and ``verify``); ``retries``, ``retry_wait_cap`` and ``sleep`` shape the
    retries of idempotent requests."""

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
        max_body_bytes: int = MAX_BODY_BYTES,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base = server_url.rstrip("/") + "/api/v1"
        self._retries = retries
        self._retry_wait_cap = retry_wait_cap
        self._sleep = sleep
        self._transport = transport or RequestsTransport(
            timeout=timeout, max_body_bytes=max_body_bytes, verify=verify)
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

    def policy(self, database: str) -> OfflinePolicy:
        """``GET /databases/{db}/offline/policy``."""
        answer = self._get(self._db_url(database, "offline/policy"))
        return load_policy(_decode(answer.body))

    def head(self, database: str, etag: str | None = None) -> Head | HeadUnchanged:
        """``GET /databases/{db}/offline/head``: the feed position and the policy.

        :class:`HeadUnchanged` when the head still matches ``etag`` (``304``; its server time
        is the ``Date`` header's). A database or user without offline use raises
        :class:`OfflineNotAllowed` (``403``), so head doubles as the policy check.
        """
        headers = {"If-None-Match": etag} if etag else None
        answer = self._get(self._db_url(database, "offline/head"), headers=headers)
        if answer.status == 304:
            return load_unchanged(answer.header("ETag"), answer.header("Date"))
        return load_head(_decode(answer.body), answer.header("ETag"))

    def changes(self, database: str, cursor: str | None, limit: int) -> ChangePage:
        """``GET /databases/{db}/offline/changes`` from ``cursor`` (None: the beginning)."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        answer = self._get(self._db_url(database, "offline/changes"), params=params)
        return load_page(_decode(answer.body))

    # -- plumbing -----------------------------------------------------------------------

    def _db_url(self, database: str, tail: str) -> str:
        return f"{self._base}/databases/{quote(database, safe='')}/{tail}"

    def _get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        """GET with retries; a 200 or 304 answer, else the add-on error for it."""
        attempt = 0
        sent = {**self._headers, **(headers or {})}
        while True:
            try:
                answer = self._transport.get(url, params, sent)
            except NoAnswer:
                if attempt < self._retries:
                    self._pause(attempt, None)
                    attempt += 1
                    continue
                raise
            if answer.status in _RETRY_STATUSES and attempt < self._retries:
                retry_after = parse_retry_after(answer.header("Retry-After"))
                if retry_after is None or retry_after <= self._retry_wait_cap:
                    self._pause(attempt, retry_after)
                    attempt += 1
                    continue
            if answer.status not in (200, 304):
                raise _http_error(answer)
            return answer

    def _pause(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is not None:
            wait = retry_after
        else:  # full jitter
            wait = random.uniform(0, BACKOFF_BASE * 2**attempt)
        self._sleep(min(wait, self._retry_wait_cap))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form; dates are ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return None
    return seconds


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise ProtocolError(
            "The server sent an answer that is not valid JSON; nothing was changed. "
            "Try again later or tell your administrator."
        ) from None


def _too_large(cap: int) -> ProtocolError:
    return ProtocolError(
        f"The server sent an answer larger than {cap // (1024 * 1024)} MiB; nothing was "
        "changed. Tell your administrator."
    )


def _unreachable_message(exc: requests.RequestException) -> str:
    kind = "timed out" if isinstance(exc, requests.Timeout) else "could not be reached"
    return f"The server {kind}; check your network connection. The offline copy is unchanged."


def _problem_code(body: bytes) -> str:
    try:
        problem = json.loads(body)
    except ValueError:
        return ""
    code = problem.get("code") if isinstance(problem, dict) else None
    return code if isinstance(code, str) else ""


def _http_error(answer: HttpAnswer) -> Exception:
    """The add-on error for an answer other than 200 or 304."""
    status = answer.status
    code = _problem_code(answer.body)
    if status == 401:
        return AuthenticationRequired(
            "The server no longer accepts your login; log in again to synchronise."
        )
    if status == 403 and code in ("offline_disabled", "offline_right_missing"):
        return OfflineNotAllowed(code)  # type: ignore[arg-type]
    if status == 410 or (status == 400 and code == "bad_cursor"):
        return CursorExpired(
            "The server no longer knows this copy's sync position; a full sync is needed."
        )
    if status in (429, 503):
        retry_after = parse_retry_after(answer.header("Retry-After"))
        return ServerBusy("The server is busy; the sync will be retried later.", retry_after)
    if status >= 500:
        return ServerError(
            f"The server failed (HTTP {status}); the sync will be retried later. "
            "If it persists, tell your administrator."
        )
    label = f"HTTP {status}" + (f", {code}" if code.isidentifier() else "")
    return ProtocolError(
        f"The server refused the sync request ({label}); nothing was changed. "
        "Tell your administrator."
    )

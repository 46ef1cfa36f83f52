"""The client side of the sync protocol: HTTP, timeouts, retries, error mapping.

One ``requests.Session`` per client (keep-alive), TLS verification on, a connect and a read
timeout on every call, gzip accepted. Idempotent GETs are retried a few times with full-jitter
backoff, honouring ``Retry-After`` up to a cap; a longer ``Retry-After`` is handed to the caller
as :class:`ServerBusy` so that the worker can wait without holding a thread. Every answer is
validated by :mod:`offline_addon.protocol.answers` before it is returned. The token never appears in a
message, a log line or ``repr``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any
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


class SyncClient:
    """Talks to one server with one token (``with SyncClient(...) as client:``)."""

    def __init__(
        self,
        server_url: str,
        token: str,
        client_id: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        retry_wait_cap: float = RETRY_WAIT_CAP,
        max_body_bytes: int = MAX_BODY_BYTES,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base = server_url.rstrip("/") + "/api/v1"
        self._timeout = timeout
        self._retries = retries
        self._retry_wait_cap = retry_wait_cap
        self._max_body = max_body_bytes
        self._sleep = sleep
        self._http = requests.Session()
        self._http.verify = verify
        self._http.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "X-Client-Id": client_id,
                "Accept": "application/json",
                "Accept-Encoding": "gzip",
            }
        )

    def __repr__(self) -> str:
        return f"SyncClient({self._base!r})"

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the keep-alive connections."""
        self._http.close()

    # -- endpoints ----------------------------------------------------------------------

    def policy(self, database: str) -> OfflinePolicy:
        """``GET /databases/{db}/offline/policy``."""
        _, body = self._get(self._db_url(database, "offline/policy"))
        return load_policy(body)

    def head(self, database: str, etag: str | None = None) -> Head | HeadUnchanged:
        """``GET /databases/{db}/offline/head``: the feed position and the policy.

        :class:`HeadUnchanged` when the head still matches ``etag`` (``304``; its server time
        is the ``Date`` header's). A database or user without offline use raises
        :class:`OfflineNotAllowed` (``403``), so head doubles as the policy check.
        """
        headers = {"If-None-Match": etag} if etag else None
        response, body = self._get(self._db_url(database, "offline/head"), headers=headers)
        if response.status_code == 304:
            return load_unchanged(response.headers.get("ETag"), response.headers.get("Date"))
        return load_head(body, response.headers.get("ETag"))

    def changes(self, database: str, cursor: str | None, limit: int) -> ChangePage:
        """``GET /databases/{db}/offline/changes`` from ``cursor`` (None: the beginning)."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        _, body = self._get(self._db_url(database, "offline/changes"), params=params)
        return load_page(body)

    # -- plumbing -----------------------------------------------------------------------

    def _db_url(self, database: str, tail: str) -> str:
        return f"{self._base}/databases/{quote(database, safe='')}/{tail}"

    def _get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[requests.Response, Any]:
        """GET with retries; returns the response and its decoded JSON body (None for 304)."""
        attempt = 0
        while True:
            try:
                response = self._http.get(
                    url, params=params, headers=headers, timeout=self._timeout, stream=True
                )
            except requests.RequestException as exc:
                if attempt < self._retries:
                    self._pause(attempt, None)
                    attempt += 1
                    continue
                raise ServerUnreachable(_unreachable_message(exc)) from None
            with response:
                if response.status_code in _RETRY_STATUSES and attempt < self._retries:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    if retry_after is None or retry_after <= self._retry_wait_cap:
                        self._pause(attempt, retry_after)
                        attempt += 1
                        continue
                if response.status_code == 304:
                    return response, None
                if response.status_code != 200:
                    raise _http_error(response, self._read(response))
                return response, _decode(self._read(response))

    def _pause(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is not None:
            wait = retry_after
        else:  # full jitter
            wait = random.uniform(0, BACKOFF_BASE * 2**attempt)
        self._sleep(min(wait, self._retry_wait_cap))

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


def _http_error(response: requests.Response, body: bytes) -> Exception:
    """The add-on error for a non-200 answer."""
    status = response.status_code
    code = _problem_code(body)
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
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
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

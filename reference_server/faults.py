"""Fault injection for tests: answer the next matching requests with 429/503 or late.

A real server cannot be made busy on demand, so :class:`FaultPlan` (a WSGI middleware that
``running_server`` installs) lets tests of client back-off ask for exactly that.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_TITLES = {429: "Too many requests", 503: "Service unavailable"}
_CODES = {429: "rate_limited", 503: "busy"}


@dataclass
class _Fault:
    status: int | None
    retry_after: float | None
    delay_s: float
    path_contains: str
    times: int


class FaultPlan:
    """Planned faults, consumed in order by matching requests (thread-safe)."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        status: int | None = 503,
        *,
        retry_after: float | None = None,
        times: int = 1,
        path_contains: str = "",
        delay_s: float = 0.0,
    ) -> None:
        """Fail the next ``times`` requests whose path contains ``path_contains``.

        ``status`` None only delays (``delay_s``) and then serves normally, e.g. to trip a
        client's read timeout; otherwise the answer is a problem+json with that status and,
        if given, ``Retry-After``.
        """
        with self._lock:
            self._faults.append(_Fault(status, retry_after, delay_s, path_contains, times))

    def clear(self) -> None:
        """Forget all planned faults."""
        with self._lock:
            self._faults.clear()

    def _take(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path_contains in path:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        fault = self._take(environ.get("PATH_INFO", ""))
        if fault is None:
            return self._app(environ, start_response)
        if fault.delay_s:
            time.sleep(fault.delay_s)
        if fault.status is None:
            return self._app(environ, start_response)
        body = json.dumps(
            {
                "type": "about:blank",
                "title": _TITLES.get(fault.status, "Injected fault"),
                "status": fault.status,
                "code": _CODES.get(fault.status, "server_error"),
                "detail": "The server is busy; retry later.",
            }
        ).encode()
        headers = [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body)))]
        if fault.retry_after is not None:
            headers.append(("Retry-After", f"{fault.retry_after:g}"))
        start_response(f"{fault.status} {_TITLES.get(fault.status, 'Error')}", headers)
        return [body]

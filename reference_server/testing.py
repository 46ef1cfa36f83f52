"""Run the reference server for tests: in a thread (:func:`running_server`) or as a process.

``running_server`` serves with waitress on ``127.0.0.1:<free port>`` in a thread and stops and
joins it on exit; ``ServerProcess`` runs the real ``psr-server serve`` command so that tests and
benchmarks can kill it (SIGKILL) mid-sync. Both take a fresh path or an existing data folder:
unlike ``psr-server``, they create a missing folder (:func:`ensure_data_folder`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from reference_server.admin import Admin
from reference_server.app import create_app
from reference_server.datadir import init_data_folder
from reference_server.db import DB_FILENAME
from reference_server.faults import FaultPlan, WsgiApp
from reference_server.serving import ApiServer

READY_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class RunningServer:
    """A server running in this process: its base ``url`` and an :class:`Admin` on its file."""

    url: str
    admin: Admin
    data_dir: Path
    faults: FaultPlan
    """Planned 429/503/slow answers for tests of client back-off (see :class:`FaultPlan`)."""
    requests: RequestLog
    """The requests the server received, for tests that count round trips."""


class RequestLog:
    """WSGI middleware that records each request's method and path (the last ``limit``).

    Outermost, so that requests answered by a planned fault are counted too. Thread-safe.
    """

    def __init__(self, app: WsgiApp, limit: int = 10_000) -> None:
        self._app = app
        self._seen: deque[tuple[str, str]] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        with self._lock:
            self._seen.append((environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")))
        return self._app(environ, start_response)

    def seen(self) -> list[tuple[str, str]]:
        """``(method, path)`` of the requests received since the last :meth:`clear`."""
        with self._lock:
            return list(self._seen)

    def clear(self) -> None:
        """Forget the requests seen so far."""
        with self._lock:
            self._seen.clear()


def ensure_data_folder(data_dir: Path) -> Path:
    """``data_dir`` as a server data folder: created by ``init_data_folder`` unless it is one
    already (tests hand over fresh paths; ``psr-server`` itself never creates one unasked)."""
    data_dir = Path(data_dir)
    if not (data_dir / DB_FILENAME).exists():
        init_data_folder(data_dir)
    return data_dir


@contextmanager
def running_server(
    data_dir: Path, clock: Callable[[], float] = time.time
) -> Iterator[RunningServer]:
    """Serve ``data_dir`` (created if missing) on a free loopback port in a thread for the
    ``with`` block.

    ``clock`` is the server's clock (server_time, token expiry, feed timestamps); tests may pass
    a fake one. At exit the server thread is stopped and joined and all connections closed.
    """
    data_dir = ensure_data_folder(data_dir)
    app = create_app(data_dir, clock=clock)
    faults = FaultPlan(app.wsgi_app)
    log = RequestLog(faults)
    app.wsgi_app = log  # type: ignore[method-assign]
    server = ApiServer(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve, name="psr-server", daemon=True)
    thread.start()
    admin = Admin(data_dir, clock=clock)
    try:
        yield RunningServer(server.url, admin, data_dir, faults, log)
    finally:
        admin.close()
        server.stop()
        thread.join(timeout=30)


class ServerProcess:
    """``python -m reference_server.cli serve --data DIR --port 0`` as a child process (the
    folder is created first if it is missing)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._proc: subprocess.Popen[str] | None = None
        self._url: str | None = None
        self._admin: Admin | None = None

    def start(self) -> ServerProcess:
        """Start the process and wait for its ``listening on`` line."""
        ensure_data_folder(self.data_dir)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reference_server.cli",
                "serve",
                "--data",
                str(self.data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self._proc.stdout is not None
        line = read_line(self._proc.stdout, READY_TIMEOUT_S)
        if not line.startswith("listening on "):
            self.kill()
            raise RuntimeError(f"psr-server did not start (first line: {line!r})")
        self._url = line.removeprefix("listening on ").strip()
        return self

    @property
    def url(self) -> str:
        """The server's base URL."""
        if self._url is None:
            raise RuntimeError("the server process is not started")
        return self._url

    @property
    def admin(self) -> Admin:
        """An :class:`Admin` on the same data folder (opened on first use)."""
        if self._admin is None:
            self._admin = Admin(self.data_dir)
        return self._admin

    @property
    def pid(self) -> int:
        """The process id."""
        assert self._proc is not None
        return self._proc.pid

    def kill(self) -> None:
        """SIGKILL the process (a crash) and reap it."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM the process (a clean shutdown) and wait for it."""
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        proc, self._proc = self._proc, None
        if proc is not None:
            end_process(proc, sig)

    def __enter__(self) -> ServerProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def end_process(proc: subprocess.Popen[str], sig: signal.Signals = signal.SIGTERM) -> None:
    """Send ``sig`` to a server child, wait for it (SIGKILL after 15 s) and close its output."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def read_line(stream: IO[str], timeout: float) -> str:
    """One line from a child process's ``stream``, or "" when none came within ``timeout``
    seconds (a plain ``readline`` would block for ever on a hung child)."""
    result: list[str] = []

    def read() -> None:
        # A reader left waiting after the timeout may find the stream closed by its owner
        # later (the child ended): that is the end of the stream, not an error.
        try:
            result.append(stream.readline())
        except (ValueError, OSError):
            result.append("")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""

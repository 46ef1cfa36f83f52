"""Serving the app with waitress (HTTP/1.1 keep-alive, TCP_NODELAY) and stopping it cleanly."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

from reference_server.app import close_app

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ApiServer:
    """A waitress server bound to ``host:port`` (0 = a free port) serving one app.

    :meth:`serve` runs the event loop in the calling thread until :meth:`stop` is called from
    any thread (or a signal handler); then it shuts the worker threads down, closes every
    socket and the app's database connections.
    """

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0, threads: int = 4):
        self._app = app
        self._server: Any = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="psr-server",
            clear_untrusted_proxy_headers=True,
        )
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        """The bound port (useful after asking for port 0)."""
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        """``http://host:port`` of the server."""
        host = self._server.effective_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def serve(self) -> None:
        """Run until :meth:`stop`; then release everything."""
        server = self._server
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=server.adj.asyncore_loop_timeout, map=server._map, count=1)
        finally:
            server.task_dispatcher.shutdown()
            wasyncore.close_all(server._map)
            close_app(self._app)

    def stop(self) -> None:
        """Ask :meth:`serve` to return (safe from other threads and signal handlers)."""
        self._stopping.set()
        self._server.pull_trigger()

"""Logging in for tests: one ``POST /session`` through the host's own client
(:class:`reference_host.client.OnlineClient`), giving the hook :class:`~hookspecs.Session` a host
would hand to the add-on. Tests of ``/session`` itself send raw requests instead."""

from __future__ import annotations

from hookspecs import Session
from reference_host.client import OnlineClient

CLIENT_ID = "test-client-Vq3k9"
"""The installation every test session logs in from (copies are named after it)."""


def log_in(
    server_url: str,
    database: str,
    username: str,
    password: str,
    *,
    client_id: str = CLIENT_ID,
    session_url: str | None = None,
) -> Session:
    """A real online login at ``server_url``, as the host does it.

    ``session_url`` is the server URL the session names (default: ``server_url``), for tests
    that talk to the server through a proxy on another port.
    """
    with OnlineClient(server_url, client_id) as client:
        answer = client.login(database, username, password)
    return Session(
        server_url=session_url or client.server_url,
        database=database,
        user_id=answer.user_id,
        username=answer.username,
        client_id=client_id,
        token=answer.token,
        password=password,
    )

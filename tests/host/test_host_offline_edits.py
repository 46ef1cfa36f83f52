"""Offline edits in ``psr-client`` itself: a subprocess on a real terminal, the real Offline
Add-on loaded through its entry point, the reference server stopped after the copy was made."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from hookspecs import OfflineCredentials
from reference_server.testing import RunningServer
from tests.support.copies import allow_offline_editing
from tests.support.host import PASSWORD, PSR_CLIENT, Cli, TerminalClient
from tests.support.servers import seed, serve

SECRET = "Qx7-offline-secret-91zz"


@pytest.fixture
def offline_terminal(tmp_path: Path) -> Iterator[TerminalClient]:
    """``psr-client login`` on a terminal, offline with editing allowed: the copy was made
    with ``offline create`` while the server ran."""
    with ExitStack() as stack:
        server = stack.enter_context(serve(tmp_path / "srv"))
        seed(server, "demo", {"alice": PASSWORD}, [{"name": "Mail", "fields": {"password": "x"}}])
        cli = _copy_made(server, tmp_path)
    # The server is gone now.
    client = TerminalClient([str(PSR_CLIENT), "login"], {**cli.env, "PSR_PASSWORD": PASSWORD})
    try:
        client.expect("Changes you make are kept in the copy")
        client.expect("psr>")
        yield client
    finally:
        if client.proc.poll() is None:
            client.proc.kill()
        client.close()


def _copy_made(server: RunningServer, tmp_path: Path) -> Cli:
    cli = Cli(
        tmp_path,
        PSR_SERVER=server.url,
        PSR_DATABASE="demo",
        PSR_USER="alice",
        PSR_PASSWORD=PASSWORD,
    )
    folder = tmp_path / "copies"
    assert cli("settings", "set", "offline", "database_path", str(folder)).returncode == 0
    created = cli("offline", "create")
    assert created.returncode == 0, created.stdout + created.stderr
    copies = cli.copies()
    client_id = cli.config()["client_id"]
    paths = copies.paths_for(OfflineCredentials(server.url, "demo", "alice", client_id, PASSWORD))
    copies.shutdown()
    allow_offline_editing(server, "demo", paths, PASSWORD)
    return cli


def test_ctrl_c_at_the_delete_question_deletes_nothing_and_the_shell_goes_on(
    offline_terminal: TerminalClient,
) -> None:
    terminal = offline_terminal
    terminal.type("delete Mail\r")
    mark = terminal.expect("delete 'Mail'? [y/N]")
    terminal.type("\x03")
    terminal.type("show Mail\r")
    terminal.expect("Mail  (id", after=mark)
    terminal.type(f"edit Mail password={SECRET}\r")
    mark = terminal.expect("offline; it is sent to the server at your next online login")
    terminal.type("offline status\r")
    terminal.expect("1 offline change waits to be sent to the server.", after=mark)
    terminal.type("quit\r")
    terminal.expect("offline session closed")
    assert terminal.close() == 0
    screen = terminal.screen()
    assert "deleted" not in screen.replace("nothing deleted", "")
    assert "offline (editing)" in screen  # the status line

"""The guides' examples run against the real reference server and real files, so the guides
cannot drift from the code. How blocks run: :mod:`tests.support.mdrun`."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from reference_server.testing import RunningServer
from tests.support.mdrun import DB, PASSWORD, USER, demo_site, run_console, run_pycon, tool_env
from tests.support.servers import serve

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_admin_guide_commands_print_what_the_guide_shows(tmp_path: Path) -> None:
    servers: list[RunningServer] = []
    with ExitStack() as stack:
        # The guide makes the data folder with 'init' first; then the server serves it.
        def start_server() -> None:
            servers.append(stack.enter_context(serve(tmp_path / "server-data")))

        ran, failures = run_console(
            DOCS / "admin.md", tmp_path, tool_env(tmp_path), {"start-server": start_server}
        )
        assert servers, "the guide never started the server"
        [user] = servers[0].admin.list_users()
    assert not failures, "\n\n".join(failures)
    assert ran >= 8
    # The guide's last step took alice's offline right away; the server agrees.
    assert (user.name, user.offline_right) == ("alice", False)


def test_user_guide_transcripts_match_a_real_client(tmp_path: Path) -> None:
    with ExitStack() as stack:
        server = stack.enter_context(demo_site(tmp_path / "server-data"))
        env = tool_env(
            tmp_path, PSR_SERVER=server.url, PSR_DATABASE=DB, PSR_USER=USER, PSR_PASSWORD=PASSWORD
        )
        ran, failures = run_console(DOCS / "user.md", tmp_path, env, {"stop-server": stack.close})
    assert not failures, "\n\n".join(failures)
    assert ran >= 6


def test_developer_guide_examples_run(demo_server: RunningServer, tmp_path: Path) -> None:
    report, left = run_pycon(
        DOCS / "developer.md", {"server_url": demo_server.url, "work": tmp_path}
    )
    # The guide shuts its OfflineCopies down; after a failure midway this releases it.
    shutdown = getattr(left.get("copies"), "shutdown", None)
    if callable(shutdown):
        assert shutdown()
    assert report is None, report

"""Logging in never waits in silence, and losing the server moves the shell to the copy."""

from __future__ import annotations

import io
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import offline_addon.plugin
from offline_addon.errors import EDITING_SWITCHED_OFF
from reference_host.host import Host
from reference_host.session import WENT_OFFLINE, LoginTarget, log_in
from reference_host.shell import Shell
from reference_host.timer import HostClock
from reference_server.testing import read_line, running_server
from tests.support.host import (
    PASSWORD,
    PSR_CLIENT,
    AddonSite,
    Cli,
    ScriptedShell,
    SilentServer,
    World,
    web_server_that_is_not_psr,
)

HostFactory = Callable[..., tuple[Host, io.StringIO]]
SHORT = (0.5, 1.0)  # connect, read: a hung server costs the tests a second


def test_a_silent_server_is_announced_within_a_second_and_given_up_for_the_copy(
    session_for: Callable[..., ScriptedShell],
) -> None:
    with SilentServer() as silent:
        s = session_for(silent.url)
        s.probe.plugin_module().OFFLINE_ANSWER["mode"] = "session"
        notices: list[tuple[float, str]] = []
        started = time.monotonic()
        outcome = log_in(
            s.host,
            LoginTarget(silent.url, "demo", "alice"),
            PASSWORD,
            HostClock(),
            3600,
            timeout=SHORT,
            notice=lambda text: notices.append((time.monotonic(), text)),
        )
        waited = time.monotonic() - started
    assert silent.accepted >= 1
    ((at, text),) = notices
    assert at - started < 1.0
    assert text == f"Connecting to {silent.url} … (press Ctrl-C to work offline)"
    assert outcome.offline is not None
    assert outcome.message.splitlines() == [
        f"the server {silent.url} did not answer within 1 s; try again later",
        "opened the offline copy",
    ]
    assert waited < SHORT[1] + 3.0  # bounded by the read timeout, not the old 30 s
    outcome.offline.close()


def test_a_quick_login_says_nothing_about_connecting(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    notices: list[str] = []
    s = session_for(world.server.url)
    outcome = log_in(
        s.host,
        LoginTarget(world.server.url, "demo", "alice"),
        PASSWORD,
        HostClock(),
        3600,
        notice=notices.append,
    )
    assert outcome.online is not None
    outcome.online.close()
    assert notices == []


def test_ctrl_c_while_connecting_logs_in_offline_and_the_session_goes_on(
    tmp_path: Path, addon_site: AddonSite
) -> None:
    addon_site.install("probe")
    cli = Cli(tmp_path, addon_site.site)
    assert cli("addons", "disable", "offline").returncode == 0
    with SilentServer() as silent:
        proc = subprocess.Popen(
            [
                str(PSR_CLIENT),
                "--server",
                silent.url,
                "--database",
                "demo",
                "--user",
                "alice",
                "login",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**cli.env, "PSR_PASSWORD": PASSWORD, "PROBE_OFFLINE": "session"},
        )
        assert proc.stderr is not None
        try:
            started = time.monotonic()
            notice = read_line(proc.stderr, timeout=5.0)
            assert notice.strip() == (
                f"Connecting to {silent.url} … (press Ctrl-C to work offline)"
            )
            assert time.monotonic() - started < 5.0
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate("list\nquit\n", timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert out.splitlines() == [
        f"stopped connecting to {silent.url}",
        "opened the offline copy",
        "r1\trev 3\tMail",
        "(1 record)",
        "offline session closed",
    ]
    assert "Traceback" not in err


def test_a_url_that_is_not_a_password_safe_server_says_so(
    session_for: Callable[..., ScriptedShell],
) -> None:
    with web_server_that_is_not_psr() as url:
        s = session_for(url)
        ok, lines = s.run("list\n")
    assert not ok
    assert lines == [
        f"{url} does not look like a Password Safe server (it answered HTTP 404 "
        "where the API should be); check the server URL"
    ]
    assert s.calls("offline_login") == []


def test_when_the_server_goes_away_the_shell_goes_on_from_the_real_addons_copy(
    tmp_path: Path, make_host: HostFactory
) -> None:
    host, out = make_host("offline")
    host.set_setting("offline", "database_path", str(tmp_path / "copies"))
    host.start()
    with ExitStack() as stack:
        server = stack.enter_context(running_server(tmp_path / "srv"))
        server.admin.create_database("demo", offline_allowed=True)
        server.admin.create_user("alice", PASSWORD, offline_right=True, validity_days=7)
        server.admin.import_records(
            "demo",
            [{"name": f"Site {i}", "fields": {"password": f"pw-Kx7!site-{i}"}} for i in range(3)],
            grant={"alice": "rwe"},
        )
        shell = Shell(
            host,
            LoginTarget(server.url, "demo", "alice"),
            HostClock(),
            3600,
            io.StringIO(""),
            interactive=False,
        )
        assert shell.login(PASSWORD)
        shell.execute("offline create")
        assert offline_addon.plugin.addon.copies.wait_idle(30)
        stack.close()  # the server goes away
        seen = len(out.getvalue())
        shell.execute("search Site")
        shell.execute("new Wiki url=https://wiki.example")
        shell.logout()
    lines = out.getvalue()[seen:].splitlines()
    assert lines[0] == WENT_OFFLINE
    assert "(3 records)" in lines  # the search ran again, from the copy
    # The add-on says why its copy is read-only (offline editing is off by default).
    assert EDITING_SWITCHED_OFF in lines
    assert shell.online is None
    for secret in (PASSWORD, "pw-Kx7!site-0"):
        assert secret not in out.getvalue()


def test_when_the_server_goes_away_without_a_copy_the_online_session_stays(
    tmp_path: Path, session_for: Callable[..., ScriptedShell]
) -> None:
    with ExitStack() as stack:
        server = stack.enter_context(running_server(tmp_path / "srv"))
        server.admin.create_database("demo", offline_allowed=True)
        server.admin.create_user("alice", PASSWORD, offline_right=True, validity_days=7)
        s = session_for(server.url)
        shell = s.shell()
        assert shell.login(PASSWORD)
        stack.close()
        shell.execute("list")
        assert shell.online is not None
        assert s.calls("offline_login")[-1][1] == {"username": "alice", "database": "demo"}
        shell.logout()
    assert (
        f"error: the server {server.url} cannot be reached; check your network or try "
        "again later" in s.out.getvalue().splitlines()
    )


def test_losing_the_server_opens_the_copy_without_a_login_and_ends_the_online_session(
    tmp_path: Path, session_for: Callable[..., ScriptedShell]
) -> None:
    with ExitStack() as stack:
        server = stack.enter_context(running_server(tmp_path / "srv"))
        server.admin.create_database("demo", offline_allowed=True)
        server.admin.create_user("alice", PASSWORD, offline_right=True, validity_days=7)
        s = session_for(server.url)
        s.probe.plugin_module().OFFLINE_ANSWER["mode"] = "session"
        shell = s.shell()
        assert shell.login(PASSWORD)
        stack.close()
        shell.execute("show Mail")
        shell.logout()
    lines = s.out.getvalue().splitlines()
    assert WENT_OFFLINE in lines
    assert "Mail  (id r1, rev 3)" in lines
    # Asked first, so that the online session stays when there is no copy.
    assert [h for h, _ in s.calls()][-3:] == [
        "offline_login",
        "on_logout",
        "offline_session_closed",
    ]

"""The shell on a real (pseudo-)terminal: line editing, history, completion, Ctrl-C and Ctrl-D,
and background output that keeps the prompt drawn."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.host import PASSWORD, PSR_CLIENT, AddonSite, Cli, TerminalClient, World

TYPED_SECRET = "pw-Kx7!typed-at-the-prompt"


@pytest.fixture
def terminal(world: World, tmp_path: Path, addon_site: AddonSite) -> Iterator[TerminalClient]:
    """``psr-client login`` for alice on a terminal, with the probe add-on (and the real one
    switched off, to keep its hints out of these screens)."""
    addon_site.install("probe")
    cli = Cli(tmp_path, addon_site.site)
    assert cli("addons", "disable", "offline").returncode == 0
    client = TerminalClient(
        [
            str(PSR_CLIENT),
            "--server",
            world.server.url,
            "--database",
            "demo",
            "--user",
            "alice",
            "login",
        ],
        {**cli.env, "PSR_PASSWORD": PASSWORD},
    )
    try:
        client.expect("logged in online as alice to demo")
        client.expect("psr>")
        yield client
    finally:
        if client.proc.poll() is None:
            client.proc.kill()
        client.close()


def test_completion_history_and_ctrl_c_at_the_prompt(
    terminal: TerminalClient, tmp_path: Path
) -> None:
    terminal.type("lis\t")  # Tab completes the command name (on the prompt's own loop)
    terminal.expect("list")
    terminal.type("\r")
    first = terminal.expect("(2 records)")
    terminal.type("\x1b[A\r")  # Up brings the last line back
    terminal.expect("(2 records)", after=first)
    terminal.type("garbage words\x03")  # Ctrl-C drops the line, not the shell
    terminal.type("probe pi\t")  # a contributed command's name completes too
    terminal.expect("probe ping", after=first)
    terminal.type(" x\r")
    mark = terminal.expect("pong x")
    terminal.type(f"new Note password={TYPED_SECRET}\r")
    terminal.expect("created", after=mark)
    terminal.type("\x04")  # Ctrl-D ends the shell
    terminal.expect("logged out")
    assert terminal.close() == 0
    assert "invalid choice" not in terminal.screen()
    history = tmp_path / "client-config" / "shell-history"
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    remembered = history.read_text(encoding="utf-8")
    assert "+list" in remembered
    assert "+probe ping x" in remembered
    assert TYPED_SECRET not in remembered
    assert "garbage" not in remembered


def test_ctrl_c_stops_the_running_command_and_the_shell_goes_on(
    terminal: TerminalClient, tmp_path: Path
) -> None:
    terminal.type("probe wait\r")
    terminal.expect("waiting")
    terminal.type("\x03")
    mark = terminal.expect("stopped (Ctrl-C)")
    terminal.type("say still here\r")
    terminal.expect("still here", after=mark)
    terminal.type("quit\r")
    terminal.expect("logged out")
    assert terminal.close() == 0
    calls = (tmp_path / "probe.log").read_text(encoding="utf-8")
    assert '"hook": "wait_interrupted"' in calls


def test_background_output_is_printed_above_a_redrawn_prompt_and_info_goes_to_the_status(
    terminal: TerminalClient,
) -> None:
    terminal.type("probe later\r")
    mark = terminal.expect("[warning] Probe: from the background")
    terminal.expect("psr>", after=mark)  # the prompt is drawn again below it
    terminal.expect("probe: Working: done", after=mark)  # how the task ended
    terminal.expect("Probe: background info", after=mark)
    terminal.type("quit\r")
    assert terminal.close() == 0
    assert "[info] Probe" not in terminal.screen()  # on the status line, not the scroll-back

"""``psr-client`` as a subprocess: add-ons, settings and contributed commands."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.host import BROKEN_SOURCE, ROOT, AddonSite, Cli


def _row(listing: str, addon_id: str) -> list[str]:
    (row,) = [line.split("\t") for line in listing.splitlines() if line.startswith(addon_id)]
    return row


def test_addons_list_shows_the_offline_addon_enabled_with_its_version(tmp_path: Path) -> None:
    cli = Cli(tmp_path, None)
    result = cli("addons", "list")
    assert result.returncode == 0, result.stderr
    version = json.loads((ROOT / "manifest.json").read_text("utf-8"))["version"]
    assert _row(result.stdout, "offline") == ["offline", "Offline Add-on", version, "enabled"]


def test_addons_disable_and_enable_are_stored_and_listed(cli: Cli, addon_site: AddonSite) -> None:
    addon_site.install("probe")
    assert _row(cli("addons", "list").stdout, "probe")[3] == "enabled"
    result = cli("addons", "disable", "probe")
    assert (result.returncode, result.stdout.strip()) == (0, "add-on probe disabled")
    assert _row(cli("addons", "list").stdout, "probe")[2:] == ["0.3.1", "disabled"]
    assert cli.config()["addons"]["probe"]["enabled"] is False
    assert cli("addons", "enable", "probe").returncode == 0
    assert _row(cli("addons", "list").stdout, "probe")[3] == "enabled"


def test_disabled_addon_gets_no_hook_calls_and_contributes_no_commands(
    cli: Cli, addon_site: AddonSite
) -> None:
    addon_site.install("probe")
    result = cli("probe", "ping", "hi")
    assert (result.returncode, result.stdout.strip()) == (0, "pong hi")
    assert "on_addon_enabled" in [c["hook"] for c in cli.probe_calls()]
    cli("addons", "disable", "probe")
    cli.probe_log.unlink()
    for args in (("addons", "list"), ("settings", "show"), ("probe", "ping", "hi")):
        cli(*args)
    assert cli.probe_calls() == []


def test_a_command_of_a_switched_off_addon_says_how_to_switch_it_on(
    cli: Cli, addon_site: AddonSite
) -> None:
    addon_site.install("probe")
    cli("addons", "disable", "probe")
    cli.probe_log.unlink()
    result = cli("probe", "ping", "hi")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "psr-client: error: the command group 'probe' belongs to the add-on 'probe', which is "
        "switched off; switch it on with `psr-client addons enable probe`"
    )
    assert cli.probe_calls() == []
    assert "invalid choice: 'nosuch'" in cli("nosuch").stderr


def test_settings_set_stores_a_valid_value(cli: Cli, addon_site: AddonSite) -> None:
    addon_site.install("probe")
    result = cli("settings", "set", "probe", "level", "8")
    assert (result.returncode, result.stdout.strip()) == (0, "probe.level = 8")
    assert cli.config()["addons"]["probe"]["settings"] == {"level": 8}
    shown = cli("settings", "show", "probe").stdout.splitlines()
    assert "probe.level = 8" in shown
    assert "probe.loud = false  (default)" in shown


def test_settings_set_refuses_a_bad_value_naming_the_field_and_keeps_the_old(
    cli: Cli, addon_site: AddonSite
) -> None:
    addon_site.install("probe")
    cli("settings", "set", "probe", "loud", "on")
    result = cli("settings", "set", "probe", "loud", "sometimes")
    assert result.returncode == 2
    assert "loud" in result.stdout
    assert "Not a valid boolean" in result.stdout
    assert cli.config()["addons"]["probe"]["settings"] == {"loud": True}
    unknown = cli("settings", "set", "probe", "volume", "3")
    assert unknown.returncode == 2
    assert "volume: unknown setting" in unknown.stdout


def test_contributed_command_runs_with_its_arguments_and_exit_code(
    cli: Cli, addon_site: AddonSite
) -> None:
    addon_site.install("probe")
    result = cli("probe", "ping", "hello", "--code", "3")
    assert (result.returncode, result.stdout.strip()) == (3, "pong hello")
    hooks = [c["hook"] for c in cli.probe_calls()]
    # The host starts the add-on, runs the command, and shuts it down.
    assert hooks == ["register_commands", "on_addon_enabled", "on_addon_disabled"]


def test_contributed_command_that_raises_gives_a_message_and_exit_code_1(
    cli: Cli, addon_site: AddonSite
) -> None:
    addon_site.install("probe")
    result = cli("probe", "explode")
    assert result.returncode == 1
    assert "probe explode failed: handler exploded" in result.stdout
    assert "Traceback" not in result.stderr


def test_broken_addon_does_not_stop_the_cli_or_the_other_addons(
    cli: Cli, addon_site: AddonSite
) -> None:
    addon_site.install("probe")
    addon_site.install("broken", BROKEN_SOURCE)
    listing = cli("addons", "list")
    assert listing.returncode == 0
    assert _row(listing.stdout, "broken")[3] == "enabled"
    result = cli("probe", "ping", "still")
    assert (result.returncode, result.stdout.strip()) == (0, "pong still")
    assert "add-on 'broken' failed in on_addon_enabled" in result.stderr


def test_addon_with_a_corrupted_manifest_is_listed_refused_naming_the_field(
    cli: Cli, addon_site: AddonSite
) -> None:
    addon_site.install("probe", edit=lambda m: m["settings"]["loud"].pop("default"))
    result = cli("addons", "list")
    assert result.returncode == 0
    state = _row(result.stdout, "probe")[3]
    assert state.startswith("refused: invalid manifest:")
    assert "settings.loud.default" in state
    enable = cli("addons", "enable", "probe")
    assert enable.returncode == 2
    assert "cannot be enabled" in enable.stdout


def test_needs_session_command_without_a_server_says_what_is_missing(
    cli: Cli, addon_site: AddonSite
) -> None:
    addon_site.install("probe")
    result = cli("probe", "whoami")
    assert result.returncode == 2
    assert "--server (PSR_SERVER)" in result.stdout


def test_unreadable_settings_file_is_reported_not_a_traceback(cli: Cli) -> None:
    cli.config_dir.mkdir(parents=True)
    (cli.config_dir / "host.json").write_text("[1, 2", encoding="utf-8")
    result = cli("addons", "list")
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_login_to_an_unreachable_server_without_copies_explains_and_logs_with_v(
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path, None)
    assert cli("addons", "disable", "offline").returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    quiet = cli(
        "--server",
        url,
        "--database",
        "demo",
        "--user",
        "alice",
        "login",
        stdin="typed-secret\nlist\n",
    )
    assert quiet.returncode == 1
    assert quiet.stdout.splitlines()[-1].startswith("no add-on that offers an offline login")
    assert quiet.stderr == ""
    loud = cli(
        "-v",
        "--server",
        url,
        "--database",
        "demo",
        "--user",
        "alice",
        "login",
        stdin="typed-secret\n",
    )
    assert "INFO psr.host.session: online login failed" in loud.stderr
    assert "typed-secret" not in loud.stdout + loud.stderr


def test_one_shot_commands_get_the_account_and_the_command_line_text(
    cli: Cli, addon_site: AddonSite
) -> None:
    addon_site.install("probe")
    assert cli("probe", "account").stdout.strip() == "account none"
    result = cli(
        "--server",
        "http://127.0.0.1:1/",
        "--database",
        "demo",
        "--user",
        "alice",
        "probe",
        "account",
    )
    client_id = cli.config()["client_id"]
    assert result.stdout.strip() == f"account http://127.0.0.1:1 demo alice {client_id}"
    assert cli("probe", "hint").stdout.strip() == "run psr-client probe ping"


def test_the_terminal_shows_addon_warnings_only_with_v(cli: Cli, addon_site: AddonSite) -> None:
    addon_site.install("probe")
    quiet = cli("probe", "grumble")
    assert quiet.stderr.splitlines() == ["ERROR probe_addon.worker: grumble-error from the add-on"]
    loud = cli("-v", "probe", "grumble")
    assert "WARNING probe_addon.worker: grumble-warning from the add-on" in loud.stderr
    assert "ERROR probe_addon.worker: grumble-error from the add-on" in loud.stderr


def test_a_piped_session_reads_plain_lines_without_prompt_toolkit(tmp_path: Path) -> None:
    cli = Cli(tmp_path, None)
    probe = (
        "import sys; from reference_host.cli import main; code = main(sys.argv[1:]); "
        "print('prompt_toolkit' in sys.modules, code)"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            "--server",
            "http://127.0.0.1:9",
            "--database",
            "demo",
            "--user",
            "alice",
            "login",
        ],
        input="pw-Kx7!piped\nlist\n",
        capture_output=True,
        text=True,
        env=cli.env,
        timeout=60,
        check=False,
    )
    assert result.stdout.splitlines()[-1] == "False 1"

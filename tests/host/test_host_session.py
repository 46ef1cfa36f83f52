"""Login, records, timer and offline fallback against the real reference server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.host import (
    BANK_PIN,
    MAIL_SECRET,
    PASSWORD,
    AddonSite,
    Cli,
    ScriptedShell,
    World,
    closed_port_url,
)


def test_login_calls_on_login_and_quit_calls_on_logout(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    s = session_for(world.server.url)
    ok, lines = s.run("list\nquit\n")
    assert ok
    assert "logged in online as alice to demo" in lines
    assert f"{world.mail_id}\trev 1\tMail" in lines
    assert "(2 records)" in lines
    assert [h for h, _ in s.calls()] == [
        "register_commands",
        "on_addon_enabled",
        "on_login",
        "on_logout",
    ]
    assert s.calls("on_login")[0][1] == {"user_id": world.alice_id, "username": "alice"}


def test_saving_a_record_changes_the_server_and_calls_on_record_saved(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    s = session_for(world.server.url)
    ok, lines = s.run(f"edit {world.mail_id} password=mail-Kx7!new\nnew Wiki url=https://w\n")
    assert ok
    assert f"saved {world.mail_id} (rev 2)" in lines
    view = world.server.admin.exportable_view("demo", "alice")
    assert view[world.mail_id][0] == 2
    assert view[world.mail_id][2]["password"] == "mail-Kx7!new"
    assert any(name == "Wiki" for _, name, _ in view.values())
    saved = s.calls("on_record_saved")
    assert len(saved) == 2
    assert saved[0][1] == {
        "record_id": world.mail_id,
        "saved_by": world.alice_id,
        "user_id": world.alice_id,
    }


def test_show_masks_password_like_fields_unless_revealed(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    s = session_for(world.server.url)
    _, lines = s.run(f"show {world.bank_id}\nshow {world.mail_id} --reveal\nshow nope\n")
    assert "  pin: ********" in lines
    assert "  username: a123" in lines
    assert f"  password: {MAIL_SECRET}" in lines
    assert BANK_PIN not in "\n".join(lines)
    assert "no record 'nope'" in lines


def test_search_filters_by_name(world: World, session_for: Callable[..., ScriptedShell]) -> None:
    s = session_for(world.server.url)
    _, lines = s.run("search mai\n")
    assert f"{world.mail_id}\trev 1\tMail" in lines
    assert "(1 record)" in lines


def test_tick_advances_the_host_clock_and_calls_on_timer_on_the_timer_thread(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    s = session_for(world.server.url)
    start = time.time()
    s.run("tick 30\n")
    (timer,) = s.calls("on_timer")
    assert timer[1]["now"] >= start + 30 * 60


def test_timer_calls_on_timer_periodically_while_logged_in(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    s = session_for(world.server.url, timer_seconds=0.05)
    s.run("sleep 0.4\n")
    ticks = len(s.calls("on_timer"))
    assert ticks >= 2
    time.sleep(0.2)  # after logout the timer is gone
    assert len(s.calls("on_timer")) == ticks
    assert not any(t.name == "psr-host-timer" for t in threading.enumerate())


def test_disabling_the_addon_in_a_live_session_stops_its_timer_hook(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    s = session_for(world.server.url)
    _, lines = s.run("tick\naddons disable probe\ntick\naddons enable probe\ntick\n")
    hooks = [h for h, _ in s.calls()]
    after_disable = hooks[hooks.index("on_addon_disabled") :]
    assert after_disable[:3] == ["on_addon_disabled", "register_commands", "on_addon_enabled"]
    assert hooks.count("on_timer") == 2
    assert "add-on probe disabled" in lines


def test_an_addon_switched_on_in_a_live_session_learns_of_the_session(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    s = session_for(world.server.url)
    s.run("addons disable probe\naddons enable probe\n")
    hooks = [h for h, _ in s.calls()]
    after_enable = hooks[hooks.index("on_addon_enabled", hooks.index("on_addon_disabled")) :]
    assert after_enable[:2] == ["on_addon_enabled", "on_login"]
    assert s.calls("on_login")[-1][1] == {"user_id": world.alice_id, "username": "alice"}


def test_contributed_command_gets_the_online_session(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    s = session_for(world.server.url)
    _, lines = s.run("probe whoami\nprobe ping there\n")
    assert "session user alice" in lines
    assert "pong there" in lines


def test_wrong_password_is_refused_and_no_offline_login_is_tried(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    s = session_for(world.server.url)
    ok, lines = s.run("list\n", password="wrong")
    assert not ok
    assert lines == ["wrong user name or password"]
    assert s.calls("offline_login") == []
    assert s.calls("on_login") == []


def test_password_change_calls_on_password_changed_and_the_new_password_works(
    world: World, session_for: Callable[..., ScriptedShell], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSR_PASSWORD", PASSWORD)
    monkeypatch.setenv("PSR_NEW_PASSWORD", "pw-Kx7!alice-new")
    s = session_for(world.server.url)
    _, lines = s.run("passwd\n")
    assert "password changed" in lines
    assert s.calls("on_password_changed") == [("on_password_changed", {"new_is_old": False})]
    ok, _ = s.run("", password="pw-Kx7!alice-new")
    assert ok


def test_unreachable_server_opens_a_read_only_offline_session_from_an_addon(
    session_for: Callable[..., ScriptedShell],
) -> None:
    s = session_for(closed_port_url())
    s.probe.plugin_module().OFFLINE_ANSWER["mode"] = "session"
    ok, lines = s.run("list\nshow r1\nsearch ma\nedit r1 password=x\nnew X a=b\npasswd\n")
    assert ok
    assert "opened the offline copy" in lines
    assert "r1\trev 3\tMail" in lines
    assert "  password: ********" in lines
    assert lines.count(READ_ONLY_LINE) == 3
    assert [h for h, _ in s.calls()][-1] == "offline_session_closed"
    assert s.calls("on_login") == []
    (asked,) = s.calls("offline_login")
    assert asked[1] == {"username": "alice", "database": "demo"}


READ_ONLY_LINE = "read-only while offline"


def test_unreachable_server_without_a_copy_says_how_to_create_one(
    session_for: Callable[..., ScriptedShell],
) -> None:
    s = session_for(closed_port_url())
    ok, lines = s.run("list\n")
    assert not ok
    # In the shell the hint names the command as it is typed there.
    assert lines[-1] == (
        "no offline copy for this user; create one with `offline create` while online"
    )
    assert "cannot be reached" in lines[0]


def test_unreachable_server_shows_the_addons_refusal_message(
    session_for: Callable[..., ScriptedShell],
) -> None:
    s = session_for(closed_port_url())
    s.probe.plugin_module().OFFLINE_ANSWER["mode"] = "message"
    ok, lines = s.run("list\n")
    assert not ok
    assert lines[-1] == "the offline copy has expired; connect to renew it"


# -- the real program -------------------------------------------------------------------


def test_login_as_a_subprocess_runs_a_piped_script_and_never_prints_secrets(
    world: World, tmp_path: Path, addon_site: AddonSite
) -> None:
    addon_site.install("probe")
    cli = Cli(tmp_path, addon_site.site)
    script = (
        f"say hello there\nlist\nshow {world.bank_id}\n"
        f"edit {world.bank_id} pin=pin-Qz8!edited\ntick 31\nlogout\n"
    )
    result = cli(
        "--server",
        world.server.url,
        "--database",
        "demo",
        "--user",
        "alice",
        "addons",
        "disable",
        "offline",
    )
    assert result.returncode == 0  # keep the real add-on out of this test's hook log
    cli.probe_log.unlink()
    result = cli(
        "--server",
        world.server.url,
        "--database",
        "demo",
        "--user",
        "alice",
        "login",
        stdin=script,
        PSR_PASSWORD=PASSWORD,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[:2] == ["logged in online as alice to demo", "hello there"]
    assert f"saved {world.bank_id} (rev 2)" in out
    assert out[-1] == "logged out"
    hooks = [c["hook"] for c in cli.probe_calls()]
    assert hooks == [
        "register_commands",
        "on_addon_enabled",
        "on_login",
        "on_record_saved",
        "on_timer",
        "on_logout",
        "on_addon_disabled",
    ]
    for secret in (PASSWORD, BANK_PIN, "pin-Qz8!edited", MAIL_SECRET):
        assert secret not in result.stdout + result.stderr


def test_login_as_a_subprocess_with_a_wrong_password_exits_1(world: World, tmp_path: Path) -> None:
    cli = Cli(tmp_path, None)
    result = cli(
        "login",
        stdin="wrong-pw\nlist\n",
        PSR_SERVER=world.server.url,
        PSR_DATABASE="demo",
        PSR_USER="alice",
    )
    assert result.returncode == 1
    assert result.stdout.strip() == "wrong user name or password"


def test_command_that_needs_a_session_logs_in_first(
    world: World, tmp_path: Path, addon_site: AddonSite
) -> None:
    addon_site.install("probe")
    cli = Cli(tmp_path, addon_site.site)
    result = cli(
        "--server",
        world.server.url,
        "--database",
        "demo",
        "--user",
        "alice",
        "probe",
        "whoami",
        PSR_PASSWORD=PASSWORD,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "session user alice")
    hooks = [c["hook"] for c in cli.probe_calls()]
    assert hooks == [
        "register_commands",
        "on_addon_enabled",
        "on_login",
        "on_logout",
        "on_addon_disabled",
    ]

"""Offline edits in the reference host: the add-on loaded by its entry point, the real server
on loopback (then stopped), real SQLCipher files. ``edit``, ``new`` and ``delete`` offline,
refusals in the add-on's words, ``offline status`` and ``offline conflicts``."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

import offline_addon.plugin as plugin_module
from hookspecs import OfflineCredentials
from offline_addon.errors import EDITING_SWITCHED_OFF
from offline_addon.protocol.merge import FieldConflict
from offline_addon.storage.local_changes import LocalChanges
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths
from reference_host.clipboard import Clipboard
from reference_host.session import LoginTarget
from reference_host.shell import Shell
from tests.support.copies import allow_offline_editing
from tests.support.host import DB, RECORDS, HostRun, Site, fake_clipboard_tools

Make = Callable[..., HostRun]
SECRET = "Qx7-offline-secret-91zz"
MINE = "Qx7-offline-mine-73qq"


def copy_paths(run: HostRun, site: Site) -> CopyPaths:
    client_id = run.host.config.client_id
    return run.copies.paths_for(OfflineCredentials(site.url, DB, "alice", client_id, "alice-pw"))


def offline_run(make_run: Make, site: Site, *, editing: bool) -> HostRun:
    """A copy made online, the server stopped, and a new host logged in offline."""
    run = make_run()
    assert run.login("alice-pw")
    assert "is synchronised" in run.run("offline create") + run.settle()
    paths = copy_paths(run, site)
    run.close()
    if editing:
        allow_offline_editing(site.server, DB, paths, "alice-pw")
    site.stop()
    offline = make_run()
    assert offline.login("alice-pw")
    assert offline.shell.offline is not None
    return offline


def test_edit_new_and_delete_offline_show_at_once_and_are_counted_in_status(
    make_run: Make, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    run = offline_run(make_run, site, editing=True)
    said = run.new_output()
    assert "Changes you make are kept in the copy" in said
    assert run.shell.session_state().startswith("offline (editing)")
    out = run.run(
        f'edit "Record 001" password={SECRET} --name "Router 001"',
        f"new Switch password={SECRET} url=https://10.0.0.2",
        'delete "Record 002" --yes',
        "search Router",
        'show "Router 001"',
        "search Switch",
        'show "Record 002"',
        "offline status",
    )
    assert f"saved {site.ids[1]} offline" in out
    assert "created " in out
    assert f"deleted {site.ids[2]} offline" in out
    assert f"{site.ids[1]}\trev 1\tRouter 001" in out
    assert "  password: ********" in out
    assert "\tSwitch" in out
    assert "no record 'Record 002'" in out
    assert "3 offline changes wait to be sent to the server." in out
    assert f"{RECORDS} records" in out  # one made, one deleted
    assert SECRET not in out
    assert SECRET in run.run('show "Router 001" --reveal')
    run.shell.logout()
    assert run.shell.login("alice-pw")  # the changes are in the copy: the login says so
    assert "3 offline changes wait to be sent to the server." in run.new_output()
    refused = run.run(f'edit "Router 001" "pass\x07word={SECRET}"')
    assert "error:" in refused
    assert SECRET not in refused
    assert SECRET not in caplog.text


def test_edits_are_refused_in_the_addons_words_while_the_policy_says_no(
    make_run: Make, site: Site
) -> None:
    run = offline_run(make_run, site, editing=False)
    assert "read-only" in run.new_output()
    out = run.run(
        f'edit "Record 001" password={SECRET}',
        f"new Switch password={SECRET}",
        'delete "Record 002" --yes',
        'show "Record 001" --reveal',
    )
    assert out.count(EDITING_SWITCHED_OFF) == 3
    assert "secret-1" in out  # unchanged
    assert run.shell.session_state().startswith("offline (read-only)")


def test_delete_asks_first_and_anything_but_yes_deletes_nothing(make_run: Make, site: Site) -> None:
    run = offline_run(make_run, site, editing=True)
    run.shell.logout()
    # A piped script answers the question with its next line.
    shell = Shell(
        run.host, LoginTarget(site.url, DB, "alice"), run.clock, 3600, io.StringIO("no\n"), False
    )
    assert shell.login("alice-pw")
    run.new_output()
    for line in ('delete "Record 003"', 'show "Record 003"', 'delete "Record 003"'):
        shell.execute(line)  # the second question meets the end of the script: no
    shell.logout()
    out = run.new_output()
    assert out.count("nothing deleted") == 2
    assert "Record 003  (id" in out


@pytest.mark.parametrize(
    "line",
    [
        "edit \"Record 001\" 'notes=two\x07bells'",
        "new 'Two\nlines' password=x",
        "new " + "N" * 1001,
        f"edit {'00000000-0000-4000-8000-000000000000'} notes=x",
    ],
    ids=["control_character", "line_break_in_name", "huge_name", "unknown_id"],
)
def test_odd_input_gets_a_clear_error_and_changes_nothing(
    make_run: Make, site: Site, line: str
) -> None:
    run = offline_run(make_run, site, editing=True)
    run.new_output()
    out = run.run(line, "offline status")
    assert "error:" in out or "no record" in out
    assert "wait to be sent" not in out


def _add_conflict(paths: CopyPaths, record_id: str) -> None:
    with OfflineCopy.open(paths, "alice-pw") as copy:
        LocalChanges(copy).add_conflict(
            record_id, "Record 004", FieldConflict("password", MINE, "secret-4"), "conflict", "c1"
        )


def test_offline_conflicts_lists_without_values_reveals_on_request_and_keeps_mine(
    make_run: Make, site: Site, tmp_path: Path
) -> None:
    run = make_run()
    assert run.login("alice-pw")
    run.run("offline create")
    run.settle()
    paths = copy_paths(run, site)
    run.close()
    allow_offline_editing(site.server, DB, paths, "alice-pw")
    _add_conflict(paths, site.ids[4])
    site.stop()
    offline = make_run()
    assert offline.login("alice-pw")
    said = offline.new_output()
    assert "1 conflict to resolve (see 'offline conflicts')" in said
    listed = offline.run("offline conflicts")
    assert "#1 Record 004: field 'password', changed on the server too" in listed
    assert MINE not in listed
    assert "secret-4" not in listed
    revealed = offline.run("offline conflicts --reveal 1")
    assert f"yours:    {MINE}" in revealed
    assert "server's: secret-4" in revealed
    offline.host.clipboard = Clipboard(path=str(tmp_path / "no-tools"))
    assert "see the value with --reveal 1" in offline.run("offline conflicts --copy 1")
    tools = fake_clipboard_tools(tmp_path / "clip-bin")
    offline.host.clipboard = Clipboard(path=str(tools), clear_after=60)
    copied = offline.run("offline conflicts --copy 1")
    assert "copied to the clipboard; it is cleared in 60 s" in copied
    assert MINE not in copied
    assert (tools / "clipboard").read_text(encoding="utf-8") == MINE
    offline.host.clipboard.clear_now()
    kept = offline.run("offline conflicts --keep-mine 1", "offline conflicts", "offline status")
    assert "Kept your value for Record 004" in kept
    assert "No conflicts" in kept
    assert "1 offline change waits to be sent to the server." in kept
    assert MINE in offline.run('show "Record 004" --reveal')
    wrong = offline.run("offline conflicts --dismiss 7", "offline conflicts --keep-mine x1")
    assert "there is no conflict #7" in wrong
    assert "takes the number of a conflict" in wrong


def test_conflicts_online_are_read_with_the_session_and_keep_mine_syncs_at_once(
    make_run: Make, site: Site, offline_dir: Path
) -> None:
    run = make_run()
    assert run.login("alice-pw")
    run.run("offline create")
    run.settle()
    paths = copy_paths(run, site)
    allow_offline_editing(site.server, DB, paths, "alice-pw")
    _add_conflict(paths, site.ids[4])
    syncs = run.syncs()
    listed = run.run("offline conflicts", "offline status")
    assert "#1 Record 004" in listed
    assert "1 conflict to resolve" in listed
    out = run.run("offline conflicts --keep-server 1")
    assert "The server's value stays for Record 004" in out
    assert "No conflicts" in run.run("offline conflicts")
    _add_conflict(paths, site.ids[4])
    assert "Sending it to the server now." in run.run("offline conflicts --keep-mine 2")
    run.settle()
    assert run.syncs() == syncs + 1
    assert plugin_module.addon.copies.open_session_of(run.shell.account()) is None
    assert MINE not in run.out.getvalue()

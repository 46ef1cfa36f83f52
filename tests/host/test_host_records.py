"""Records by name, copying to the clipboard, searches that say when they are cut, passwd."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reference_host.clipboard import Clipboard
from reference_host.records import ShownRecord, count_line, may_remember, pick_record
from tests.support.host import MAIL_SECRET, PASSWORD, ScriptedShell, World, closed_port_url


def _records(*names: str) -> list[ShownRecord]:
    return [ShownRecord(f"id-{i}", 1, name, {}) for i, name in enumerate(names)]


@pytest.mark.parametrize(
    ("typed", "picked"),
    [
        ("id-2", "Mailbox"),  # the id
        ("Mail", "Mail"),  # the exact name, though others start with it
        ("mail", "Mail"),  # the name ignoring case
        ("mailb", "Mailbox"),  # a unique prefix
        ("BOX", "Mailbox"),  # a unique part
    ],
)
def test_a_record_is_picked_by_id_name_prefix_or_part(typed: str, picked: str) -> None:
    pick = pick_record(typed, _records("Bank", "Mail", "Mailbox", "Mail Archive"))
    assert pick.record is not None
    assert pick.record.name == picked


def test_an_ambiguous_name_gives_the_candidates_and_an_unknown_one_nothing() -> None:
    records = _records("Bank", "Mailbox", "Mail Archive")
    pick = pick_record("mai", records)
    assert pick.record is None
    assert [r.name for r in pick.candidates] == ["Mailbox", "Mail Archive"]
    assert pick_record("wiki", records) == pick_record("wiki", [])


def test_the_count_line_says_when_a_list_was_cut() -> None:
    assert count_line(1, None, capped=False) == "(1 record)"
    assert count_line(2, 2, capped=False) == "(2 records)"
    assert count_line(500, 7550, capped=False) == (
        "(first 500 of 7,550 records; narrow the search to see the others)"
    )
    assert count_line(500, None, capped=True).startswith("(500 records; the search stops there")


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("show Mail --reveal", True),
        ("edit Mail url=https://x.example username=alice", True),
        ("edit Mail password=pw-Kx7!typed", False),
        ("new Bank 'PIN=pin-Kx7!typed'", False),
        ('edit Mail "api_token=tok-Kx7!typed', False),  # unbalanced quotes
        ("edit Mail password=", True),  # nothing secret in it
    ],
)
def test_lines_that_give_a_secret_a_value_are_not_remembered(line: str, kept: bool) -> None:
    assert may_remember(line) is kept


# -- against the reference server and an offline session ------------------------------------


def test_show_finds_a_record_by_name_online_and_lists_the_candidates_of_a_part(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    world.server.admin.import_records(
        "demo", [{"name": "Mail Archive", "fields": {"username": "old"}}], grant={"alice": "r"}
    )
    s = session_for(world.server.url)
    _, lines = s.run("show bank\nshow Mail Archive\nshow ai\nshow wiki\n")
    assert f"Bank  (id {world.bank_id}, rev 1)" in lines
    assert "  username: old" in lines
    assert "2 records match 'ai'; give the id or more of the name:" in lines
    assert f"  {world.mail_id}\tMail" in lines
    assert "no record 'wiki'" in lines


def test_edit_finds_the_record_by_name(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    s = session_for(world.server.url)
    _, lines = s.run("edit mail url=https://mail.example\n")
    assert f"saved {world.mail_id} (rev 2)" in lines
    assert (
        world.server.admin.exportable_view("demo", "alice")[world.mail_id][2]["url"]
        == "https://mail.example"
    )


def test_show_by_name_works_offline(session_for: Callable[..., ScriptedShell]) -> None:
    s = session_for(closed_port_url())
    s.probe.plugin_module().OFFLINE_ANSWER["mode"] = "session"
    _, lines = s.run("show mail\nshow r1\n")
    assert lines.count("Mail  (id r1, rev 3)") == 2


def test_an_online_search_says_how_many_it_left_out(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    world.server.admin.import_records(
        "demo",
        [{"name": f"Server {i:04d}", "fields": {}} for i in range(620)],
        grant={"alice": "r"},
    )
    s = session_for(world.server.url)
    _, lines = s.run("search server\nsearch 0619\n")
    assert "(first 500 of 620 records; narrow the search to see the others)" in lines
    assert lines[-2:] == ["(1 record)", "logged out"]
    assert sum("\trev 1\tServer " in line for line in lines) == 501


@pytest.mark.parametrize(
    ("counts", "summary"),
    [
        (True, "(first 500 of 700 records; narrow the search to see the others)"),
        (
            False,
            "(500 records; the search stops there, so there may be more: narrow it to see them)",
        ),
    ],
)
def test_an_offline_search_that_was_cut_says_so(
    counts: bool, summary: str, session_for: Callable[..., ScriptedShell]
) -> None:
    s = session_for(closed_port_url())
    module = s.probe.plugin_module()
    module.OFFLINE_ANSWER["mode"] = "session"
    module.OFFLINE_RECORDS.update(extra=700, count=counts)
    _, lines = s.run("search item\nsearch item 0699\n")
    assert summary in lines
    assert lines[-3:-1] == ["x699\trev 1\tItem 0699", "(1 record)"]


# -- copying to the clipboard ---------------------------------------------------------------

FAKE_XCLIP = """#!/bin/sh
# Stands in for xclip where no display exists: the clipboard is a file.
echo "$@" >> "$(dirname "$0")/argv.log"
case "$*" in
  *-o*) cat "$(dirname "$0")/clipboard" ;;
  *) cat > "$(dirname "$0")/clipboard" ;;
esac
"""


@pytest.fixture
def clip_bin(tmp_path: Path) -> Path:
    folder = tmp_path / "clip-bin"
    folder.mkdir()
    tool = folder / "xclip"
    tool.write_text(FAKE_XCLIP, encoding="utf-8")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return folder


def test_copy_puts_the_password_on_the_clipboard_through_stdin_and_clears_it(
    world: World, session_for: Callable[..., ScriptedShell], clip_bin: Path
) -> None:
    s = session_for(world.server.url)
    clipboard = Clipboard(path=str(clip_bin), clear_after=0.5)
    shell = s.shell(clipboard=clipboard)
    assert shell.login(PASSWORD)
    shell.execute("copy mail")
    assert (clip_bin / "clipboard").read_text(encoding="utf-8") == MAIL_SECRET
    shell.execute("copy Mail username")
    assert (clip_bin / "clipboard").read_text(encoding="utf-8") == "alice"
    deadline = time.monotonic() + 10
    while (clip_bin / "clipboard").read_text(encoding="utf-8") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (clip_bin / "clipboard").read_text(encoding="utf-8") == ""
    shell.logout()
    out = s.out.getvalue()
    assert "copied the password of 'Mail' to the clipboard; it is cleared in 0.5 s" in out
    assert MAIL_SECRET not in out
    assert MAIL_SECRET not in (clip_bin / "argv.log").read_text(encoding="utf-8")


def test_the_clipboard_is_cleared_when_the_shell_ends_and_left_alone_when_changed(
    world: World, session_for: Callable[..., ScriptedShell], clip_bin: Path
) -> None:
    s = session_for(world.server.url)
    shell = s.shell("copy Mail\n", clipboard=Clipboard(path=str(clip_bin)))
    assert shell.login(PASSWORD)
    shell.run()
    assert (clip_bin / "clipboard").read_text(encoding="utf-8") == ""
    other = s.shell("", clipboard=Clipboard(path=str(clip_bin)))
    assert other.login(PASSWORD)
    other.execute("copy Mail")
    (clip_bin / "clipboard").write_text("something the user copied", encoding="utf-8")
    other.run()
    assert (clip_bin / "clipboard").read_text(encoding="utf-8") == "something the user copied"


def test_without_a_clipboard_copy_says_so_and_how_to_see_the_value(
    world: World, session_for: Callable[..., ScriptedShell], tmp_path: Path
) -> None:
    s = session_for(world.server.url)
    _, lines = s.run(
        "copy Mail\ncopy Mail url\n", clipboard=Clipboard(path=str(tmp_path / "no-tools"))
    )
    assert (
        "no clipboard can be used here: none is installed (wl-copy, xclip, xsel, pbcopy, "
        "clip.exe); use `show Mail --reveal` to see the value"
    ) in lines
    assert "'Mail' has no field 'url' (its fields: password, username)" in lines
    assert MAIL_SECRET not in "\n".join(lines)


# -- passwd ---------------------------------------------------------------------------------


def test_passwd_asks_twice_and_a_mismatch_changes_nothing(
    world: World, session_for: Callable[..., ScriptedShell], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PSR_PASSWORD", "PSR_NEW_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    s = session_for(world.server.url)
    script = f"passwd\n{PASSWORD}\npw-Kx7!new-one\npw-Kx7!new-two\n"
    _, lines = s.run(script)
    assert "the two new passwords differ; nothing changed" in lines
    assert "password changed" not in lines
    assert s.calls("on_password_changed") == []
    ok, _ = s.run("", password=PASSWORD)
    assert ok
    ok, lines = s.run(f"passwd\n{PASSWORD}\npw-Kx7!new-one\npw-Kx7!new-one\n")
    assert "password changed" in lines
    for secret in (PASSWORD, "pw-Kx7!new-one", "pw-Kx7!new-two"):
        assert secret not in "\n".join(lines)
    assert os.environ.get("PSR_NEW_PASSWORD") is None


def test_delete_online_asks_then_deletes_at_the_shown_revision_under_the_delete_right(
    world: World, session_for: Callable[..., ScriptedShell]
) -> None:
    world.server.admin.set_rights("demo", "alice", world.bank_id, delete=False)
    world.server.admin.set_rights("demo", "alice", world.mail_id, delete=True)
    s = session_for(world.server.url)
    _, lines = s.run("delete mail\nno\ndelete bank --yes\ndelete mail\ny\nshow mail\n")
    assert "nothing deleted" in lines
    assert any(line.startswith("error:") and "delete" in line for line in lines), lines
    assert f"deleted {world.mail_id}" in lines
    assert "no record 'mail'" in lines
    view = world.server.admin.exportable_view("demo", "alice")
    assert world.mail_id not in view
    assert world.bank_id in view

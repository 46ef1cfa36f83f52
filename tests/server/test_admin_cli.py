"""``psr-server admin`` as the server manager types it: each command, its help, its messages,
and its refusals (one line on stderr, never a traceback)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from reference_server.admin import Admin
from reference_server.cli import build_parser
from reference_server.testing import running_server
from tests.support.api import ApiClient, assert_problem
from tests.support.servers import CliResult, PsrRunner

SECRET = "pw-Zq8#server-test"
RECORD_SECRET = "pw-Zq8#record-test"
T = TypeVar("T")


@pytest.fixture
def data(tmp_path: Path, psr: PsrRunner) -> Path:
    """A data folder made by ``admin init``: database demo, users alice (offline right) and bob."""
    folder = tmp_path / "server-data"
    assert psr("admin", "--data", folder, "init").code == 0
    with Admin(folder) as admin:
        admin.create_database("demo")
        admin.create_user("alice", "alice-pw", offline_right=True)
        admin.create_user("bob", "bob-pw")
    return folder


def _ask(data: Path, question: Callable[[Admin], T]) -> T:
    """Ask an Admin of its own on ``data`` (closed again at once)."""
    with Admin(data) as admin:
        return question(admin)


def _one_line_error(result: CliResult) -> str:
    assert result.code == 1, result
    assert result.err.startswith("psr-server: "), result.err
    assert result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
    return result.err


# --- help ----------------------------------------------------------------------------------


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{parser.prog} {choice.dest}: a sub-command without help"
            for sub in dict.fromkeys(action.choices.values()):
                yield from _parsers(sub)


def test_every_command_and_argument_has_help_and_every_option_its_default() -> None:
    checked = 0
    for parser in _parsers(build_parser()):
        assert parser.description, f"{parser.prog}: no description"
        parser.format_help()  # a stray '%' in a help text fails here, not at a user's --help
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            where = f"{parser.prog} {action.dest}"
            assert action.help, f"{where}: no help"
            if action.option_strings and not action.required:
                assert "default" in action.help, f"{where}: the help does not give the default"
            checked += 1
    assert checked > 50


def test_serve_help_shows_the_default_port_and_explains_the_data_folder(psr: PsrRunner) -> None:
    out = psr("serve", "--help")
    assert out.code == 0
    text = " ".join(out.out.split())
    assert "TCP port; 0 picks a free one (default: 8080)" in text
    assert "it must exist (create one with 'psr-server admin --data DIR init')" in text


def test_positional_arguments_are_explained(psr: PsrRunner) -> None:
    text = " ".join(psr("admin", "--data", "x", "right", "set", "--help").out.split())
    assert "record_id record id (first column of 'record list')" in text
    assert "user user name" in text


# --- the data folder -----------------------------------------------------------------------


def test_a_mistyped_data_folder_is_an_error_and_is_not_created(
    tmp_path: Path, psr: PsrRunner
) -> None:
    typo = tmp_path / "server_data"
    err = _one_line_error(psr("admin", "--data", typo, "db", "list"))
    assert f"There is no server data folder {typo}" in err
    assert f"psr-server admin --data {typo} init" in err
    err = _one_line_error(psr("serve", "--data", typo, "--port", "0"))
    assert f"psr-server admin --data {typo} init" in err
    assert not typo.exists()


def test_a_folder_that_is_not_a_data_folder_is_refused_and_left_alone(
    tmp_path: Path, psr: PsrRunner
) -> None:
    err = _one_line_error(psr("admin", "--data", tmp_path, "user", "list"))
    assert "is not a server data folder (it has no server.sqlite3)" in err
    assert list(tmp_path.iterdir()) == []


def test_init_creates_a_folder_once_and_never_over_anything(
    data: Path, tmp_path: Path, psr: PsrRunner
) -> None:
    assert "is already a server data folder; nothing was changed" in _one_line_error(
        psr("admin", "--data", data, "init")
    )
    assert [d.name for d in _ask(data, lambda a: a.list_databases())] == ["demo"]
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep", encoding="utf-8")
    assert "is not empty" in _one_line_error(psr("admin", "--data", busy, "init"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert psr("admin", "--data", empty, "init").code == 0


# --- users ---------------------------------------------------------------------------------


def test_user_create_offline_list_and_delete(data: Path, psr: PsrRunner) -> None:
    out = psr(
        "admin",
        "--data",
        data,
        "user",
        "create",
        "carol",
        "--password-stdin",
        "--validity-days",
        "30",
        stdin=SECRET + "\n",
    )
    assert out.code == 0, out.err
    assert out.out.startswith("created user carol (id ")
    assert out.out.endswith(" without offline right, validity 30 days\n")
    assert SECRET not in out.out + out.err
    out = psr("admin", "--data", data, "user", "offline", "carol", "on", "--validity-seconds", "90")
    assert out.out == "offline right of user carol is now on, validity 90 seconds\n"
    listed = psr("admin", "--data", data, "user", "list").out.splitlines()
    assert [line.split("\t")[::2] for line in listed] == [
        ["alice", "offline"],
        ["bob", "no-offline"],
        ["carol", "offline"],
    ]
    assert listed[2].endswith("\t90 seconds")

    refused = _one_line_error(psr("admin", "--data", data, "user", "delete", "carol"))
    assert "deleting user carol cannot be undone; add --yes" in refused
    out = psr("admin", "--data", data, "user", "delete", "carol", "--yes")
    assert out.out == (
        "deleted user carol: 0 record rights removed, 0 sessions ended\n"
        "Offline copies of user carol can no longer sync; each stops opening "
        "90 seconds after its last sync.\n"
    )
    assert [u.name for u in _ask(data, lambda a: a.list_users())] == ["alice", "bob"]


@pytest.mark.parametrize("value", ["0", "366", "0.001", "100000", "-1", "7.5", "seven"])
@pytest.mark.parametrize(
    "command", [["user", "create", "carol", "--password-stdin"], ["user", "offline", "alice", "on"]]
)
def test_a_validity_outside_1_to_365_whole_days_is_a_usage_error_naming_the_argument(
    data: Path, psr: PsrRunner, value: str, command: list[str]
) -> None:
    out = psr("admin", "--data", data, *command, f"--validity-days={value}", stdin=SECRET)
    assert out.code == 2
    assert "usage: psr-server admin user" in out.err
    assert (
        f"argument --validity-days: must be a whole number of days from 1 to 365, not {value!r}"
    ) in out.err
    assert [u.name for u in _ask(data, lambda a: a.list_users())] == ["alice", "bob"]
    assert _ask(data, lambda a: a.user("alice")).validity_seconds == 7 * 86400


def test_validity_seconds_are_bounded_and_exclusive_with_days(data: Path, psr: PsrRunner) -> None:
    out = psr(
        "admin", "--data", data, "user", "offline", "alice", "on", "--validity-seconds", "86401"
    )
    assert out.code == 2
    assert (
        "argument --validity-seconds: must be a whole number of seconds from 1 to 86400" in out.err
    )
    out = psr(
        "admin",
        "--data",
        data,
        "user",
        "offline",
        "alice",
        "on",
        "--validity-seconds",
        "60",
        "--validity-days",
        "2",
    )
    assert out.code == 2
    assert "not allowed with argument" in out.err


def test_user_password_resets_the_password_and_ends_the_sessions(
    data: Path, psr: PsrRunner
) -> None:
    with running_server(data) as srv:
        client = ApiClient(srv.url, "demo").login("alice", "alice-pw")
        try:
            out = psr(
                "admin",
                "--data",
                data,
                "user",
                "password",
                "alice",
                "--password-stdin",
                stdin=SECRET + "\n",
            )
            assert out.out == (
                "set a new password for user alice; 1 session ended (the user "
                "logs in again with the new password)\n"
            )
            assert SECRET not in out.out + out.err
            assert_problem(client.changes(), 401, "bad_token")
            ApiClient(srv.url, "demo").login("alice", SECRET).close()
        finally:
            client.close()


def test_without_a_terminal_the_password_comes_from_the_environment(
    data: Path, psr: PsrRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = _one_line_error(psr("admin", "--data", data, "user", "password", "bob"))
    assert err == "psr-server: no terminal: use --password-stdin or $PSR_NEW_PASSWORD\n"
    monkeypatch.setenv("PSR_NEW_PASSWORD", SECRET)
    assert psr("admin", "--data", data, "user", "password", "bob").code == 0
    with running_server(data) as srv:
        ApiClient(srv.url, "demo").login("bob", SECRET).close()


# --- records and rights --------------------------------------------------------------------


def test_record_add_takes_the_password_from_stdin_and_grants_rights(
    data: Path, psr: PsrRunner
) -> None:
    out = psr(
        "admin",
        "--data",
        data,
        "record",
        "add",
        "demo",
        "VPN",
        "username=alice",
        "url=https://vpn.example/?a=b",
        "--password-stdin",
        "--grant",
        "alice=rwe",
        stdin=RECORD_SECRET + "\n",
    )
    assert out.code == 0, out.err
    assert out.out.startswith("added record VPN (id ")
    assert out.out.endswith(") to demo; fields: username, url, password; rights: alice=rwe\n")
    assert RECORD_SECRET not in out.out + out.err
    [(rev, name, fields)] = _ask(data, lambda a: a.exportable_view("demo", "alice")).values()
    assert (rev, name) == (1, "VPN")
    assert fields == {
        "username": "alice",
        "url": "https://vpn.example/?a=b",
        "password": RECORD_SECRET,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [f"password={RECORD_SECRET}"],
            "give the 'password' field with --password-stdin or "
            "--password-prompt, not on the command line",
        ),
        ([f"Password={RECORD_SECRET}"], "not on the command line"),
        ([RECORD_SECRET], "field 1 must look like NAME=VALUE; nothing added"),
        (["a=1", "a=2"], "the field 'a' is given twice"),
        (["--password-prompt"], "no terminal: use --password-stdin"),
        (["--grant", "carol=r"], "There is no user named 'carol'."),
        (["--grant", "alice=rwx"], "must be made of the letters r, w, e and d"),
    ],
)
def test_record_add_refusals_add_nothing_and_never_echo_a_secret(
    data: Path, psr: PsrRunner, args: list[str], message: str
) -> None:
    err = _one_line_error(psr("admin", "--data", data, "record", "add", "demo", "VPN", *args))
    assert message in err
    assert RECORD_SECRET not in err
    assert _ask(data, lambda a: a.list_records("demo")) == []


def test_right_list_shows_a_table_of_everyone_one_user_or_one_record(
    data: Path, psr: PsrRunner
) -> None:
    with Admin(data) as admin:
        vpn = admin.add_record("demo", "VPN", {}, grant={"alice": "rwe", "bob": "r"})
        wiki = admin.add_record("demo", "Team wiki", {}, grant={"bob": "rw"})
        admin.seal_record("demo", wiki)
        admin.create_user("carol", SECRET)
    lines = psr("admin", "--data", data, "right", "list", "demo").out.splitlines()
    assert [line.split() for line in lines] == [
        ["USER", "RECORD", "ID", "READ", "WRITE", "EXPORT", "DELETE", "STATE", "NAME"],
        ["bob", wiki, "yes", "yes", "no", "no", "sealed", "Team", "wiki"],
        ["alice", vpn, "yes", "yes", "yes", "no", "open", "VPN"],
        ["bob", vpn, "yes", "no", "no", "no", "open", "VPN"],
    ]
    # The columns line up: every row's record id starts where the header's does.
    assert {
        line.index(token) for line, token in zip(lines, ["RECORD ID", wiki, vpn, vpn], strict=True)
    } == {7}
    by_user = psr("admin", "--data", data, "right", "list", "demo", "--user", "alice").out
    assert by_user.splitlines()[1].split() == [
        "alice",
        vpn,
        "yes",
        "yes",
        "yes",
        "no",
        "open",
        "VPN",
    ]
    by_record = psr("admin", "--data", data, "right", "list", "demo", "--record", vpn).out
    assert [line.split()[0] for line in by_record.splitlines()] == ["USER", "alice", "bob"]
    out = psr("admin", "--data", data, "right", "list", "demo", "--user", "carol")
    assert out.out == "no rights in demo for carol\n"


# --- databases, compaction, errors ---------------------------------------------------------


def test_db_delete_needs_yes_and_says_what_went(data: Path, psr: PsrRunner) -> None:
    _ask(data, lambda a: a.add_record("demo", "R", {}, grant={"alice": "rwe"}))
    refused = _one_line_error(psr("admin", "--data", data, "db", "delete", "demo"))
    assert "deleting database demo cannot be undone; add --yes" in refused
    assert [d.name for d in _ask(data, lambda a: a.list_databases())] == ["demo"]
    out = psr("admin", "--data", data, "db", "delete", "demo", "--yes")
    assert out.out.splitlines() == [
        "deleted database demo: 1 record with their rights and feeds; 0 sessions ended",
        "Offline copies of database demo can no longer sync; each stops opening when its "
        "offline validity has passed since its last sync.",
    ]
    assert _ask(data, lambda a: a.list_databases()) == []


def test_compact_says_in_words_what_happened(data: Path, psr: PsrRunner) -> None:
    assert psr("admin", "--data", data, "compact").out == (
        "Nothing to compact: there are no tombstones older than 7 days.\n"
    )
    with Admin(data, clock=lambda: 1_700_000_000.0) as admin:  # 2023-11-14 22:13:20 UTC
        ids = admin.import_records(
            "demo",
            [{"name": f"R{i}", "fields": {}} for i in range(3)],
            grant={"alice": "rwe", "bob": "re"},
        )
        for rid in ids:
            admin.delete_record("demo", rid)
    assert psr("admin", "--data", data, "compact").out == (
        "Compacted the change feed: 6 tombstones older than 7 days removed; clients that last "
        "synced before 2023-11-14 22:13 UTC make a full sync at their next sync.\n"
    )
    assert psr("admin", "--data", data, "compact", "--horizon-days", "0").out == (
        "Nothing to compact: there are no tombstones.\n"
    )
    out = psr("admin", "--data", data, "compact", "--horizon-days", "1.5")
    assert "argument --horizon-days: must be a whole number of days from 0 to 3650" in out.err


@pytest.mark.parametrize(
    "command",
    [
        ["user", "offline", "nobody", "on"],
        ["user", "password", "nobody", "--password-stdin"],
        ["user", "delete", "nobody", "--yes"],
        ["db", "offline", "nowhere", "on"],
        ["db", "delete", "nowhere", "--yes"],
        ["record", "list", "nowhere"],
        ["record", "seal", "demo", "no-such-record"],
        ["right", "set", "demo", "alice", "no-such-record", "--read"],
        ["right", "list", "demo", "--record", "no-such-record"],
        ["db", "create", "demo"],
        ["db", "create", "bad/name"],
        ["import", "demo", "no-such-file.jsonl"],
    ],
)
def test_unknown_names_and_refusals_are_one_line_errors(
    data: Path, psr: PsrRunner, command: list[str]
) -> None:
    _one_line_error(psr("admin", "--data", data, *command, stdin=SECRET + "\n"))


def test_a_missing_import_file_is_named(data: Path, psr: PsrRunner) -> None:
    err = _one_line_error(psr("admin", "--data", data, "import", "demo", "missing.jsonl"))
    assert err == "psr-server: missing.jsonl: No such file or directory\n"

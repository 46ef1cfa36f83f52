"""The data folder holds record passwords: 0700, every file in it 0600, from the start and
after any open; and only ``init`` ever creates one."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_server.admin import Admin
from reference_server.datadir import init_data_folder
from reference_server.errors import DataFolderError
from reference_server.testing import running_server

pytestmark = pytest.mark.skipif(os.name != "posix", reason="owner-only modes are POSIX modes")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common umask 022, under which files are made world-readable unless asked not to."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("loose_umask")
def test_init_makes_the_folder_0700_and_the_server_file_0600(tmp_path: Path) -> None:
    folder = init_data_folder(tmp_path / "new" / "server-data")
    assert _mode(folder) == 0o700
    assert [(p.name, _mode(p)) for p in folder.iterdir()] == [("server.sqlite3", 0o600)]


@pytest.mark.usefixtures("loose_umask")
def test_the_wal_and_shm_files_of_a_running_server_are_0600(tmp_path: Path) -> None:
    with running_server(tmp_path / "srv") as srv:
        srv.admin.create_database("demo")
        srv.admin.create_user("alice", "pw-Zq8#server-test")
        files = {p.name: _mode(p) for p in srv.data_dir.iterdir()}
    assert files == {
        "server.sqlite3": 0o600,
        "server.sqlite3-wal": 0o600,
        "server.sqlite3-shm": 0o600,
    }


def _loosened(tmp_path: Path) -> Path:
    folder = init_data_folder(tmp_path / "srv")
    (folder / "notes.txt").write_text("left here by someone", encoding="utf-8")
    # Modes as a copy with the usual umask, or a careless restore, would leave them.
    os.chmod(folder, 0o755)  # noqa: S103 - the loose mode is the point
    os.chmod(folder / "server.sqlite3", 0o644)
    os.chmod(folder / "notes.txt", 0o664)
    return folder


def test_opening_a_folder_with_looser_modes_tightens_it_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _loosened(tmp_path)
    with caplog.at_level(logging.WARNING, logger="reference_server"):
        Admin(folder).close()
    assert _mode(folder) == 0o700
    assert {p.name: _mode(p) for p in folder.iterdir()} == {
        "server.sqlite3": 0o600,
        "notes.txt": 0o600,
    }
    assert (
        f"made {folder / 'server.sqlite3'} readable by its owner only (mode 0600, was 0644)"
        in caplog.text
    )
    assert f"made {folder} readable by its owner only (mode 0700, was 0755)" in caplog.text


def test_serving_a_folder_with_looser_modes_tightens_it(tmp_path: Path) -> None:
    folder = _loosened(tmp_path)
    with running_server(folder):
        assert (_mode(folder), _mode(folder / "server.sqlite3")) == (0o700, 0o600)


def test_a_folder_already_owner_only_is_left_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = init_data_folder(tmp_path / "srv")
    os.chmod(folder / "server.sqlite3", 0o400)  # stricter than ours: not ours to loosen
    with caplog.at_level(logging.WARNING, logger="reference_server"):
        Admin(folder).close()
    assert _mode(folder / "server.sqlite3") == 0o400
    assert caplog.text == ""


def test_a_symlink_in_the_folder_is_not_followed(tmp_path: Path) -> None:
    folder = init_data_folder(tmp_path / "srv")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the server's", encoding="utf-8")
    os.chmod(outside, 0o644)
    (folder / "link").symlink_to(outside)
    Admin(folder).close()
    assert _mode(outside) == 0o644


def test_admin_and_serve_never_create_a_folder_or_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataFolderError, match="There is no server data folder"):
        Admin(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFolderError, match=r"it has no server\.sqlite3"):
        Admin(empty)
    assert not (tmp_path / "missing").exists()
    assert list(empty.iterdir()) == []

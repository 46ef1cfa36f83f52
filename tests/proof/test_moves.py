"""Changing the folder of the copies with the real ``psr-client`` (one-shot commands, as a user
would): the copy moves, a refused folder is not saved, and a full filesystem leaves the copy
where it was, whole and listed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.host import Cli, assert_one_whole_copy, client_with_copy, copy_files
from tests.support.worlds import World


@pytest.fixture
def client(world: World, tmp_path: Path) -> Cli:
    return client_with_copy(world, tmp_path)


def test_the_one_shot_settings_command_moves_the_copy(
    client: Cli, world: World, tmp_path: Path
) -> None:
    new = tmp_path / "moved"
    done = client("settings", "set", "offline", "database_path", str(new))
    assert done.returncode == 0, done.stdout
    assert client.stored_folder() == str(new)
    listing = client("offline", "list")
    assert str(new) in listing.stdout
    assert f"{len(world.ids)} records" in listing.stdout
    assert_one_whole_copy(client, world, world.folder)
    assert copy_files(world.folder) == []
    assert client("offline", "sync").returncode == 0


@pytest.mark.parametrize("folder", ["~/copies", "/proc/nope/copies", "relative/copies"])
def test_a_folder_the_addon_refuses_is_not_saved(client: Cli, world: World, folder: str) -> None:
    refused = client("settings", "set", "offline", "database_path", folder)
    assert refused.returncode != 0
    assert "database_path" in refused.stdout + refused.stderr
    assert client.stored_folder() == str(world.folder)
    assert f"{len(world.ids)} records" in client("offline", "list").stdout


@pytest.fixture
def full_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: room for a probe file, not for a copy."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here ({done.stderr.strip()}); the full-disk "
            "case is then covered only by tests/addon (an injected ENOSPC)"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_move_onto_a_full_filesystem_leaves_the_copy_where_it_was(
    client: Cli, world: World, full_filesystem: Path
) -> None:
    new = full_filesystem / "copies"
    refused = client("settings", "set", "offline", "database_path", str(new))
    assert refused.returncode != 0
    assert "space" in refused.stdout.lower()
    assert client.stored_folder() == str(world.folder)
    assert_one_whole_copy(client, world, new)
    assert copy_files(new) == []
    assert not [name for name in copy_files(world.folder) if "move-" in name]

"""End to end: the add-on loaded by its entry point into the reference host, the real server on
loopback, real SQLCipher files. Only the add-on's wall clock is faked, where a test says so."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import offline_addon.plugin as plugin_module
from hookspecs import SavedRecord
from offline_addon.errors import WrongPassword
from offline_addon.storage.offline_copy import OfflineCopy
from tests.support.host import DB, RECORDS, HostRun, Site

Make = Callable[..., HostRun]


# Host time (the shell's ``tick`` takes minutes) past the add-on's waits: the "no copy yet"
# hint and a login sync come 1 s after login, a save's sync 2 s after it (the debounce).
HINT_DUE_MIN = 0.02
PAST_DEBOUNCE_MIN = 0.05


def copy_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


def create_copy(run: HostRun) -> str:
    out = run.run("offline create")
    assert "is synchronised" in out, out
    return out + run.settle()


def automatic_lines(out: str) -> list[str]:
    """What the add-on said by itself: notifications (``[level] …``) and progress lines."""
    return [
        line
        for line in out.splitlines()
        if line.startswith(("[info]", "[warning]", "[error]", "[progress]"))
    ]


def test_nothing_syncs_before_the_first_manual_sync(
    make_run: Make, site: Site, offline_dir: Path
) -> None:
    run = make_run()
    assert run.login("alice-pw")
    # The "no copy yet" hint comes a moment (host time) after login.
    out = run.run(f"tick {HINT_DUE_MIN}") + run.settle()
    assert "offline create" in out
    out = run.run(f"edit {site.ids[0]} notes=changed", "tick 31", "tick 61") + run.settle()
    assert run.syncs() == 0
    assert copy_files(offline_dir) == []
    out = create_copy(run)
    assert run.syncs() == 1
    assert f"{RECORDS} records" in out
    assert out.count("is synchronised") == 1  # said once: by the command, not again
    assert "[progress] offline:" in out
    assert any(name.endswith(".offline.db") for name in copy_files(offline_dir))


def test_login_syncs_an_existing_copy(make_run: Make) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    run.run("logout")
    run.login("alice-pw")
    out = run.settle()
    assert run.syncs() == 2
    assert automatic_lines(out) == []  # nothing new: nothing said


def test_login_does_not_sync_when_sync_after_login_is_off(make_run: Make) -> None:
    run = make_run(sync_after_login=False)
    run.login("alice-pw")
    create_copy(run)
    run.run("logout")
    run.login("alice-pw")
    run.run(f"tick {HINT_DUE_MIN}")  # past the settle time of a login sync
    run.settle()
    assert run.syncs() == 1


def test_save_by_other_user_does_not_trigger_sync(make_run: Make, site: Site) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    online = run.shell.online
    assert online is not None
    bob = site.server.admin.user_id("bob")
    site.server.admin.update_record(DB, site.ids[1], name="Changed by Bob")
    record = SavedRecord(record_id=site.ids[1], database=DB, saved_by=bob)
    run.host.hooks.call("on_record_saved", session=online.session, record=record)
    run.run(f"tick {PAST_DEBOUNCE_MIN}")
    run.settle()
    assert run.syncs() == 1
    # alice's own save does sync
    out = run.run(f"edit {site.ids[2]} notes=mine", f"tick {PAST_DEBOUNCE_MIN}") + run.settle()
    assert run.syncs() == 2
    assert any("Up to date" in line for line in automatic_lines(out)), out


def test_burst_of_saves_makes_at_most_two_syncs(
    make_run: Make, site: Site, offline_dir: Path
) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    for i in range(100):
        run.shell.execute(f"edit {site.ids[i % 5]} notes=burst-{i}")
    run.run(f"tick {PAST_DEBOUNCE_MIN}")
    run.settle()
    assert 1 <= run.syncs() - 1 <= 2
    online = run.shell.online
    assert online is not None
    with OfflineCopy.open(run.copies.paths_for(online.session), "alice-pw") as copy:
        record = copy.get(site.ids[4])
        assert record is not None
        assert record.fields["notes"] == "burst-99"


def test_interval_sync_comes_after_thirty_minutes(make_run: Make, site: Site) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    site.server.admin.update_record(DB, site.ids[3], name="Renamed on the server")
    run.run("tick 29")
    run.settle()
    assert run.syncs() == 1
    out = run.run("tick 1.5") + run.settle()
    assert run.syncs() == 2
    # A change arrived: the progress display ends with the outcome; no notification.
    assert [line for line in automatic_lines(out) if line.startswith("[progress]")]
    assert "Up to date" in out
    assert not [line for line in automatic_lines(out) if line.startswith("[info]")]
    out = run.run("tick 31") + run.settle()
    assert run.syncs() == 3
    assert automatic_lines(out) == []  # nothing new: an automatic sync says nothing


def test_offline_login_reads_records_without_the_server(make_run: Make, site: Site) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    run.close()
    site.stop()
    offline = make_run()
    assert offline.login("alice-pw")
    out = offline.run("search Record 007", f"show {site.ids[7]} --reveal")
    assert "Record 007" in out
    assert "secret-7" in out
    assert "read-only" in offline.run("edit x notes=y")


def test_an_offline_search_says_while_the_search_index_is_still_being_built(
    make_run: Make, site: Site
) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    online = run.shell.online
    assert online is not None
    paths = run.copies.paths_for(online.session)
    run.close()
    site.stop()
    with OfflineCopy.open(paths, "alice-pw") as copy:  # as a first sync leaves the copy
        copy._db.execute("INSERT INTO meta(key, value) VALUES ('text_index_pending', 1)")
        copy._db.execute("INSERT INTO records_fts(records_fts) VALUES ('delete-all')")
        copy._db.commit()
    offline = make_run()
    assert offline.login("alice-pw")
    out = offline.run("search Record 007")
    assert "Record 007" in out
    assert "search index is still being built" in out
    offline.close()
    with OfflineCopy.open(paths, "alice-pw") as copy:
        copy.compact_search_index()  # the worker's upkeep after the next sync
    again = make_run()
    assert again.login("alice-pw")
    out = again.run("search Record 007")
    assert "Record 007" in out
    assert "still being built" not in out


@pytest.mark.parametrize(
    ("shift_s", "expected"),
    [(8 * 86400, "validity ended"), (-3600, "clock")],
    ids=["after_validity", "after_clock_set_back"],
)
def test_offline_login_is_refused(
    make_run: Make, site: Site, shift_s: float, expected: str
) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    run.close()
    site.stop()
    plugin_module.addon.wall_clock = lambda: time.time() + shift_s
    offline = make_run()
    assert not offline.login("alice-pw")
    out = offline.new_output()
    assert expected in out
    assert offline.shell.offline is None


def test_offline_login_with_wrong_password_is_refused(make_run: Make, site: Site) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    run.close()
    site.stop()
    offline = make_run()
    assert not offline.login("not-the-password")
    assert offline.shell.offline is None


def test_revoked_right_deletes_the_copy_and_tells_the_user(
    make_run: Make, site: Site, offline_dir: Path
) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    assert copy_files(offline_dir)
    site.server.admin.set_user_offline("alice", enabled=False)
    out = run.run("offline sync") + run.settle()
    assert "Offline copy deleted" in out
    assert "offline right" in out
    assert copy_files(offline_dir) == []


def test_switched_off_database_deletes_the_copy_at_the_next_interval(
    make_run: Make, site: Site, offline_dir: Path
) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    site.server.admin.set_database_offline(DB, False)
    out = run.run("tick 31") + run.settle()
    assert "Offline copy deleted" in out
    assert copy_files(offline_dir) == []


def test_password_change_rekeys_the_copy(make_run: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    monkeypatch.setenv("PSR_PASSWORD", "alice-pw")
    monkeypatch.setenv("PSR_NEW_PASSWORD", "alice-new-pw")
    assert "password changed" in run.run("passwd")
    run.settle()
    online = run.shell.online
    assert online is not None
    paths = run.copies.paths_for(online.session)
    OfflineCopy.open(paths, "alice-new-pw").close()
    with pytest.raises(WrongPassword):
        OfflineCopy.open(paths, "alice-pw")


def test_changed_folder_moves_the_copy(make_run: Make, tmp_path: Path, offline_dir: Path) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    before = copy_files(offline_dir)
    moved = tmp_path / "moved"
    run.run(f"settings set offline database_path {moved}")
    run.settle()
    assert copy_files(offline_dir) == []
    # The copy is open (the index upkeep after its first sync opened it): SQLite's
    # shared-memory file is not moved, it is made anew.
    assert copy_files(moved) == [name for name in before if not name.endswith("-shm")]
    out = run.run("offline status")
    assert f"{RECORDS} records" in out
    assert "is up to date" in run.run("offline sync") + run.settle()


def test_changed_folder_on_another_filesystem_copies_the_copy_durably(
    make_run: Make, tmp_path: Path, offline_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another filesystem cannot be mounted here; what marks one is a rename across folders
    # failing with EXDEV, so that is the fault injected.
    real_replace = os.replace

    def no_cross_folder_rename(src: Any, dst: Any) -> None:
        if Path(src).parent != Path(dst).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    before = copy_files(offline_dir)
    monkeypatch.setattr(os, "replace", no_cross_folder_rename)
    moved = tmp_path / "moved"
    run.run(f"settings set offline database_path {moved}")
    run.settle()
    monkeypatch.undo()
    assert copy_files(offline_dir) == []
    assert copy_files(moved) == [name for name in before if not name.endswith("-shm")]
    assert not [p for p in moved.iterdir() if p.name.endswith(".moving")]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in moved.iterdir())
    assert f"{RECORDS} records" in run.run("offline status")
    assert "is up to date" in run.run("offline sync") + run.settle()


def test_bad_setting_is_refused_and_the_old_value_stays(make_run: Make, offline_dir: Path) -> None:
    run = make_run()
    out = run.run("settings set offline database_path relative/folder")
    assert "database_path" in out
    assert run.copies.settings.database_path == str(offline_dir)


def test_status_and_list_describe_the_copy(make_run: Make) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    status = run.run("offline status")
    assert f"{RECORDS} records" in status
    assert "usable offline for" in status
    assert "Next automatic sync in 30 min" in status
    listing = run.run("offline list")
    assert f"{DB} on" in listing
    assert "alice" in listing


def test_delete_removes_the_copy(make_run: Make, offline_dir: Path) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    assert "was deleted" in run.run("offline delete")
    assert copy_files(offline_dir) == []
    assert "Next automatic sync" not in run.run("offline status")
    run.run("tick 31")
    run.settle()
    assert run.syncs() == 1


def test_no_copy_hint_for_a_user_without_the_offline_right(make_run: Make, site: Site) -> None:
    site.server.admin.set_user_offline("alice", enabled=False)
    run = make_run()
    assert run.login("alice-pw")
    out = run.run(f"tick {HINT_DUE_MIN}") + run.settle()  # when the hint would come
    assert "offline create" not in out


def test_a_folder_the_addon_refuses_is_not_stored_by_the_host(
    make_run: Make, offline_dir: Path
) -> None:
    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    for folder in ("~/copies", "/proc/nope/copies"):
        out = run.run(f"settings set offline database_path {folder}")
        assert "database_path" in out, out
        assert run.host.settings("offline")["database_path"] == str(offline_dir)
        assert run.copies.settings.database_path == str(offline_dir)
    assert f"{RECORDS} records" in run.run("offline status")


def test_a_move_that_runs_out_of_space_keeps_everything_where_it_was(
    make_run: Make, tmp_path: Path, offline_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The narrow injected fault at the one file-copy seam (tests/proof mounts a real full
    # filesystem where it may).
    import offline_addon.storage.moves as moves

    def no_space(source: Path, target: Path, temp_suffix: str) -> None:
        target.with_name(target.name + temp_suffix).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    run = make_run()
    run.login("alice-pw")
    create_copy(run)
    before = copy_files(offline_dir)
    monkeypatch.setattr(moves, "copy_durably", no_space)
    moved = tmp_path / "moved"
    out = run.run(f"settings set offline database_path {moved}")
    monkeypatch.undo()
    assert "No space left on device" in out
    assert "stays in" in out
    assert run.host.settings("offline")["database_path"] == str(offline_dir)
    assert copy_files(offline_dir) == before
    assert [p.name for p in moved.iterdir() if not p.name.endswith(".lock")] == []
    assert "is up to date" in run.run("offline sync") + run.settle()

"""Where copies live and what their files are called."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline_addon.errors import ConfigurationError
from offline_addon.storage.paths import CopyPaths, copy_id, default_folder, resolve_folder


def test_default_folder_is_absolute_and_named_offline_db() -> None:
    folder = default_folder()
    assert folder.is_absolute()
    assert folder.name == "OfflineDB"


def test_relative_appdirs_answer_is_anchored_under_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("appdirs.user_data_dir", lambda *a, **k: "relative/data")
    assert default_folder() == Path.home() / "relative" / "data" / "OfflineDB"


def test_relative_configured_folder_is_refused_with_the_setting_named() -> None:
    with pytest.raises(ConfigurationError, match="database_path"):
        resolve_folder("copies/here")


def test_empty_setting_means_default_and_absolute_is_kept(tmp_path: Path) -> None:
    assert resolve_folder("  ") == default_folder()
    assert resolve_folder(str(tmp_path)) == tmp_path


def test_copy_id_ignores_url_spelling_but_not_identity() -> None:
    a = copy_id("HTTPS://Server.example:443/", "db", "alice", "c1")
    assert a == copy_id("https://server.example", "db", "alice", "c1")
    assert a != copy_id("https://server.example", "db", "bob", "c1")
    assert a != copy_id("https://server.example", "db", "alice", "c2")
    assert a != copy_id("https://server.example:8443", "db", "alice", "c1")


def test_hostile_names_never_reach_the_file_name(tmp_path: Path) -> None:
    p = CopyPaths.for_copy(tmp_path, "http://x", "../../etc", "a/b\\c", "..")
    assert p.db.parent == tmp_path
    assert p.sidecar.parent == tmp_path
    assert all(ch in "0123456789abcdef" for ch in p.copy_id)
    assert p.db.name == f"{p.copy_id}.offline.db"

"""Host settings file and add-on settings validated against the manifest."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from reference_host.config import CONFIG_FILE_NAME, ConfigError, load_config
from reference_host.host import Host
from reference_host.settings import SettingsError, validate_settings
from tests.support.host import AddonSite, probe_manifest

HostFactory = Callable[..., tuple[Host, io.StringIO]]
MANIFEST = probe_manifest("probe", "probe_mod")


def test_settings_file_is_created_once_with_a_client_id_and_owner_only_mode(tmp_path: Path) -> None:
    first = load_config(tmp_path / "cfg")
    second = load_config(tmp_path / "cfg")
    assert first.client_id == second.client_id
    assert len(first.client_id) == 36
    mode = stat.S_IMODE((tmp_path / "cfg" / CONFIG_FILE_NAME).stat().st_mode)
    assert mode == 0o600
    assert first.timer_seconds == 60


def test_unreadable_settings_file_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE_NAME).write_text("{ broken", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path)


def test_newly_discovered_addon_is_enabled_by_default_and_remembered(
    addon_site: AddonSite, make_host: HostFactory, tmp_path: Path
) -> None:
    addon_site.install("probe")
    host, _ = make_host("probe")
    assert host.is_enabled("probe")
    stored = json.loads((tmp_path / "config" / CONFIG_FILE_NAME).read_text(encoding="utf-8"))
    assert stored["addons"]["probe"] == {"enabled": True, "settings": {}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("on", True),
        ("OFF", False),
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
    ],
)
def test_boolean_setting_accepts_the_usual_command_line_words(raw: str, expected: bool) -> None:
    assert validate_settings(MANIFEST, {"loud": raw}) == {"loud": expected}


@pytest.mark.parametrize(
    ("key", "raw", "field"),
    [
        ("level", "0", "level"),
        ("level", "10", "level"),
        ("level", "2.5", "level"),
        ("level", "lots", "level"),
        ("loud", "maybe", "loud"),
        ("colour", "red", "colour"),
    ],
)
def test_bad_setting_value_is_refused_naming_the_field(key: str, raw: str, field: str) -> None:
    with pytest.raises(SettingsError) as caught:
        validate_settings(MANIFEST, {key: raw})
    assert field in caught.value.problems
    assert field in str(caught.value)


def test_integer_setting_is_stored_as_an_integer_within_bounds(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    addon_site.install("probe")
    host, _ = make_host("probe")
    assert host.set_setting("probe", "level", "9")["level"] == 9
    assert host.stored_settings("probe") == {"level": 9}


def test_refused_setting_keeps_the_old_value_in_memory_and_on_disk(
    addon_site: AddonSite, make_host: HostFactory, tmp_path: Path
) -> None:
    addon_site.install("probe")
    host, _ = make_host("probe")
    host.set_setting("probe", "level", "7")
    path = tmp_path / "config" / CONFIG_FILE_NAME
    before = path.read_bytes()
    with pytest.raises(SettingsError, match="level"):
        host.set_setting("probe", "level", "1000")
    assert host.settings("probe")["level"] == 7
    assert path.read_bytes() == before


def test_valid_change_in_a_running_host_calls_on_settings_changed(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    probe = addon_site.install("probe")
    host, _ = make_host("probe")
    host.start()
    host.set_setting("probe", "loud", "on")
    hook, info = probe.plugin_module().CALLS[-1]
    assert hook == "on_settings_changed"
    assert info == {"addon_id": "probe", "settings": {"loud": True, "level": 3, "label": ""}}


def test_refused_change_does_not_call_on_settings_changed(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    probe = addon_site.install("probe")
    host, _ = make_host("probe")
    host.start()
    with pytest.raises(SettingsError):
        host.set_setting("probe", "loud", "perhaps")
    assert "on_settings_changed" not in [h for h, _ in probe.plugin_module().CALLS]


def test_hand_edited_invalid_stored_value_falls_back_to_the_default(
    addon_site: AddonSite, make_host: HostFactory, tmp_path: Path
) -> None:
    addon_site.install("probe")
    make_host("probe")
    path = tmp_path / "config" / CONFIG_FILE_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    data["addons"]["probe"]["settings"] = {"level": 99, "label": "kept"}
    path.write_text(json.dumps(data), encoding="utf-8")
    again, _ = make_host("probe")
    assert again.settings("probe") == {"loud": False, "level": 3, "label": "kept"}


def test_change_made_by_another_host_process_is_not_overwritten(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    addon_site.install("probe")
    first, _ = make_host("probe")
    second, _ = make_host("probe")
    first.set_setting("probe", "label", "from-first")
    second.set_setting("probe", "level", "5")
    assert second.stored_settings("probe") == {"label": "from-first", "level": 5}


def test_the_offline_database_path_must_be_absolute_or_empty() -> None:
    offline = json.loads((Path(__file__).parents[2] / "manifest.json").read_text("utf-8"))
    assert validate_settings(offline, {"database_path": ""}) == {"database_path": ""}
    assert validate_settings(offline, {"database_path": "/srv/offline"}) == {
        "database_path": "/srv/offline"
    }
    with pytest.raises(SettingsError) as caught:
        validate_settings(offline, {"database_path": "relative/dir"})
    assert "database_path" in caught.value.problems

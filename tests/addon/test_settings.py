"""Settings: defaults, validation naming the field, and the manifest staying in step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline_addon.errors import ConfigurationError, SettingsError
from offline_addon.settings import AddonSettings, parse_settings

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.json"


def test_empty_mapping_gives_the_documented_defaults() -> None:
    settings = parse_settings({})
    assert settings == AddonSettings(True, True, 30, "")
    assert settings.interval_seconds == 30 * 60


def test_defaults_equal_the_manifest_defaults() -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    defaults = {key: spec["default"] for key, spec in manifest["settings"].items()}
    assert parse_settings(defaults).as_dict() == defaults == AddonSettings().as_dict()


def test_valid_values_are_taken() -> None:
    settings = parse_settings(
        {
            "sync_after_save": False,
            "sync_after_login": False,
            "sync_interval_minutes": 5,
            "database_path": "/srv/offline",
        }
    )
    assert settings == AddonSettings(False, False, 5, "/srv/offline")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sync_interval_minutes", 0),
        ("sync_interval_minutes", 1441),
        ("sync_interval_minutes", "30"),
        ("sync_interval_minutes", 2.5),
        ("sync_interval_minutes", True),
        ("sync_after_save", "yes"),
        ("sync_after_login", 1),
        ("database_path", "relative/folder"),
        ("database_path", 42),
        ("database_path", "/bad\x00path"),
    ],
)
def test_bad_value_is_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({field: value})
    assert caught.value.field == field
    assert field in str(caught.value)
    assert "old value stays" in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)


def test_interval_bounds_are_inclusive() -> None:
    assert parse_settings({"sync_interval_minutes": 1}).sync_interval_minutes == 1
    assert parse_settings({"sync_interval_minutes": 1440}).sync_interval_minutes == 1440


def test_unknown_keys_from_a_newer_manifest_are_ignored() -> None:
    assert parse_settings({"future_setting": 1}) == AddonSettings()


def test_settings_are_frozen() -> None:
    settings = AddonSettings()
    with pytest.raises(AttributeError):
        settings.sync_after_save = False  # type: ignore[misc]

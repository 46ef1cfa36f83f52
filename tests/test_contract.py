"""The host contract (hookspecs) and the add-on's manifest."""

from __future__ import annotations

import copy
import dataclasses
import importlib.metadata
import importlib.resources
import json
from pathlib import Path
from typing import Any

import pluggy
import pytest

import hookspecs
from hookspecs import (
    Account,
    CommandInvocation,
    HostServices,
    ManifestError,
    OfflineCredentials,
    OfflineLoginResult,
    OfflineSession,
    RecordView,
    Session,
    WritableOfflineSession,
    validate_manifest,
)
from hookspecs import spec as hookspec_module

ROOT = Path(__file__).resolve().parent.parent


def _root_manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))
    return data


def test_root_manifest_validates() -> None:
    loaded = validate_manifest(_root_manifest())
    assert loaded["id"] == "offline"
    assert loaded["rights"] == ["offline_mode"]


def test_packaged_manifest_is_the_root_manifest() -> None:
    packaged = importlib.resources.files("offline_addon") / "manifest.json"
    assert json.loads(packaged.read_text(encoding="utf-8")) == _root_manifest()


def test_manifest_version_is_the_package_version() -> None:
    assert _root_manifest()["version"] == importlib.metadata.version("psr-offline-addon")


def test_manifest_entry_point_matches_the_installed_entry_point() -> None:
    (entry,) = importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP, name="offline")
    assert entry.value == _root_manifest()["entry_point"]


def test_manifest_declares_the_four_settings_with_their_defaults() -> None:
    settings = _root_manifest()["settings"]
    assert {name: s["default"] for name, s in settings.items()} == {
        "sync_after_save": True,
        "sync_after_login": True,
        "sync_interval_minutes": 30,
        "database_path": "",
    }
    interval = settings["sync_interval_minutes"]
    assert (interval["minimum"], interval["maximum"]) == (1, 1440)


def test_manifest_hooks_are_all_hooks_of_the_contract() -> None:
    declared = set(_root_manifest()["hooks"])
    specs = {name for name in dir(hookspec_module) if name.startswith(("on_", "offline_", "reg"))}
    assert declared == specs


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda m: m["settings"]["sync_interval_minutes"].update(default="30"),
            "settings.sync_interval_minutes.default",
        ),
        (
            lambda m: m["settings"]["sync_after_save"].update(default=1),
            "settings.sync_after_save.default",
        ),
        (
            lambda m: m["settings"]["sync_interval_minutes"].update(default=5000),
            "settings.sync_interval_minutes.default",
        ),
        (lambda m: m.pop("version"), "version"),
        (
            lambda m: m["settings"]["database_path"].pop("description"),
            "settings.database_path.description",
        ),
        (lambda m: m.update(contract_version="one"), "contract_version"),
        (lambda m: m["hooks"].append("on_coffee"), "hooks"),
    ],
)
def test_invalid_manifest_is_refused_naming_the_field(mutate: Any, field: str) -> None:
    manifest = copy.deepcopy(_root_manifest())
    mutate(manifest)
    with pytest.raises(ManifestError) as caught:
        validate_manifest(manifest)
    assert field in caught.value.problems
    assert field in str(caught.value)


def test_invalid_manifest_lists_every_problem() -> None:
    manifest = copy.deepcopy(_root_manifest())
    manifest.pop("name")
    manifest["settings"]["sync_after_login"]["default"] = "yes"
    with pytest.raises(ManifestError) as caught:
        validate_manifest(manifest)
    assert {"name", "settings.sync_after_login.default"} <= set(caught.value.problems)


def test_secrets_are_hidden_from_repr() -> None:
    session = Session("http://127.0.0.1:1", "db", "u1", "alice", "c1", "tok-SECRET", "pw-SECRET")
    credentials = OfflineCredentials("http://127.0.0.1:1", "db", "alice", "c1", "pw-SECRET")
    record = RecordView("r1", 1, "Mail", {"password": "field-SECRET"})
    for value in (session, credentials, record):
        assert "SECRET" not in repr(value)
        assert "SECRET" not in str(value)


def test_hook_specs_are_documented_and_load_into_pluggy() -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspec_module)
    names = [n for n in dir(manager.hook) if not n.startswith("_")]
    assert "offline_login" in names
    for name in _root_manifest()["hooks"]:
        assert getattr(hookspec_module, name).__doc__, f"{name} has no docstring"
    firstresult = manager.hook.offline_login.spec
    assert firstresult is not None
    assert firstresult.opts["firstresult"]


def test_a_path_setting_with_a_relative_default_is_refused() -> None:
    manifest = copy.deepcopy(_root_manifest())
    manifest["settings"]["database_path"]["default"] = "relative/folder"
    with pytest.raises(ManifestError) as caught:
        validate_manifest(manifest)
    assert "settings.database_path.default" in caught.value.problems


def test_a_format_on_a_non_string_setting_is_refused() -> None:
    manifest = copy.deepcopy(_root_manifest())
    manifest["settings"]["sync_after_save"]["format"] = "absolute-path"
    with pytest.raises(ManifestError) as caught:
        validate_manifest(manifest)
    assert "settings.sync_after_save.format" in caught.value.problems


# -- contract 1.1 -------------------------------------------------------------------------


def test_the_contract_is_version_1_2_and_older_addons_are_still_supported() -> None:
    from reference_host.addons import contract_supported

    assert hookspecs.CONTRACT_VERSION == "1.2"
    assert contract_supported(_root_manifest()["contract_version"])
    assert contract_supported("1.0")
    assert contract_supported("1.1")
    assert contract_supported("1.2")
    assert not contract_supported("1.3")
    assert not contract_supported("2.0")


def test_the_offline_addon_still_loads_in_a_1_1_host() -> None:
    from reference_host.addons import contract_supported

    # It needs nothing of 1.2 from the host: it offers the writable session, and builds its
    # login result without the 1.2 counts when the host's contract lacks them.
    assert _root_manifest()["contract_version"] == "1.1"
    assert contract_supported(_root_manifest()["contract_version"], host="1.1")


def test_account_is_frozen_and_has_no_secret() -> None:
    account = Account("http://127.0.0.1:1", "demo", "alice", "client-1")
    assert [f.name for f in dataclasses.fields(Account)] == [
        "server_url",
        "database",
        "username",
        "client_id",
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        account.database = "other"  # type: ignore[misc]


def test_command_invocation_has_an_account_that_defaults_to_none() -> None:
    fields = {f.name: f for f in dataclasses.fields(CommandInvocation)}
    assert list(fields)[-1] == "account"
    assert fields["account"].default is None


def test_command_text_is_a_documented_host_service() -> None:
    assert "command_text" in dir(HostServices)
    doc = HostServices.command_text.__doc__ or ""
    assert "psr-client offline create" in doc
    assert "getattr" in doc  # a 1.0 host lacks it


def test_count_matches_is_optional_for_an_offline_session() -> None:
    class OneZeroSession:
        database = "demo"
        username = "alice"
        valid_until = 0.0

        def list_records(self) -> list[RecordView]:
            return []

        def search(self, query: str) -> list[RecordView]:
            return []

        def get_record(self, record_id: str) -> RecordView | None:
            return None

        def close(self) -> None:
            pass

    assert isinstance(OneZeroSession(), OfflineSession)
    assert not isinstance(OneZeroSession(), WritableOfflineSession)
    assert "count_matches" in (OfflineSession.__doc__ or "")


# -- contract 1.2 -------------------------------------------------------------------------


def test_a_writable_offline_session_is_an_offline_session_that_edits_creates_and_deletes() -> None:
    members = {"read_only_reason", "edit", "edit_fields", "create", "delete"}
    assert members <= set(dir(WritableOfflineSession))
    assert OfflineSession in WritableOfflineSession.__mro__
    for name in members:
        assert getattr(WritableOfflineSession, name).__doc__


def test_the_offline_login_result_counts_pending_changes_and_conflicts_by_default_zero() -> None:
    fields = {f.name: f for f in dataclasses.fields(OfflineLoginResult)}
    assert list(fields)[:2] == ["session", "message"]  # 1.1 positional use still works
    assert (fields["pending_changes"].default, fields["conflicts"].default) == (0, 0)
    assert OfflineLoginResult(None, "why").conflicts == 0


def test_the_addon_answers_a_1_1_host_without_the_1_2_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import offline_addon.plugin as plugin

    @dataclasses.dataclass(frozen=True)
    class OldResult:  # OfflineLoginResult as contract 1.1 defines it
        session: Any
        message: str

    monkeypatch.setattr(plugin, "OfflineLoginResult", OldResult)
    answer = plugin.login_result(None, "text", 2, 1)  # type: ignore[arg-type]
    assert answer == OldResult(None, "text")


def test_the_manifest_names_the_offline_editing_server_setting() -> None:
    assert _root_manifest()["server_settings"] == ["offline_allowed", "offline_editing"]


def test_copy_to_clipboard_is_a_documented_host_service_of_1_2() -> None:
    assert "copy_to_clipboard" in dir(HostServices)
    doc = HostServices.copy_to_clipboard.__doc__ or ""
    assert "1.2" in doc
    assert "getattr" in doc  # older hosts lack it

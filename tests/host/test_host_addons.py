"""Discovery through entry points, manifests, enabling/disabling and guarded hook calls."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest

import hookspecs
from hookspecs import HostServices, OfflineCredentials, Session
from reference_host.addons import contract_supported, discover
from reference_host.host import Host, HostError
from reference_host.services import Console
from tests.support.host import BROKEN_SOURCE, AddonSite

HostFactory = Callable[..., tuple[Host, io.StringIO]]

SESSION = Session(
    server_url="http://127.0.0.1:1",
    database="demo",
    user_id="u1",
    username="alice",
    client_id="c1",
    token="tok-Wd3!probe-hooks",
    password="pw-Wd3!probe-hooks",
)


def _hooks(calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [hook for hook, _ in calls]


# -- the real Offline Add-on ------------------------------------------------------------------


def test_offline_addon_is_discovered_through_its_entry_point_with_its_version() -> None:
    (info,) = [a for a in discover() if a.addon_id == "offline"]
    assert info.refused is None
    assert (
        info.version
        == hookspecs.load_manifest(Path(__file__).resolve().parents[2] / "manifest.json")["version"]
    )
    assert info.entry_point == "offline_addon.plugin:addon"
    # Loaded by the entry point, i.e. the very object the package exposes.
    import offline_addon.plugin

    assert info.plugin is offline_addon.plugin.addon


def test_offline_addon_is_listed_enabled_and_its_hooks_pass_check_pending(
    make_host: HostFactory,
) -> None:
    host, _ = make_host("offline")
    (status,) = host.statuses()
    assert (status.info.addon_id, status.state) == ("offline", "enabled")
    host.start()
    assert host.hooks.registered() == ["offline"]
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs.spec)
    pm.register(status.info.plugin, name="offline")
    pm.check_pending()


# -- probe add-ons ------------------------------------------------------------------------


def test_enabled_addon_receives_hooks_with_host_services(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    probe = addon_site.install("probe")
    host, _ = make_host("probe")
    host.start()
    host.hooks.call("on_login", session=SESSION)
    module = probe.plugin_module()
    assert _hooks(module.CALLS) == ["register_commands", "on_addon_enabled", "on_login"]
    (services,) = module.SERVICES
    assert isinstance(services, HostServices)
    assert services.addon_settings("probe") == {"loud": False, "level": 3, "label": ""}


def test_disabling_an_addon_in_a_running_host_stops_its_hooks(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    probe = addon_site.install("probe")
    host, _ = make_host("probe")
    host.start()
    module = probe.plugin_module()
    host.set_enabled("probe", False)
    assert _hooks(module.CALLS)[-1] == "on_addon_disabled"
    before = len(module.CALLS)
    host.hooks.call("on_login", session=SESSION)
    host.hooks.call("on_timer", session=SESSION, now=1.0)
    assert len(module.CALLS) == before
    assert host.commands() == []
    assert host.statuses()[0].state == "disabled"


def test_enabling_an_addon_in_a_running_host_takes_effect_at_once(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    probe = addon_site.install("probe")
    host, _ = make_host("probe")
    host.set_enabled("probe", False)
    host.start()
    module = probe.plugin_module()
    assert module.CALLS == []
    host.set_enabled("probe", True)
    host.hooks.call("on_timer", session=SESSION, now=5.0)
    assert _hooks(module.CALLS) == ["register_commands", "on_addon_enabled", "on_timer"]
    assert [c.name for _, c in host.commands()][:3] == ["ping", "whoami", "explode"]


def test_addon_switched_off_in_the_settings_file_is_not_loaded_at_start(
    addon_site: AddonSite, make_host: HostFactory, tmp_path: Path
) -> None:
    probe = addon_site.install("probe")
    first, _ = make_host("probe")
    first.set_enabled("probe", False)
    second, _ = make_host("probe")  # a new host process over the same settings file
    second.start()
    assert probe.plugin_module().CALLS == []
    assert second.hooks.registered() == []


def test_shutdown_tells_every_started_addon(addon_site: AddonSite, make_host: HostFactory) -> None:
    one, two = addon_site.install("one"), addon_site.install("two")
    host, _ = make_host("one", "two")
    host.start()
    host.shutdown()
    for probe in (one, two):
        assert _hooks(probe.plugin_module().CALLS)[-1] == "on_addon_disabled"
    assert host.hooks.registered() == []


@pytest.mark.parametrize("broken_id", ["abroken", "zbroken"])
def test_broken_addon_neither_stops_the_host_nor_the_other_addons(
    addon_site: AddonSite, make_host: HostFactory, broken_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Both names, so that the broken add-on is called before and after the probe.
    probe = addon_site.install("probe")
    broken = addon_site.install(broken_id, BROKEN_SOURCE)
    host, _ = make_host("probe", broken_id)
    creds = OfflineCredentials("http://127.0.0.1:1", "demo", "alice", "c1", SESSION.password)
    with caplog.at_level(logging.ERROR):
        host.start()
        host.hooks.call("on_login", session=SESSION)
        host.hooks.call("on_timer", session=SESSION, now=1.0)
        host.hooks.call("on_settings_changed", addon_id="probe", settings={})
        assert host.hooks.call_first("offline_login", credentials=creds) is None
        host.hooks.call("on_password_changed", session=SESSION, old_password="old")
        host.hooks.call("on_logout", session=SESSION)
        host.shutdown()
    assert _hooks(probe.plugin_module().CALLS) == [
        "register_commands",
        "on_addon_enabled",
        "on_login",
        "on_timer",
        "on_settings_changed",
        "offline_login",
        "on_password_changed",
        "on_logout",
        "on_addon_disabled",
    ]
    assert "on_timer" in broken.plugin_module().ATTEMPTS
    failures = [r.getMessage() for r in caplog.records if broken_id in r.getMessage()]
    assert any("on_login" in m for m in failures)
    for secret in (SESSION.token, SESSION.password):
        assert all(secret not in r.getMessage() for r in caplog.records)


def test_offline_login_asks_the_next_addon_when_one_raises(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    probe = addon_site.install("probe")
    addon_site.install("zbroken", BROKEN_SOURCE)
    host, _ = make_host("probe", "zbroken")
    host.start()
    probe.plugin_module().OFFLINE_ANSWER["mode"] = "message"
    creds = OfflineCredentials("http://127.0.0.1:1", "demo", "alice", "c1", "pw")
    answered = host.hooks.call_first("offline_login", credentials=creds)
    assert answered is not None
    assert answered[0] == "probe"
    assert "expired" in answered[1].message


def test_addon_reading_its_settings_in_a_hook_while_being_disabled_does_not_deadlock(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    probe = addon_site.install("probe")
    host, _ = make_host("probe")
    host.start()
    module = probe.plugin_module()
    module.SLOW_TIMER["seconds"] = 0.2
    ticker = threading.Thread(
        target=host.hooks.call, kwargs={"hook": "on_timer", "session": SESSION, "now": 1.0}
    )
    ticker.start()
    while not module.CALLS or module.CALLS[-1][0] != "on_timer":
        time.sleep(0.005)
    disabler = threading.Thread(target=host.set_enabled, args=("probe", False))
    disabler.start()
    disabler.join(timeout=10)
    ticker.join(timeout=10)
    assert not disabler.is_alive()
    assert not ticker.is_alive()
    assert module.SETTINGS_SEEN == [{"loud": False, "level": 3, "label": ""}]
    assert _hooks(module.CALLS)[-1] == "on_addon_disabled"


# -- refused add-ons ----------------------------------------------------------------------


def _refusal(addon_id: str) -> str:
    (info,) = [a for a in discover() if a.addon_id == addon_id]
    assert info.refused is not None
    return info.refused


def test_manifest_with_a_wrong_default_type_is_refused_naming_the_field(
    addon_site: AddonSite,
) -> None:
    def wrong_default(m: dict[str, Any]) -> None:
        m["settings"]["level"]["default"] = "three"

    addon_site.install("probe", edit=wrong_default)
    assert "settings.level.default" in _refusal("probe")


def test_manifest_with_a_missing_field_is_refused_naming_the_field(addon_site: AddonSite) -> None:
    addon_site.install("probe", edit=lambda m: m.pop("version"))
    assert "version" in _refusal("probe")


def test_manifest_that_is_not_json_is_refused(addon_site: AddonSite) -> None:
    addon_site.install("probe", manifest="{ not json")
    assert "manifest" in _refusal("probe")


def test_manifest_naming_another_entry_point_is_refused(addon_site: AddonSite) -> None:
    addon_site.install("probe", edit=lambda m: m.update(entry_point="elsewhere.plugin:addon"))
    assert "entry_point" in _refusal("probe")


@pytest.mark.parametrize("needed", ["1.0", "1.1"])
def test_addons_written_for_contract_1_0_or_1_1_are_loaded(
    addon_site: AddonSite, make_host: HostFactory, needed: str
) -> None:
    addon_site.install("probe", edit=lambda m: m.update(contract_version=needed))
    host, _ = make_host("probe")
    (status,) = host.statuses()
    assert status.state == "enabled"


@pytest.mark.parametrize("needed", ["2.0", "1.9", "1.3", "0.1"])
def test_addon_needing_an_unsupported_contract_version_is_refused(
    addon_site: AddonSite, needed: str
) -> None:
    addon_site.install("probe", edit=lambda m: m.update(contract_version=needed))
    refusal = _refusal("probe")
    assert needed in refusal
    assert hookspecs.CONTRACT_VERSION in refusal


def test_contract_versions_are_compatible_by_major_and_lower_minor() -> None:
    assert contract_supported("1.0", "1.0")
    assert contract_supported("1.0", "1.2")
    assert not contract_supported("1.3", "1.2")
    assert not contract_supported("2.0", "1.0")
    assert not contract_supported("1.x", "1.0")


def test_addon_whose_import_fails_is_refused_and_the_host_goes_on(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    probe = addon_site.install("probe")
    addon_site.install("crashy", "raise ImportError('missing dependency')\n")
    assert "ImportError" in _refusal("crashy")
    host, _ = make_host("probe", "crashy")
    host.start()
    assert host.hooks.registered() == ["probe"]
    assert "on_addon_enabled" in _hooks(probe.plugin_module().CALLS)
    with pytest.raises(HostError, match="cannot be enabled"):
        host.set_enabled("crashy", True)


def test_addon_implementing_an_unknown_hook_is_refused(addon_site: AddonSite) -> None:
    source = (
        "from hookspecs import hookimpl\n"
        "class Odd:\n"
        "    @hookimpl\n"
        "    def on_lunch(self):\n"
        "        pass\n"
        "addon = Odd()\n"
    )
    addon_site.install("odd", source)
    assert "on_lunch" in _refusal("odd")


def test_refused_addon_is_listed_with_the_reason(addon_site: AddonSite, tmp_path: Path) -> None:
    addon_site.install("probe", edit=lambda m: m.update(contract_version="2.0"))
    host = Host(
        tmp_path / "cfg",
        Console(io.StringIO()),
        addons=[a for a in discover() if a.addon_id == "probe"],
    )
    (status,) = host.statuses()
    assert status.state.startswith("refused: needs host contract version 2.0")
    host.shutdown()


def test_unknown_addon_name_is_refused_with_the_known_ones(make_host: HostFactory) -> None:
    host, _ = make_host("offline")
    with pytest.raises(HostError, match=r"no add-on 'nope' \(known: offline\)"):
        host.set_enabled("nope", False)

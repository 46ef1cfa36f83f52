"""Odd callers and a stalling server against the hooks and the Python API: every hook checks its
arguments and returns; only the add-on's own errors cross the API; switching the add-on off
returns within about a second and no page is written after it; searches and settings refuse
bad input with a clear error."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hookspecs import SavedRecord
from offline_addon import (
    AddonSettings,
    InvalidArgument,
    OfflineAddonError,
    OfflineCopies,
    SettingsError,
)
from offline_addon.plugin import SHUTDOWN_WAIT_S, OfflineAddon
from offline_addon.storage.offline_copy import OfflineCopy
from tests.support.hostile import PASSWORD, HostileServer, Reply, policy_body
from tests.support.records import last_page, upsert

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def srv() -> Any:
    with HostileServer(lifetime_s=30) as server:
        yield server


@pytest.fixture
def copies(tmp_path: Path) -> Any:
    api = OfflineCopies(AddonSettings(database_path=str(tmp_path / "offline")))
    yield api
    api.shutdown(10)


@pytest.fixture
def addon(copies: OfflineCopies) -> OfflineAddon:
    plugin = OfflineAddon()
    plugin.copies.shutdown(0)
    plugin.copies = copies
    return plugin


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf, "12", None, True])
def test_on_timer_with_a_time_that_is_not_a_finite_number_is_ignored(
    addon: OfflineAddon, copies: OfflineCopies, srv: HostileServer, now: Any
) -> None:
    before = copies.schedule_clock()
    addon.on_timer(srv.session, now)
    assert math.isfinite(copies.schedule_clock())
    assert abs(copies.schedule_clock() - before) < 5
    with pytest.raises(InvalidArgument):
        copies.timer(now)


@pytest.mark.parametrize("settings", [["sync_interval_minutes", 0], 42, "x", None])
def test_on_settings_changed_with_a_non_mapping_keeps_the_settings(
    addon: OfflineAddon, copies: OfflineCopies, settings: Any
) -> None:
    old = copies.settings
    addon.on_settings_changed("offline", settings)
    assert copies.wait_idle(5)
    assert copies.settings == old


def test_hooks_with_values_of_the_wrong_type_return_quietly(
    addon: OfflineAddon, srv: HostileServer
) -> None:
    addon.on_login("not a session")  # type: ignore[arg-type]
    addon.on_logout(42)  # type: ignore[arg-type]
    addon.on_record_saved(srv.session, "not a record")  # type: ignore[arg-type]
    addon.on_record_saved(srv.session, SavedRecord(1, "db", None))  # type: ignore[arg-type]
    addon.on_password_changed(srv.session, None)  # type: ignore[arg-type]
    assert addon.offline_login(object()) is None  # type: ignore[arg-type]


def test_the_api_lets_only_its_own_errors_out(copies: OfflineCopies, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        copies.status("not a session")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        copies.request_sync(None)  # type: ignore[arg-type]

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    api = OfflineCopies(AddonSettings(database_path=str(tmp_path / "b")), sync=broken)
    try:
        with HostileServer() as srv:
            (tmp_path / "b").mkdir()
            api.paths_for(srv.session).db.touch()
            with pytest.raises(OfflineAddonError) as info:
                api.sync_now(srv.session, timeout=10)
    finally:
        api.shutdown(5)
    assert type(info.value) is OfflineAddonError
    assert "RecursionError" in str(info.value)


def test_switching_off_returns_within_a_second_and_no_page_is_written_after_it(
    addon: OfflineAddon, copies: OfflineCopies, srv: HostileServer
) -> None:
    assert copies.create(srv.session, timeout=20).outcome == "synced"
    gate = threading.Event()
    srv.route(
        "/offline/head", Reply.json({"seq": 2, **policy_body()}, headers=[("ETag", '"e-2-604800"')])
    )
    late = last_page([*srv.feed, upsert("late-record")], cursor="end-2")

    def held_page(_p: str, _q: Any, _h: Any) -> Reply:
        gate.wait(20)
        return Reply.json(late)

    srv.route("/offline/changes", held_page)
    copies.request_sync(srv.session)
    deadline = time.monotonic() + 10
    while srv.hits("/offline/changes") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # the sync now waits in a network read
    started = time.monotonic()
    addon.on_addon_disabled()
    took = time.monotonic() - started
    gate.set()  # the page arrives after the add-on was switched off
    time.sleep(1.0)
    assert took < SHUTDOWN_WAIT_S + 0.5, f"on_addon_disabled blocked {took:.1f} s"
    assert SHUTDOWN_WAIT_S <= 1.5
    with OfflineCopy.open(copies.paths_for(srv.session), PASSWORD) as copy:
        assert copy.get("late-record") is None, "a page was written after on_addon_disabled"
        assert copy.integrity_ok()


@pytest.fixture
def reader(copies: OfflineCopies, srv: HostileServer) -> Any:
    from hookspecs import OfflineCredentials

    assert copies.create(srv.session, timeout=20).outcome == "synced"
    s = srv.session
    opened = copies.open_offline(
        OfflineCredentials(s.server_url, s.database, s.username, s.client_id, PASSWORD)
    )
    yield opened
    opened.close()


@pytest.mark.parametrize(
    "query",
    [
        " ".join(["word"] * 100_000),
        "a\x00b",
        "line\nbreak",
        "x" * 1001,
        "\ud800",
        42,
    ],
    ids=["100k-words", "nul", "newline", "too-long", "surrogate", "not-text"],
)
def test_a_bad_search_is_refused_at_once_with_a_clear_error(reader: Any, query: Any) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidArgument) as info:
        reader.search(query)
    assert time.monotonic() - started < 0.5
    assert str(info.value)[0].isupper()


def test_the_longest_accepted_search_runs_and_odd_ids_find_nothing(reader: Any) -> None:
    assert reader.search("Name of r1") != []
    assert reader.search(" ".join(["record"] * 16)) is not None
    assert reader.search("r" * 1000) == []
    assert reader.get_record("\x00") is None
    assert reader.get_record(None) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sync_interval_minutes": 0},
        {"sync_interval_minutes": -5},
        {"sync_interval_minutes": True},
        {"sync_after_save": "yes"},
        {"database_path": "relative/path"},
    ],
)
def test_settings_are_validated_however_they_arrive(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SettingsError) as info:
        AddonSettings(**kwargs)
    assert info.value.field == next(iter(kwargs))

"""Hook implementations of the Offline Add-on: thin, guarded layers over :mod:`offline_addon.api`.

Every implementation checks its arguments (a non-finite time, a value of the wrong type is
logged and ignored), catches, logs and returns, because an exception in one add-on's hook
would stop the other add-ons' implementations and reach the host. Hooks on the host's threads
only hand work to the add-on's background thread (a queue append); only ``offline_login`` may
block (the host waits for the key derivation by contract). Importing this module does no I/O.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from hookspecs import (
    HostCommand,
    HostServices,
    OfflineCredentials,
    OfflineLoginResult,
    SavedRecord,
    Session,
    hookimpl,
)
from hookspecs.services import NotifyLevel
from offline_addon import errors
from offline_addon.api import OfflineCopies, OfflineReader
from offline_addon.commands import build_commands, describe_age, describe_edits, expiry_line
from offline_addon.errors import SettingsError
from offline_addon.runtime.status import PROGRESS_TASK
from offline_addon.settings import AddonSettings, parse_settings
from offline_addon.sync.result import incomplete_words

ADDON_ID = "offline"
SHUTDOWN_WAIT_S = 1.0
"""How long ``on_addon_disabled`` (on the host's UI thread) waits for the worker. A sync writes
nothing once asked to stop (it checks inside each page's transaction, before the commit), so
the wait only lets a commit in progress finish; a sync blocked in a network read ends later,
by its request deadline, without writing."""

_fallback_log = logging.getLogger("offline_addon")


class HostFeedback:
    """Progress and messages through the host's services; a failing host call is logged,
    never raised into the sync."""

    def __init__(self, host: HostServices, log: logging.Logger) -> None:
        self._host = host
        self._log = log

    def progress(self, done: int, total: int, text: str) -> None:
        """Forward to ``HostServices.progress`` under the task name ``offline``."""
        try:
            self._host.progress(PROGRESS_TASK, done, total, text)
        except Exception:
            self._log.exception("host progress display failed")

    def notify(self, title: str, text: str, level: NotifyLevel = "info") -> None:
        """Forward to ``HostServices.notify``."""
        try:
            self._host.notify(title, text, level)
        except Exception:
            self._log.exception("host notification failed")

    def command_text(self, group: str, name: str) -> str:
        """How the user types a command where they are: the host's ``command_text``
        (contract 1.1) when it has one, else the one-shot form."""
        spell = getattr(self._host, "command_text", None)
        if callable(spell):
            try:
                text = spell(group, name)
                if isinstance(text, str) and text:
                    return text
            except Exception:
                self._log.exception("host command_text failed")
        return f"psr-client {group} {name}"


class OfflineAddon:
    """The object the ``psr.addons`` entry point names.

    ``copies`` is the add-on's :class:`OfflineCopies` (the Python API); it is replaced by a
    fresh one each time the add-on is enabled. ``wall_clock`` is the clock for offline
    validity and server-contact stamps (tests inject a fake one).
    """

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self.wall_clock = wall_clock
        self._host: HostServices | None = None
        self._log = _fallback_log
        self.copies = OfflineCopies(wall_clock=wall_clock)

    # -- guarding -------------------------------------------------------------------------------

    def _failed(self, hook: str) -> None:
        # Exception types and add-on messages only: no secrets reach these messages.
        self._log.exception("offline add-on: hook %s failed", hook)

    def _refused(self, hook: str, exc: errors.InvalidArgument) -> None:
        self._log.warning("offline add-on: hook %s ignored: %s", hook, exc)

    def _notify(self, title: str, text: str, level: NotifyLevel = "warning") -> None:
        host = self._host
        if host is None:
            self._log.warning("%s: %s", title, text)
            return
        HostFeedback(host, self._log).notify(title, text, level)

    def _report_failure(self, what: str) -> Callable[[Future[Any]], None]:
        def done(future: Future[Any]) -> None:
            exc = future.exception() if not future.cancelled() else None
            if exc is None:
                return
            if isinstance(exc, errors.OfflineAddonError):
                self._notify(what, str(exc))
            else:
                self._log.error("offline add-on: %s", what, exc_info=exc)
                self._notify(what, "An unexpected error occurred; see the host's log.")

        return done

    # -- lifecycle ------------------------------------------------------------------------------

    @hookimpl
    def on_addon_enabled(self, host: HostServices) -> None:
        """Keep the host's services and start with its settings (bad ones: the defaults)."""
        try:
            self._host = host
            self._log = host.logger(ADDON_ID)
            if not isinstance(self._log, logging.Logger):
                self._log = _fallback_log
            try:
                settings = parse_settings(host.addon_settings(ADDON_ID))
            except SettingsError as exc:
                self._notify("Offline Add-on settings", str(exc))
                settings = AddonSettings()
            self.copies.shutdown(0.0)
            self.copies = OfflineCopies(
                settings, feedback=HostFeedback(host, self._log), wall_clock=self.wall_clock
            )
        except Exception:
            self._failed("on_addon_enabled")

    @hookimpl
    def on_addon_disabled(self) -> None:
        """Stop the background thread (a running sync stops at its next page)."""
        try:
            if not self.copies.shutdown(SHUTDOWN_WAIT_S):
                self._log.warning("offline add-on: background sync did not stop in time")
            self.copies = OfflineCopies(wall_clock=self.wall_clock)
        except Exception:
            self._failed("on_addon_disabled")
        finally:
            self._host = None

    @hookimpl(optionalhook=True)  # a contract 1.0 host has no such hook: it then is not called
    def on_settings_changing(
        self, addon_id: str, current: Mapping[str, Any], proposed: Mapping[str, Any]
    ) -> str | None:
        """Refuse a bad value, and before a changed folder is stored, copy the copies into
        it (the move is committed once the new folder is in force); ``None`` accepts."""
        if addon_id != ADDON_ID:
            return None
        try:
            refusal = self.copies.prepare_settings(current, proposed)
        except Exception:
            self._failed("on_settings_changing")
            return (
                "The Offline Add-on could not check the new settings because of an "
                "unexpected error; the old values stay. See the host's log."
            )
        if refusal is not None:
            self._log.warning("offline add-on: refused a settings change")
        return refusal

    @hookimpl
    def on_settings_changed(self, addon_id: str, settings: Mapping[str, Any]) -> None:
        """Validate and apply new settings; a bad value is refused and the old one stays."""
        try:
            if addon_id != ADDON_ID:
                return
            if not isinstance(settings, Mapping):  # None too: it would mean "all defaults"
                raise SettingsError("settings", "must be a mapping of setting names to values.")
            parsed = parse_settings(settings)
        except SettingsError as exc:
            self._log.warning("offline add-on: refused setting %s", exc.field)
            self._notify("Offline Add-on settings", str(exc))
            return
        except Exception:
            self._failed("on_settings_changed")
            return
        try:
            future = self.copies.request_settings(parsed)
            future.add_done_callback(self._report_failure("Offline Add-on settings"))
        except Exception:
            self._failed("on_settings_changed")

    # -- session hooks --------------------------------------------------------------------------

    @hookimpl
    def on_login(self, session: Session) -> None:
        """Sync the copy after login when it exists (and ``sync_after_login``); otherwise
        tell the user where to create one."""
        try:
            self.copies.session_started(session)
        except errors.InvalidArgument as exc:
            self._refused("on_login", exc)
        except Exception:
            self._failed("on_login")

    @hookimpl
    def on_logout(self, session: Session) -> None:
        """Renew the copy first when its last contact is older than an hour (a quick sync,
        waiting at most ``api.LOGOUT_RENEW_S``: the host called this before it shuts down
        too), then stop automatic syncs with this session's token."""
        try:
            self.copies.renew_before_logout(session)
        except errors.InvalidArgument:
            pass  # told below, once
        except Exception:
            self._failed("on_logout")
        try:
            self.copies.session_ended(session)
        except errors.InvalidArgument as exc:
            self._refused("on_logout", exc)
        except Exception:
            self._failed("on_logout")

    @hookimpl
    def on_record_saved(self, session: Session, record: SavedRecord) -> None:
        """A debounced sync when the logged-in user saved the record (``sync_after_save``)."""
        try:
            self.copies.record_saved(session, record)
        except errors.InvalidArgument as exc:
            self._refused("on_record_saved", exc)
        except Exception:
            self._failed("on_record_saved")

    @hookimpl
    def on_timer(self, session: Session, now: float) -> None:
        """Learn the host's time; wake the worker only when a sync is due."""
        try:
            self.copies.timer(now)
        except errors.InvalidArgument as exc:
            self._refused("on_timer", exc)
        except Exception:
            self._failed("on_timer")

    @hookimpl
    def on_password_changed(self, session: Session, old_password: str) -> None:
        """Re-key the copy from the old to the new password (on the background thread)."""
        try:
            future = self.copies.request_rekey(session, old_password)
            future.add_done_callback(self._report_failure("Offline copy not re-encrypted"))
        except errors.InvalidArgument as exc:
            self._refused("on_password_changed", exc)
        except Exception:
            self._failed("on_password_changed")

    @hookimpl
    def offline_login(self, credentials: OfflineCredentials) -> OfflineLoginResult | None:
        """Open the copy for these credentials: ``None`` when there is none, else a session
        or the reason it cannot be opened."""
        try:
            reader = self.copies.open_offline(credentials)
        except errors.CopyNotFound:
            return None
        except errors.InvalidArgument as exc:
            self._refused("offline_login", exc)
            return None
        except errors.OfflineAddonError as exc:
            return OfflineLoginResult(None, str(exc))
        except Exception:
            self._failed("offline_login")
            return OfflineLoginResult(
                None,
                "The offline copy could not be opened because of an unexpected error; "
                "see the host's log.",
            )
        try:
            pending, conflicts = len(reader.pending_changes()), len(reader.conflicts())
        except errors.OfflineAddonError:
            pending, conflicts = 0, 0  # the copy reads; the counts are a courtesy
        message = offline_login_message(reader, self.wall_clock(), pending, conflicts)
        if not reader.complete:
            notice = incomplete_words(reader.record_count, reader.expected_total)
            message = (
                f"This offline copy is {notice}: its first synchronisation did not "
                f"finish; log in online to complete it.\n{message}"
            )
        return login_result(reader, message, pending, conflicts)

    @hookimpl
    def register_commands(self) -> list[HostCommand]:
        """The ``offline`` commands of the Account menu."""
        try:
            return build_commands(lambda: self.copies)
        except Exception:
            self._failed("register_commands")
            return []


def offline_login_message(
    reader: OfflineReader, now: float, pending: int = 0, conflicts: int = 0
) -> str:
    """What the host shows after an offline login: whether changes may be made, how old the
    copy is and how long it stays usable, and what waits from earlier offline work."""
    age = describe_age(reader.last_sync, reader.valid_until, now)
    if reader.read_only_reason is None:
        text = (
            f"Logged in offline from your offline copy ({age}). Changes you make are kept "
            "in the copy and sent to the server at your next online login."
        )
    else:
        text = f"Logged in offline: read-only, from your offline copy ({age})."
    lines = [text]
    waiting = describe_edits(pending, conflicts)
    if waiting:
        lines.append(waiting)
    warning = expiry_line(reader.last_sync, reader.valid_until, now)
    if warning is not None:
        lines.append(warning)
    return "\n".join(lines)


def login_result(
    session: OfflineReader, message: str, pending: int, conflicts: int
) -> OfflineLoginResult:
    """The answer to ``offline_login``, with the counts of contract 1.2 when the host's
    contract has them (a 1.1 host's ``OfflineLoginResult`` does not)."""
    known = {f.name for f in dataclasses.fields(OfflineLoginResult)}
    if {"pending_changes", "conflicts"} <= known:
        return OfflineLoginResult(session, message, pending_changes=pending, conflicts=conflicts)
    return OfflineLoginResult(session, message)


addon = OfflineAddon()

"""Hook specifications of the host (pluggy project ``psr``).

Threads: the reference host calls every hook on its main (UI) thread, except ``on_timer``,
which it calls from its timer thread. Either way an implementation must return in well under a
millisecond and hand real work (network, disk) to a thread of its own.

Errors: pluggy stops calling the remaining implementations when one raises, so an
implementation must catch, log and return. The host guards every call as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hookspecs.markers import hookspec
from hookspecs.services import HostServices
from hookspecs.types import (
    HostCommand,
    OfflineCredentials,
    OfflineLoginResult,
    SavedRecord,
    Session,
)


@hookspec
def on_addon_enabled(host: HostServices) -> None:
    """Called when the add-on is loaded enabled at host start, or switched on in a running host.

    ``host`` stays valid until ``on_addon_disabled``; keep it. Do no blocking I/O here: start
    background threads lazily or here, but return at once."""


@hookspec
def on_addon_disabled() -> None:
    """Called when the user switches the add-on off, and when the host shuts down.

    Stop background work (finish or abandon the current step safely) and release files. After
    this no other hook is called until the next ``on_addon_enabled``."""


@hookspec
def on_settings_changed(addon_id: str, settings: Mapping[str, Any]) -> None:
    """Called after the user changed an add-on's settings and the host validated them against
    that add-on's manifest. ``addon_id`` names the add-on whose settings changed; ignore others.
    Apply the new values without a restart."""


@hookspec
def on_settings_changing(
    addon_id: str, current: Mapping[str, Any], proposed: Mapping[str, Any]
) -> str | None:
    """Called before the host stores a change of an add-on's settings, after it validated
    ``proposed`` against the manifest; ``current`` are the settings in force. Added in contract
    1.1; a host of 1.0 does not call it (then ``on_settings_changed`` is all an add-on hears).

    Return ``None`` to accept the change, having done what must be in place before the new
    values are in force (the Offline Add-on copies its files into a new folder here), or a
    sentence for the user that refuses it: the host then stores nothing, keeps the old values
    and shows the sentence. The host calls it on the thread that changes the setting, in a
    running host and in a one-shot command alike (then possibly without ``on_addon_enabled``,
    like ``register_commands``), and waits for it: it may block for as long as that work takes.
    ``addon_id`` names the add-on whose settings change; return ``None`` for others."""


@hookspec
def on_login(session: Session) -> None:
    """Called after a successful online login, and when the add-on is switched on during an
    online session (right after ``on_addon_enabled``), on the UI thread. Return at once."""


@hookspec
def on_logout(session: Session) -> None:
    """Called when the user logs out (and before shutdown while logged in). The token is about
    to become invalid: stop using it."""


@hookspec
def on_record_saved(session: Session, record: SavedRecord) -> None:
    """Called after the host saved a record on the server, on the UI thread.

    ``record.saved_by`` is the user id of whoever saved it. Return at once."""


@hookspec
def on_timer(session: Session, now: float) -> None:
    """The host's periodic tick while logged in (every 60 s by default), on the timer thread.

    ``now`` is the host's current UNIX time; use it, not the system clock, to decide what is
    due, so that a host can drive time in tests. Must cost next to nothing when nothing is due."""


@hookspec(firstresult=True)
def offline_login(credentials: OfflineCredentials) -> OfflineLoginResult | None:
    """The host cannot reach the server and asks whether an add-on can open an offline session.

    Return ``None`` when this add-on holds no copy for these credentials (another add-on may
    answer), otherwise an :class:`OfflineLoginResult`: a session, or no session and a message
    that tells the user why and what to do. The first non-``None`` answer wins. May block for
    the time it takes to open a copy (a key derivation).

    Contract 1.2: the session may be a :class:`~hookspecs.types.WritableOfflineSession`
    (edit, create, delete in the copy, sent to the server by the add-on at its next online
    sync), and the result counts the changes waiting to be sent and the conflicts waiting
    for the user. What a sync sent and which conflicts it met, the add-on tells through
    ``HostServices.notify`` after the online login's sync (a ``warning`` when there are
    conflicts to resolve)."""


@hookspec
def on_password_changed(session: Session, old_password: str) -> None:
    """Called after the user changed the password on the server. ``session.password`` is the
    new one. Re-key local data that was keyed with ``old_password``."""


@hookspec
def register_commands() -> list[HostCommand]:
    """Return the commands this add-on contributes (the host's Account menu; ``psr-client
    GROUP NAME`` in the reference host). Called when the host loads the add-on, before
    ``on_addon_enabled`` and possibly without it (a short command-line run builds its command
    line from it), so it must not need the host services.

    A handler receives a :class:`~hookspecs.types.CommandInvocation`: the online ``session``
    when there is one, and (contract 1.1) the ``account`` the host is set up for even without
    a login, so that a command like "delete my offline copy" works with no server. A handler
    may be interrupted by the user (``KeyboardInterrupt`` on the host's thread): stop the work
    it waits for and return (the reference host's shell then goes on)."""
    return []

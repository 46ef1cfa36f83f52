"""What the worker keeps open while a user is logged in: the copy and the HTTP client.

Opening a copy runs SQLCipher's key derivation (about 0.1 s by design). Paying it once per
login instead of once per sync is what lets a sync with nothing new cost one small round trip.
The key stays in memory only as long as the session's password does (until logout), and the
copy is closed before anything else touches its file (re-key, delete, move, shutdown).
Used only on the worker thread.
"""

from __future__ import annotations

import logging

from hookspecs import Session
from offline_addon.errors import OfflineAddonError
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.transport import SyncClient

_log = logging.getLogger(__name__)


class HeldCopy:
    """At most one open :class:`OfflineCopy`, for the copy being synchronised."""

    def __init__(self) -> None:
        self._copy_id: str | None = None
        self._copy: OfflineCopy | None = None

    def get(self, target: CopyPaths, password: str) -> OfflineCopy | None:
        """The open copy at ``target``, opened now if needed; ``None`` when there is no file
        or it does not open with ``password`` (the sync then deals with it: it rebuilds a copy
        locked with an older password and reports a damaged one)."""
        if self._copy is not None and self._copy_id == target.copy_id:
            return self._copy
        self.close()
        if not target.db.is_file():
            return None
        try:
            self._copy = OfflineCopy.open(target, password)
        except OfflineAddonError:
            return None
        self._copy_id = target.copy_id
        return self._copy

    def forget(self) -> None:
        """The sync closed or replaced the copy itself (after a wipe): drop it unclosed."""
        self._copy_id, self._copy = None, None

    def close(self) -> None:
        """Close the open copy, if any."""
        copy, self._copy_id, self._copy = self._copy, None, None
        if copy is None:
            return
        try:
            copy.close()
        except Exception:  # closing must never stop a logout or a shutdown
            _log.exception("offline add-on: closing the offline copy failed")


class HeldClient:
    """One keep-alive HTTP client per login, reused by every sync of that login (no new
    connection, no new TLS handshake per sync). Closed at logout and shutdown."""

    def __init__(self) -> None:
        self._key: tuple[str, str, str] | None = None
        self._client: SyncClient | None = None

    def get(self, session: Session) -> SyncClient:
        """The client for ``session`` (a new one when the server, token or client changed)."""
        key = (session.server_url, session.token, session.client_id)
        if self._client is None or self._key != key:
            self.close()
            self._client = SyncClient(*key)
            self._key = key
        return self._client

    def close(self) -> None:
        """Close the client, if any."""
        client, self._key, self._client = self._client, None, None
        if client is not None:
            client.close()

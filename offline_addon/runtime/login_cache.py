"""What the worker keeps open while a user is logged in: the copy and the HTTP client.

Opening a copy runs SQLCipher's key derivation (about 0.1 s by design). Paying it once per
login instead of once per sync is what lets a sync with nothing new cost one small round trip.
The key stays in memory only as long as the session's password does (until logout), and the
copy is closed before anything else touches its file (re-key, delete, move, shutdown). Keeping
it open is reading, not writing: every sync takes the copy's writer lock and checks under it
that this connection still reads the file the copy's name leads to (another program may have
rebuilt, re-keyed or moved it meanwhile).
Used only on the worker thread.
"""

from __future__ import annotations

import logging

from hookspecs import Session
from offline_addon.storage.offline_copy import OfflineCopy, Opening, open_for_sync
from offline_addon.storage.paths import CopyPaths
from offline_addon.sync.transport import SyncClient

_log = logging.getLogger(__name__)


class LoginCache:
    """At most one open copy (the one being synchronised) and one keep-alive HTTP client per
    login (no new connection, no new TLS handshake per sync)."""

    def __init__(self) -> None:
        self._copy_id: str | None = None
        self._opening: Opening | None = None
        self._client_key: tuple[str, str, str] | None = None
        self._client: SyncClient | None = None

    def open(self, target: CopyPaths, password: str, now: float | None = None) -> Opening:
        """The copy at ``target``, opened (and fully checked, at local time ``now``) if it is
        not open yet. A copy that does not open is not kept: the sync deals with it (and the
        next sync opens afresh)."""
        cached = self._opening
        if (
            cached is not None
            and self._copy_id == target.copy_id
            and cached.copy is not None
            and cached.copy.is_open
            and cached.copy.db_path == target.db
        ):
            return cached
        self.close_copy()
        opening = open_for_sync(target, password, now)
        if opening.copy is not None:
            self._copy_id, self._opening = target.copy_id, opening
        return opening

    def open_copy(self, copy_id: str) -> OfflineCopy | None:
        """The copy ``copy_id`` if it is the one kept open, else ``None`` (opens nothing)."""
        opening = self._opening
        if self._copy_id != copy_id or opening is None or opening.copy is None:
            return None
        return opening.copy if opening.copy.is_open else None

    def forget_copy(self) -> None:
        """The sync closed the copy itself (after a wipe): drop it unclosed."""
        self._copy_id, self._opening = None, None

    def close_copy(self) -> None:
        """Close the open copy, if any."""
        opening, self._copy_id, self._opening = self._opening, None, None
        if opening is None or opening.copy is None:
            return
        try:
            opening.copy.close()
        except Exception:  # closing must never stop a logout or a shutdown
            _log.exception("offline add-on: closing the offline copy failed")

    def client(self, session: Session) -> SyncClient:
        """The client for ``session`` (a new one when the server, token or client changed)."""
        key = (session.server_url, session.token, session.client_id)
        if self._client is None or self._client_key != key:
            self.close_client()
            self._client = SyncClient(*key)
            self._client_key = key
        return self._client

    def close_client(self) -> None:
        """Close the client, if any."""
        client, self._client_key, self._client = self._client, None, None
        if client is not None:
            client.close()

    def close(self) -> None:
        """Close everything (logout, shutdown)."""
        self.close_copy()
        self.close_client()

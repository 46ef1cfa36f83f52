"""The Offline Add-on: an encrypted, self-syncing local copy of server databases.

The public Python API is the names in ``__all__``; start with :class:`OfflineCopies` (or
``offline_addon.plugin.addon.copies`` inside a host). Everything else is private.

Module map. Each folder is a layer with a one-line rule; imports run only downwards (checked in
CI by import-linter, see ``pyproject.toml``)::

    plugin, commands, api   the faces: hooks, the host's ``offline`` commands, the Python API
    runtime/                when and on which thread: the dispatcher and its worker thread,
                            the schedule, events, the per-login cache, live status
    sync/                   one run against a server: the engine, the HTTP transport,
                            page prefetching, the result and its words
    storage/                the encrypted file and every file operation: the copy, keying,
                            migrations, search, the sidecar, paths, moves, deletes, the
                            offline edits (pending changes, conflicts), the writer lock
                            (copy_lock) and what differs by OS (system)
    protocol/               pure: what the server says (answers) and what it means (page plan,
                            digest, validity, the merge of an offline change); no I/O, no clock
    settings, errors        values every layer may use: the four settings, the exception tree

Where a change belongs: retries and timeouts ``sync/transport.py``; the file format
``storage/migrations.py``; what is due when ``runtime/schedule.py``; what a page does
``protocol/page_plan.py``; the words of a sync's outcome ``sync/result.py``; how an offline
change meets the server's record ``protocol/merge.py``; the queue of offline changes
``storage/local_changes.py``; what the server learns of the copy's offline use (the access
log and the copy report) ``sync/accountability.py``, kept in the copy by
``storage/access_log.py``.

Glossary of the records that describe one copy, by where they live:

- ``CopyPaths`` (storage/paths): the copy's file names on disk, derived from its id.
- ``CopyIdentity`` (storage/offline_copy): whose copy it is; inside the encrypted file.
- ``CopyMeta`` (storage/offline_copy): the copy's bookkeeping (cursor, last contact,
  validity); inside the encrypted file, read with the password.
- ``CopyInfo`` (storage/sidecar): what the non-secret sidecar beside the file says; read
  without a password.
- ``CopyLock`` (storage/copy_lock): who may write the copy's files now; an OS lock on
  ``<id>.lock`` beside it, held for one writing operation.
- ``CopyStatus`` (runtime/status): what this process is doing with the copy now; in memory.
- ``CopyOverview`` (api): ``CopyInfo`` plus ``CopyStatus`` plus time left, for ``status()``.

Offline edits: ``PendingChange`` (protocol/merge) is one change made offline and not yet on
the server, in the copy's ``pending_changes`` table; ``ConflictEntry`` (storage/local_changes)
is one value of the user's that the server did not take, in the copy's ``conflicts`` table.
"""

from __future__ import annotations

from offline_addon.api import CopyOverview, OfflineCopies, OfflineCopySession, OfflineReader
from offline_addon.errors import (
    AuthenticationRequired,
    ClockWentBack,
    ConfigurationError,
    CopyBusy,
    CopyDamaged,
    CopyExpired,
    CopyNotFound,
    CursorExpired,
    InvalidArgument,
    OfflineAddonError,
    OfflineEditError,
    OfflineEditingNotAllowed,
    OfflineNotAllowed,
    ProtocolError,
    ServerBusy,
    ServerError,
    ServerUnreachable,
    SettingsError,
    ShuttingDown,
    StorageError,
    SyncCancelled,
    WrongPassword,
)
from offline_addon.runtime.status import CopyStatus, Feedback
from offline_addon.settings import AddonSettings, parse_settings
from offline_addon.storage.sidecar import CopyInfo
from offline_addon.sync.result import SyncResult

__all__ = [
    "AddonSettings",
    "AuthenticationRequired",
    "ClockWentBack",
    "ConfigurationError",
    "CopyBusy",
    "CopyDamaged",
    "CopyExpired",
    "CopyInfo",
    "CopyNotFound",
    "CopyOverview",
    "CopyStatus",
    "CursorExpired",
    "Feedback",
    "InvalidArgument",
    "OfflineAddonError",
    "OfflineCopies",
    "OfflineCopySession",
    "OfflineEditError",
    "OfflineEditingNotAllowed",
    "OfflineNotAllowed",
    "OfflineReader",
    "ProtocolError",
    "ServerBusy",
    "ServerError",
    "ServerUnreachable",
    "SettingsError",
    "ShuttingDown",
    "StorageError",
    "SyncCancelled",
    "SyncResult",
    "WrongPassword",
    "parse_settings",
]

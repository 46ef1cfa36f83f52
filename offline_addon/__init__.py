"""The Offline Add-on: an encrypted, self-syncing local copy of server databases.

The public Python API is the names in ``__all__``; start with :class:`OfflineCopies`
(or ``offline_addon.plugin.addon.copies`` inside a host). Everything else is private.
Names load on first use, so that importing a submodule stays cheap and does no I/O.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from offline_addon.api import CopyOverview, OfflineCopies, OfflineReader
    from offline_addon.errors import (
        AuthenticationRequired,
        ClockWentBack,
        ConfigurationError,
        CopyExpired,
        CopyNotFound,
        CursorExpired,
        OfflineAddonError,
        OfflineNotAllowed,
        ProtocolError,
        ServerBusy,
        ServerError,
        ServerUnreachable,
        StorageError,
        WrongPassword,
    )
    from offline_addon.runtime.status import CopyStatus, Feedback, ShuttingDown
    from offline_addon.settings import AddonSettings, SettingsError, parse_settings
    from offline_addon.storage.sidecar import CopyInfo
    from offline_addon.sync.engine import SyncResult

_WHERE = {
    "OfflineCopies": "api",
    "OfflineReader": "api",
    "CopyOverview": "api",
    "CopyStatus": "status",
    "Feedback": "status",
    "ShuttingDown": "status",
    "AddonSettings": "settings",
    "SettingsError": "settings",
    "parse_settings": "settings",
    "CopyInfo": "sidecar",
    "SyncResult": "sync",
    "OfflineAddonError": "errors",
    "ConfigurationError": "errors",
    "ServerUnreachable": "errors",
    "AuthenticationRequired": "errors",
    "OfflineNotAllowed": "errors",
    "ServerBusy": "errors",
    "ServerError": "errors",
    "ProtocolError": "errors",
    "CursorExpired": "errors",
    "WrongPassword": "errors",
    "CopyExpired": "errors",
    "ClockWentBack": "errors",
    "CopyNotFound": "errors",
    "StorageError": "errors",
}

__all__ = [
    "AddonSettings",
    "AuthenticationRequired",
    "ClockWentBack",
    "ConfigurationError",
    "CopyExpired",
    "CopyInfo",
    "CopyNotFound",
    "CopyOverview",
    "CopyStatus",
    "CursorExpired",
    "Feedback",
    "OfflineAddonError",
    "OfflineCopies",
    "OfflineNotAllowed",
    "OfflineReader",
    "ProtocolError",
    "ServerBusy",
    "ServerError",
    "ServerUnreachable",
    "SettingsError",
    "ShuttingDown",
    "StorageError",
    "SyncResult",
    "WrongPassword",
    "parse_settings",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'offline_addon' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"offline_addon.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

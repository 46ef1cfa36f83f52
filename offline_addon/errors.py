"""The add-on's one exception tree.

Every message is written for the user: it says what is wrong and what to do, and never holds a
password, a token or record content::

    OfflineAddonError
    ├── ConfigurationError      the configured folder is unusable
    ├── ServerUnreachable       connection refused, DNS, timeout
    ├── AuthenticationRequired  401: the server wants a new login
    ├── OfflineNotAllowed       403: database switch or user right is off (``reason``)
    ├── ServerBusy              429/503 (``retry_after`` seconds or None)
    ├── ServerError             other 5xx
    ├── ProtocolError           malformed or schema-violating answer, oversized body
    ├── CursorExpired           410: the server no longer knows our position
    ├── WrongPassword           the copy does not open with this password
    ├── CopyExpired             offline validity since the last server contact has passed
    ├── ClockWentBack           the computer's clock is earlier than the last server contact
    ├── CopyNotFound            there is no offline copy (yet)
    └── StorageError            disk full, permissions, corrupt file
"""

from __future__ import annotations

from typing import Literal

OfflineReason = Literal["offline_disabled", "offline_right_missing"]


class OfflineAddonError(Exception):
    """Base of all add-on errors; ``str(error)`` is a user-facing sentence."""


class ConfigurationError(OfflineAddonError):
    """A setting (for example the database folder) cannot be used."""


class ServerUnreachable(OfflineAddonError):
    """The server could not be reached (connection refused, DNS failure, timeout)."""


class AuthenticationRequired(OfflineAddonError):
    """The server rejected the session token (401); the host must log in again."""


class OfflineNotAllowed(OfflineAddonError):
    """The server does not allow an offline copy (database switch or user right off)."""

    def __init__(self, reason: OfflineReason, message: str | None = None) -> None:
        self.reason: OfflineReason = reason
        super().__init__(message or offline_not_allowed_message(reason))


class ServerBusy(OfflineAddonError):
    """The server asked us to come back later (429/503)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class ServerError(OfflineAddonError):
    """The server failed with a 5xx other than 503."""


class ProtocolError(OfflineAddonError):
    """The server's answer does not follow the sync protocol; nothing was applied."""


class CursorExpired(OfflineAddonError):
    """The server no longer knows the stored sync position (410); a full sync is needed."""


class WrongPassword(OfflineAddonError):
    """The offline copy does not open with the given password."""


class CopyExpired(OfflineAddonError):
    """The offline validity since the last contact with the server has passed."""


class ClockWentBack(OfflineAddonError):
    """The computer's clock is earlier than the last contact with the server."""


class CopyNotFound(OfflineAddonError):
    """There is no offline copy for this server, database, user and computer."""


class StorageError(OfflineAddonError):
    """The copy's file cannot be read or written (disk full, permissions, damaged file)."""


def offline_not_allowed_message(reason: OfflineReason) -> str:
    """The user-facing sentence for a refused offline copy."""
    if reason == "offline_disabled":
        return (
            "Offline use is switched off for this database on the server; "
            "ask your administrator to allow it."
        )
    return "You do not have the offline right for this database; ask your administrator for it."

"""The add-on's one exception tree.

Every message is written for the user: it says what is wrong and what to do, and never holds a
password, a token or record content::

    OfflineAddonError
    ├── ConfigurationError      the configured folder or the server address is unusable
    │   └── SettingsError       a setting has a value the add-on cannot use (``field``)
    ├── InvalidArgument         a value handed to the add-on cannot be used (a time, a query)
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
    ├── StorageError            disk full, permissions, corrupt file
    │   └── CopyDamaged         the copy's file is damaged; the next online sync rebuilds it
    ├── OfflineEditError        an offline edit that cannot be made as asked
    │   └── OfflineEditingNotAllowed  the copy may not be written (policy off, incomplete copy)
    ├── CopyBusy                another program on this computer is writing the copy now
    ├── SyncCancelled           a sync was stopped on request between two pages
    └── ShuttingDown            the add-on was switched off before the work could run
"""

from __future__ import annotations

from typing import Literal

OfflineReason = Literal["offline_disabled", "offline_right_missing"]


class OfflineAddonError(Exception):
    """Base of all add-on errors; ``str(error)`` is a user-facing sentence."""


class ConfigurationError(OfflineAddonError):
    """A setting (for example the database folder) cannot be used."""


class SettingsError(ConfigurationError):
    """A setting has a value the add-on cannot use. ``field`` names the setting."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"Offline Add-on setting '{field}': {problem} The old value stays.")


class InvalidArgument(OfflineAddonError):
    """A value handed to the add-on (by a host, a hook or a script) cannot be used: a time that
    is not a finite number, a search with control characters or too many words, a wrong type."""


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


class StorageError(OfflineAddonError):
    """The copy's file cannot be read or written (disk full, permissions, damaged file)."""


class CopyDamaged(StorageError):
    """The copy's file is damaged (a failed page check, a truncated file). The next online
    sync rebuilds it from the server; offline it cannot be used until then."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or COPY_DAMAGED)


COPY_DAMAGED = "The offline copy is damaged; it will be rebuilt at the next online login."


class OfflineEditError(OfflineAddonError):
    """An offline edit cannot be made as asked (no such record in the copy, a value the server
    would refuse); nothing was changed."""


class OfflineEditingNotAllowed(OfflineEditError):
    """The offline copy may not be written now: the server's last policy does not allow
    editing offline, or the copy is incomplete. Nothing was changed; the copy stays readable."""


EDITING_SWITCHED_OFF = (
    "Editing offline is not allowed for this database (the offline copy is read-only); "
    "nothing was changed. Make the change when you are online again, or ask your "
    "administrator to allow offline editing."
)
EDITING_NEEDS_COMPLETE_COPY = (
    "The offline copy is incomplete (its first synchronisation did not finish), so it is "
    "read-only; nothing was changed. Log in online once to complete it."
)


class CopyBusy(OfflineAddonError):
    """Another program (or window) on this computer holds the copy's writer lock; the work
    is retried later by itself."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or COPY_BUSY_MESSAGE)


COPY_BUSY_MESSAGE = (
    "Another program on this computer is updating this offline copy; it will sync again later."
)


class SyncCancelled(OfflineAddonError):
    """A sync was stopped on request; every page applied before stays, and the next sync
    continues from there."""

    def __init__(self) -> None:
        super().__init__(
            "The offline synchronisation was stopped; what it had received is kept and the "
            "next synchronisation continues from there."
        )


class CopyNotFound(OfflineAddonError):
    """There is no offline copy for this server, database, user and computer."""

    @classmethod
    def of(cls, database: str | None = None) -> CopyNotFound:
        """The one sentence for a missing copy (of ``database``, when known)."""
        what = "this database" if database is None else f"'{database}'"
        return cls(
            f"There is no offline copy of {what} on this computer yet; log in online and "
            "create one with 'offline create'."
        )


class ShuttingDown(OfflineAddonError):
    """The add-on was switched off before the requested work could run."""

    def __init__(self) -> None:
        super().__init__("The Offline Add-on is shutting down; run the command again later.")


def offline_not_allowed_message(reason: OfflineReason) -> str:
    """The user-facing sentence for a refused offline copy."""
    if reason == "offline_disabled":
        return (
            "Offline use is switched off for this database on the server; "
            "ask your administrator to allow it."
        )
    return "You do not have the offline right for this database; ask your administrator for it."


def unexpected(exc: BaseException) -> OfflineAddonError:
    """The add-on error that stands for ``exc`` (one that is not the add-on's own), so that
    only this tree crosses the API and the hooks; the caller logs ``exc`` itself."""
    if isinstance(exc, OfflineAddonError):
        return exc
    return OfflineAddonError(
        f"The Offline Add-on met an unexpected problem ({type(exc).__name__}) and did not "
        "finish it. If it repeats, look at the host's log."
    )

"""Frozen values that cross the host/add-on boundary.

Secrets (password, token) and record contents are excluded from ``repr`` so that they cannot
leak into logs or tracebacks by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hookspecs.services import HostServices


@dataclass(frozen=True)
class Session:
    """An online session of the host: who is logged in where.

    ``token`` is the server's bearer token, ``password`` the user's password (the add-on needs
    it as the key of its encrypted copy). Both are hidden from ``repr``.
    """

    server_url: str
    database: str
    user_id: str
    username: str
    client_id: str
    token: str = field(repr=False)
    password: str = field(repr=False)


@dataclass(frozen=True)
class Account:
    """The account the host is set up for: where and as whom the user logs in (contract 1.1).

    Known without a login and while offline, so that a command can act on what belongs to the
    account (the Offline Add-on deletes a copy with it) without a server. It carries no secret:
    a command that needs the password or a token needs a :class:`Session`. ``server_url`` has
    no trailing slash, as in :class:`Session` and :class:`OfflineCredentials`.
    """

    server_url: str
    database: str
    username: str
    client_id: str


@dataclass(frozen=True)
class SavedRecord:
    """A record the host has just saved on the server."""

    record_id: str
    database: str
    saved_by: str
    """The user id of whoever saved it (not necessarily the logged-in user)."""


@dataclass(frozen=True)
class OfflineCredentials:
    """What the user typed on the login screen when the server cannot be reached."""

    server_url: str
    database: str
    username: str
    client_id: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class RecordView:
    """One record as shown to the user. ``fields`` (name -> value) is hidden from ``repr``."""

    record_id: str
    rev: int
    name: str
    fields: Mapping[str, str] = field(repr=False)


@runtime_checkable
class OfflineSession(Protocol):
    """A session over an add-on's local copy, returned by ``offline_login``: it reads (one
    that can also write is a :class:`WritableOfflineSession`, contract 1.2).

    An implementation may also offer ``count_matches(query: str) -> int`` (contract 1.1,
    optional, so not a member of this protocol: sessions of 1.0 add-ons still satisfy it): the
    number of records that match ``query`` as :meth:`search` matches them, before any cap. A
    host that finds it (``getattr``) says "first 500 of 7,550" instead of showing a cut list as
    if it were complete.

    It may also offer ``search_ready() -> bool`` (optional, found with ``getattr``; a session
    without it is always ready): ``False`` for the few seconds after a first sync while the
    copy's search index is being built, when :meth:`search` works but matches words more
    widely; a host says so under the results.
    """

    @property
    def database(self) -> str: ...

    @property
    def username(self) -> str: ...

    @property
    def valid_until(self) -> float:
        """UNIX time after which the copy refuses to open."""
        ...

    def list_records(self) -> list[RecordView]: ...

    def search(self, query: str) -> list[RecordView]:
        """Records matching ``query`` as the online search would match them; an
        implementation may cap the list (the Offline Add-on returns the first 500 by name)."""
        ...

    def get_record(self, record_id: str) -> RecordView | None: ...

    def close(self) -> None: ...


@runtime_checkable
class WritableOfflineSession(OfflineSession, Protocol):
    """An offline session that can also change the local copy (contract 1.2).

    A host finds it with ``isinstance(session, WritableOfflineSession)`` (on a 1.1 host,
    ``getattr``). Changes are kept in the add-on's copy and sent to the server by the add-on
    at its next online synchronisation; the host does not send them. Every write may be
    refused: it then raises the add-on's own error, whose ``str`` is a sentence for the user
    (what is wrong, what to do), and nothing was changed. ``read_only_reason`` says in
    advance whether writes will be refused, so that a host can say so before it prompts.
    """

    @property
    def read_only_reason(self) -> str | None:
        """``None`` when the session may write now; otherwise the sentence why not (for
        example: the server does not allow offline editing of this database)."""
        ...

    def edit(
        self,
        record_id: str,
        *,
        name: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> RecordView:
        """Change a record: a new ``name`` and/or its whole new set of ``fields`` (``None``
        keeps either). Returns the record as it is now shown."""
        ...

    def edit_fields(
        self,
        record_id: str,
        changes: Mapping[str, str | None],
        *,
        name: str | None = None,
    ) -> RecordView:
        """Change some fields (``None`` removes one) and optionally the ``name``; the other
        fields stay as the copy holds them when the change is written. Prefer it to
        :meth:`edit` for a user's ``key=value`` edit: it never writes back a field that
        changed since the host read the record."""
        ...

    def create(self, name: str, fields: Mapping[str, str]) -> str:
        """Create a record; returns its id (the record keeps it on the server)."""
        ...

    def delete(self, record_id: str) -> None:
        """Delete a record."""
        ...


@dataclass(frozen=True)
class OfflineLoginResult:
    """An add-on's answer to ``offline_login`` for a copy it holds.

    Either ``session`` is set, or it is ``None`` and ``message`` says to the user why the copy
    cannot be opened (wrong password, validity passed, clock set back) and what to do.

    ``pending_changes`` and ``conflicts`` (contract 1.2; 0 from older add-ons) count the
    changes made offline that wait to be sent to the server, and the conflicts that wait for
    the user (values of the user's the server did not take), so that a host can show them
    beside the session (the ``message`` says them in words already). An add-on that may run
    on a 1.1 host constructs the result without them there.
    """

    session: OfflineSession | None
    message: str
    pending_changes: int = 0
    conflicts: int = 0


@dataclass(frozen=True)
class CommandArgument:
    """One argument of a contributed command.

    ``kind`` is ``"positional"``, ``"option"`` (``--name VALUE``) or ``"flag"`` (``--name``).
    """

    name: str
    help: str
    kind: Literal["positional", "option", "flag"] = "option"
    required: bool = False
    default: str | None = None


@dataclass(frozen=True)
class CommandInvocation:
    """What a command handler receives when the user runs it."""

    args: Mapping[str, str | bool | None]
    session: Session | None
    """The current online session, or ``None`` when not logged in or offline."""
    services: HostServices
    output: Callable[[str], None]
    """Writes one line to the user (the host's console or message area)."""
    account: Account | None = None
    """The account the host is set up for (contract 1.1); known without a login and while
    offline, so that a command can act without a server. ``None`` when the host does not know
    where the user logs in (no server, database or user configured), and always from a 1.0
    host."""


@dataclass(frozen=True)
class HostCommand:
    """A command an add-on contributes: ``psr-client GROUP NAME``; in a GUI host, an entry in
    the Account menu. The handler returns a process exit code (0 for success)."""

    group: str
    name: str
    help: str
    handler: Callable[[CommandInvocation], int]
    arguments: tuple[CommandArgument, ...] = ()
    needs_session: bool = False
    """When true the host logs in (online) before it runs the command."""


@runtime_checkable
class AccessNotingSession(Protocol):
    """The optional members of an offline session whose add-on keeps an offline access log
    (contract 1.2): the server learns at the next online contact which records were shown
    and which fields revealed or copied offline (ids and field names, never values).

    Not members of :class:`OfflineSession`, so sessions of older add-ons still satisfy it; a
    host finds them with ``isinstance(session, AccessNotingSession)`` (or ``getattr``).
    ``get_record`` of such a session counts the record as shown; a host that only looks a
    record up (to find what the user typed) calls :meth:`find_record` instead, and shows a
    hidden value through :meth:`reveal`. Each may raise the add-on's own error (its ``str`` a
    sentence for the user) for a record or field the copy does not hold.
    """

    def find_record(self, record_id: str) -> RecordView | None:
        """The record, or ``None``, without counting it as shown."""
        ...

    def reveal(self, record_id: str, field: str) -> str:
        """The value of the field named ``field``, to show it to the user (noted)."""
        ...

    def note_copied(self, record_id: str, field: str) -> None:
        """The host copied the value of the field named ``field`` (noted)."""
        ...

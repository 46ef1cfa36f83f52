"""Where the shell's records come from: the server (online) or an add-on's copy (offline).

Both sources answer the same questions, so that the shell's commands do not care which one
the user is logged in to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hookspecs import AccessNotingSession, OfflineSession, RecordView
from reference_host.client import HostApiError, OnlineClient, OnlineRecord
from reference_host.records import ShownRecord, looks_like_record_id

log = logging.getLogger("psr.host.sources")

SEARCH_LIMIT = 500
"""The most records a search shows (the server's largest page)."""
OFFLINE_SEARCH_CAP = 500
"""Where the Offline Add-on cuts a search; a 1.0 session that cannot count its matches may
have cut a list this long."""


@dataclass(frozen=True)
class Found:
    """The records a search shows, and what is known about the ones it does not."""

    records: list[ShownRecord]
    total: int | None
    """All matches, when the source can count them."""
    capped: bool = False
    """The source may have cut the list, and cannot say by how much."""
    provisional: bool = False
    """The source's search index is still being built: words were matched more widely."""


class RecordSource(Protocol):
    """The records of the current session."""

    def all(self) -> list[ShownRecord]:
        """Every record the user may read."""
        ...

    def search(self, query: str) -> Found:
        """The records matching ``query`` (at most about :data:`SEARCH_LIMIT`)."""
        ...

    def by_id(self, record_id: str) -> ShownRecord | None:
        """One record by its id, or ``None``."""
        ...

    def named(self, typed: str) -> list[ShownRecord]:
        """Every record whose name contains ``typed`` (case-insensitive), to pick from."""
        ...

    def shown(self, record: ShownRecord) -> ShownRecord | None:
        """``record`` read again to show it to the user (``None``: it is gone)."""
        ...

    def reveal(self, record: ShownRecord, key: str) -> str:
        """The value of the field ``key`` of ``record``, to show it unmasked."""
        ...

    def copied(self, record: ShownRecord, key: str) -> None:
        """The value of the field ``key`` of ``record`` was copied to the clipboard."""
        ...


def _shown(record: OnlineRecord | RecordView) -> ShownRecord:
    return ShownRecord(record.record_id, record.rev, record.name, dict(record.fields))


class OnlineRecords:
    """The records on the server."""

    def __init__(self, client: OnlineClient, database: str) -> None:
        self._client = client
        self._database = database

    def all(self) -> list[ShownRecord]:
        return [_shown(r) for r in self._client.list_records(self._database)]

    def search(self, query: str) -> Found:
        page = self._client.list_page(self._database, query, limit=SEARCH_LIMIT)
        return Found([_shown(r) for r in page.records], page.total)

    def by_id(self, record_id: str) -> ShownRecord | None:
        if not looks_like_record_id(record_id):
            return None  # the server's ids are UUIDs: no round trip for a name
        try:
            return _shown(self._client.get_record(self._database, record_id))
        except HostApiError as exc:
            if exc.code != "unknown_record":
                raise
            return None

    def named(self, typed: str) -> list[ShownRecord]:
        # The server's q is exactly "name contains, ignoring case".
        return [_shown(r) for r in self._client.list_records(self._database, typed)]

    # Online, the server sees every read itself: nothing to note.
    def shown(self, record: ShownRecord) -> ShownRecord | None:
        return record

    def reveal(self, record: ShownRecord, key: str) -> str:
        return record.fields[key]

    def copied(self, record: ShownRecord, key: str) -> None:
        return None


class OfflineRecords:
    """The records in an add-on's offline copy (read-only)."""

    def __init__(self, session: OfflineSession) -> None:
        self._session = session

    def all(self) -> list[ShownRecord]:
        return [_shown(v) for v in self._session.list_records()]

    def search(self, query: str) -> Found:
        records = [_shown(v) for v in self._session.search(query)]
        total = self._count(query)
        return Found(
            records,
            total,
            capped=total is None and len(records) >= OFFLINE_SEARCH_CAP,
            provisional=not self._search_ready(),
        )

    def _search_ready(self) -> bool:
        ready: Callable[[], bool] | None = getattr(self._session, "search_ready", None)
        if ready is None:
            return True  # optional (hookspecs.types.OfflineSession): without it, always ready
        try:
            return bool(ready())
        except Exception as exc:  # an add-on's failure must not cost the user the results
            log.error("search_ready of the offline session failed: %s", type(exc).__name__)
            return True

    def _count(self, query: str) -> int | None:
        count: Callable[[str], int] | None = getattr(self._session, "count_matches", None)
        if count is None:
            return None  # a contract 1.0 session
        try:
            return int(count(query))
        except Exception as exc:  # an add-on's failure must not cost the user the results
            log.error("count_matches of the offline session failed: %s", type(exc).__name__)
            return None

    def by_id(self, record_id: str) -> ShownRecord | None:
        # Finding what the user typed is no showing: a session that notes what is shown
        # (contract 1.2) is asked without noting.
        session = self._session
        finder = session if isinstance(session, AccessNotingSession) else None
        view = finder.find_record(record_id) if finder else session.get_record(record_id)
        return None if view is None else _shown(view)

    # The add-on's offline access log notes what is shown, revealed and copied (1.2).
    def shown(self, record: ShownRecord) -> ShownRecord | None:
        view = self._session.get_record(record.record_id)
        return None if view is None else _shown(view)

    def reveal(self, record: ShownRecord, key: str) -> str:
        if isinstance(self._session, AccessNotingSession):
            return self._session.reveal(record.record_id, key)
        return record.fields[key]

    def copied(self, record: ShownRecord, key: str) -> None:
        if not isinstance(self._session, AccessNotingSession):
            return
        try:
            self._session.note_copied(record.record_id, key)
        except Exception as exc:  # the copy is made: the add-on's failure must not undo it
            log.error("note_copied of the offline session failed: %s", type(exc).__name__)

    def named(self, typed: str) -> list[ShownRecord]:
        found = self._session.search(typed)
        if len(found) >= OFFLINE_SEARCH_CAP:
            found = self._session.list_records()  # the capped search may miss the one meant
        folded = typed.strip().casefold()
        return [_shown(v) for v in found if folded in v.name.casefold()]

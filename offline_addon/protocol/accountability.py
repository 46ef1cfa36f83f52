"""What the server is told about a copy's use offline: access events and the copy report.

Pure: the shape of an offline access event and the rules a server holds it to (the same as
``docs/sync-api.yaml``'s ``AccessEvent``, checked here before an event is sent, so that one odd
entry cannot make the server refuse every batch it is in), the receipt of a batch, and the
copy report. No I/O, no clock.

An event never carries a value or a search term: it has no place for one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from offline_addon.errors import ProtocolError

AccessKind = Literal["offline_login", "record_shown", "field_revealed", "field_copied"]
ACCESS_KINDS: tuple[AccessKind, ...] = (
    "offline_login",
    "record_shown",
    "field_revealed",
    "field_copied",
)
ON_RECORD = frozenset({"record_shown", "field_revealed", "field_copied"})
"""The kinds that name a record."""
ON_FIELD = frozenset({"field_revealed", "field_copied"})
"""The kinds that name a field (by its name)."""

MAX_BATCH_EVENTS = 500
"""The most events one ``POST .../offline/audit`` may carry."""
MAX_BATCH_BYTES = 512 * 1024
"""The largest body of one batch (before compression)."""
MAX_RECORD_ID_LEN = 256
MAX_FIELD_NAME_LEN = 200
MAX_LOCAL_TIME = 10**11
_EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True)
class AccessEvent:
    """One thing the user did with the copy offline: ``event_id`` is made by the client (a
    UUID; the server records each id once), ``record_id`` is None for an ``offline_login``,
    ``field`` is a field's *name* (never its value), for ``field_revealed`` and
    ``field_copied`` only; ``local_time`` is the client's clock then (UNIX seconds)."""

    event_id: str
    kind: str
    record_id: str | None
    field: str | None
    local_time: float


def event_problem(event: AccessEvent) -> str | None:
    """Why a server would refuse ``event`` (a few words, naming no content), or None."""
    if not isinstance(event.event_id, str) or not _EVENT_ID.fullmatch(event.event_id):
        return "a malformed event id"
    if event.kind not in ACCESS_KINDS:
        return "an unknown kind"
    if not _fits(event.record_id, MAX_RECORD_ID_LEN, event.kind in ON_RECORD):
        return "a record id that does not fit its kind"
    if not _fits(event.field, MAX_FIELD_NAME_LEN, event.kind in ON_FIELD):
        return "a field name that does not fit its kind"
    moment = event.local_time
    if (
        isinstance(moment, bool)
        or not isinstance(moment, int | float)
        or not math.isfinite(moment)
        or not 0 <= moment <= MAX_LOCAL_TIME
    ):
        return "a time that is not a clock reading"
    return None


def _fits(text: object, longest: int, wanted: bool) -> bool:
    if not wanted:
        return text is None
    if not isinstance(text, str) or not 1 <= len(text) <= longest:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def event_json(event: AccessEvent, client_id: str) -> dict[str, Any]:
    """``event`` as the body of a batch holds it (made on ``client_id``)."""
    body: dict[str, Any] = {
        "id": event.event_id,
        "kind": event.kind,
        "local_time": float(event.local_time),
        "client_id": client_id,
    }
    if event.record_id is not None:
        body["record_id"] = event.record_id
    if event.field is not None:
        body["field"] = event.field
    return body


@dataclass(frozen=True)
class AccessReceipt:
    """The server's answer to a batch: how many it received, recorded anew and knew."""

    received: int
    recorded: int
    known: int


def load_access_receipt(obj: object, sent: int) -> AccessReceipt:
    """The receipt of a batch of ``sent`` events; ProtocolError when it is not one (the
    events are then kept and sent again)."""
    counts = [obj.get(key) if isinstance(obj, dict) else None for key in _RECEIPT_KEYS]
    if not all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_BATCH_EVENTS
        for n in counts
    ):
        raise ProtocolError(
            "The server's receipt of the offline access log is not one; the entries are kept "
            "and sent again at the next sync. Tell your administrator."
        )
    received, recorded, known = (int(n) for n in counts)  # type: ignore[arg-type]
    if received != sent or recorded + known != received:
        raise ProtocolError(
            "The server's receipt of the offline access log does not match what was sent; "
            "the entries are kept and sent again at the next sync. Tell your administrator."
        )
    return AccessReceipt(received, recorded, known)


_RECEIPT_KEYS = ("received", "recorded", "known")


@dataclass(frozen=True)
class CopyReport:
    """What a client tells the server's registry about its copy after a sync (no time: the
    server takes the time of receipt as the copy's last sync)."""

    record_count: int
    pending_changes: int
    unpushed_log_entries: int
    complete: bool

    def as_json(self) -> dict[str, Any]:
        """The body of ``PUT .../offline/copies/{client_id}``."""
        return {
            "record_count": self.record_count,
            "pending_changes": self.pending_changes,
            "unpushed_log_entries": self.unpushed_log_entries,
            "complete": self.complete,
        }

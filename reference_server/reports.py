"""What clients report about their offline copies, checked strictly before anything is stored.

Two reports (see ``docs/sync-api.yaml``): a batch of offline access events for the audit trail
(``POST .../offline/audit``) and the state of a copy (``PUT .../offline/copies/{client_id}``).
Both are closed objects: an unknown key is refused, so that no field value or search term
can ride along by mistake. Refusals name the event and the allowed keys, never what was sent
(it may be a secret typed into the wrong place).
"""

from __future__ import annotations

import math
import re
from typing import Any

from reference_server.audit import ACCESS_KINDS, AccessEvent
from reference_server.copies import MAX_COUNT, CopyReport
from reference_server.errors import bad_request, client_mismatch
from reference_server.records import MAX_FIELD_NAME_LEN

MAX_EVENTS = 500
MAX_AUDIT_BODY_BYTES = 512 * 1024
MAX_RECORD_ID_LEN = 256
MAX_LOCAL_TIME = 10**11  # about the year 5138: anything later is not a clock reading
EVENT_KEYS = ("id", "kind", "record_id", "field", "local_time", "client_id")
COPY_KEYS = ("record_count", "pending_changes", "unpushed_log_entries", "complete")
_EVENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ON_RECORD = ("record_shown", "field_revealed", "field_copied")
_ON_FIELD = ("field_revealed", "field_copied")
_ABSENT = object()


def check_event_batch(body: dict[str, Any], client_id: str) -> list[AccessEvent]:
    """The events of an audit batch ``{"events": [...]}`` made on ``client_id`` (the token's
    client installation); 400 with the reason, or 403 ``client_mismatch``, otherwise."""
    if set(body) != {"events"}:
        raise bad_request("The body must be an object with one key, 'events' (a list).")
    events = body["events"]
    if not isinstance(events, list):
        raise bad_request("'events' must be a list of event objects.")
    if len(events) > MAX_EVENTS:
        raise bad_request(
            f"A batch holds at most {MAX_EVENTS} events, not {len(events)}; send the rest in "
            "further batches."
        )
    return [_check_event(number, event, client_id) for number, event in enumerate(events, 1)]


def _check_event(number: int, event: object, client_id: str) -> AccessEvent:
    where = f"Event {number}"
    if not isinstance(event, dict):
        raise bad_request(f"{where} must be an object.")
    if not set(event) <= set(EVENT_KEYS):
        raise bad_request(
            f"{where} has a key the server does not take; an event has only "
            f"{', '.join(EVENT_KEYS)} (never a value or a search term)."
        )
    event_id = event.get("id")
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise bad_request(f"{where}: 'id' must be 1-128 letters, digits or '._:-' (a UUID).")
    kind = event.get("kind")
    if kind not in ACCESS_KINDS:
        raise bad_request(f"{where}: 'kind' must be one of {', '.join(ACCESS_KINDS)}.")
    if event.get("client_id") != client_id:
        raise client_mismatch(
            f"{where}: 'client_id' must be the client_id this session logged in with; a "
            "client reports only its own events."
        )
    return AccessEvent(
        event_id,
        kind,
        _record_id(where, kind, event.get("record_id", _ABSENT)),
        _field(where, kind, event.get("field", _ABSENT)),
        _local_time(where, event.get("local_time")),
    )


def _record_id(where: str, kind: str, value: object) -> str | None:
    if kind not in _ON_RECORD:
        if value is not _ABSENT:
            raise bad_request(f"{where}: a '{kind}' event has no 'record_id'.")
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_RECORD_ID_LEN:
        raise bad_request(
            f"{where}: a '{kind}' event needs 'record_id', 1-{MAX_RECORD_ID_LEN} characters."
        )
    _check_encodable(where, value)
    return value


def _field(where: str, kind: str, value: object) -> str | None:
    if kind not in _ON_FIELD:
        if value is not _ABSENT:
            raise bad_request(f"{where}: a '{kind}' event has no 'field'.")
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_FIELD_NAME_LEN:
        raise bad_request(
            f"{where}: a '{kind}' event needs 'field', the field's name (1-{MAX_FIELD_NAME_LEN} "
            "characters), never its value."
        )
    _check_encodable(where, value)
    return value


def _local_time(where: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_LOCAL_TIME
    ):
        raise bad_request(
            f"{where}: 'local_time' must be the client's clock at the access in UNIX seconds "
            f"(a number from 0 to {MAX_LOCAL_TIME})."
        )
    return float(value)


def _check_encodable(where: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"{where}: text must be valid Unicode (no lone surrogates).") from None


def check_copy_report(body: dict[str, Any]) -> CopyReport:
    """A copy report ``{record_count, pending_changes, unpushed_log_entries, complete}``; 400
    with the reason otherwise."""
    if set(body) != set(COPY_KEYS):
        raise bad_request(
            f"A copy report has exactly the keys {', '.join(COPY_KEYS)}; the server sets the "
            "time of the last sync itself."
        )
    counts = [body[key] for key in COPY_KEYS[:3]]
    for key, value in zip(COPY_KEYS, counts, strict=False):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise bad_request(f"'{key}' must be a whole number from 0 to {MAX_COUNT}.")
    if not isinstance(body["complete"], bool):
        raise bad_request("'complete' must be true or false.")
    return CopyReport(counts[0], counts[1], counts[2], body["complete"])

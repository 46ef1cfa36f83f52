"""The sync protocol's answers as marshmallow schemas and the frozen values they load into.

Every answer is validated here *before* anything is applied; a malformed answer raises
:class:`~offline_addon.errors.ProtocolError` and the copy stays as it was.

Before an answer becomes objects, :func:`decode_json` bounds what it can cost: the number of
objects, arrays and values counted on the bytes (a page may not hold more changes than the
client asked for), so a 286 KiB gzip of 64 MiB ``{},`` is refused before it is decoded; nesting
is bounded by the decoder's recursion guard, which is caught. Field sizes, integers (SQLite's
64-bit range) and text (valid UTF-8, no lone surrogates) are checked during validation.

Validation runs once per change of a first sync (100k changes and more), so the list of changes
is checked by one lean custom field (:class:`ChangeListField`) instead of nested schemas: nested
schemas cost about 35 µs per change here and would be the bottleneck of the whole sync.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal, cast

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from offline_addon.errors import ProtocolError
from offline_addon.protocol.merge import RecordContent, ServerRecord

ChangeOp = Literal["upsert", "delete"]
DeleteReason = Literal["deleted", "revoked", "sealed"]
MAX_ID_LENGTH = 256
MAX_CURSOR_LENGTH = 1024
"""The feed's ``cursor`` query parameter is at most 1024 characters (``docs/sync-api.yaml``)."""
MAX_NAME_LENGTH = 1000
MAX_FIELDS = 200
MAX_FIELD_NAME_LENGTH = 200
MAX_FIELD_LENGTH = 100_000
"""Record limits of the protocol, the same as the server's (``docs/sync-api.yaml``)."""
MAX_ETAG_LENGTH = 256
MAX_INT = 2**63 - 1
"""SQLite's largest integer: a bigger ``rev`` or count could not be stored."""
MAX_VALIDITY_SECONDS = 2**31
"""About 68 years: a longer validity is not a policy but a broken number."""
MAX_TIMESTAMP = 1e11
"""UNIX seconds of the year 5138: later times are not times (and break date formatting)."""
OFFLINE_REFUSALS = frozenset({"offline_disabled", "offline_right_missing"})
"""The problem codes of a ``403`` that delete the copy; no other answer does."""
_STRUCTURE_PER_CHANGE = 3  # the change, its record and the record's fields
_VALUES_PER_CHANGE = MAX_FIELDS + 16
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_REASONS = frozenset({"deleted", "revoked", "sealed"})
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
DIGEST_ALGORITHM = "sha256-sum"
DEFAULT_LOGIN_ATTEMPTS = 10
"""``offline_login_attempts`` when the server does not say (``docs/sync-api.yaml``)."""
MAX_LOGIN_ATTEMPTS = 1000
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class OfflinePolicy:
    """The server's answer to "may this user keep an offline copy of this database?"."""

    offline_enabled: bool
    offline_right: bool
    validity_seconds: int
    server_time: float
    password_generation: int | None = field(default=None, kw_only=True)
    """The password generation the session's token was issued under (it goes up with every
    password change); None from a server that does not tell it."""
    offline_login_attempts: int = field(default=DEFAULT_LOGIN_ATTEMPTS, kw_only=True)
    """Wrong offline passwords in a row after which the client deletes its copy (1..1000;
    10 from a server that does not say)."""
    offline_editing: bool = field(default=False, kw_only=True)
    """The database allows offline edits (a server without the field: it does not)."""

    @property
    def allowed(self) -> bool:
        """Both the database switch and the user's right are on."""
        return self.offline_enabled and self.offline_right


@dataclass(frozen=True)
class Head(OfflinePolicy):
    """The feed head (``200``): the offline policy plus the feed's position.

    Head is the policy check of an incremental sync, so it carries what the policy carries;
    its ``etag`` covers all of it (epoch, position and validity)."""

    etag: str | None
    seq: int


@dataclass(frozen=True)
class HeadUnchanged:
    """The feed head still matches the stored ETag (``304``): nothing new, the policy and the
    validity as stored. ``server_time`` comes from the ``Date`` header (whole seconds); None
    when the header is absent or unparsable (the engine then estimates it, see ``sync``)."""

    etag: str | None
    server_time: float | None


@dataclass(frozen=True, slots=True)
class RecordData:
    """A record as the feed delivers it. ``fields`` is hidden from ``repr``."""

    id: str
    rev: int
    name: str
    fields: Mapping[str, str]
    updated_at: float
    fields_json: str
    """``fields`` encoded for storage; encoded during validation, which runs on the prefetch
    thread, so that the writing thread does not pay for it."""
    index_text: str | None = None
    """The text the full-text index holds for the record (:func:`index_text`), made during
    validation like ``fields_json``; None: the writer makes it."""

    def __repr__(self) -> str:
        return f"RecordData(id={self.id!r}, rev={self.rev})"


@dataclass(frozen=True, slots=True)
class Change:
    """One feed row: an upsert (``rev`` and ``record`` set) or a delete (``reason`` set)."""

    op: ChangeOp
    id: str
    rev: int | None = None
    record: RecordData | None = None
    reason: DeleteReason | None = None


@dataclass(frozen=True)
class Digest:
    """What the user should hold: the number of records and the sum (mod 2**256, 64 hex
    digits) of SHA-256 over each ``id:rev`` line (algorithm ``sha256-sum``)."""

    count: int
    sum: str


@dataclass(frozen=True, repr=False)
class PageRows:
    """A page of new records laid out for the copy's batched inserts, made on the prefetch
    thread (:func:`offline_addon.protocol.page_rows.with_rows`) so that the writing thread,
    the bottleneck of a first sync, only binds them: the page's upserts in feed order, for a
    page of upserts with distinct ids. Hidden from ``repr`` (it holds the fields)."""

    records: list[object]
    """Per record, in :data:`RECORD_COLUMNS` order: id, rev, name, fields_json, updated_at."""
    index: list[str]
    """Per record: its name and its full-text body (:func:`index_text`)."""
    names: list[str]
    line_sum: int
    """The sum of the records' digest lines (unreduced)."""

    def __len__(self) -> int:
        return len(self.names)

    def ids(self) -> list[str]:
        """The records' ids, in order."""
        return cast(list[str], self.records[:: len(RECORD_COLUMNS)])


RECORD_COLUMNS = ("id", "rev", "name", "fields", "updated_at")
"""The order of a record's values in :attr:`PageRows.records`."""


@dataclass(frozen=True)
class ChangePage:
    """One page of the change feed."""

    changes: Sequence[Change]
    """A tuple, or for a large page of new records a view of its ``rows`` that makes each
    change when asked (:class:`offline_addon.protocol.page_rows.RowChanges`)."""
    next_cursor: str
    has_more: bool
    remaining: int
    digest: Digest | None
    rows: PageRows | None = field(default=None, compare=False)
    """The page's records laid out for inserting (None: the writer lays them out itself)."""

    def ids(self) -> list[str]:
        """The ids of the page's changes, in order (without making the changes)."""
        if self.rows is not None:
            return self.rows.ids()
        return [change.id for change in self.changes]


class StrictInteger(fields.Integer):
    """An integer that is a JSON number without fraction (and not a boolean), in SQLite's
    64-bit range."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Range(min=0, max=MAX_INT))
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON ``true``/``false`` only (marshmallow would also take "yes", 1, ...)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Timestamp(fields.Field[float]):
    """A finite JSON number (UNIX seconds)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Not a number.")
        if not abs(value) <= MAX_TIMESTAMP:  # also NaN
            raise ValidationError("Not a time.")
        return float(value)


def check_record(value: Any) -> RecordData:
    """The record object of an upsert, checked in one pass (see the module docstring)."""
    if type(value) is not dict:
        raise ValidationError("Record missing or not an object.")
    rid = value.get("id")
    rev = value.get("rev")
    name = value.get("name")
    values = value.get("fields")
    updated_at = value.get("updated_at")
    if type(rid) is not str or not 0 < len(rid) <= MAX_ID_LENGTH:
        raise ValidationError("Record id missing or not a short string.")
    if type(rev) is not int or not 1 <= rev <= MAX_INT:
        raise ValidationError("Record rev missing or not a positive 64-bit integer.")
    if type(name) is not str or len(name) > MAX_NAME_LENGTH:
        raise ValidationError("Record name missing, not a string or too long.")
    if (
        type(values) is not dict
        or len(values) > MAX_FIELDS
        or not all(
            type(k) is str
            and type(v) is str
            and len(k) <= MAX_FIELD_NAME_LENGTH
            and len(v) <= MAX_FIELD_LENGTH
            for k, v in values.items()
        )
    ):
        raise ValidationError("Record fields missing, not an object of strings or too large.")
    if type(updated_at) is int and abs(updated_at) <= MAX_TIMESTAMP:
        updated_at = float(updated_at)
    if type(updated_at) is not float or not abs(updated_at) <= MAX_TIMESTAMP:
        raise ValidationError("Record updated_at missing or not a time.")
    return RecordData(rid, rev, name, values, updated_at, _encode(values), index_text(values))


def index_text(values: Mapping[str, str]) -> str:
    """The field text that goes into the copy's full-text index: every value but the
    password's. Must stay equal to the SQL of ``_FTS_BODY`` in
    :mod:`offline_addon.storage.migrations`."""
    return " ".join(value for key, value in values.items() if key.lower() != "password")


def search_text(record: RecordData) -> str:
    """The field text that goes into the full-text index (:func:`index_text`): made during
    validation for a record from the feed (on the prefetch thread), here for the others."""
    text = record.index_text
    return index_text(record.fields) if text is None else text


def check_change(item: Any) -> Change:
    """One feed row: an upsert whose record matches its id and rev, or a delete with reason."""
    if type(item) is not dict:
        raise ValidationError("Change is not an object.")
    change_id = item.get("id")
    if type(change_id) is not str or not 0 < len(change_id) <= MAX_ID_LENGTH:
        raise ValidationError("Change id missing or not a short string.")
    op = item.get("op")
    if op == "upsert":
        rev = item.get("rev")
        if type(rev) is not int or not 1 <= rev <= MAX_INT:
            raise ValidationError("Upsert rev missing or not a positive 64-bit integer.")
        record = check_record(item.get("record"))
        if record.id != change_id or record.rev != rev:
            raise ValidationError("The record's id and rev differ from the change's.")
        return Change("upsert", change_id, rev, record)
    if op == "delete":
        reason = item.get("reason")
        if type(reason) is not str or reason not in _REASONS:
            raise ValidationError("Delete reason missing or unknown.")
        return Change("delete", change_id, reason=cast(DeleteReason, reason))
    raise ValidationError("Change op must be upsert or delete.")


class ChangeListField(fields.Field[tuple[Change, ...]]):
    """The page's changes. One tight loop instead of a nested schema per change: the same
    rules, at about a fifth of the cost (this runs for every change of a first sync)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[Change, ...]:
        if type(value) is not list:
            raise ValidationError("Not a list.")
        result: list[Change] = []
        for index, item in enumerate(value):
            try:
                result.append(check_change(item))
            except ValidationError as exc:
                raise ValidationError({index: exc.messages}) from None
        return tuple(result)


class _Lenient(Schema):
    """Unknown keys are ignored: a newer server may add fields."""

    class Meta:
        unknown = EXCLUDE


class PolicySchema(_Lenient):
    offline_enabled = StrictBoolean(required=True)
    offline_right = StrictBoolean(required=True)
    validity_seconds = StrictInteger(
        required=True, validate=validate.Range(min=0, max=MAX_VALIDITY_SECONDS)
    )
    server_time = Timestamp(required=True)
    password_generation = StrictInteger(load_default=None, validate=validate.Range(min=0))
    offline_login_attempts = StrictInteger(
        load_default=DEFAULT_LOGIN_ATTEMPTS,
        validate=validate.Range(min=1, max=MAX_LOGIN_ATTEMPTS),
    )
    offline_editing = StrictBoolean(load_default=False)


class HeadSchema(PolicySchema):
    seq = StrictInteger(required=True)


class DigestSchema(_Lenient):
    count = StrictInteger(required=True)
    sum = fields.String(required=True, validate=validate.Regexp(_SHA256_HEX))
    # Another algorithm cannot be compared: refuse it rather than repair forever.
    algorithm = fields.String(required=True, validate=validate.Equal(DIGEST_ALGORITHM))


class PageSchema(_Lenient):
    changes = ChangeListField(required=True)
    next_cursor = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_CURSOR_LENGTH)
    )
    has_more = StrictBoolean(required=True)
    remaining = StrictInteger(required=True)
    digest = fields.Nested(DigestSchema)

    @validates_schema
    def _last_page_has_digest(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data["has_more"] and "digest" not in data:
            raise ValidationError("The last page carries no digest.")


_POLICY = PolicySchema()
_HEAD = HeadSchema()
_PAGE = PageSchema()


def _load(schema: Schema, payload: object, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ProtocolError(
            f"The server sent an invalid {what} (not a JSON object); "
            "nothing was changed. Try again later or tell your administrator."
        )
    try:
        result: dict[str, Any] = schema.load(payload)
    except ValidationError as exc:
        raise ProtocolError(
            f"The server sent an invalid {what} ({_summarise(exc.messages)}); nothing was "
            "changed. Try again later or tell your administrator."
        ) from None
    return result


def _summarise(messages: object, prefix: str = "") -> str:
    """The first offending field path and its message, short (never a value)."""
    if isinstance(messages, dict) and messages:
        key, inner = next(iter(messages.items()))
        path = f"{prefix}.{key}" if prefix else str(key)
        return _summarise(inner, path)
    if isinstance(messages, list) and messages:
        return _summarise(messages[0], prefix)
    text = str(messages)[:120]
    return f"{prefix}: {text}" if prefix else text


def load_policy(payload: object) -> OfflinePolicy:
    """Validate an ``/offline/policy`` answer."""
    data = _load(_POLICY, payload, "offline policy")
    return OfflinePolicy(**data)


def load_head(payload: object, etag: str | None) -> Head:
    """Validate an ``/offline/head`` answer (``200``)."""
    data = _load(_HEAD, payload, "feed head")
    return Head(etag=_checked_etag(etag), **data)


def load_unchanged(etag: str | None, date: str | None) -> HeadUnchanged:
    """An ``/offline/head`` ``304``: its ETag and the server time from its ``Date`` header."""
    return HeadUnchanged(etag=_checked_etag(etag), server_time=parse_http_date(date))


def _checked_etag(etag: str | None) -> str | None:
    """The head's ETag, kept in the copy: short printable text (ProtocolError otherwise)."""
    if etag is not None and (len(etag) > MAX_ETAG_LENGTH or not etag.isprintable()):
        raise ProtocolError(
            "The server sent an invalid feed head (its ETag is too long or not text); nothing "
            "was changed. Tell your administrator."
        )
    return etag


def parse_http_date(value: str | None) -> float | None:
    """UNIX seconds from an HTTP ``Date`` header; None when absent or unparsable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, per RFC 5322
        when = when.replace(tzinfo=UTC)
    try:
        seconds = when.timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return seconds if math.isfinite(seconds) else None


def load_page(payload: object, *, limit: int | None = None) -> ChangePage:
    """Validate an ``/offline/changes`` answer; a page with more than ``limit`` changes (the
    page size the client asked for) is refused."""
    if limit is not None and isinstance(payload, dict):
        changes_in = payload.get("changes")
        if isinstance(changes_in, list) and len(changes_in) > limit:
            raise _larger_than_asked(limit)
    data = _load(_PAGE, payload, "change page")
    changes: tuple[Change, ...] = data["changes"]
    raw_digest = data.get("digest")
    digest = None
    if raw_digest is not None and not data["has_more"]:
        digest = Digest(raw_digest["count"], raw_digest["sum"])
    return ChangePage(
        changes=changes,
        next_cursor=data["next_cursor"],
        has_more=data["has_more"],
        remaining=data["remaining"],
        digest=digest,
    )


# -- bounded decoding --------------------------------------------------------------------------


def decode_json(body: bytes, *, max_items: int) -> Any:
    """Decode an answer's body, refusing it *before* it becomes objects when it holds more than
    an answer of ``max_items`` changes can (0: policy, head or a problem): objects and arrays
    at most 3 per change plus a few, values at most one per field plus a few. Counting runs on
    the bytes at C speed; strings are only cut out (for an exact count) when the quick count,
    which includes commas and brackets inside strings, is over. Text must be UTF-8 without lone
    surrogates. Raises ProtocolError, never anything else."""
    max_structures = _STRUCTURE_PER_CHANGE * max_items + 16
    max_values = _VALUES_PER_CHANGE * max_items + 64
    if not _within(body, max_structures, max_values):
        skeleton = _STRING.sub(b'""', body)
        if not _within(skeleton, max_structures, max_values):
            raise _larger_than_asked(max_items)
    try:
        text = body.decode("utf-8")
        value = json.loads(text)
        if _ESCAPED_SURROGATE.search(body) is not None:
            _encode(value).encode("utf-8")  # a lone surrogate cannot be encoded
    except UnicodeError:
        raise ProtocolError(
            "The server sent text that is not valid UTF-8 (or holds a lone surrogate); "
            "nothing was changed. Tell your administrator."
        ) from None
    except RecursionError:
        raise ProtocolError(
            "The server sent an answer nested too deeply; nothing was changed. Tell your "
            "administrator."
        ) from None
    except ValueError:
        raise ProtocolError(
            "The server sent an answer that is not valid JSON; nothing was changed. "
            "Try again later or tell your administrator."
        ) from None
    return value


def _within(data: bytes, max_structures: int, max_values: int) -> bool:
    return (
        data.count(b"{") + data.count(b"[") <= max_structures
        and data.count(b",") + data.count(b":") <= max_values
    )


def _larger_than_asked(max_items: int) -> ProtocolError:
    what = f"more than the {max_items} changes asked for" if max_items else "far too many values"
    return ProtocolError(
        f"The server sent an answer larger than asked for ({what}); nothing was changed. "
        "Tell your administrator."
    )


# -- errors and Retry-After ----------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """An ``application/problem+json`` error answer: its machine ``code`` (``""`` if none)."""

    code: str


def load_problem(content_type: str | None, body: bytes) -> Problem | None:
    """The problem in an error answer, or None when it is not ``application/problem+json``
    with a ``code`` (an HTML page from a proxy, a bare status, ...)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/problem+json" or len(body) > 64 * 1024:
        return None
    try:
        problem = decode_json(body, max_items=0)
    except ProtocolError:
        return None
    code = problem.get("code") if isinstance(problem, dict) else None
    if not isinstance(code, str) or not code.isidentifier() or len(code) > 64:
        return None
    return Problem(code)


def retry_after_seconds(value: str | None, date: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110: delta-seconds or an HTTP
    date). A date is read against the answer's ``Date`` header when it has one (so a wrong
    local clock does not matter), else against ``now``; a date in the past means 0. None when
    absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text), MAX_VALIDITY_SECONDS))
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds):
        return seconds if seconds >= 0 else None
    when = parse_http_date(text)
    if when is None:
        return None
    reference = parse_http_date(date)
    return max(0.0, when - (now if reference is None else reference))


# -- the write side (offline edits) ------------------------------------------------------------

WriteStatus = Literal["done", "moved", "refused", "deleted"]
_RECORD_ITEMS = 2
"""The decoding bound of one record answer (:func:`decode_json` counts per change: a record
of the largest size has about twice the values a change is allowed on average)."""
REFUSED_WRITE_STATUSES = frozenset({400, 403, 404})
"""A pushed change the server will not take as it is: a right taken away or a sealed record
(403), a record the user may no longer read (404), a change the server finds malformed
(400). Each is reported by record name with the user's values; none deletes the copy."""


@dataclass(frozen=True)
class WriteAnswer:
    """What the server said to one pushed change (``docs/sync-api.yaml``, the record ``PUT``
    and ``DELETE``):

    - ``done``: the server holds the change (``200``/``201`` with ``record``, the record as
      stored now; ``204`` after a delete: ``record`` None); also a recognised resend;
    - ``moved``: the record is no longer at the base revision (``412``, or a legacy ``409``):
      ``record`` is the server's record now when the answer carried it (``current``);
    - ``refused``: see :data:`REFUSED_WRITE_STATUSES` (``code`` says which);
    - ``deleted``: the record was deleted on the server (``410``).
    """

    status: WriteStatus
    record: ServerRecord | None = None
    code: str = ""


def load_record(payload: object, record_id: str | None = None) -> ServerRecord:
    """Validate a record answer (``GET``, or a write's ``200``/``201``); with ``record_id``,
    a record with another id is refused too."""
    try:
        record = check_record(payload)
    except ValidationError as exc:
        raise ProtocolError(
            f"The server sent an invalid record ({_summarise(exc.messages)}); nothing was "
            "changed. Try again later or tell your administrator."
        ) from None
    if record_id is not None and record.id != record_id:
        raise ProtocolError(
            "The server answered with another record than the one asked for; nothing more "
            "was sent. Tell your administrator."
        )
    return server_record_of(record)


def server_record_of(record: RecordData) -> ServerRecord:
    """A record as the merge sees it: its revision and content."""
    return ServerRecord(record.rev, RecordContent(record.name, dict(record.fields)))


def load_current(content_type: str | None, body: bytes) -> ServerRecord | None:
    """The ``current`` record of a ``412`` problem answer; None when the answer is not a
    problem or carries no valid record (the client then asks for the record itself)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/problem+json":
        return None
    try:
        problem = decode_json(body, max_items=_RECORD_ITEMS)
    except ProtocolError:
        return None
    current = problem.get("current") if isinstance(problem, dict) else None
    try:
        return server_record_of(check_record(current))
    except ValidationError:
        return None


def load_write_answer(
    status: int, content_type: str | None, body: bytes, *, record_id: str
) -> WriteAnswer | None:
    """The meaning of a write's answer, validated; None for a status that is no answer to
    the change itself (401, 429, 5xx, redirects: the transport's errors). A record answer
    for another id than ``record_id`` is a ProtocolError."""
    if status in (200, 201):
        payload = decode_json(body, max_items=_RECORD_ITEMS)
        return WriteAnswer("done", load_record(payload, record_id))
    if status == 204:
        return WriteAnswer("done")
    if status in (409, 412):
        return WriteAnswer("moved", load_current(content_type, body))
    if status == 410:
        return WriteAnswer("deleted", code="record_deleted")
    code = _code(content_type, body)
    if status in REFUSED_WRITE_STATUSES and code != "unknown_database":
        return WriteAnswer("refused", code=code)
    return None  # (a database the server does not know: reported, nothing refused)


def _code(content_type: str | None, body: bytes) -> str:
    problem = load_problem(content_type, body)
    return "" if problem is None else problem.code

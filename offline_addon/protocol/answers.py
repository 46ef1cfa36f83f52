"""The sync protocol's answers as marshmallow schemas and the frozen values they load into.

Every answer is validated here *before* anything is applied; a malformed answer raises
:class:`~offline_addon.errors.ProtocolError` and the copy stays as it was.

Validation runs once per change of a first sync (100k changes and more), so the list of changes
is checked by one lean custom field (:class:`ChangeListField`) instead of nested schemas: nested
schemas cost about 35 µs per change here and would be the bottleneck of the whole sync.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal, cast

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from offline_addon.errors import ProtocolError

ChangeOp = Literal["upsert", "delete"]
DeleteReason = Literal["deleted", "revoked", "sealed"]
MAX_ID_LENGTH = 256
MAX_CURSOR_LENGTH = 4096
_REASONS = frozenset({"deleted", "revoked", "sealed"})
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
DIGEST_ALGORITHM = "sha256-sum"
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


@dataclass(frozen=True)
class ChangePage:
    """One page of the change feed."""

    changes: tuple[Change, ...]
    next_cursor: str
    has_more: bool
    remaining: int
    digest: Digest | None


class StrictInteger(fields.Integer):
    """An integer that is a JSON number without fraction (and not a boolean)."""

    def __init__(self, **kwargs: Any) -> None:
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
        result = float(value)
        if not math.isfinite(result):
            raise ValidationError("Not a finite number.")
        return result


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
    if type(rev) is not int or rev < 1:
        raise ValidationError("Record rev missing or not a positive integer.")
    if type(name) is not str:
        raise ValidationError("Record name missing or not a string.")
    if type(values) is not dict or not all(
        type(k) is str and type(v) is str for k, v in values.items()
    ):
        raise ValidationError("Record fields missing or not an object of strings.")
    if type(updated_at) is int:
        updated_at = float(updated_at)
    if type(updated_at) is not float or not math.isfinite(updated_at):
        raise ValidationError("Record updated_at missing or not a number.")
    return RecordData(rid, rev, name, values, updated_at, _encode(values))


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
        if type(rev) is not int or rev < 1:
            raise ValidationError("Upsert rev missing or not a positive integer.")
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
    validity_seconds = StrictInteger(required=True, validate=validate.Range(min=0))
    server_time = Timestamp(required=True)
    password_generation = StrictInteger(load_default=None, validate=validate.Range(min=0))


class HeadSchema(PolicySchema):
    seq = StrictInteger(required=True, validate=validate.Range(min=0))


class DigestSchema(_Lenient):
    count = StrictInteger(required=True, validate=validate.Range(min=0))
    sum = fields.String(required=True, validate=validate.Regexp(_SHA256_HEX))
    # Another algorithm cannot be compared: refuse it rather than repair forever.
    algorithm = fields.String(required=True, validate=validate.Equal(DIGEST_ALGORITHM))


class PageSchema(_Lenient):
    changes = ChangeListField(required=True)
    next_cursor = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_CURSOR_LENGTH)
    )
    has_more = StrictBoolean(required=True)
    remaining = StrictInteger(required=True, validate=validate.Range(min=0))
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
    return Head(etag=etag, **data)


def load_unchanged(etag: str | None, date: str | None) -> HeadUnchanged:
    """An ``/offline/head`` ``304``: its ETag and the server time from its ``Date`` header."""
    return HeadUnchanged(etag=etag, server_time=parse_http_date(date))


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


def load_page(payload: object) -> ChangePage:
    """Validate an ``/offline/changes`` answer."""
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

"""The opaque feed cursor: a signed position in one user's feed of one database.

Format: ``base64url(compact JSON {epoch, seq, user_id, db, issued_at, horizon}) "."
base64url(HMAC)``. The HMAC (SHA-256, server secret) stops a client from forging a position;
the epoch lets a server restored from a backup answer 410 instead of silently skipping changes.
``horizon`` is the user's compaction horizon when the cursor was issued: a cursor behind the
horizon is still good if no compaction moved the horizon since (it was issued by a first sync,
which needs no deletes); cursors from before version 2 of this format count as horizon 0.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

MAX_CURSOR_LEN = 1024


@dataclass(frozen=True)
class Cursor:
    """A decoded cursor: the feed position ``seq`` of ``user_id`` in ``db`` in ``epoch``."""

    epoch: str
    seq: int
    user_id: str
    db: str
    issued_at: float
    horizon: int = 0


class InvalidCursor(ValueError):
    """The cursor text is garbled or its signature does not match."""


def encode_cursor(cursor: Cursor, secret: bytes) -> str:
    """Sign and encode ``cursor``."""
    payload = json.dumps(
        {
            "epoch": cursor.epoch,
            "seq": cursor.seq,
            "user_id": cursor.user_id,
            "db": cursor.db,
            "issued_at": round(cursor.issued_at, 3),
            "horizon": cursor.horizon,
        },
        separators=(",", ":"),
    ).encode("utf-8")
    return _b64(payload) + "." + _b64(_sign(payload, secret))


def decode_cursor(text: str, secret: bytes) -> Cursor:
    """Verify and decode a cursor; raise :class:`InvalidCursor` if it is not one of ours."""
    if len(text) > MAX_CURSOR_LEN or text.count(".") != 1:
        raise InvalidCursor("malformed cursor")
    body, _, signature = text.partition(".")
    try:
        payload = _unb64(body)
        given = _unb64(signature)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if not hmac.compare_digest(given, _sign(payload, secret)):
        raise InvalidCursor("cursor signature mismatch")
    try:
        data = json.loads(payload)
        cursor = Cursor(
            epoch=data["epoch"],
            seq=data["seq"],
            user_id=data["user_id"],
            db=data["db"],
            issued_at=data["issued_at"],
            horizon=data.get("horizon", 0),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidCursor("malformed cursor payload") from exc
    if not (
        isinstance(cursor.seq, int)
        and isinstance(cursor.epoch, str)
        and isinstance(cursor.horizon, int)
    ):
        raise InvalidCursor("malformed cursor payload")
    return cursor


def _sign(payload: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("empty or non-ascii")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

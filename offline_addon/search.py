"""Turning what the user types into a safe full-text and substring query."""

from __future__ import annotations

import re
from collections.abc import Mapping

_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression: every word of ``text`` as a quoted prefix, all required.

    Quoting each word keeps FTS5 operators (AND, NEAR, ``*``, ``:``) typed by the user from
    being interpreted; an empty string means "no words".
    """
    return " AND ".join(f'"{word}"*' for word in _WORD.findall(text))


def like_pattern(text: str) -> str:
    """A LIKE pattern (escape character backslash) matching ``text`` anywhere."""
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_text(fields: Mapping[str, str]) -> str:
    """The field text that goes into the full-text index: every value but the password's.

    Must stay equal to the SQL of ``_FTS_BODY`` in :mod:`offline_addon.schema_migrations`.
    """
    return " ".join(value for key, value in fields.items() if key.lower() != "password")

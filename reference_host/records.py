"""Records as the shell shows them, found by what the user types, and how lists are summed up.

Plain functions over plain values: where the records come from (the server or an offline copy)
is the shell's business (``shell.py``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

PASSWORD_LIKE = ("password", "passwd", "pwd", "secret", "pin", "token", "otp")
MASK = "********"
SHOWN_CANDIDATES = 10
_RECORD_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}"
)


@dataclass(frozen=True)
class ShownRecord:
    """A record as the shell shows it, from either the server or an offline copy."""

    record_id: str
    rev: int
    name: str
    fields: dict[str, str] = field(repr=False)


def is_password_like(field_name: str) -> bool:
    """Whether a field's value is masked unless the user asks to reveal it."""
    lowered = field_name.lower()
    return any(part in lowered for part in PASSWORD_LIKE)


def looks_like_record_id(text: str) -> bool:
    """Whether ``text`` has the form of a record id (a UUID), so it is worth a look-up by id."""
    return _RECORD_ID.fullmatch(text.strip()) is not None


@dataclass(frozen=True)
class Pick:
    """What a name the user typed points at: one record, several (``candidates``), or none."""

    record: ShownRecord | None
    candidates: tuple[ShownRecord, ...] = ()


def pick_record(typed: str, records: Sequence[ShownRecord]) -> Pick:
    """The record ``typed`` names among ``records``: by id; else by exact name; else by the
    name ignoring case; else by a unique case-insensitive prefix; else by a unique
    case-insensitive substring. The first of these steps that finds anything decides: one
    record is the answer, several are the candidates to choose from."""
    wanted = typed.strip()
    folded = wanted.casefold()
    steps = (
        lambda r: r.record_id == wanted,
        lambda r: r.name == wanted,
        lambda r: r.name.casefold() == folded,
        lambda r: r.name.casefold().startswith(folded),
        lambda r: folded in r.name.casefold(),
    )
    for matches in steps:
        found = tuple(r for r in records if matches(r))
        if len(found) == 1:
            return Pick(found[0])
        if found:
            return Pick(None, found)
    return Pick(None)


def describe_candidates(typed: str, candidates: Sequence[ShownRecord]) -> list[str]:
    """Lines that list the records ``typed`` could mean (the first few), and how to choose."""
    lines = [f"{len(candidates)} records match {typed!r}; give the id or more of the name:"]
    lines += [f"  {r.record_id}\t{r.name}" for r in candidates[:SHOWN_CANDIDATES]]
    if len(candidates) > SHOWN_CANDIDATES:
        lines.append(f"  … and {len(candidates) - SHOWN_CANDIDATES:,} more")
    return lines


def count_line(shown: int, total: int | None, capped: bool) -> str:
    """The line under a list: ``(3 records)``; ``(first 500 of 7,550 records; …)`` when the
    list was cut; when it may have been cut but the total is unknown, say so."""
    noun = "record" if shown == 1 and total in (None, 1) else "records"
    if total is not None and total > shown:
        return f"(first {shown:,} of {total:,} {noun}; narrow the search to see the others)"
    if total is None and capped:
        return (
            f"({shown:,} {noun}; the search stops there, so there may be more: narrow it "
            "to see them)"
        )
    return f"({shown:,} {noun})"


def may_remember(line: str) -> bool:
    """Whether a typed command line may go into the shell's history: not when it gives a
    password-like field a value (``edit Mail password=…``), which history would keep."""
    try:
        words = shlex.split(line)
    except ValueError:  # unbalanced quotes: judge the raw words
        words = line.split()
    for word in words:
        key, sep, value = word.partition("=")
        if sep and value and is_password_like(key.strip("'\"")):
            return False
    return True

"""Bench data: records of two shapes, generated deterministically, and the reference server
loaded with them.

- ``small``: today's records (about 250 bytes of name and fields, one short note), kept so that
  the figures stay comparable with earlier tables.
- ``realistic``: about 600 bytes, as real entries with comments have: username, password, url,
  a 200-character note and three custom fields. The note is words drawn from a vocabulary of a
  few thousand (plus a ticket number), so the full-text index sees a realistic spread of terms.

The same ``(kind, count)`` always gives the same records, ids and revisions, in this process and
in the feed server's (``bench.feedserver``), so the bench knows what a synced copy must hold
without asking.

The reference server runs as a real ``psr-server serve`` subprocess (``ServerProcess``) so that
the client under test and the server use separate cores, as they would on separate machines.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

BENCH_USER = "bench"
BENCH_PASSWORD = "bench-Correct-Horse-7-q9Zx"
CLIENT_ID = "bench-client-0001"
NOTE_CHARS = 200
BASE_TIME = 1_764_000_000.0

Kind = Literal["small", "realistic"]
KINDS: tuple[Kind, ...] = ("small", "realistic")

_WORDS = (
    "mail",
    "portal",
    "vpn",
    "bank",
    "wiki",
    "jira",
    "build",
    "deploy",
    "backup",
    "router",
    "printer",
    "payroll",
    "crm",
    "ldap",
    "staging",
    "prod",
    "billing",
    "support",
    "hr",
    "docs",
    "chat",
    "storage",
    "dns",
    "proxy",
    "vault",
    "admin",
)
_PW_CHARS = "abcdefghkmnpqrstuvwxyz23456789"
_COMMON = (
    "the",
    "and",
    "for",
    "with",
    "after",
    "before",
    "account",
    "shared",
    "team",
    "login",
    "reset",
    "password",
    "rotate",
    "monthly",
    "contact",
    "owner",
    "key",
    "token",
    "recovery",
    "codes",
    "stored",
    "office",
    "remote",
    "access",
    "only",
    "from",
    "server",
    "client",
    "new",
    "old",
    "expires",
    "renewal",
    "invoice",
    "contract",
    "license",
    "seat",
    "seats",
    "admin",
    "emergency",
    "break",
    "glass",
    "use",
    "ask",
    "call",
    "phone",
    "desk",
    "ticket",
    "see",
)
_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "ti",
    "vo",
    "ze",
    "pra",
    "stu",
    "gre",
    "fin",
    "mar",
    "dol",
    "ber",
    "qua",
    "xen",
    "yor",
    "hal",
    "wen",
    "cor",
    "dil",
    "ost",
    "ump",
    "ari",
    "enz",
)


def _vocabulary(size: int = 3000, seed: int = 3) -> tuple[str, ...]:
    """A fixed vocabulary: common words plus pseudo-words (stable across runs)."""
    rng = random.Random(seed)
    words = dict.fromkeys(_COMMON + _WORDS)
    while len(words) < size:
        words["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return tuple(words)


_VOCABULARY = _vocabulary()


def _note(rng: random.Random, length: int = NOTE_CHARS) -> str:
    """A note of exactly ``length`` characters: words and one ticket number, ending in "."."""
    words = rng.choices(_VOCABULARY, k=length // 3)
    words.insert(rng.randrange(8), f"#{rng.randrange(10**6):06d}")
    return " ".join(words)[: length - 1].rstrip().ljust(length - 1, "x") + "."


def small_records(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` records shaped like today's bench (about 250 bytes each)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        a, b = rng.choice(_WORDS), rng.choice(_WORDS)
        out.append(
            {
                "name": f"{a.title()} {b} {i:06d}",
                "fields": {
                    "username": f"user{i}@{a}.example.com",
                    "password": "".join(rng.choice(_PW_CHARS) for _ in range(20)),
                    "url": f"https://{a}.{b}.example.com/login",
                    "notes": f"Account for {a} {b}; rotate often. Ticket {rng.randrange(10**6)}.",
                },
            }
        )
    return out


def realistic_records(count: int, seed: int = 11) -> list[dict[str, Any]]:
    """``count`` records of about 600 bytes: four usual fields (a 200-character note) and
    three custom ones."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        a, b = rng.choice(_WORDS), rng.choice(_WORDS)
        person = rng.choice(_VOCABULARY)
        out.append(
            {
                "name": f"{a.title()} {b} {person} {i:06d}",
                "fields": {
                    "username": f"{person}.{rng.choice(_VOCABULARY)}{i}@{a}.example.com",
                    "password": "".join(rng.choices(_PW_CHARS, k=24)),
                    "url": f"https://{a}-{rng.randrange(100)}.{b}.example.com/{person}/login",
                    "notes": _note(rng),
                    "Account number": f"ACC-{rng.randrange(10**10):010d}-{a.upper()}",
                    "Recovery codes": " ".join(
                        f"{rng.randrange(10**4):04d}-{rng.randrange(10**4):04d}" for _ in range(6)
                    ),
                    "Recovery e-mail": f"it-{b}-{rng.choice(_VOCABULARY)}@corp.example.org",
                },
            }
        )
    return out


def make_records(kind: Kind, count: int) -> list[dict[str, Any]]:
    """``count`` records of ``kind`` as ``{"name", "fields"}`` (what the reference server
    imports)."""
    return small_records(count) if kind == "small" else realistic_records(count)


def record_ids(count: int, seed: int = 5) -> list[str]:
    """Deterministic ids shaped like the reference server's (UUID 4 text)."""
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def changed_note(serial: int) -> str:
    """The note a bench change writes (a fresh 200 characters, so the index changes too)."""
    return _note(random.Random(10_000 + serial))


def record_size(records: Sequence[dict[str, Any]]) -> float:
    """Mean bytes of a record's name and fields as JSON (what "about 600 bytes" means)."""
    import json

    sample = records[: min(len(records), 2000)]
    if not sample:
        return 0.0
    total = sum(
        len(json.dumps({"name": r["name"], "fields": r["fields"]}, separators=(",", ":")).encode())
        for r in sample
    )
    return total / len(sample)


def database_name(kind: Kind, count: int) -> str:
    """The bench database holding ``count`` records of ``kind``."""
    size = (
        f"{count // 1_000_000}m"
        if count >= 1_000_000 and count % 1_000_000 == 0
        else (f"{count // 1000}k" if count % 1000 == 0 else str(count))
    )
    return f"bench-{kind}-{size}"


@dataclass(frozen=True)
class BenchServer:
    """A running reference server and the databases loaded into it (name -> record ids)."""

    url: str
    admin: Any
    databases: dict[str, list[str]]
    process: Any


@contextmanager
def bench_server(data_dir: Path, loads: Sequence[tuple[Kind, int]]) -> Iterator[BenchServer]:
    """Start a reference server subprocess and load one database per ``(kind, count)``; stop it
    afterwards."""
    from reference_server.testing import ServerProcess

    proc = ServerProcess(data_dir)
    proc.start()
    try:
        admin = proc.admin
        admin.create_user(BENCH_USER, BENCH_PASSWORD, offline_right=True, validity_days=7)
        loaded: dict[str, list[str]] = {}
        for kind, count in loads:
            name = database_name(kind, count)
            admin.create_database(name, offline_allowed=True)
            loaded[name] = list(
                admin.import_records(name, make_records(kind, count), grant={BENCH_USER: "rwe"})
            )
        yield BenchServer(proc.url, admin, loaded, proc)
    finally:
        proc.stop()

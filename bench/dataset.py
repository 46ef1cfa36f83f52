"""Bench data on the reference server: databases of 10k and 100k records for one bench user.

The server runs as a real ``psr-server serve`` subprocess (``ServerProcess``) so that the
client under test and the server use separate cores, as they would on separate machines.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_USER = "bench"
BENCH_PASSWORD = "bench-Correct-Horse-7"
CLIENT_ID = "bench-client-0001"

_WORDS = (
    "mail", "portal", "vpn", "bank", "wiki", "jira", "build", "deploy", "backup", "router",
    "printer", "payroll", "crm", "ldap", "staging", "prod", "billing", "support", "hr", "docs",
    "chat", "storage", "dns", "proxy", "vault", "admin",
)
_PW_CHARS = "abcdefghkmnpqrstuvwxyz23456789"


def make_records(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` records shaped like a real password list (about 250 bytes each)."""
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


@dataclass(frozen=True)
class BenchServer:
    """A running bench server and the databases loaded into it (name -> record ids)."""

    url: str
    admin: Any
    databases: dict[str, list[str]]
    process: Any


def database_name(count: int) -> str:
    """The bench database holding ``count`` records."""
    return f"bench{count // 1000}k"


@contextmanager
def bench_server(data_dir: Path, sizes: tuple[int, ...]) -> Iterator[BenchServer]:
    """Start a server subprocess and load one database per size; stop it afterwards."""
    from reference_server.testing import ServerProcess

    proc = ServerProcess(data_dir)
    proc.start()
    try:
        admin = proc.admin
        admin.create_user(BENCH_USER, BENCH_PASSWORD, offline_right=True, validity_days=7)
        loaded: dict[str, list[str]] = {}
        for size in sizes:
            name = database_name(size)
            admin.create_database(name, offline_allowed=True)
            loaded[name] = list(
                admin.import_records(name, make_records(size), grant={BENCH_USER: "rwe"})
            )
        yield BenchServer(proc.url, admin, loaded, proc)
    finally:
        proc.stop()

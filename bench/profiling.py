"""Where a first sync's time goes: ``python -m bench.profiling [--size N] [--kind K]``.

Runs the add-on's first sync (``sync_copy``, the engine under the public API) against the feed
server three times:

1. plain, for the wall time the other two are compared with;
2. with sections: the add-on's own functions and every SQL statement on its connection are
   wrapped (in this process only; nothing in ``offline_addon/`` changes) and timed in wall
   time and in the CPU time of the thread that ran them (``time.thread_time``), so that the
   prefetch thread's work (HTTP, JSON, validation) and the writing thread's (plan, digest,
   inserts, index, commit) can be told apart, and the writer's waits for the next page too;
3. under ``cProfile``, one profiler per thread, the top functions of each printed.

Prints a Markdown table; ``--out FILE`` writes it too.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import engine
from bench.baseline import Login, login, plain_first_sync
from bench.dataset import BENCH_PASSWORD, BENCH_USER, CLIENT_ID, Kind, database_name
from bench.feedserver import FeedServerProcess


@dataclass
class Section:
    calls: int = 0
    wall: float = 0.0
    cpu: float = 0.0


class Sections:
    """Wall and thread-CPU time per (thread, section); nested sections are subtracted from
    their parent, so that the rows add up to the thread's total."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], Section] = defaultdict(Section)
        self._local = threading.local()

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        stack: list[list[float]] = self._local.__dict__.setdefault("stack", [])
        frame = [0.0, 0.0]  # time of nested sections, to take out of this one
        stack.append(frame)
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
            stack.pop()
            if stack:
                stack[-1][0] += wall
                stack[-1][1] += cpu
            row = self.data[threading.current_thread().name, name]
            row.calls += 1
            row.wall += wall - frame[0]
            row.cpu += cpu - frame[1]

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.timed(name):
                return fn(*args, **kwargs)

        return wrapper


_STATEMENTS = (
    (r"^INSERT INTO records\(rowid", "sql: insert records"),
    (r"^UPDATE records", "sql: update records"),
    (r"^DELETE FROM records", "sql: delete records (+ index triggers)"),
    (r"^INSERT INTO records_fts\(rowid", "sql: insert records_fts"),
    (r"^INSERT INTO records_name_trigrams\(rowid", "sql: insert name trigrams"),
    (r"^INSERT INTO records_fts\(records_fts, rank\)", "sql: FTS5 setting (hashsize)"),
    (r"^DELETE FROM records_fts", "sql: unindex updated records"),
    (r"^INSERT INTO records_fts\(records_fts\)", "sql: optimize records_fts"),
    (r"^INSERT INTO records_name_trigrams\(records_name_trigrams\)", "sql: optimize trigrams"),
    (r"json_each", "sql: held revs (page ids)"),
    (r"max\(rowid\)", "sql: max(rowid)"),
    (r"count\(\*\) FROM records", "sql: count(*) FROM records (digest guard)"),
    (r"^COMMIT", "sql: COMMIT"),
    (r"^BEGIN", "sql: BEGIN"),
    (r"^PRAGMA key", "sql: PRAGMA key (KDF)"),
    (r"meta", "sql: meta (cursor, digest, contact)"),
)


def _kind_of(sql: str) -> str:
    for pattern, name in _STATEMENTS:
        if re.search(pattern, sql):
            return name
    return "sql: other"


class _TimedConnection:
    """A sqlcipher3 connection whose ``execute``/``executemany`` are timed by statement."""

    def __init__(self, conn: Any, sections: Sections) -> None:
        self._conn = conn
        self._sections = sections

    def execute(self, sql: str, *args: Any) -> Any:
        with self._sections.timed(_kind_of(sql)):
            cursor = self._conn.execute(sql, *args)
            return _TimedCursor(cursor, self._sections, _kind_of(sql))

    def executemany(self, sql: str, rows: Any) -> Any:
        with self._sections.timed(_kind_of(sql)):
            return self._conn.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _TimedCursor:
    def __init__(self, cursor: Any, sections: Sections, kind: str) -> None:
        self._cursor, self._sections, self._kind = cursor, sections, kind

    def fetchone(self) -> Any:
        with self._sections.timed(self._kind):
            return self._cursor.fetchone()

    def fetchall(self) -> Any:
        with self._sections.timed(self._kind):
            return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@contextmanager
def instrumented(sections: Sections) -> Iterator[None]:
    """Wrap the add-on's functions for the ``with`` block (module attributes, restored)."""
    from offline_addon.protocol import digest
    from offline_addon.storage import cipher, offline_copy, page_writer, search
    from offline_addon.sync import engine as sync_engine
    from offline_addon.sync import prefetch, transport

    patches: list[tuple[Any, str, str]] = [
        (transport.RequestsTransport, "get", "http: GET + gunzip + read"),
        (transport, "decode_json", "decode: bounds on the bytes + json.loads"),
        (transport, "load_page", "validate: load_page (marshmallow + checks + fields_json)"),
        (offline_copy, "plan_page", "plan: plan_page"),
        (offline_copy, "digest_after", "digest: digest_after (sha256 per record)"),
        (offline_copy, "held_rows", "py: held_rows"),
        (page_writer, "search_text", "py: search_text (index body)"),
        (page_writer, "_insert", "py: build insert rows"),
        (offline_copy.OfflineCopy, "apply_page", "py: apply_page (rest)"),
        (offline_copy.OfflineCopy, "compact_search_index", "py: compact_search_index"),
        (sync_engine._SyncRun, "_check_digest", "py: check digest"),
        (sync_engine._SyncRun, "_finish", "py: finish (sidecar)"),
        (sync_engine._SyncRun, "_check_policy", "http: policy"),
        (sync_engine._SyncRun, "_full_head", "http: head"),
        (transport.SyncClient, "head", "http: head"),
        (offline_copy.OfflineCopy, "record_contact", "py: record_contact"),
        (offline_copy.OfflineCopy, "sidecar_info", "py: sidecar_info"),
        (sync_engine, "write_sidecar", "file: write_sidecar (durable write)"),
        (sync_engine, "refresh_sidecar", "file: refresh_sidecar (durable write when stale)"),
    ]
    del digest, search  # (imported so that the names above resolve the same modules)
    saved: list[tuple[Any, str, Any]] = []
    real_connect = cipher.connect
    real_iter = prefetch.PagePrefetcher.__iter__

    def connect(db_path: Path, password: str, *, key: str | None = None) -> Any:
        with sections.timed("sql: connect + key (KDF)"):
            return _TimedConnection(real_connect(db_path, password, key=key), sections)

    def timed_iter(self: Any) -> Iterator[Any]:
        source = real_iter(self)
        while True:
            with sections.timed("wait: next page from the prefetch thread"):
                try:
                    item = next(source)
                except StopIteration:
                    return
            yield item

    try:
        for owner, name, label in patches:
            original = getattr(owner, name)
            saved.append((owner, name, original))
            setattr(owner, name, sections.wrap(label, original))
        saved.append((cipher, "connect", real_connect))
        cipher.connect = connect
        saved.append((prefetch.PagePrefetcher, "__iter__", real_iter))
        prefetch.PagePrefetcher.__iter__ = timed_iter  # type: ignore[method-assign]
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


@contextmanager
def profiled(profiles: dict[str, cProfile.Profile]) -> Iterator[None]:
    """cProfile in the calling thread and in the prefetch thread."""
    from offline_addon.sync import prefetch

    real_run = prefetch.PagePrefetcher._run

    def run(self: Any) -> None:
        prof = profiles.setdefault("offline-prefetch", cProfile.Profile())
        prof.enable()
        try:
            real_run(self)
        finally:
            prof.disable()

    main = profiles.setdefault("MainThread", cProfile.Profile())
    prefetch.PagePrefetcher._run = run  # type: ignore[method-assign]
    main.enable()
    try:
        yield
    finally:
        main.disable()
        prefetch.PagePrefetcher._run = real_run  # type: ignore[method-assign]


def _sync(who: Login, folder: Path) -> tuple[float, float]:
    """One first sync; (wall seconds, process CPU seconds)."""
    cpu0 = time.process_time()
    result, seconds = engine.engine_sync(folder, who, create=True)
    if result.outcome != "synced":
        raise RuntimeError(f"the sync said {result.outcome}")
    return seconds, time.process_time() - cpu0


def _small_syncs(fast: FeedServerProcess, who: Login, folder: Path, syncs: int) -> str:
    """``syncs`` times: 100 changes on the server, one sync of the open copy, by section."""
    if syncs <= 0:
        return ""
    sections = Sections()
    walls = []
    with instrumented(sections):
        copy, _ = engine.open_copy(folder, who)
        client = engine.sync_client(who)
        sections.data.clear()  # the opening is not part of the syncs
        try:
            for _ in range(syncs):
                fast.change(who.database, update=100)
                result, seconds = engine.engine_sync(
                    folder, who, create=False, copy=copy, client=client
                )
                if result.changed != 100:
                    raise RuntimeError(f"expected 100 changes, got {result}")
                walls.append(seconds)
        finally:
            client.close()
            copy.close()
    walls.sort()
    total = sum(walls)
    return (
        f"## {syncs} syncs of 100 changes into the open copy\n\n"
        f"median {walls[len(walls) // 2] * 1000:.1f} ms, max {walls[-1] * 1000:.1f} ms; "
        "sections are totals over all syncs (µs/record = per changed record):\n\n"
        + section_table(sections, total, syncs * 100)
    )


def section_table(sections: Sections, wall: float, records: int) -> str:
    rows = sorted(sections.data.items(), key=lambda kv: -kv[1].cpu)
    lines = [
        "| thread | section | calls | wall s | CPU s | CPU µs/record | share of sync wall |",
        "|---|---|---|---|---|---|---|",
    ]
    for (thread, name), s in rows:
        if s.wall < 0.001 and s.cpu < 0.001:
            continue
        lines.append(
            f"| {thread} | {name} | {s.calls} | {s.wall:.3f} | {s.cpu:.3f} | "
            f"{s.cpu / records * 1e6:.1f} | {s.cpu / wall:.0%} |"
        )
    return "\n".join(lines)


def _top(prof: cProfile.Profile, count: int) -> str:
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(count)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profiling", description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--kind", choices=("realistic", "small"), default="realistic")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--small-syncs",
        type=int,
        default=0,
        metavar="K",
        help="also K syncs of 100 changes into the copy, kept open, by section",
    )
    parser.add_argument(
        "--no-gzip",
        action="store_true",
        help="serve pages uncompressed (the reference server gzips them)",
    )
    args = parser.parse_args(argv)
    kind: Kind = args.kind
    limit = engine.page_limit()
    with (
        FeedServerProcess(
            [(kind, args.size)],
            limits=[limit],
            username=BENCH_USER,
            password=BENCH_PASSWORD,
            gzip=not args.no_gzip,
        ) as fast,
        tempfile.TemporaryDirectory() as tmp,
        ExitStack(),
    ):
        who = login(fast.url, database_name(kind, args.size), BENCH_USER, BENCH_PASSWORD, CLIENT_ID)
        plain = plain_first_sync(who, Path(tmp) / "plain.db", limit, index=False)
        indexed = plain_first_sync(who, Path(tmp) / "indexed.db", limit, index=True)
        wall, cpu = _sync(who, Path(tmp) / "a")
        sections = Sections()
        with instrumented(sections):
            wall_i, cpu_i = _sync(who, Path(tmp) / "b")
        profiles: dict[str, cProfile.Profile] = {}
        with profiled(profiles):
            wall_p, _ = _sync(who, Path(tmp) / "c")
        small = _small_syncs(fast, who, Path(tmp) / "a", args.small_syncs)
    n = args.size
    text = (
        f"# First sync of {n:,} {kind} records, fast feed server, page limit {limit}, "
        f"{'uncompressed' if args.no_gzip else 'gzipped'} pages\n\n"
        f"- add-on: {wall:.2f} s wall = {n / wall:,.0f} records/s, process CPU {cpu:.2f} s "
        f"({cpu / wall:.0%} of wall)\n"
        f"- plain loop: {plain.seconds:.2f} s ({n / plain.seconds:,.0f}/s); plain loop + "
        f"index: {indexed.seconds:.2f} s ({n / indexed.seconds:,.0f}/s)\n"
        f"- with sections: {wall_i:.2f} s wall, CPU {cpu_i:.2f} s; under cProfile: "
        f"{wall_p:.2f} s\n\n"
        "Sections (wall and the CPU of the thread that ran them; nested sections are taken "
        "out of their parent; shares are of the instrumented sync's wall time):\n\n"
        f"{section_table(sections, wall_i, n)}\n"
    )
    if small:
        text += f"\n{small}\n"
    for thread, prof in profiles.items():
        text += f"\n## cProfile, thread {thread}, top {args.top} by own time\n\n```\n"
        text += _top(prof, args.top) + "```\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

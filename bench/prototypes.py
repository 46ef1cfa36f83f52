"""Scratch prototypes of the product proposals, measured without changing ``offline_addon/``.

``python -m bench.prototypes storage [--size N]``
    The storage side of a first sync alone: every page is fetched and validated first (by
    the add-on's own client), then written into fresh copies made by the add-on
    (``OfflineCopy.create``, same schema and pragmas) in several ways: as the add-on does
    today (``apply_page`` per page, then ``optimize``), records only, and records first with
    the index built once at the end (in SQL from the stored fields, or from Python in one
    ``executemany``). Each variant's search results are compared with today's.

``python -m bench.prototypes python [--size N]``
    The Python-side costs of a first sync per record: JSON decoding, validation (today's, and
    a leaner loop over the same rules), the fields' JSON for storage, the digest, the plan.

``python -m bench.prototypes small-syncs [--size N] [--syncs K]``
    Where the slow small syncs come from: a synced copy of N records gets K pages of 100
    changed records each (fetched once from the feed server, so every variant applies the
    very same pages to its own copy of the same file), timed per page with ``apply_page``
    and the settings of each variant: as today, WAL checkpoints moved to idle time, FTS5
    merges moved to idle time, both.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import engine
from bench.baseline import Login, login
from bench.dataset import BENCH_PASSWORD, BENCH_USER, CLIENT_ID, database_name
from bench.feedserver import FeedServerProcess
from bench.stats import percentile

_TERMS = ("payroll", "stulo", "vpn 0042", "example", "ACC", "zzzz")


@contextmanager
def _server(size: int, limit: int) -> Iterator[tuple[FeedServerProcess, Login]]:
    with FeedServerProcess(
        [("realistic", size)], limits=[limit], username=BENCH_USER, password=BENCH_PASSWORD
    ) as fast:
        yield (
            fast,
            login(
                fast.url, database_name("realistic", size), BENCH_USER, BENCH_PASSWORD, CLIENT_ID
            ),
        )


def _pages(who: Login, limit: int, start: str | None = None) -> list[tuple[str | None, Any]]:
    """Every (from_cursor, validated page) from ``start`` to the end, by the add-on's client."""
    out = []
    with engine.sync_client(who) as client:
        cursor = start
        while True:
            page = client.changes(who.database, cursor, limit)
            out.append((cursor, page))
            cursor = page.next_cursor
            if not page.has_more:
                return out


def _fresh_copy(folder: Path, who: Login) -> Any:
    from offline_addon.storage.offline_copy import CopyIdentity, OfflineCopy

    identity = CopyIdentity(who.server_url, who.database, who.username, who.user_id, who.client_id)
    return OfflineCopy.create(engine.paths_for(folder, who), who.password, identity)


def _contact() -> Any:
    from offline_addon.storage.offline_copy import Contact

    return Contact(time.time(), time.time(), 7 * 86400)


# --- storage ---------------------------------------------------------------------------------

_BODY_SQL = (
    "(SELECT group_concat(value, ' ') FROM json_each(records.fields)"
    " WHERE lower(key) <> 'password')"
)


def _today(copy: Any, pages: list[tuple[str | None, Any]]) -> dict[str, float]:
    contact = _contact()
    started = time.perf_counter()
    for cursor, page in pages:
        copy.apply_page(page, cursor, contact)
    loaded = time.perf_counter()
    copy.compact_search_index()
    done = time.perf_counter()
    return {"load": loaded - started, "index": 0.0, "optimize": done - loaded}


def _records_only(db: Any, pages: list[tuple[str | None, Any]], per_txn: int) -> float:
    """Insert every page's records (explicit rowids, as the add-on), ``per_txn`` pages per
    transaction; returns seconds."""
    started = time.perf_counter()
    rowid = 1
    for n, (_cursor, page) in enumerate(pages):
        if n % per_txn == 0:
            db.execute("BEGIN IMMEDIATE")
        rows = []
        for change in page.changes:
            r = change.record
            rows.append((rowid, r.id, r.rev, r.name, r.fields_json, r.updated_at))
            rowid += 1
        db.executemany(
            "INSERT INTO records(rowid, id, rev, name, fields, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        if n % per_txn == per_txn - 1 or n == len(pages) - 1:
            db.execute("COMMIT")
    return time.perf_counter() - started


def _index_in_sql(db: Any) -> float:
    started = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        f"INSERT INTO records_fts(rowid, name, body) SELECT rowid, name, {_BODY_SQL}"  # noqa: S608
        " FROM records"
    )
    db.execute("INSERT INTO records_name_trigrams(rowid, name) SELECT rowid, name FROM records")
    db.execute("COMMIT")
    return time.perf_counter() - started


def _index_from_python(db: Any, pages: list[tuple[str | None, Any]]) -> float:
    from offline_addon.protocol.answers import index_text

    started = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    rowid = 1
    fts, names = [], []
    for _cursor, page in pages:
        for change in page.changes:
            r = change.record
            fts.append((rowid, r.name, index_text(r.fields)))
            names.append((rowid, r.name))
            rowid += 1
    db.executemany("INSERT INTO records_fts(rowid, name, body) VALUES (?, ?, ?)", fts)
    db.executemany("INSERT INTO records_name_trigrams(rowid, name) VALUES (?, ?)", names)
    db.execute("COMMIT")
    return time.perf_counter() - started


def _bulk_settings(db: Any, on: bool) -> None:
    """FTS5 for a bulk load: a 64 MiB pending-terms hash (default 1 MiB), so that each flush
    writes one big segment, and no automatic merging (``optimize`` merges once at the end);
    ``on=False`` restores the defaults (they are stored in the file)."""
    for table in ("records_fts", "records_name_trigrams"):
        for key, value in (
            ("hashsize", 64 << 20 if on else 1 << 20),
            ("automerge", 0 if on else 4),
        ):
            db.execute(f"INSERT INTO {table}({table}, rank) VALUES (?, ?)", (key, value))  # noqa: S608


def _today_tuned(copy: Any, pages: list[tuple[str | None, Any]]) -> dict[str, float]:
    _bulk_settings(copy._db, True)
    got = _today(copy, pages)
    _bulk_settings(copy._db, False)
    return got


def _once_tuned(copy: Any, pages: list[tuple[str | None, Any]]) -> dict[str, float]:
    load = _records_only(copy._db, pages, 8)
    _bulk_settings(copy._db, True)
    index = _index_from_python(copy._db, pages)
    optimize = _optimize(copy._db)
    _bulk_settings(copy._db, False)
    return {"load": load, "index": index, "optimize": optimize}


def _optimize(db: Any) -> float:
    started = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO records_fts(records_fts) VALUES ('optimize')")
    db.execute("INSERT INTO records_name_trigrams(records_name_trigrams) VALUES ('optimize')")
    db.execute("COMMIT")
    return time.perf_counter() - started


def _segments(db: Any) -> str:
    """Index segments per table (FTS5's structure record), to see what is left to merge."""
    out = []
    for table in ("records_fts", "records_name_trigrams"):
        rows = db.execute(f"SELECT count(*) FROM {table}_data").fetchone()[0]  # noqa: S608
        out.append(f"{table}: {rows} data rows")
    return ", ".join(out)


def storage(size: int, limit: int, runs: int) -> None:
    with _server(size, limit) as (_fast, who):
        started = time.perf_counter()
        pages = _pages(who, limit)
        print(
            f"{size:,} records: fetched and validated {len(pages)} pages in "
            f"{time.perf_counter() - started:.2f} s (not counted below)\n"
        )
    variants: dict[str, Callable[[Any, Any], dict[str, float]]] = {
        "today: apply_page per page (+ optimize)": _today,
        "records only, 1 page per transaction": lambda c, p: {"load": _records_only(c._db, p, 1)},
        "records only, 1 transaction": lambda c, p: {"load": _records_only(c._db, p, 10**9)},
        "records (1 page/txn) then index once in SQL": lambda c, p: {
            "load": _records_only(c._db, p, 1),
            "index": _index_in_sql(c._db),
        },
        "records (1 page/txn) then index once in SQL, + optimize": lambda c, p: {
            "load": _records_only(c._db, p, 1),
            "index": _index_in_sql(c._db),
            "optimize": _optimize(c._db),
        },
        "records (8 pages/txn) then index once from Python": lambda c, p: {
            "load": _records_only(c._db, p, 8),
            "index": _index_from_python(c._db, p),
        },
        "today, FTS5 tuned for bulk (hashsize 64M, automerge 0) + optimize": _today_tuned,
        "records (8 pages/txn), index once from Python, tuned + optimize": _once_tuned,
    }
    reference: dict[str, set[str]] = {}
    print("| variant | load s | index s | optimize s | total s | records/s | index size |")
    print("|---|---|---|---|---|---|---|")
    for name, fn in variants.items():
        totals = []
        parts: dict[str, list[float]] = {}
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                copy = _fresh_copy(Path(tmp), who)
                try:
                    got = fn(copy, pages)
                    totals.append(sum(got.values()))
                    for k, v in got.items():
                        parts.setdefault(k, []).append(v)
                    if "only" not in name:
                        found = {
                            t: {r.record_id for r in copy.search(t, limit=size)} for t in _TERMS
                        }
                        for t, ids in found.items():
                            if reference.setdefault(t, ids) != ids:
                                raise RuntimeError(f"{name}: search {t!r} differs from today's")
                    seg = _segments(copy._db)
                finally:
                    copy.close()
        med = {k: statistics.median(v) for k, v in parts.items()}
        total = statistics.median(totals)
        print(
            f"| {name} | {med.get('load', 0):.2f} | {med.get('index', 0):.2f} | "
            f"{med.get('optimize', 0):.2f} | {total:.2f} | {size / total:,.0f} | {seg} |"
        )


# --- python ----------------------------------------------------------------------------------


def _lean_changes(items: list[Any]) -> int:
    """The same rules as ``answers.check_change``/``check_record`` in one flat loop, without
    building the values: what validation alone costs when written for speed."""
    import math

    n = 0
    for item in items:
        if type(item) is not dict:
            raise ValueError("change")
        cid = item.get("id")
        op = item.get("op")
        if type(cid) is not str or not 0 < len(cid) <= 256:
            raise ValueError("id")
        if op == "upsert":
            rev = item.get("rev")
            rec = item.get("record")
            if type(rev) is not int or rev < 1 or type(rec) is not dict:
                raise ValueError("upsert")
            fields = rec.get("fields")
            at = rec.get("updated_at")
            if (
                rec.get("id") != cid
                or rec.get("rev") != rev
                or type(rec.get("name")) is not str
                or type(fields) is not dict
                or (type(at) is not float and type(at) is not int)
                or not math.isfinite(at)
            ):
                raise ValueError("record")
            for k, v in fields.items():
                if type(k) is not str or type(v) is not str:
                    raise ValueError("fields")
        elif op != "delete" or item.get("reason") not in ("deleted", "revoked", "sealed"):
            raise ValueError("op")
        n += 1
    return n


def python_costs(size: int, limit: int) -> None:
    import gzip

    from offline_addon.protocol import answers
    from offline_addon.protocol.answers import index_text
    from offline_addon.protocol.digest import digest_after, make_digest
    from offline_addon.protocol.page_plan import plan_page

    with _server(size, limit) as (_fast, who):
        import requests

        bodies = []
        url = f"{who.server_url}/api/v1/databases/{who.database}/offline/changes"
        headers = {"Authorization": f"Bearer {who.token}", "Accept-Encoding": "identity"}
        cursor = None
        with requests.Session() as http:
            while True:
                params: dict[str, Any] = {"limit": limit}
                if cursor:
                    params["cursor"] = cursor
                body = http.get(url, params=params, headers=headers, timeout=60).content
                bodies.append(body)
                tail = json.loads(b"{" + body[body.rindex(b'"next_cursor"') :])
                cursor = tail["next_cursor"]
                if not tail["has_more"]:
                    break
    zipped = [gzip.compress(b, 1, mtime=0) for b in bodies]
    decoded = [json.loads(b) for b in bodies]
    pages = [answers.load_page(d) for d in decoded]
    records = [c.record for p in pages for c in p.changes if c.record is not None]
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def each(fn: Callable[[], object]) -> float:
        best = []
        for _ in range(3):
            started = time.perf_counter()
            fn()
            best.append(time.perf_counter() - started)
        return min(best)

    costs = {
        "gunzip (zlib, level-1 pages)": each(lambda: [gzip.decompress(z) for z in zipped]),
        "decode: json.loads": each(lambda: [json.loads(b) for b in bodies]),
        "validate today: load_page (all of it)": each(
            lambda: [answers.load_page(d) for d in decoded]
        ),
        "  of which fields_json (json encode of fields)": each(
            lambda: [encode(r.fields) for r in records]
        ),
        "  of which the change loop (check_change)": each(
            lambda: [answers.check_change(c) for d in decoded for c in d["changes"]]
        ),
        "validate lean: the same rules, one flat loop, no values": each(
            lambda: [_lean_changes(d["changes"]) for d in decoded]
        ),
        "digest: digest_after per page": each(
            lambda: [digest_after(make_digest(0, 0), {}, plan_page({}, p.changes)) for p in pages]
        ),
        "plan: plan_page per page": each(lambda: [plan_page({}, p.changes) for p in pages]),
        "search_text per record": each(lambda: [index_text(r.fields) for r in records]),
    }
    n = len(records)
    print(
        f"{n:,} records in {len(bodies)} pages of {sum(map(len, bodies)) / len(bodies) / 1e6:.2f}"
        f" MB ({sum(map(len, zipped)) / len(zipped) / 1e6:.2f} MB gzipped); best of 3\n"
    )
    print("| step | s per first sync | µs per record |")
    print("|---|---|---|")
    for name, seconds in costs.items():
        print(f"| {name} | {seconds:.3f} | {seconds / n * 1e6:.1f} |")


# --- small syncs -----------------------------------------------------------------------------


def _idle_checkpoint(db: Any) -> None:
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _idle_merge(db: Any) -> None:
    for table in ("records_fts", "records_name_trigrams"):
        db.execute(f"INSERT INTO {table}({table}, rank) VALUES ('merge', 500)")  # noqa: S608


def small_syncs(size: int, limit: int, syncs: int) -> None:
    from offline_addon.storage.offline_copy import OfflineCopy

    with _server(size, limit) as (fast, who), tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        engine.engine_sync(base, who, create=True)  # closed: WAL checkpointed into the file
        paths = engine.paths_for(base, who)
        start = OfflineCopy.open(paths, who.password)
        cursor = start.cursor
        start.close()
        pages = []
        for _ in range(syncs):
            fast.change(who.database, update=100)
            [(from_cursor, page)] = _pages(who, limit, cursor)
            pages.append((from_cursor, page))
            cursor = page.next_cursor
        print(
            f"{size:,} records, {syncs} pages of 100 updated records (apply_page only; a sync "
            "adds head + GET, ~1-2 ms)\n"
        )
        print("| variant | median ms | p95 ms | max ms | idle work ms (total) |")
        print("|---|---|---|---|---|")
        variants: dict[str, tuple[Callable[[Any], object] | None, list[Callable[[Any], None]]]] = {
            "today": (None, []),
            "checkpoint at idle (wal_autocheckpoint=0)": (
                lambda db: db.execute("PRAGMA wal_autocheckpoint = 0").fetchall(),
                [_idle_checkpoint],
            ),
            "FTS5 merge at idle (automerge=0, 'merge' between syncs)": (
                lambda db: [
                    db.execute(f"INSERT INTO {t}({t}, rank) VALUES ('automerge', 0)")  # noqa: S608
                    for t in ("records_fts", "records_name_trigrams")
                ],
                [_idle_merge],
            ),
            "both at idle": (
                lambda db: (
                    db.execute("PRAGMA wal_autocheckpoint = 0").fetchall(),
                    [
                        db.execute(f"INSERT INTO {t}({t}, rank) VALUES ('automerge', 0)")  # noqa: S608
                        for t in ("records_fts", "records_name_trigrams")
                    ],
                ),
                [_idle_merge, _idle_checkpoint],
            ),
        }
        from bench.profiling import Sections, instrumented, section_table

        sections = Sections()
        for name, (setup, idle) in variants.items():
            folder = Path(tmp) / f"v{len(name)}"
            shutil.copytree(base, folder)
            if name == "today":  # the statements of today's small syncs, timed
                with instrumented(sections):
                    copy = OfflineCopy.open(engine.paths_for(folder, who), who.password)
            else:
                copy = OfflineCopy.open(engine.paths_for(folder, who), who.password)
            times, idle_ms = [], 0.0
            try:
                if setup is not None:
                    setup(copy._db)
                contact = _contact()
                for from_cursor, page in pages:
                    started = time.perf_counter()
                    outcome = copy.apply_page(page, from_cursor, contact)
                    times.append((time.perf_counter() - started) * 1000)
                    if outcome.changed != 100:
                        raise RuntimeError(f"{name}: {outcome}")
                    started = time.perf_counter()
                    for work in idle:
                        work(copy._db)
                    idle_ms += (time.perf_counter() - started) * 1000
            finally:
                copy.close()
            print(
                f"| {name} | {statistics.median(times):.1f} | {percentile(times, 95):.1f} | "
                f"{max(times):.1f} | {idle_ms:.0f} |"
            )
        print(f"\nToday's {syncs} small syncs by statement (totals; the connection was timed):\n")
        print(section_table(sections, sum(s.wall for s in sections.data.values()), syncs * 100))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.prototypes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=("storage", "python", "small-syncs"))
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--syncs", type=int, default=50)
    args = parser.parse_args(argv)
    limit = engine.page_limit()
    if args.what == "storage":
        storage(args.size, limit, args.runs)
    elif args.what == "python":
        python_costs(args.size, limit)
    else:
        small_syncs(args.size, limit, args.syncs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

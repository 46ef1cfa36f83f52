"""Feed consistency under concurrent writers: atomic feed rows and paging that skips nothing."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable

from reference_server.admin import Admin
from reference_server.db import db_path
from reference_server.testing import RunningServer
from tests.support.api import ApiClient, apply

N_RECORDS = 240


def _run_threads(*targets: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def guard(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guard(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]


def _admin_writer(srv: RunningServer, ids: list[str], seed: int) -> Callable[[], None]:
    """Touch each id exactly once with a random feed-changing admin operation."""

    def run() -> None:
        rng = random.Random(seed)
        with Admin(srv.data_dir) as admin:
            for rid in ids:
                op = rng.choice(["update", "revoke", "seal", "delete", "grant_bob_only"])
                if op == "update":
                    admin.update_record("demo", rid, fields={"changed": "yes"})
                elif op == "revoke":
                    admin.set_rights("demo", "alice", rid, export=False)
                elif op == "seal":
                    admin.seal_record("demo", rid)
                elif op == "delete":
                    admin.delete_record("demo", rid)
                else:
                    admin.set_rights("demo", "alice", rid, read=False)

    return run


def _api_writer(srv: RunningServer, ids: list[str]) -> Callable[[], None]:
    """Bob saves each id exactly once through the HTTP API."""

    def run() -> None:
        bob = ApiClient(srv.url, "demo").login("bob", "bob-pw")
        try:
            for rid in ids:
                r = bob.http.put(
                    f"{bob.base}/databases/demo/records/{rid}",
                    json={"rev": 1, "name": "saved by bob", "fields": {"p": "2"}},
                )
                assert r.status_code == 200, r.text
        finally:
            bob.close()

    return run


def test_paging_while_writers_commit_skips_nothing_and_repeats_only_changed_records(
    demo: RunningServer, alice: ApiClient
) -> None:
    ids = demo.admin.import_records(
        "demo",
        [{"name": f"R{i}", "fields": {"p": "1"}} for i in range(N_RECORDS)],
        grant={"alice": "rwe", "bob": "rwe"},
    )
    shuffled = random.Random(7).sample(ids, len(ids))
    by_admin, by_api = shuffled[:100], shuffled[100:200]  # the rest stay untouched
    replica: dict[str, int] = {}
    deliveries: Counter[str] = Counter()
    writers_done = threading.Event()

    def reader() -> None:
        cursor: str | None = None
        while True:
            done_before_page = writers_done.is_set()
            r = alice.changes(cursor, limit=9)
            assert r.status_code == 200, r.text
            page = r.json()
            apply(replica, page["changes"])
            deliveries.update(c["id"] for c in page["changes"])
            cursor = page["next_cursor"]
            if not page["has_more"] and done_before_page:
                return

    writers = threading.Thread(
        target=lambda: _run_threads(
            _admin_writer(demo, by_admin, seed=3), _api_writer(demo, by_api)
        )
    )
    writers.start()
    reader_thread = threading.Thread(target=reader)
    reader_thread.start()
    writers.join(timeout=120)
    writers_done.set()
    reader_thread.join(timeout=120)
    assert not reader_thread.is_alive()
    view = demo.admin.exportable_view("demo", "alice")
    assert replica == {rid: rev for rid, (rev, _n, _f) in view.items()}
    # every record changed at most once: at most two deliveries (before and after the change)
    assert max(deliveries.values()) <= 2
    assert all(deliveries[rid] == 1 for rid in shuffled[200:])


def test_every_snapshot_shows_feed_rows_and_their_change_together(
    demo: RunningServer,
) -> None:
    ids = demo.admin.import_records(
        "demo",
        [{"name": f"R{i}", "fields": {}} for i in range(N_RECORDS)],
        grant={"alice": "rwe", "bob": "rwe"},
    )
    alice_id = demo.admin.user_id("alice")
    stop = threading.Event()
    checked = Counter[str]()

    def snapshot_checker() -> None:
        conn = sqlite3.connect(db_path(demo.data_dir), isolation_level=None)
        try:
            while not stop.is_set():
                conn.execute("BEGIN")
                upserts = {
                    r[0]
                    for r in conn.execute(
                        "SELECT record_id FROM feed WHERE user_id = ? AND db = 'demo'"
                        " AND op = 'upsert'",
                        (alice_id,),
                    )
                }
                exportable = {
                    r[0]
                    for r in conn.execute(
                        "SELECT r.id FROM records r JOIN rights g ON g.db = r.db"
                        " AND g.record_id = r.id WHERE g.user_id = ? AND r.db = 'demo'"
                        " AND g.can_read AND g.can_export AND NOT r.sealed",
                        (alice_id,),
                    )
                }
                conn.execute("COMMIT")
                assert upserts == exportable
                checked["snapshots"] += 1
        finally:
            conn.close()

    checker = threading.Thread(target=snapshot_checker)
    checker.start()
    try:
        _run_threads(_admin_writer(demo, ids[:120], seed=5), _api_writer(demo, ids[120:200]))
    finally:
        stop.set()
        checker.join(timeout=60)
    assert checked["snapshots"] > 10


def test_concurrent_stale_updates_let_exactly_one_win(demo: RunningServer) -> None:
    [rid] = demo.admin.import_records(
        "demo", [{"name": "A", "fields": {}}], grant={"alice": "rwe", "bob": "rwe"}
    )
    results: list[int] = []

    def save(user: str) -> Callable[[], None]:
        def run() -> None:
            client = ApiClient(demo.url, "demo").login(user, f"{user}-pw")
            try:
                r = client.http.put(
                    f"{client.base}/databases/demo/records/{rid}",
                    json={"rev": 1, "name": user, "fields": {}},
                )
                results.append(r.status_code)
            finally:
                client.close()

        return run

    _run_threads(save("alice"), save("bob"))
    assert sorted(results) == [200, 409]
    assert demo.admin.list_records("demo")[0][1] == 2

"""What a user's feed holds: exactly the records the user may export, with reasons and digest."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from reference_server.admin import Admin
from reference_server.datadir import init_data_folder
from reference_server.testing import RunningServer
from tests.support.api import ApiClient, apply


def _digest_of(view: dict[str, tuple[int, str, dict[str, str]]]) -> dict[str, object]:
    """The protocol's definition, written out independently of the server's code."""
    total = sum(
        int.from_bytes(hashlib.sha256(f"{rid}:{rev}".encode()).digest(), "big")
        for rid, (rev, _n, _f) in view.items()
    )
    return {"count": len(view), "sum": f"{total % 2**256:064x}", "algorithm": "sha256-sum"}


def _upsert_ids(srv: RunningServer, user: str) -> set[str]:
    return {rid for _s, op, rid, _r, _why in srv.admin.feed_rows("demo", user) if op == "upsert"}


def test_first_sync_delivers_exactly_the_exportable_records_with_content(
    demo: RunningServer, alice: ApiClient
) -> None:
    admin = demo.admin
    ids = admin.import_records(
        "demo",
        [{"name": f"R{i}", "fields": {"password": f"pw{i}"}} for i in range(12)],
        grant={"alice": "rwe"},
    )
    admin.set_rights("demo", "alice", ids[0], export=False)
    admin.set_rights("demo", "alice", ids[1], read=False)
    admin.seal_record("demo", ids[2])
    admin.delete_record("demo", ids[3])
    admin.import_records("demo", [{"name": "other", "fields": {}}], grant={"bob": "rwe"})
    first = alice.changes(limit=5).json()
    # The first page (no cursor) has nothing to delete; later pages may carry deletes, since a
    # record delivered on an earlier page may have left the feed meanwhile.
    assert all(c["op"] == "upsert" for c in first["changes"])
    changes, last = alice.read_all(first["next_cursor"], limit=5)
    changes = first["changes"] + changes
    got = {
        c["id"]: (c["record"]["rev"], c["record"]["name"], c["record"]["fields"])
        for c in changes
        if c["op"] == "upsert"
    }
    assert got == admin.exportable_view("demo", "alice")
    assert set(got) == set(ids[4:])
    assert last["digest"] == _digest_of(got)


def test_rights_seal_and_delete_write_delete_rows_with_reasons(
    demo: RunningServer, alice: ApiClient
) -> None:
    admin = demo.admin
    ids = admin.import_records(
        "demo",
        [{"name": f"R{i}", "fields": {}} for i in range(4)],
        grant={"alice": "rwe", "bob": "rwe"},
    )
    _, page = alice.read_all()
    admin.set_rights("demo", "alice", ids[0], export=False)
    admin.set_rights("demo", "alice", ids[1], read=False)
    admin.seal_record("demo", ids[2])
    admin.delete_record("demo", ids[3])
    changes, _ = alice.read_all(page["next_cursor"])
    assert [(c["op"], c["id"], c["reason"]) for c in changes] == [
        ("delete", ids[0], "revoked"),
        ("delete", ids[1], "revoked"),
        ("delete", ids[2], "sealed"),
        ("delete", ids[3], "deleted"),
    ]
    # bob lost the sealed and the deleted record in the same changes
    bob_deletes = {
        rid: why for _s, op, rid, _r, why in admin.feed_rows("demo", "bob") if op == "delete"
    }
    assert bob_deletes == {ids[2]: "sealed", ids[3]: "deleted"}


def test_grant_and_unseal_write_upserts(demo: RunningServer, alice: ApiClient) -> None:
    admin = demo.admin
    a, b = admin.import_records(
        "demo", [{"name": "A", "fields": {}}, {"name": "B", "fields": {}}], grant={"alice": "r"}
    )
    admin.seal_record("demo", b)
    _, page = alice.read_all()
    assert page["digest"]["count"] == 0
    admin.set_rights("demo", "alice", a, export=True)
    admin.set_rights("demo", "alice", b, export=True)
    assert _upsert_ids(demo, "alice") == {a}
    admin.unseal_record("demo", b)
    changes, last = alice.read_all(page["next_cursor"])
    assert [(c["op"], c["id"]) for c in changes] == [("upsert", a), ("upsert", b)]
    assert last["digest"]["count"] == 2


def test_change_that_keeps_exportability_writes_no_row(demo: RunningServer) -> None:
    [rid] = demo.admin.import_records("demo", [{"name": "A", "fields": {}}], grant={"alice": "rwe"})
    before = demo.admin.feed_rows("demo", "alice")
    demo.admin.set_rights("demo", "alice", rid, write=False)
    assert demo.admin.feed_rows("demo", "alice") == before


def test_update_moves_the_single_row_to_a_new_seq(demo: RunningServer) -> None:
    ids = demo.admin.import_records(
        "demo", [{"name": "A", "fields": {}}, {"name": "B", "fields": {}}], grant={"alice": "rwe"}
    )
    demo.admin.update_record("demo", ids[0], fields={"password": "new"})
    rows = demo.admin.feed_rows("demo", "alice")
    assert [(op, rid, rev) for _s, op, rid, rev, _w in rows] == [
        ("upsert", ids[1], 1),
        ("upsert", ids[0], 2),
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_admin_changes_keep_feed_equal_to_exportable_view(
    demo: RunningServer, alice: ApiClient, seed: int
) -> None:
    rng = random.Random(seed)
    admin = demo.admin
    live = admin.import_records(
        "demo", [{"name": f"R{i}", "fields": {}} for i in range(15)], grant={"alice": "rwe"}
    )
    replica: dict[str, int] = {}
    changes, page = alice.read_all(limit=4)
    apply(replica, changes)
    for step in range(60):
        action = rng.choice(["rights", "rights", "seal", "unseal", "update", "delete", "create"])
        if action == "create" or not live:
            live += admin.import_records(
                "demo",
                [{"name": f"N{step}", "fields": {}}],
                grant={
                    "alice": rng.choice(["rwe", "re", "r", "w"]),
                    "bob": rng.choice(["rwe", "r"]),
                },
            )
            continue
        rid = rng.choice(live)
        if action == "rights":
            admin.set_rights(
                "demo", "alice", rid, read=rng.random() < 0.7, export=rng.random() < 0.7
            )
        elif action == "seal":
            admin.seal_record("demo", rid)
        elif action == "unseal":
            admin.unseal_record("demo", rid)
        elif action == "update":
            admin.update_record("demo", rid, fields={"n": str(step)})
        else:
            admin.delete_record("demo", rid)
            live.remove(rid)
        view = admin.exportable_view("demo", "alice")
        assert _upsert_ids(demo, "alice") == set(view), f"feed drifted after {action}"
        maintained = admin.feed_digest("demo", "alice")
        assert maintained == admin.recompute_feed_digest("demo", "alice"), action
        assert maintained == _digest_of(view), f"digest drifted after {action}"
        assert admin.feed_digest("demo", "bob") == admin.recompute_feed_digest("demo", "bob")
        if step % 7 == 0:
            changes, page = alice.read_all(page["next_cursor"], limit=3)
            apply(replica, changes)
            assert replica == {rid: rev for rid, (rev, _n, _f) in view.items()}
            assert page["digest"] == _digest_of(view)
    fresh, last = alice.read_all(limit=7)
    final = admin.exportable_view("demo", "alice")
    fresh_replica: dict[str, int] = {}
    apply(fresh_replica, fresh)
    assert fresh_replica == {r: v[0] for r, v in final.items()}
    assert last["digest"] == _digest_of(final)


def test_empty_feed_has_empty_digest_and_a_usable_cursor(
    demo: RunningServer, alice: ApiClient
) -> None:
    r = alice.changes()
    body = r.json()
    assert body["changes"] == []
    assert body["has_more"] is False
    assert body["remaining"] == 0
    assert body["digest"] == {"count": 0, "sum": "0" * 64, "algorithm": "sha256-sum"}
    again = alice.changes(body["next_cursor"]).json()
    assert again["changes"] == []


def test_remaining_counts_rows_after_each_page(demo: RunningServer, alice: ApiClient) -> None:
    demo.admin.import_records(
        "demo", [{"name": f"R{i}", "fields": {}} for i in range(10)], grant={"alice": "rwe"}
    )
    first = alice.changes(limit=4).json()
    assert (len(first["changes"]), first["remaining"], first["has_more"]) == (4, 6, True)
    assert "digest" not in first
    second = alice.changes(first["next_cursor"], limit=4).json()
    assert second["remaining"] == 2
    third = alice.changes(second["next_cursor"], limit=4).json()
    assert (len(third["changes"]), third["remaining"], third["has_more"]) == (2, 0, False)
    assert third["digest"]["count"] == 10


def test_a_server_file_from_before_maintained_digests_gets_them_at_open(tmp_path: Path) -> None:
    data = init_data_folder(tmp_path / "srv")
    with Admin(data) as admin:
        admin.create_database("demo", offline_allowed=True)
        admin.create_user("alice", "alice-pw", offline_right=True)
        ids = admin.import_records(
            "demo", [{"name": f"R{i}", "fields": {}} for i in range(9)], grant={"alice": "rwe"}
        )
        admin.update_record("demo", ids[0], name="R0 again")
        admin.delete_record("demo", ids[1])
        expected = _digest_of(admin.exportable_view("demo", "alice"))
        # Make the file look like one written by a server without maintained digests.
        with admin.connection as conn:
            conn.execute("DROP TABLE feed_digests")
            conn.execute("DELETE FROM meta WHERE key = 'feed_digests_ready'")
    with Admin(data) as admin:
        assert admin.feed_digest("demo", "alice") == expected
        assert admin.recompute_feed_digest("demo", "alice") == expected

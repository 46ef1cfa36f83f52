"""The bench's feed server speaks the documented protocol, and the real add-on syncs from it.

Run at the start of every ``python -m bench`` (its own small database, which it changes), or
alone: ``python -m bench.selfcheck``. It checks:

- every answer it provokes against ``docs/sync-api.yaml`` (status documented, body valid
  against the schema, documented headers present), when ``jsonschema`` and ``yaml`` are
  installed (``make venv`` installs them);
- a first sync through the public API (``OfflineCopies.create``) holds exactly the generated
  records: count, content of a sample, and the digest recomputed from the file against one
  computed here from the generated ids (so the server's digest is checked, not trusted);
- after updates, deletes and inserts on the server, ``sync_now`` reports them and the copy's
  digest equals the server's; then a sync with nothing new says "unchanged";
- the plain loops hold the same records, and the plain loop + index finds what the add-on finds.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

from bench import engine
from bench.baseline import Login, login, open_plain, plain_first_sync
from bench.dataset import (
    BENCH_PASSWORD,
    BENCH_USER,
    CLIENT_ID,
    Kind,
    database_name,
    make_records,
    record_ids,
)
from bench.feedserver import FeedServerProcess
from bench.stats import Figure

CHECK_DB: tuple[Kind, int] = ("realistic", 1_234)  # a size no other figure uses
SPEC = Path(__file__).resolve().parent.parent / "docs" / "sync-api.yaml"


class _Spec:
    """Validates answers against the OpenAPI document."""

    def __init__(self) -> None:
        import yaml

        self.doc: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def check(self, resp: requests.Response) -> None:
        import jsonschema

        method = (resp.request.method or "").lower()
        path = (resp.request.path_url or "").split("?")[0].removeprefix("/api/v1")
        for template, item in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path) and method in item:
                operation = item[method]
                break
        else:
            raise AssertionError(f"{method} {path} is not documented")
        status = str(resp.status_code)
        if status not in operation["responses"]:
            raise AssertionError(f"{operation['operationId']}: {status} is not documented")
        documented = self._deref(operation["responses"][status])
        content = documented.get("content")
        if content is None:
            if resp.content:
                raise AssertionError(f"{operation['operationId']} {status} must have no body")
        else:
            [(mime, media)] = content.items()
            if resp.headers.get("Content-Type") != mime:
                raise AssertionError(f"{operation['operationId']} {status}: not {mime}")
            jsonschema.Draft202012Validator(
                {**media["schema"], "components": self.doc["components"]}
            ).validate(resp.json())
        for header, described in documented.get("headers", {}).items():
            if header not in resp.headers:
                raise AssertionError(f"{operation['operationId']} {status}: no {header} header")
            jsonschema.validate(resp.headers[header], self._deref(described)["schema"])


def _spec_checks(who: Login, limit: int) -> int:
    """Provoke each answer of the feed server once and validate it; returns how many."""
    try:
        spec = _Spec()
    except ImportError:
        return 0
    base = f"{who.server_url}/api/v1/databases/{who.database}/offline"
    auth = {
        "Authorization": f"Bearer {who.token}",
        "X-Client-Id": who.client_id,
        "Accept-Encoding": "gzip",
    }
    answers = []
    with requests.Session() as http:
        answers.append(http.get(f"{base}/policy", headers=auth))
        head = http.get(f"{base}/head", headers=auth)
        answers.append(head)
        answers.append(
            http.get(f"{base}/head", headers={**auth, "If-None-Match": head.headers["ETag"]})
        )
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit // 3 + 1}
            if cursor:
                params["cursor"] = cursor
            page = http.get(f"{base}/changes", params=params, headers=auth)
            answers.append(page)
            body = page.json()
            cursor = body["next_cursor"]
            if not body["has_more"]:
                break
        answers.append(http.get(f"{base}/changes", params={"limit": 0}, headers=auth))
        answers.append(http.get(f"{base}/changes", params={"cursor": "garbled"}, headers=auth))
        answers.append(http.get(f"{base}/changes", headers={"X-Client-Id": who.client_id}))
        report = {"record_count": 3, "pending_changes": 0, "unpushed_log_entries": 0}
        answers.append(
            http.put(
                f"{base}/copies/{who.client_id}", json={**report, "complete": True}, headers=auth
            )
        )
        answers.append(http.delete(f"{base}/copies/{who.client_id}", headers=auth))
    expected = [200, 200, 304] + [200] * (len(answers) - 8) + [400, 400, 401, 200, 204]
    got = [a.status_code for a in answers]
    if got != expected:
        raise AssertionError(f"statuses {got}, expected {expected}")
    if head.headers.get("Date") is None or answers[2].headers.get("Date") is None:
        raise AssertionError("head answers carry no Date header")
    for answer in answers:
        spec.check(answer)
    return len(answers)


def _sync_checks(server: FeedServerProcess, who: Login, limit: int, work: Path) -> int:
    """The add-on through its public API, and the plain loops, against the feed server."""
    from offline_addon import AddonSettings, OfflineCopies
    from offline_addon.protocol.digest import digest_of

    kind, count = CHECK_DB
    ids = record_ids(count)
    records = make_records(kind, count)
    checks = 0
    copies = OfflineCopies(AddonSettings(database_path=str(work / "api")))
    try:
        session = engine.session_of(who)
        first = copies.create(session)
        _expect(first.outcome == "synced" and first.added == count, f"first sync: {first}")
        copy, _ = engine.open_copy(work / "api", who)
        try:
            want = digest_of((rid, 1) for rid in ids)
            _expect(copy.recompute_digest() == want == copy.digest(), "digest after first sync")
            for i in (0, count // 2, count - 1):
                view = copy.get(ids[i])
                _expect(
                    view is not None
                    and view.name == records[i]["name"]
                    and dict(view.fields) == records[i]["fields"],
                    f"record {i} content",
                )
            checks += 5
        finally:
            copy.close()
        state = server.change(who.database, update=10, delete=3, insert=4)
        again = copies.sync_now(session)
        _expect((again.added, again.changed, again.removed) == (4, 10, 3), f"changes: {again}")
        _expect(again.record_count == count + 1 == state["count"], "count after changes")
        copy, _ = engine.open_copy(work / "api", who)
        try:
            held = copy.digest()
            _expect(
                held.count == state["digest"]["count"]
                and held.sum == state["digest"]["sum"]
                and copy.recompute_digest() == held,
                "digest after changes",
            )
        finally:
            copy.close()
        quiet = copies.sync_now(session)
        _expect(quiet.outcome == "unchanged", f"nothing new: {quiet.outcome}")
        checks += 4
    finally:
        copies.shutdown()
    for index in (False, True):
        run = plain_first_sync(who, work / f"plain-{index}.db", limit, index=index)
        _expect(run.records == count + 1, f"plain loop (index {index}) wrote {run.records}")
        checks += 1
    conn = open_plain(work / "plain-True.db", who.password, index=True, create=False)
    copy, _ = engine.open_copy(work / "api", who)
    try:
        for term in ("payroll", "stulo", records[7]["fields"]["notes"].split()[1]):
            theirs = {
                r[0]
                for r in conn.execute(
                    "SELECT id FROM records WHERE rowid IN (SELECT rowid FROM records_fts"
                    " WHERE records_fts MATCH ?)",
                    (f'"{term}"*',),
                )
            }
            mine = {r.record_id for r in copy.search(term, limit=count + 10)}
            _expect(bool(theirs) and theirs <= mine, f"search {term!r}")
            checks += 1
    finally:
        copy.close()
        conn.close()
    return checks


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(f"feed server self-check failed: {what}")


def self_check(server: FeedServerProcess, limit: int, work: Path) -> Figure:
    """All checks against ``server`` (which must hold :data:`CHECK_DB`); a Figure row."""
    who = login(server.url, database_name(*CHECK_DB), BENCH_USER, BENCH_PASSWORD, CLIENT_ID)
    answers = _spec_checks(who, limit)
    syncs = _sync_checks(server, who, limit, work)
    return Figure(
        "feed server self-check",
        float(answers + syncs),
        "checks",
        target="all pass",
        ok=True,
        note=f"{answers} answers valid against docs/sync-api.yaml"
        + ("" if answers else " (jsonschema/yaml missing: not checked)")
        + f"; {syncs} sync checks (public API: count, content, digest vs the generated ids, "
        "changes, 304; plain loops agree)",
    )


def main() -> int:
    from bench.engine import page_limit

    limit = page_limit()
    with (
        FeedServerProcess(
            [CHECK_DB], limits=[limit], username=BENCH_USER, password=BENCH_PASSWORD
        ) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        row = self_check(server, limit, Path(tmp))
    print(f"{row.name}: {row.value:.0f} {row.unit} ok; {row.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Requests that produce every documented answer of the write side (for test_openapi.py)."""

from __future__ import annotations

import requests

from reference_server.testing import RunningServer

from .apiclient import API

NEW_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def exercise_writes(srv: RunningServer) -> list[requests.Response]:
    """Conditional writes in a database of their own: every status of PUT and DELETE on a
    record, and the create right of POST."""
    admin = srv.admin
    admin.create_database("edits")
    admin.create_user("carol", "carol-pw", offline_right=True)
    mine, readonly, sealed = admin.import_records(
        "edits", [{"name": n, "fields": {}} for n in ("mine", "readonly", "sealed")],
        grant={"carol": "rwed"})
    admin.set_rights("edits", "carol", readonly, write=False, delete=False)
    admin.seal_record("edits", sealed)
    http = requests.Session()
    base = srv.url + API
    login = {"database": "edits", "username": "carol", "password": "carol-pw",
             "client_id": "c"}
    auth = {"Authorization": "Bearer " + http.post(f"{base}/session", json=login
                                                   ).json()["token"]}
    db = f"{base}/databases/edits/records"
    body = {"name": "n", "fields": {"password": "pw-Mv6!offline-edit"}}
    offline = {**auth, "X-Offline-Change": "1714550400", "X-Change-Id": "chg-1"}
    out = [
        http.put(f"{db}/{NEW_ID}", json=body, headers={**offline, "If-None-Match": "*"}),
        http.put(f"{db}/{NEW_ID}", json=body, headers={**offline, "If-None-Match": "*"}),
        http.put(f"{db}/{mine}", json=body, headers={**auth, "If-Match": '"1"'}),
        http.put(f"{db}/{mine}", json=body, headers={**auth, "If-Match": '"7"'}),
        http.put(f"{db}/not-a-uuid", json=body, headers={**auth, "If-None-Match": "*"}),
        http.put(f"{db}/{readonly}", json=body, headers={**auth, "If-Match": '"1"'}),
        http.put(f"{db}/{sealed}", json=body, headers={**auth, "If-Match": '"1"'}),
        http.put(f"{db}/{mine}", json=body, headers={"If-Match": '"2"'}),
        http.put(f"{db}/nothing", json=body, headers={**auth, "If-Match": '"1"'}),
        http.delete(f"{db}/{readonly}", headers={**auth, "If-Match": '"1"'}),
        http.delete(f"{db}/{mine}", headers={**auth, "If-Match": '"1"'}),
        http.delete(f"{db}/{mine}", headers=auth),
        http.delete(f"{db}/{mine}", headers={**auth, "If-Match": '"x"'}),
        http.delete(f"{db}/{mine}", headers={"If-Match": '"2"'}),
        http.delete(f"{db}/nothing", headers={**auth, "If-Match": '"1"'}),
        http.delete(f"{db}/{mine}", headers={**auth, "If-Match": '"2"'}),
        http.delete(f"{db}/{mine}", headers={**auth, "If-Match": '"5"'}),
        http.put(f"{db}/{mine}", json=body, headers={**auth, "If-Match": '"2"'}),
    ]
    once = {**auth, "X-Change-Id": "post-1"}
    out += [http.post(db, json=body, headers=once), http.post(db, json=body, headers=once)]
    admin.delete_record("edits", out[-1].json()["id"])
    out.append(http.post(db, json=body, headers=once))
    admin.set_create_right("edits", "carol", False)
    out.append(http.post(db, json=body, headers=auth))
    http.close()
    return out

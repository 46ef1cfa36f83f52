"""Offline edits in a loop in their own process, printing each finished step (run by
test_local_changes.py, which SIGKILLs it at some moment)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from offline_addon.protocol.merge import PASSWORD_FIELD, RecordContent, ServerRecord
from offline_addon.storage.local_changes import LocalChanges
from offline_addon.storage.offline_copy import OfflineCopy
from offline_addon.storage.paths import CopyPaths

STEPS = 100_000


def main() -> None:
    args = json.loads(sys.argv[1])
    copy = OfflineCopy.open(CopyPaths(Path(args["folder"]), "a" * 64), args["password"])
    local = LocalChanges(copy)
    for step in range(STEPS):
        # Step i: an edit (joins the one pending change of r1), a create, and for every third
        # create a settled push, for every third after that a delete while still unsent.
        fields = {**_fields(copy), PASSWORD_FIELD: f"pw-Mv6!offline-edit-{step}"}
        local.edit_record("r1", fields=fields)
        content = RecordContent(f"Created {step}", {PASSWORD_FIELD: f"pw-created-{step}"})
        created = local.create_record(content.name, content.fields,
                                      record_id=str(uuid.UUID(int=step + 1)))
        if step % 3 == 1:
            local.mark_pushed(created.change_id, ServerRecord(1, content))
        elif step % 3 == 2:
            local.delete_record(created.record_id)
        print(step, flush=True)


def _fields(copy: OfflineCopy) -> dict[str, str]:
    record = copy.get("r1")
    assert record is not None
    return dict(record.fields)


if __name__ == "__main__":
    main()

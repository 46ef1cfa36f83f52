"""The one writing child process of the tests: the SIGKILL trials, the two-writer tests and the
kill tests of the engine all run this file (``python kill.py``, a JSON job on stdin), and
:class:`Child` starts and reads it.

The child imports everything first, prints ``ready``, then runs its job, printing a line after
each committed step: ``page <done> <total>`` after each page of a sync, ``step <n>`` after each
round of offline edits; and ``done <outcome>`` at the end (``error <Type>`` and exit code 3 for
an add-on error). So the parent can aim its SIGKILL at a random moment *inside* the job, not
during interpreter start-up. Secrets (the token, the passwords) arrive on stdin, never on the
command line.

Jobs (``action``):

- ``sync``: the engine, as a host's worker runs it (``create`` by default); with
  ``kill_after`` the child SIGKILLs itself right after that many pages; with
  ``print_writes`` it prints ``write`` before each pushed change is sent and ``answered``
  after its answer.
- ``rekey``: the public API's re-key of every copy of the user, from ``old_password`` to the
  session's password.
- ``edit``: offline edits in a loop on the copy ``a...a`` in ``folder`` (password
  ``password``), step ``i`` being an edit of ``r1`` (its password becomes
  ``pw-Mv6!offline-edit-<i>``), a create, and for every third create a settled push, for every
  third after that a delete while still unsent.
- ``guess``: ``tries`` offline logins on the copy ``a...a`` in ``folder`` with the wrong
  ``password`` (``storage.offline_open``), printing ``answer <i>`` after each refusal.
- ``session``: the same through the public offline session (``OfflineCopySession``, with its
  writer lock) on the copy ``copy_id`` in ``folder``: step ``i`` edits ``record_id`` (its
  password becomes ``pw-Mv6!offline-edit-<i>``) and creates ``Made <i>``.
- ``push_log``: the push of the copy's offline access log (``sync/accountability``) in
  batches of ``batch`` events, printing ``answered <n>`` after the server's answer to each
  batch and before the copy deletes it; with ``kill_after`` the child SIGKILLs itself right
  after that many answers (the server has the batch, the copy still holds it).
- ``build_names``: the index upkeep after a first sync (``OfflineCopy.compact_search_index``,
  which builds a waiting name index) on the copy ``copy_id`` in ``folder``, printing
  ``building`` right before it.

This file is run as a script and imports nothing from the tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

STEPS = 100_000
EDIT_PASSWORD_PREFIX = "pw-Mv6!offline-edit-"


def _sync(job: dict[str, Any]) -> str:
    from hookspecs import Session
    from offline_addon.storage.paths import CopyPaths
    from offline_addon.sync.engine import sync_copy

    session = Session(**job["session"])
    paths = CopyPaths.for_copy(
        Path(job["folder"]),
        job.get("copy_url") or session.server_url,
        session.database,
        session.username,
        session.client_id,
    )
    kill_after = job.get("kill_after")
    client = _printing_client(session) if job.get("print_writes") else None

    def progress(done: int, total: int) -> None:
        print(f"page {done} {total}", flush=True)
        progress.pages += 1  # type: ignore[attr-defined]
        if progress.pages == kill_after:  # type: ignore[attr-defined]
            os.kill(os.getpid(), signal.SIGKILL)

    progress.pages = 0  # type: ignore[attr-defined]
    result = sync_copy(
        paths,
        session,
        create=job.get("create", True),
        progress=progress,
        page_limit=job["limit"],
        lock_wait_s=job.get("lock_wait_s", 5.0),
        client=client,
    )
    return str(result.outcome)


def _printing_client(session: Any) -> Any:
    """A sync client that prints ``write`` before each write it sends and ``answered`` after
    its answer, so that a kill can be aimed inside a push."""
    from offline_addon.sync.transport import RequestsTransport, SyncClient

    class Printing(RequestsTransport):
        def send(self, *args: Any, **kwargs: Any) -> Any:
            print("write", flush=True)
            answer = super().send(*args, **kwargs)
            print("answered", flush=True)
            return answer

    return SyncClient(session.server_url, session.token, session.client_id, transport=Printing())


def _rekey(job: dict[str, Any]) -> str:
    from hookspecs import Session
    from offline_addon import AddonSettings, OfflineCopies

    copies = OfflineCopies(AddonSettings(database_path=job["folder"]))
    try:
        copies.rekey(Session(**job["session"]), job["old_password"])
    finally:
        copies.shutdown()
    return "rekeyed"


def _edit(job: dict[str, Any]) -> str:
    from offline_addon.protocol.merge import PASSWORD_FIELD, RecordContent, ServerRecord
    from offline_addon.storage.local_changes import LocalChanges
    from offline_addon.storage.offline_copy import OfflineCopy
    from offline_addon.storage.paths import CopyPaths

    copy = OfflineCopy.open(CopyPaths(Path(job["folder"]), "a" * 64), job["password"])
    local = LocalChanges(copy)
    for step in range(STEPS):
        record = copy.get("r1")
        assert record is not None
        fields = {**record.fields, PASSWORD_FIELD: f"{EDIT_PASSWORD_PREFIX}{step}"}
        local.edit_record("r1", fields=fields)
        content = RecordContent(f"Created {step}", {PASSWORD_FIELD: f"pw-created-{step}"})
        created = local.create_record(
            content.name, content.fields, record_id=str(uuid.UUID(int=step + 1))
        )
        if step % 3 == 1:
            local.mark_pushed(created.change_id, ServerRecord(1, content))
        elif step % 3 == 2:
            local.delete_record(created.record_id)
        print(f"step {step}", flush=True)
    copy.close()
    return "edited"


def _guess(job: dict[str, Any]) -> str:
    from offline_addon import WrongPassword
    from offline_addon.storage.offline_open import open_offline
    from offline_addon.storage.paths import CopyPaths

    paths = CopyPaths(Path(job["folder"]), "a" * 64)
    for attempt in range(job["tries"]):
        try:
            open_offline(paths, job["password"]).close()
        except WrongPassword:
            print(f"answer {attempt}", flush=True)
    return "guessed"


def _session(job: dict[str, Any]) -> str:
    from offline_addon.api import OfflineCopySession
    from offline_addon.storage.offline_copy import OfflineCopy
    from offline_addon.storage.paths import CopyPaths

    paths = CopyPaths(Path(job["folder"]), job["copy_id"])
    session = OfflineCopySession(OfflineCopy.open(paths, job["password"]), job["password"])
    record_id = job["record_id"]
    for step in range(STEPS):
        record = session.get_record(record_id)
        assert record is not None
        fields = {**record.fields, "password": f"{EDIT_PASSWORD_PREFIX}{step}"}
        session.edit(record_id, fields=fields)
        session.create(f"Made {step}", {"password": f"pw-made-{step}"})
        print(f"step {step}", flush=True)
    session.close()
    return "edited"


def _push_log(job: dict[str, Any]) -> str:
    from hookspecs import Session
    from offline_addon.storage.offline_copy import OfflineCopy
    from offline_addon.storage.paths import CopyPaths
    from offline_addon.sync.accountability import push_access_log
    from offline_addon.sync.transport import SyncClient

    session = Session(**job["session"])
    paths = CopyPaths.for_copy(
        Path(job["folder"]),
        session.server_url,
        session.database,
        session.username,
        session.client_id,
    )
    kill_after = job.get("kill_after")
    answers = []

    class AnsweredThenKilled(SyncClient):
        def post_access_events(self, *args: Any, **kwargs: Any) -> Any:
            receipt = super().post_access_events(*args, **kwargs)
            answers.append(receipt)
            print(f"answered {len(answers)}", flush=True)
            if len(answers) == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return receipt

    with (
        OfflineCopy.open(paths, session.password) as copy,
        AnsweredThenKilled(session.server_url, session.token, session.client_id) as client,
    ):
        push = push_access_log(
            client, copy, session.database, session.client_id, batch_events=job["batch"]
        )
    return f"pushed {push.sent}"


def _build_names(job: dict[str, Any]) -> str:
    from offline_addon.storage.offline_copy import OfflineCopy
    from offline_addon.storage.paths import CopyPaths

    with OfflineCopy.open(CopyPaths(Path(job["folder"]), job["copy_id"]), job["password"]) as copy:
        print("building", flush=True)
        copy.compact_search_index()
    return "built"


def main() -> int:
    job = json.loads(sys.stdin.readline())
    jobs = {"sync": _sync, "rekey": _rekey, "edit": _edit, "guess": _guess, "session": _session}
    jobs["push_log"] = _push_log
    jobs["build_names"] = _build_names
    run = jobs[job.get("action", "sync")]
    from offline_addon import OfflineAddonError

    print("ready", flush=True)
    try:
        outcome = run(job)
    except OfflineAddonError as exc:
        print(f"error {type(exc).__name__}", flush=True)
        return 3
    print(f"done {outcome}", flush=True)
    return 0


# -- the parent's side ------------------------------------------------------------------------

CHILD = Path(__file__).resolve()


class Child:
    """A writing process running this file, fed ``job`` on stdin; started and ready."""

    def __init__(self, job: dict[str, Any]) -> None:
        from reference_server.testing import read_line

        self._read_line = read_line
        self.err = ""
        self.unread: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=CHILD.parent,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.close()
        assert self.line(30) == "ready", f"child did not start: {self._stderr()}"

    @property
    def returncode(self) -> int | None:
        """The exit code (``-SIGKILL`` when killed); None while it runs."""
        return self.proc.poll()

    def line(self, timeout: float = 60) -> str:
        """The next line the child prints ("" when it ended or stayed silent)."""
        assert self.proc.stdout is not None
        return self._read_line(self.proc.stdout, timeout).strip()

    def until(self, prefix: str, timeout: float = 60) -> str:
        """Read lines until one starts with ``prefix`` (or with "done"/"error"); return it."""
        while True:
            line = self.line(timeout)
            if not line or line.startswith((prefix, "done", "error")):
                return line

    def finish(self, timeout: float = 120) -> str:
        """Wait for the end; the last line ("done ...", "error ..." or the last step)."""
        last = ""
        while True:
            line = self.line(timeout)
            if not line:
                break
            last = line
        self.proc.wait(timeout)
        self.err = self._stderr()
        self.close()
        return last

    def kill(self) -> bool:
        """SIGKILL now; whether it was still running. The lines it printed that were not
        read yet are kept in :attr:`unread`."""
        running = self.proc.poll() is None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(60)
        assert self.proc.stdout is not None
        self.unread = self.proc.stdout.read().splitlines()
        self.close()
        return running

    def _stderr(self) -> str:
        stream = self.proc.stderr
        if stream is None or stream.closed or self.proc.poll() is None:
            return ""
        return stream.read()

    def close(self) -> None:
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def upkeep_killed(source: Path, folder: Path, password: str, delay: float) -> None:
    """Copy the copy file ``source`` (copy id ``a...a``) into the new ``folder``, run the
    index upkeep on it in a child (``build_names``) and SIGKILL it ``delay`` seconds after
    it said it starts."""
    import shutil
    import time

    folder.mkdir()
    shutil.copy(source, folder / source.name)
    child = Child(
        {"action": "build_names", "folder": str(folder), "copy_id": "a" * 64, "password": password}
    )
    assert child.until("building") == "building"
    time.sleep(delay)
    child.kill()


if __name__ == "__main__":
    raise SystemExit(main())

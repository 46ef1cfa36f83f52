"""Peak memory of one first sync, measured in a fresh subprocess.

Run as ``python -m bench.memprobe`` with a JSON job on stdin (the token goes through stdin, not
the command line, so that it never shows in the process list). Prints one JSON line:
``{"baseline_kib": ..., "peak_kib": ..., "records": ..., "how": ...}``.

The peak is the kernel's resident-set high-water mark (``VmHWM``), reset just before the sync
through ``/proc/self/clear_refs`` so that imports and interpreter start-up do not count; the
baseline is the resident set right before the sync. Both come from the kernel, so memory held
by SQLCipher's C code counts as well as Python objects.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.baseline import Login, baseline_sync


def _status_kib(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _probe(job: dict[str, Any]) -> dict[str, Any]:
    who = Login(**job["login"])
    # Import everything the sync needs before measuring: code is not data.
    import offline_addon.sync.engine  # noqa: F401
    from bench.engine import engine_sync

    with tempfile.TemporaryDirectory() as tmp:
        gc.collect()
        baseline = _status_kib("VmRSS")
        reset = _reset_peak()
        if job["kind"] == "engine":
            result, _ = engine_sync(Path(tmp), who, create=True)
            records = int(result.record_count)
        else:
            records, _ = baseline_sync(who, Path(tmp) / "baseline.db", int(job["limit"]))
        peak = _status_kib("VmHWM")
    return {
        "baseline_kib": baseline,
        "peak_kib": peak,
        "records": records,
        "how": "VmHWM reset by clear_refs" if reset else "VmHWM since start",
    }


def measure(login: Login, kind: str, limit: int) -> dict[str, Any]:
    """Run one probe (``kind`` "engine" or "baseline") in a subprocess and return its answer."""
    job = {"login": login.__dict__, "kind": kind, "limit": limit}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.memprobe"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed: {proc.stderr.strip()[-800:]}")
    answer: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return answer


if __name__ == "__main__":
    print(json.dumps(_probe(json.loads(sys.stdin.read()))), flush=True)

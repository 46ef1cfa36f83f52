"""Figures, their statistics, and the table that shows each beside its target and baseline."""

from __future__ import annotations

import itertools
import math
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values (a figure that could not be measured)."""
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 1000 samples is the 990th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Figure:
    """One row of the results table.

    ``value`` is the measured figure (median of ``samples`` unless said otherwise);
    ``baseline`` the same-run reference figure, if the figure has one; ``target`` a sentence;
    ``ok`` whether the target was met (None when it has no pass/fail or is pending).
    """

    name: str
    value: float | None
    unit: str
    target: str = ""
    baseline: float | None = None
    ok: bool | None = None
    note: str = ""
    samples: tuple[float, ...] = field(default=())

    @property
    def status(self) -> str:
        if self.value is None:
            return "pending"
        if self.ok is None:
            return "-"
        return "ok" if self.ok else "MISSED"


def pending(name: str, unit: str, target: str, why: str) -> Figure:
    """A row for a figure that cannot be measured yet, saying why."""
    return Figure(name=name, value=None, unit=unit, target=target, note=why)


def check(value: float, good: Callable[[float], bool]) -> bool | None:
    """Apply a target predicate; NaN (not measured) gives None."""
    return None if math.isnan(value) else good(value)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def render_table(figures: Sequence[Figure]) -> str:
    """A Markdown table: figure, value, unit, baseline, target, status, note."""
    header = ("figure", "value", "unit", "baseline", "target", "status", "note")
    rows = [
        (f.name, _fmt(f.value), f.unit, _fmt(f.baseline), f.target, f.status, f.note)
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


@dataclass(frozen=True)
class ScaleRow:
    """One size of the scale table: what a first sync of ``records`` costs."""

    records: int
    record_bytes: float
    seconds: float
    file_bytes: int
    indexed_seconds: float | None = None
    """The plain loop + index at the same size, same run (None: not measured)."""


def growth_exponent(small: ScaleRow, large: ScaleRow) -> float:
    """``k`` in time ~ records**k between two sizes (1.0: linear)."""
    return math.log(large.seconds / small.seconds) / math.log(large.records / small.records)


def render_scale(rows: Sequence[ScaleRow]) -> str:
    """The scale table (Markdown) and a line on how the cost grows."""
    header = (
        "records",
        "first sync",
        "records/s",
        "µs/record",
        "file size",
        "bytes/record",
        "plain loop + index",
    )
    body = []
    for r in rows:
        body.append(
            (
                f"{r.records:,}",
                f"{r.seconds:.1f} s",
                f"{r.records / r.seconds:,.0f}",
                f"{r.seconds / r.records * 1e6:.0f}",
                f"{r.file_bytes / 1e6:.1f} MB",
                f"{r.file_bytes / r.records:,.0f}",
                "—" if r.indexed_seconds is None else f"{r.indexed_seconds:.1f} s",
            )
        )
    widths = [max(len(str(x[i])) for x in (header, *body)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    text = "\n".join([line(header), sep, *(line(b) for b in body)])
    ordered = sorted(rows, key=lambda r: r.records)
    steps = [
        f"{a.records // 1000}k→{b.records // 1000}k: time ×{b.seconds / a.seconds:.1f} for "
        f"×{b.records / a.records:.0f} records (exponent {growth_exponent(a, b):.2f})"
        for a, b in itertools.pairwise(ordered)
    ]
    if steps:
        per_record = ordered[-1].file_bytes / ordered[-1].records
        text += (
            "\n\nHow the cost grows: " + "; ".join(steps) + ". An exponent of 1.00 is "
            "linear; below it, fixed costs (the KDF of a new file, about 0.1 s) still "
            "weigh; above it, each record costs more in a larger copy (deeper B-trees, "
            "more full-text segments to merge). The file grows about linearly "
            f"({per_record:,.0f} bytes per record at the largest size)."
        )
    return text


def machine() -> dict[str, Any]:
    """Where the figures came from."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for raw in fh:
                if raw.startswith("model name"):
                    cpu = raw.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def as_json(figures: Sequence[Figure]) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN becomes None)."""
    out = []
    for f in figures:
        row = asdict(f)
        row["status"] = f.status
        for key in ("value", "baseline"):
            if isinstance(row[key], float) and math.isnan(row[key]):
                row[key] = None
        row["samples"] = [s for s in row["samples"] if not math.isnan(s)]
        out.append(row)
    return out

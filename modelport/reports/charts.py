"""The data behind the report's charts, as plain numbers: stage bars, parity matrix cells, error histograms
and latency series. Light: records in, dataclasses out; drawing is ``reports/svg.py``'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from modelport.pipeline.records import Report, StageRecord, VerifyReport
from modelport.profiling.records import LatencyRow, Profile
from modelport.reports.rows import num
from modelport.validators.records import CandidateResult, OutputCheck

__all__ = [
    "CellState",
    "ErrorBars",
    "MatrixCell",
    "StageBar",
    "error_bars",
    "latency_by_runtime",
    "matrix_outputs",
    "parity_matrix",
    "stage_bars",
]

# How a matrix cell is coloured: failed (gating), flagged (failed, not gating), passed by the float64 rounding
# allowance, passed close to the bound (> 50% of it used), passed with room, bit-exact, or not checked at all.
CellState = Literal["fail", "flagged", "float64", "near", "pass", "exact", "none"]
NEAR = 0.5  # a pass that used more than half its tolerance is drawn as close to the bound


@dataclass(frozen=True)
class StageBar:
    name: str
    status: str
    start: float  # seconds since the first stage began
    seconds: float
    reason: str


def stage_bars(stages: Sequence[StageRecord]) -> list[StageBar]:
    """The stages one after another, as they ran."""
    bars, start = [], 0.0
    for s in stages:
        seconds = max(s.seconds, 0.0)
        bars.append(StageBar(s.name, s.status, start, seconds, s.reason or ""))
        start += seconds
    return bars


@dataclass(frozen=True)
class MatrixCell:
    candidate: str
    output: str
    state: CellState
    text: str  # what the cell shows: the share of the tolerance used, "bit-exact", "-"
    detail: str  # the worst set and its figures (a tooltip)


def matrix_outputs(report: Report | VerifyReport) -> list[str]:
    """The model's outputs in signature order, then any other output a check names (an unexpected output)."""
    names = list(report.signature.output_names) if isinstance(report, Report) else []
    for check in (c for cand in report.candidates for c in cand.checks):
        if check.output not in names:
            names.append(check.output)
    return names


def _cell(cand: CandidateResult, output: str, checks: Sequence[OutputCheck]) -> MatrixCell:
    if not checks:
        why = cand.reason or cand.status
        return MatrixCell(cand.candidate, output, "none", "-", f"not checked ({cand.status}): {why}")
    used = [c.tolerance_used for c in checks if c.tolerance_used is not None]
    worst = max(checks, key=lambda c: (c.verdict == "fail" and c.gates, c.tolerance_used or 0.0, c.max_abs_err or 0.0))
    state: CellState
    if any(c.verdict == "fail" and c.gates for c in checks):
        state = "fail"
    elif any(c.verdict == "fail" for c in checks):
        state = "flagged"
    elif any((c.decided_by or "").startswith("float64") for c in checks):
        state = "float64"
    elif all(c.bit_exact for c in checks):
        state = "exact"
    else:
        state = "near" if used and max(used) > NEAR else "pass"
    text = "bit-exact" if state == "exact" else _share(max(used)) if used else num(worst.max_abs_err)
    detail = (
        f"worst set {worst.input_set}: max abs err {num(worst.max_abs_err)}, "
        f"{num(worst.tolerance_used)} of the tolerance ({cand.tolerance.describe()}) over {len(checks)} sets"
    )
    if worst.verdict == "fail":
        detail += f"; {worst.message}"
    return MatrixCell(cand.candidate, output, state, text, detail)


def _share(used: float) -> str:
    """The share of the tolerance used, never rounded to a misleading 0%."""
    return "<1%" if 0 < used < 0.005 else f"{used:.0%}"


def parity_matrix(report: Report | VerifyReport) -> tuple[list[str], list[list[MatrixCell]]]:
    """The outputs (columns) and one row of cells per candidate: every candidate x output has exactly one cell."""
    outputs = matrix_outputs(report)
    rows = []
    for cand in report.candidates:
        by_output: dict[str, list[OutputCheck]] = defaultdict(list)
        for check in cand.checks:
            by_output[check.output].append(check)
        rows.append([_cell(cand, output, by_output[output]) for output in outputs])
    return outputs, rows


@dataclass(frozen=True)
class ErrorBars:
    """One candidate's per-element absolute errors over every check: ``exact`` equal elements, then
    ``counts[i]`` with ``10**(low+i) <= err < 10**(low+i+1)``; ``atol`` where the tolerance starts."""

    candidate: str
    exact: int
    low: int
    counts: list[int]
    atol: float


def error_bars(candidates: Sequence[CandidateResult]) -> list[ErrorBars]:
    """One histogram per candidate whose checks recorded one (summed over its input sets and outputs)."""
    found = []
    for cand in candidates:
        hists = [c.abs_err_hist for c in cand.checks if c.abs_err_hist is not None]
        if not hists:
            continue
        decades: dict[int, int] = defaultdict(int)
        for h in hists:
            for i, n in enumerate(h.counts):
                decades[h.low + i] += n
        nonzero = [d for d, n in decades.items() if n]
        low = min(nonzero) if nonzero else 0
        counts = [decades[d] for d in range(low, max(nonzero) + 1)] if nonzero else []
        found.append(ErrorBars(cand.candidate, sum(h.exact for h in hists), low, counts, cand.tolerance.atol))
    return found


def latency_by_runtime(profile: Profile) -> dict[str, list[LatencyRow]]:
    """The profile's rows grouped by runtime, in the order runtimes first appear."""
    groups: dict[str, list[LatencyRow]] = {}
    for row in profile.rows:
        groups.setdefault(row.runtime, []).append(row)
    return groups

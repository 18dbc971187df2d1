"""Running one candidate on every input set and comparing it with the reference.

Running and comparing stay separate: the runner produces arrays, ``compare_outputs``
judges them. Every failing output is collected before the verdict is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from modelport.errors import StageError, one_line, raise_if_interrupted
from modelport.validators.compare import compare_outputs
from modelport.validators.records import CandidateResult, Category, OutputCheck, Tolerance

if TYPE_CHECKING:  # exporters import the records from this package; the Protocol is only a type
    from modelport.exporters.base import Runner

__all__ = ["ReplaySet", "check_candidate", "not_run", "summarise", "vacuous_notes"]


@dataclass(frozen=True)
class ReplaySet:
    name: str
    inputs: Mapping[str, np.ndarray]
    reference: Mapping[str, np.ndarray]
    kind: str = "example"
    reference64: Mapping[str, np.ndarray] | None = None  # the reference re-run in float64, when available
    reference64_estimate: str = "copy"  # how: a float64 copy of the model, or "layerwise" (memory-bounded)


def not_run(
    candidate: str,
    fmt: str,
    runtime: str,
    tol: Tolerance,
    category: Category,
    reason: str,
    *,
    skipped: bool = False,
) -> CandidateResult:
    """A candidate that could not be checked: a failure unless it was deliberately skipped."""
    return CandidateResult(
        candidate=candidate,
        format=fmt,
        runtime=runtime,
        tolerance=tol,
        status="skipped" if skipped else "failed",
        verdict="pass" if skipped else "fail",
        category=None if skipped else category,
        reason=reason,
    )


def check_candidate(
    candidate: str,
    fmt: str,
    runtime: str,
    load: Callable[[], Runner],
    sets: Sequence[ReplaySet],
    tol: Tolerance,
    declared_dtypes: Mapping[str, str] | None = None,
    *,
    gate_edges: bool = True,
) -> CandidateResult:
    """Run the candidate on every set and judge it; with ``gate_edges=False`` (lossy formats without
    --strict-edges) checks on synthetic edge sets are reported and flagged but do not decide."""
    start = time.perf_counter()
    try:
        runner = load()
    except Exception as e:
        raise_if_interrupted(e)
        reason = str(e) if isinstance(e, StageError) else f"{type(e).__name__}: {one_line(e)}"
        return not_run(candidate, fmt, runtime, tol, "load", reason)
    opened = time.perf_counter() - start
    checks: list[OutputCheck] = []
    seconds: dict[str, float] = {}
    kept: dict[str, dict[str, np.ndarray]] = {}
    try:
        try:
            answers = _infer_all(runner, sets)
        except Exception as e:  # the whole batch failed (a program that crashed or hung): every set fails
            raise_if_interrupted(e)
            message = str(e) if isinstance(e, StageError) else f"{type(e).__name__}: {one_line(e)}"
            answers = [(None, message, None)] * len(sets)
        for replay, (outputs, error, took) in zip(sets, answers, strict=True):
            if took is not None:
                seconds[replay.name] = round(took, 6)
            if outputs is None:
                checks.extend(
                    OutputCheck(
                        input_set=replay.name,
                        set_kind=replay.kind,
                        output=name,
                        verdict="fail",
                        category="run",
                        message=error,
                    )
                    for name in replay.reference
                )
                continue
            kept[replay.name] = outputs
            compared = compare_outputs(
                replay.reference,
                outputs,
                tol,
                input_set=replay.name,
                declared_dtypes=declared_dtypes,
                reference64=replay.reference64,
                set_kind=replay.kind,
                reference64_estimate=replay.reference64_estimate,
            )
            if not gate_edges and replay.kind == "edge":
                # Only accuracy misses are left ungated: a NaN or infinity where the reference is
                # finite is a broken graph on any input.
                compared = [c if c.nonfinite_mismatches else c.model_copy(update={"gates": False}) for c in compared]
            checks.extend(compared)
    finally:
        runner.close()
    # A runtime's own load time, where it measured one (a program in another process: after it ran).
    load_seconds = getattr(runner, "load_seconds", None) or opened
    result = summarise(candidate, fmt, runtime, tol, checks)
    facts = {str(k): str(v) for k, v in (getattr(runner, "facts", None) or {}).items()}
    result = result.model_copy(
        update={"load_seconds": round(load_seconds, 6), "infer_seconds": seconds, "runtime_facts": facts}
    )
    result._outputs = kept
    return result


def _infer_all(
    runner: Runner, sets: Sequence[ReplaySet]
) -> list[tuple[dict[str, np.ndarray] | None, str | None, float | None]]:
    """(outputs, error, seconds) per set: all at once where the runner can (another process), else one by one."""
    infer_all = getattr(runner, "infer_all", None)
    if infer_all is not None:
        return [(r.outputs, r.error, r.seconds) for r in infer_all([s.inputs for s in sets])]
    results: list[tuple[dict[str, np.ndarray] | None, str | None, float | None]] = []
    for replay in sets:
        start = time.perf_counter()
        try:
            results.append((runner.infer(replay.inputs), None, time.perf_counter() - start))
        except Exception as e:
            raise_if_interrupted(e)
            results.append((None, f"{type(e).__name__}: {one_line(e)}", None))
    return results


def summarise(candidate: str, fmt: str, runtime: str, tol: Tolerance, checks: list[OutputCheck]) -> CandidateResult:
    """A candidate that ran, judged by its checks, with the worst figures over all of them.

    A candidate with no check proved nothing and fails; a failing check that does not gate
    (``gates=False``) is reported but leaves the verdict alone.
    """
    failed = any(c.verdict == "fail" and c.gates for c in checks)
    if not checks:
        return not_run(
            candidate, fmt, runtime, tol, "missing", "no check ran: a candidate with zero checks cannot pass"
        )
    return CandidateResult(
        candidate=candidate,
        format=fmt,
        runtime=runtime,
        tolerance=tol,
        status="ok",
        verdict="fail" if failed else "pass",
        checks=checks,
        max_abs_err=_worst(c.max_abs_err for c in checks),
        min_passing_atol=_worst(c.min_passing_atol for c in checks),
        tolerance_used=_worst(c.tolerance_used for c in checks),
        min_cosine=_least(c.cosine for c in checks),
        min_top1_agreement=_least(c.top1_agreement for c in checks),
    )


def _worst(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _least(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def vacuous_notes(candidates: Iterable[CandidateResult]) -> list[str]:
    """One note per candidate x output whose atol is at least every reference value: it could not fail."""
    vacuous = sorted({(c.candidate, k.output) for c in candidates for k in c.checks if k.vacuous})
    return [
        f"{name} {output}: the atol is at least the output's largest value, so this check cannot fail; "
        "tighten it with --tol"
        for name, output in vacuous
    ]

"""Running one candidate on every input set and comparing it with the reference.

Running and comparing stay separate: the runner produces arrays, ``compare_outputs``
judges them. Every failing output is collected before the verdict is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from modelport.errors import StageError, one_line, raise_if_interrupted
from modelport.validators.compare import compare_outputs
from modelport.validators.records import CandidateResult, Category, OutputCheck, Tolerance

if TYPE_CHECKING:  # exporters import the records from this package; the Protocol is only a type
    from modelport.exporters.base import Runner

__all__ = ["ReplaySet", "check_candidate", "not_run", "summarise"]


@dataclass(frozen=True)
class ReplaySet:
    name: str
    inputs: Mapping[str, np.ndarray]
    reference: Mapping[str, np.ndarray]
    kind: str = "example"
    reference64: Mapping[str, np.ndarray] | None = None  # the reference re-run in float64, when available


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
) -> CandidateResult:
    try:
        runner = load()
    except Exception as e:
        raise_if_interrupted(e)
        reason = str(e) if isinstance(e, StageError) else f"{type(e).__name__}: {one_line(e)}"
        return not_run(candidate, fmt, runtime, tol, "load", reason)
    checks: list[OutputCheck] = []
    try:
        for replay in sets:
            try:
                outputs = runner.infer(replay.inputs)
            except Exception as e:
                raise_if_interrupted(e)
                message = f"{type(e).__name__}: {one_line(e)}"
                checks.extend(
                    OutputCheck(
                        input_set=replay.name,
                        set_kind=replay.kind,
                        output=name,
                        verdict="fail",
                        category="run",
                        message=message,
                    )
                    for name in replay.reference
                )
                continue
            checks.extend(
                compare_outputs(
                    replay.reference,
                    outputs,
                    tol,
                    input_set=replay.name,
                    declared_dtypes=declared_dtypes,
                    reference64=replay.reference64,
                    set_kind=replay.kind,
                )
            )
    finally:
        runner.close()
    return summarise(candidate, fmt, runtime, tol, checks)


def summarise(candidate: str, fmt: str, runtime: str, tol: Tolerance, checks: list[OutputCheck]) -> CandidateResult:
    """A candidate that ran, judged by its checks, with the worst figures over all of them."""
    failed = any(c.verdict == "fail" for c in checks)
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

"""Module values judged with the comparison every other check uses, and paired by shape, never by guess."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modelport.localize.records import ValueCheck
from modelport.validators.compare import compare_array
from modelport.validators.records import OutputCheck, Tolerance

__all__ = ["judge", "judge_pairs", "pair_by_shape"]


def _floating(a: np.ndarray) -> bool:
    return a.dtype.kind in "fc"


def judge(reference: np.ndarray, candidate: np.ndarray, tol: Tolerance, where: str) -> OutputCheck:
    """One value against the reference's, by ``validators.compare`` (a float16 value is widened first)."""
    if candidate.dtype != reference.dtype and _floating(candidate) and _floating(reference):
        candidate = candidate.astype(reference.dtype)
    return compare_array(reference, candidate, tol, input_set="localize", output=where)


def judge_pairs(pairs: Sequence[tuple[np.ndarray, np.ndarray]], tol: Tolerance, where: str) -> ValueCheck:
    """Every (reference, candidate) pair of one module; the worst decides and gives the figures."""
    checks = [judge(r, c, tol, where) for r, c in pairs]
    failed = [c for c in checks if c.verdict == "fail"]
    worst = max(failed or checks, key=lambda c: c.tolerance_used if c.tolerance_used is not None else float("inf"))
    return ValueCheck(
        verdict="fail" if failed else "pass",
        max_abs_err=worst.max_abs_err,
        max_rel_err=worst.max_rel_err,
        cosine=worst.cosine,
        tolerance_used=worst.tolerance_used,
        mismatches=sum(c.mismatches or 0 for c in checks),
        elements=sum(c.elements or 0 for c in checks),
        message=worst.message if failed else None,
    )


def pair_by_shape(
    reference: Sequence[np.ndarray],
    found: Sequence[tuple[str, np.ndarray]],
    *,
    calls: int = 1,
    floating_only: bool = True,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str | None]:
    """Pair the floating reference tensors with the candidate values of their shape; why not, when none pair.

    The candidate's values are those leaving the module in the artifact. Where several share a shape,
    they pair in order only when there are as many on both sides (an exporter keeps the order of a
    module's returned values), or ``calls`` times as many for a module called ``calls`` times (the
    first call's come first); otherwise pairing them would be a guess, and that shape is left out.
    A shape with no value at all (an output the graph never computes, such as an unused RNN state)
    is left out too; the others are still compared. ``floating_only=False`` pairs integer tensors too (a
    module's inputs: an embedding's indices).
    """
    keep = _floating if floating_only else (lambda a: True)
    wanted = [r for r in reference if keep(r)]
    if not wanted:
        return [], "it holds no floating-point tensor"
    offered = [(n, a) for n, a in found if keep(a)]
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    missing: list[str] = []
    for shape in dict.fromkeys(r.shape for r in wanted):
        mine = [r for r in wanted if r.shape == shape]
        theirs = [(n, a) for n, a in offered if a.shape == shape]
        if len(theirs) in (len(mine), calls * len(mine)) and theirs:
            pairs += [(r, a) for r, (_, a) in zip(mine, theirs, strict=False)]
        elif not theirs:
            shapes = sorted({str(list(a.shape)) for _, a in offered}) or ["none"]
            missing.append(f"no value of shape {list(shape)} leaves its nodes (found {', '.join(shapes)})")
        else:
            names = ", ".join(n for n, _ in theirs)
            missing.append(
                f"{len(theirs)} values of shape {list(shape)} leave its nodes ({names}), {len(mine)} expected"
            )
    return pairs, (None if pairs else "; ".join(missing))

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
    reference: Sequence[np.ndarray], found: Sequence[tuple[str, np.ndarray]]
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str | None]:
    """Pair each floating reference tensor with the candidate value of its shape, or say why not.

    The candidate's values are those leaving the module in the artifact. Where several share a
    shape, they pair in order only when there are as many on both sides (an exporter keeps the
    order of a module's returned values); otherwise pairing them would be a guess.
    """
    wanted = [r for r in reference if _floating(r)]
    if not wanted:
        return [], "its output holds no floating-point tensor"
    offered = [(n, a) for n, a in found if _floating(a)]
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    for shape in dict.fromkeys(r.shape for r in wanted):
        mine = [r for r in wanted if r.shape == shape]
        theirs = [(n, a) for n, a in offered if a.shape == shape]
        if not theirs:
            shapes = sorted({str(list(a.shape)) for _, a in offered}) or ["none"]
            return [], f"no value of shape {list(shape)} leaves its nodes (found {', '.join(shapes)})"
        if len(theirs) != len(mine):
            names = ", ".join(n for n, _ in theirs)
            return [], f"{len(theirs)} values of shape {list(shape)} leave its nodes ({names}), {len(mine)} expected"
        pairs += [(r, a) for r, (_, a) in zip(mine, theirs, strict=True)]
    return pairs, None

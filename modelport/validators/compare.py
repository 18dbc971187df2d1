"""Pure comparison functions: arrays in, typed parity records out.

No runtime is touched here, so these are tested with plain numpy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from modelport.validators import tolerance as _tolerance
from modelport.validators.agreement import cosine_similarity, top1_agreement
from modelport.validators.identical import STREAM_MIN, identical_check, same_bytes
from modelport.validators.records import HIST_DECADES, ErrorHistogram, OutputCheck, Tolerance

__all__ = ["compare_array", "compare_outputs", "error_histogram"]


def compare_array(
    reference: np.ndarray,
    candidate: np.ndarray,
    tol: Tolerance,
    *,
    input_set: str,
    output: str,
    reference_dtype: str | None = None,
    candidate_dtype: str | None = None,
    reference64: np.ndarray | None = None,
    reference64_estimate: str = "copy",
) -> OutputCheck:
    """Compare one candidate array with its reference.

    An element passes when ``|c - r| <= atol + rtol * |r|`` (with ``rtol_scope="tensor"``:
    ``rtol * max|r|``). NaN passes only where the reference is NaN at the same place; an
    infinity only where the reference holds the same infinity. The declared dtypes override
    the arrays' own (golden files store bfloat16 as float32). ``reference64``, the reference
    re-run in float64, shows how much of the error is the reference's own rounding; for a
    non-exact, element-scope tolerance it also grounds the error budget: a check the element-wise
    bound fails passes when every element is within its bound plus a multiple of its own float32
    rounding error (``validators.tolerance``; ``decided_by`` says which
    bound decided, and with which float64 estimate: "copy" or "layerwise").
    """
    ref_dtype = reference_dtype or str(reference.dtype)
    cand_dtype = candidate_dtype or str(candidate.dtype)
    base = OutputCheck(
        input_set=input_set,
        output=output,
        verdict="pass",
        reference_shape=list(reference.shape),
        shape=list(candidate.shape),
        reference_dtype=ref_dtype,
        dtype=cand_dtype,
        shape_match=reference.shape == candidate.shape,
        dtype_match=ref_dtype == cand_dtype,
    )
    if not base.shape_match:
        return base.model_copy(
            update={
                "verdict": "fail",
                "category": "shape",
                "message": f"shape {list(candidate.shape)} != reference {list(reference.shape)}",
            }
        )

    if (
        reference.size >= STREAM_MIN
        and reference64 is None
        and base.dtype_match
        and reference.dtype.kind in "fiub"
        and same_bytes(reference, candidate)
    ):
        return identical_check(base, reference, tol)  # big and bit-identical: bounded memory, same record
    if np.iscomplexobj(reference) or np.iscomplexobj(candidate):
        # Compare real and imaginary parts alike: a conjugated output must not pass.
        reference = np.stack([np.real(reference), np.imag(reference)], axis=-1)
        candidate = np.stack([np.real(candidate), np.imag(candidate)], axis=-1)
    r = reference.astype(np.float64, copy=False)
    c = candidate.astype(np.float64, copy=False)
    r_nan, c_nan = np.isnan(r), np.isnan(c)
    r_inf, c_inf = np.isinf(r), np.isinf(c)
    finite = ~(r_nan | c_nan | r_inf | c_inf)
    # NaN where NaN is expected, or the same infinity, agrees; any other non-finite disagrees.
    nonfinite_ok = (r_nan & c_nan) | (r_inf & c_inf & (r == c))
    nonfinite_bad = ~finite & ~nonfinite_ok

    with np.errstate(over="ignore", invalid="ignore"):
        diff = np.abs(c[finite] - r[finite])
    abs_r = np.abs(r[finite])
    # rtol scales with each element, or (lossy formats) with the largest magnitude in the output,
    # because quantization error follows a tensor's range rather than each value.
    scale = abs_r if tol.rtol_scope == "element" else np.full_like(abs_r, abs_r.max() if abs_r.size else 0.0)
    bound = tol.atol + tol.rtol * scale
    outside = ~(diff <= bound)  # written so that a NaN bound fails rather than passes
    if reference.dtype.kind in "biu" and candidate.dtype.kind in "biu":
        # float64 loses integers above 2**53; any integer difference is >= 1, so where the
        # bound is below 1, inequality alone decides.
        outside |= (reference != candidate).ravel()[finite.ravel()] & (tol.atol + tol.rtol * scale < 1)
    mismatches = int(np.count_nonzero(outside)) + int(np.count_nonzero(nonfinite_bad))

    nonzero = abs_r > 0
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float((diff[nonzero] / abs_r[nonzero]).max()) if np.any(nonzero) else 0.0
    needed = diff - tol.rtol * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        used = float((diff / bound).max()) if diff.size and bool((bound > 0).all()) else None
    min_atol = float(max(needed.max(), 0.0)) if needed.size else 0.0

    bit_exact = bool(base.dtype_match and reference.dtype == candidate.dtype and same_bytes(reference, candidate))
    rounding = vs_fp64 = None
    if reference64 is not None and reference64.shape == reference.shape and reference.dtype.kind == "f":
        r64 = reference64.astype(np.float64)
        ok64 = finite & np.isfinite(r64)
        with np.errstate(over="ignore", invalid="ignore"):
            rounding = float(np.abs(r - r64)[ok64].max()) if ok64.any() else None
            vs_fp64 = float(np.abs(c - r64)[ok64].max()) if ok64.any() else None
    floats = reference.dtype.kind == "f" and candidate.dtype.kind == "f"
    cosine = cosine_similarity(reference, candidate) if floats else None
    allowance = None
    decided_by = "tolerance"
    grounded = tol.rtol_scope == "element" and (tol.atol > 0 or tol.rtol > 0) and floats
    if mismatches and grounded and rounding is not None and not nonfinite_bad.any():
        assert reference64 is not None
        allowance, within = _fp64_budget(r, c, reference64.astype(np.float64), finite, tol, rounding)
        if within:
            decided_by = f"float64-{reference64_estimate}"
    check = base.model_copy(
        update={
            "cosine": cosine,
            "top1_agreement": top1_agreement(reference, candidate) if floats else None,
            "reference_rounding_err": rounding,
            "max_abs_err_vs_fp64": vs_fp64,
            "elements": int(reference.size),
            "mismatches": mismatches,
            "nan_reference": int(np.count_nonzero(r_nan)),
            "nan_candidate": int(np.count_nonzero(c_nan)),
            "nonfinite_mismatches": int(np.count_nonzero(nonfinite_bad)),
            "max_abs_err": max_abs,
            "max_rel_err": max_rel,
            "min_passing_atol": min_atol,
            "tolerance_used": used,
            # atol at or above every reference value: even an all-zero candidate would pass.
            "vacuous": bool(abs_r.size and tol.atol > 0 and tol.atol >= float(abs_r.max())),
            "bit_exact": bit_exact,
            "fp64_allowance": allowance,
            "decided_by": decided_by,
            "abs_err_hist": error_histogram(diff),
        }
    )
    if mismatches and decided_by == "tolerance":
        return check.model_copy(
            update={
                "verdict": "fail",
                "category": "accuracy",
                "message": (
                    f"{mismatches} of {reference.size} elements outside {tol.describe()} "
                    + _nonfinite_why(int(np.count_nonzero(nonfinite_bad)), max_abs, max_rel)
                    + _fp64_why(vs_fp64, allowance)
                ),
            }
        )
    # The cosine gate: an all-zero reference has no direction, so the element-wise bound alone
    # decides there; an all-zero candidate against a non-zero reference has lost every direction
    # and fails (its cosine is taken as 0), however small the reference's values.
    if tol.min_cosine is not None and floats:
        if cosine is None and not _all_zero(reference, finite) and _all_zero(candidate, finite):
            return check.model_copy(
                update={
                    "verdict": "fail",
                    "category": "accuracy",
                    "message": f"the candidate is all zeros where the reference is not (cosine 0 < {tol.min_cosine:g})",
                }
            )
        if cosine is not None and cosine < tol.min_cosine:
            return check.model_copy(
                update={
                    "verdict": "fail",
                    "category": "accuracy",
                    "message": f"cosine similarity {cosine:.6f} < {tol.min_cosine:g}",
                }
            )
    if not base.dtype_match:
        return check.model_copy(
            update={
                "verdict": "fail",
                "category": "dtype",
                "message": f"dtype {cand_dtype} != reference {ref_dtype}",
            }
        )
    return check


def error_histogram(diff: np.ndarray) -> ErrorHistogram:
    """How many absolute errors are zero, and how many fall in each power of ten (``ErrorHistogram``)."""
    nonzero = diff[diff > 0]  # NaN compares false: never counted (non-finite elements are not in ``diff``)
    if not nonzero.size:
        return ErrorHistogram(exact=int(diff.size))
    low, high = HIST_DECADES
    with np.errstate(divide="ignore", over="ignore"):
        decades = np.clip(np.floor(np.log10(nonzero)), low, high).astype(np.int64)
    first = int(decades.min())
    counts = np.bincount(decades - first)
    return ErrorHistogram(exact=int(diff.size - nonzero.size), low=first, counts=[int(n) for n in counts])


def _fp64_budget(
    r: np.ndarray, c: np.ndarray, r64: np.ndarray, finite: np.ndarray, tol: Tolerance, rounding: float
) -> tuple[float | None, bool]:
    """The largest per-element float64 allowance, and whether every element is within its bound plus it."""
    abs_r = np.abs(r[finite])
    cap = _tolerance.fp64_cap(rounding, tol, float(abs_r.max()) if abs_r.size else 0.0)
    if cap is None:
        return None, False
    with np.errstate(over="ignore", invalid="ignore"):
        own = np.abs(r - r64)  # each element's own float32 rounding error
        # An element the float32 original happened to land next to the exact value says little about how
        # far float32 arithmetic goes there (its sum may cancel terms far larger than itself): its error
        # counts as at least the output's median one.
        measured = finite & np.isfinite(own)
        own = np.maximum(own, float(np.median(own[measured])) if measured.any() else 0.0)
        allowed = np.minimum(_tolerance.FP64_ROUNDING_FACTOR * own, cap)
        bound = tol.atol + tol.rtol * np.abs(r) + np.where(np.isfinite(allowed), allowed, 0.0)
        within = (np.abs(c - r64) <= bound) | (np.abs(c - r) <= tol.atol + tol.rtol * np.abs(r))
    largest = float(allowed[finite & np.isfinite(allowed)].max()) if (finite & np.isfinite(allowed)).any() else 0.0
    return largest, bool(within[finite].all())


def _all_zero(array: np.ndarray, finite: np.ndarray) -> bool:
    values = np.asarray(array, dtype=np.float64).reshape(finite.shape)[finite]
    return bool(values.size) and not values.any()


def _nonfinite_why(count: int, max_abs: float, max_rel: float) -> str:
    figures = f"max abs err {max_abs:.3g}, max rel err {max_rel:.3g}"
    if not count:
        return f"({figures})"
    return f"({count} NaN or infinite where the reference is not, or the reverse; on the finite ones {figures})"


def _fp64_why(vs_fp64: float | None, allowance: float | None) -> str:
    if allowance is None or vs_fp64 is None:
        return ""
    return f"; {vs_fp64:.3g} from the float64 reference, beyond the float64 rounding allowance too"


def compare_outputs(
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    tol: Tolerance,
    *,
    input_set: str,
    declared_dtypes: Mapping[str, str] | None = None,
    reference64: Mapping[str, np.ndarray] | None = None,
    set_kind: str | None = None,
    reference64_estimate: str = "copy",
) -> list[OutputCheck]:
    """Compare every reference output; a missing or unexpected output is a failed check, not an exception."""
    declared = declared_dtypes or {}

    def missing(name: str, message: str) -> OutputCheck:
        return OutputCheck(input_set=input_set, output=name, verdict="fail", category="missing", message=message)

    checks: list[OutputCheck] = []
    for name, ref in reference.items():
        if name not in candidate:
            checks.append(missing(name, f"candidate produced no output named {name!r} (it has {sorted(candidate)})"))
            continue
        dtype = declared.get(name)
        checks.append(
            compare_array(
                ref,
                candidate[name],
                tol,
                input_set=input_set,
                output=name,
                reference_dtype=dtype,
                candidate_dtype=dtype if candidate[name].dtype == ref.dtype else None,
                reference64=(reference64 or {}).get(name),
                reference64_estimate=reference64_estimate,
            )
        )
    checks += [
        missing(name, f"candidate produced an output {name!r} the reference does not have")
        for name in candidate
        if name not in reference
    ]
    if set_kind is not None:
        checks = [c.model_copy(update={"set_kind": set_kind}) for c in checks]
    return checks

"""The check of two bit-identical arrays, computed in bounded memory.

``compare_array`` converts both arrays to float64 and builds several element-wise temporaries:
about 40 bytes per element, 10 GB for one 16384x16384 float32 weight. Weights and outputs that
are bit-identical (the state_dict against the .pt2 program, TorchScript against eager) are the
common case for big models, and every figure of their check is known in closed form from a few
streamed aggregates: no error, no mismatch; what remains to count (NaN, the largest magnitude,
zeros, the norm) is read in chunks of ``CHUNK`` elements. tests/test_compare.py checks that this
gives the same record as the element-wise path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelport.validators.records import ErrorHistogram, OutputCheck, Tolerance

__all__ = ["CHUNK", "STREAM_MIN", "identical_check", "same_bytes"]

CHUNK = 1 << 22  # elements per streamed chunk: 32 MiB of float64 temporaries
STREAM_MIN = 1 << 22  # arrays smaller than this take the element-wise path (it costs little there)


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays of the same dtype and shape hold the same bytes, compared chunk by chunk (no copy)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    fa, fb = a.reshape(-1), b.reshape(-1)  # a view when contiguous; a copy of a strided array otherwise
    for start in range(0, fa.size, CHUNK):
        if fa[start : start + CHUNK].tobytes() != fb[start : start + CHUNK].tobytes():
            return False
    return True


@dataclass
class _Aggregates:
    nan: int = 0
    finite: int = 0
    abs_max: float = 0.0
    zeros: int = 0  # finite elements equal to zero
    squares: float = 0.0  # sum of squares of the finite elements, in float64


def _aggregate(flat: np.ndarray) -> _Aggregates:
    agg = _Aggregates()
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, flat.size, CHUNK):
            r = flat[start : start + CHUNK].astype(np.float64)
            finite = np.isfinite(r)
            agg.nan += int(np.count_nonzero(np.isnan(r)))
            values = np.abs(r[finite])
            agg.finite += values.size
            if values.size:
                agg.abs_max = max(agg.abs_max, float(values.max()))
                agg.zeros += int(np.count_nonzero(values == 0))
                agg.squares += float(np.dot(values, values))
    return agg


def identical_check(base: OutputCheck, reference: np.ndarray, tol: Tolerance) -> OutputCheck:
    """The passing check of ``reference`` against a bit-identical candidate (same dtype, same shape).

    ``base`` is the check's identity (set, output, shapes, dtypes), as ``compare_array`` builds it.
    """
    agg = _aggregate(reference.reshape(-1))
    floats = reference.dtype.kind == "f"
    scale_positive = agg.abs_max > 0 if tol.rtol_scope == "tensor" else agg.zeros == 0
    bound_positive = tol.atol > 0 or (tol.rtol > 0 and scale_positive)
    cosine = None
    if floats and agg.finite:
        norm = agg.squares**0.5
        cosine = (1.0 if agg.abs_max == 0 else None) if norm == 0 else (1.0 if np.isfinite(norm) else None)
    top1 = None
    if floats and reference.ndim == 2 and reference.shape[-1] >= 2 and agg.finite == reference.size:
        top1 = 1.0
    return base.model_copy(
        update={
            "cosine": cosine,
            "top1_agreement": top1,
            "reference_rounding_err": None,
            "max_abs_err_vs_fp64": None,
            "elements": int(reference.size),
            "mismatches": 0,
            "nan_reference": agg.nan,
            "nan_candidate": agg.nan,
            "nonfinite_mismatches": 0,
            "max_abs_err": 0.0,
            "max_rel_err": 0.0,
            "min_passing_atol": 0.0,
            "tolerance_used": 0.0 if agg.finite and bound_positive else None,
            "vacuous": bool(agg.finite and tol.atol > 0 and tol.atol >= agg.abs_max),
            "bit_exact": True,
            "fp64_allowance": None,
            "decided_by": "tolerance",
            "abs_err_hist": ErrorHistogram(exact=agg.finite),  # every element finite in both is exact
        }
    )

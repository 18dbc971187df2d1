"""Tolerances: explicit per format, overridable globally and per format, recorded.

Precedence, highest first: ``--tol FORMAT=ATOL,RTOL`` > ``--atol``/``--rtol`` > the
format's documented default. The global flags never loosen a format whose default is
exact (the clones) unless that format is named in ``--tol``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from modelport.errors import UsageError
from modelport.validators.records import Tolerance

__all__ = [
    "FP64_CAP",
    "FP64_ROUNDING_FACTOR",
    "fp64_cap",
    "is_looser",
    "parse_float",
    "parse_tol_list",
    "resolve_tolerances",
]

# The error budget grounded in the model's own rounding. A float32 runtime that reorders
# float ops lands about as far from the exact (float64) result as the float32 original does.
# So an element the element-wise bound fails still passes when
#     |candidate - float64 reference| <= atol + rtol * |reference|
#                                        + min(FP64_ROUNDING_FACTOR * |original - float64 reference|, cap)
# element by element: each element is allowed a multiple of *its own* float32 rounding error,
# so small outputs never inherit the rounding of large ones; an element whose float32 value
# happened to land next to the exact one counts the output's median rounding error instead
# (found on another CPU: one element of 64 at 3e-6 where the median was larger, and
# onnxruntime's reordering 16x that element's own). The cap, FP64_CAP times the bound
# at the output's largest magnitude, keeps a numerically unstable model (or float64 outputs that
# do not belong to the golden ones) from widening it without limit; when the original's rounding
# error is beyond the cap anywhere, the float64 data vouch for nothing: no allowance at all. A
# layer scaled by 1.001 moves outputs by 1e-3 of their magnitude, orders above float32 rounding
# (about 1e-7 of it). The factor leaves room for one element's rounding being a small sample of
# the runtime's: measured up to 3.5 on MobileNetV3's x100 inputs, 0.7 on ResNet-18's.
FP64_ROUNDING_FACTOR = 8.0
FP64_CAP = 10.0


def fp64_cap(rounding: float, tol: Tolerance, max_abs_reference: float) -> float | None:
    """The largest allowance any element may get, or None when the original's own rounding error
    (its largest, ``rounding``) is beyond it, so that the float64 data cannot ground a verdict."""
    cap = FP64_CAP * (tol.atol + tol.rtol * max_abs_reference)
    return cap if rounding <= cap else None


def is_looser(tol: Tolerance, default: Tolerance) -> bool:
    """Whether ``tol`` accepts something the documented ``default`` would reject."""
    if tol.atol > default.atol or tol.rtol > default.rtol:
        return True
    if tol.rtol_scope == "tensor" and default.rtol_scope == "element" and tol.rtol > 0:
        return True
    return default.min_cosine is not None and (tol.min_cosine is None or tol.min_cosine < default.min_cosine)


def parse_float(text: str, what: str) -> float:
    """A finite, non-negative float, or a UsageError naming the flag."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{what} must be a number such as 1e-5, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{what} must be a finite number >= 0, got {text!r}")
    return value


def parse_tol_list(texts: Iterable[str], known: Iterable[str]) -> dict[str, tuple[float, float | None]]:
    """Parse ``onnx=1e-5,1e-4,torchscript=1e-6`` (repeatable) into ``{format: (atol, rtol|None)}``.

    Commas separate both entries and the two numbers of an entry: a token with ``=``
    starts an entry, the next token without one is its rtol.
    """
    known = list(known)
    parsed: dict[str, tuple[float, float | None]] = {}
    current: str | None = None
    for text in texts:
        current = None  # an rtol never continues an entry from another --tol
        for token in (t.strip() for t in text.split(",")):
            if not token:
                continue
            if "=" in token:
                fmt, _, atol_text = token.partition("=")
                fmt = fmt.strip()
                if fmt not in known:
                    raise UsageError(f"--tol names unknown format {fmt!r}; known formats: {', '.join(known)}")
                parsed[fmt] = (parse_float(atol_text, f"--tol {fmt} atol"), None)
                current = fmt
            elif current is not None and parsed[current][1] is None:
                parsed[current] = (parsed[current][0], parse_float(token, f"--tol {current} rtol"))
            else:
                raise UsageError(
                    f"--tol could not read {token!r}; write FORMAT=ATOL,RTOL entries, e.g. --tol onnx=1e-5,1e-4"
                )
    return parsed


def resolve_tolerances(
    defaults: Mapping[str, Tolerance],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    per_format: Mapping[str, tuple[float, float | None]] | None = None,
) -> dict[str, Tolerance]:
    """The tolerance each format is judged by, with where it came from."""
    per_format = per_format or {}
    resolved: dict[str, Tolerance] = {}
    for fmt, default in defaults.items():
        tol = default
        exact_default = default.atol == 0 and default.rtol == 0
        if (atol is not None or rtol is not None) and not exact_default:
            tol = Tolerance(
                atol=default.atol if atol is None else atol,
                rtol=default.rtol if rtol is None else rtol,
                rtol_scope=default.rtol_scope,
                min_cosine=default.min_cosine,
                source="--atol/--rtol",
            )
        if fmt in per_format:
            f_atol, f_rtol = per_format[fmt]
            tol = Tolerance(
                atol=f_atol,
                rtol=tol.rtol if f_rtol is None else f_rtol,
                rtol_scope=tol.rtol_scope,
                min_cosine=tol.min_cosine,
                source="--tol",
            )
        resolved[fmt] = tol
    return resolved

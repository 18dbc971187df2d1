"""Typed parity records: what was compared, against which tolerance, and the verdict.

The elementwise verdict cannot be rebuilt from max errors alone, so it is stored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from modelport.localize.records import Localization

__all__ = ["CandidateResult", "CandidateVerdict", "Category", "ErrorHistogram", "OutputCheck", "Tolerance", "Verdict"]

Verdict = Literal["pass", "fail"]
# A candidate may also be "unproven": nothing failed, but nothing showed it right either (a weights file
# whose tensors no verified artifact holds). It never counts as a pass; ``verify --require-proof`` fails it.
CandidateVerdict = Literal["pass", "fail", "unproven"]
# Why a check failed; shared by every report format.
# "trust": a program file (TorchScript, .pt2) left unloaded because its folder is not trusted.
Category = Literal["export", "load", "run", "shape", "dtype", "accuracy", "missing", "integrity", "trust"]


class Tolerance(BaseModel):
    """An element passes when ``|c - r| <= atol + rtol * |r|`` (or ``rtol * max|r|`` with tensor scope)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Finite and non-negative: a NaN or infinite tolerance read from a manifest would pass anything.
    atol: float = Field(ge=0, allow_inf_nan=False)
    rtol: float = Field(ge=0, allow_inf_nan=False)
    rtol_scope: Literal["element", "tensor"] = "element"  # rtol times |r| of the element, or max |r| of the output
    min_cosine: float | None = Field(default=None, ge=-1, le=1, allow_inf_nan=False)  # lossy formats: also this
    source: str = "default"  # "default", "--atol/--rtol", "--tol", "manifest"

    def describe(self) -> str:
        text = "exact" if self.atol == 0 and self.rtol == 0 else f"atol={self.atol:g} rtol={self.rtol:g}"
        if self.rtol_scope == "tensor" and self.rtol:
            text += "*max|ref|"
        return text + (f" cos>={self.min_cosine:g}" if self.min_cosine is not None else "")


HIST_DECADES = (-30, 30)  # powers of ten an error histogram spans; errors beyond are counted at the ends


class ErrorHistogram(BaseModel):
    """Per-element ``|candidate - reference|`` over the elements finite in both, counted per power of ten.

    ``exact`` elements are equal; ``counts[i]`` elements have ``10**(low+i) <= err < 10**(low+i+1)``
    (errors below ``10**-30`` count in the first decade, from ``10**30`` in the last). Only the
    decades from the smallest to the largest error are stored, so it stays a few numbers long.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    exact: int = Field(ge=0)
    low: int = Field(default=0, ge=HIST_DECADES[0], le=HIST_DECADES[1])
    counts: list[Annotated[int, Field(ge=0)]] = Field(default=[], max_length=HIST_DECADES[1] - HIST_DECADES[0] + 1)


class OutputCheck(BaseModel):
    """One output of one candidate on one input set, compared with the reference."""

    model_config = ConfigDict(extra="forbid")

    input_set: str
    output: str
    verdict: Verdict
    set_kind: str | None = None  # "example", "random", "sweep", "edge", "user"
    category: Category | None = None  # set when the verdict is "fail"
    message: str | None = None  # one line, set when the verdict is "fail"
    reference_shape: list[int] | None = None
    shape: list[int] | None = None
    reference_dtype: str | None = None
    dtype: str | None = None
    shape_match: bool | None = None
    dtype_match: bool | None = None
    elements: int | None = None
    mismatches: int | None = None  # elements outside tolerance, NaN/Inf disagreements included
    nan_reference: int | None = None
    nan_candidate: int | None = None
    max_abs_err: float | None = None  # over elements finite in both
    max_rel_err: float | None = None  # over elements finite in both with a non-zero reference
    min_passing_atol: float | None = None  # smallest atol that passes at this rtol (finite elements)
    tolerance_used: float | None = None  # max |c - r| / (atol + rtol * scale): 1.0 is at the limit
    vacuous: bool | None = None  # atol >= max |reference|: this check could not fail; tighten it
    bit_exact: bool | None = None
    cosine: float | None = None  # cosine similarity of the flattened outputs
    top1_agreement: float | None = None  # rank >= 2 float outputs: rows whose arg-max agrees
    reference_rounding_err: float | None = None  # max |reference - reference run in float64|
    max_abs_err_vs_fp64: float | None = None  # max |candidate - reference run in float64|
    # The largest per-element float64 rounding allowance (validators.tolerance): a multiple of each
    # element's own float32 rounding error, capped; set when the element-wise tolerance failed.
    fp64_allowance: float | None = None
    nonfinite_mismatches: int | None = None  # NaN/inf disagreements, counted in mismatches; they always gate
    # Which bound decided a pass: "tolerance" (element-wise atol/rtol), or "float64" (the candidate
    # is within the allowance of the float64 reference); with the float64 estimate used.
    decided_by: Literal["tolerance", "float64-copy", "float64-layerwise", "float64-inplace"] | None = None
    # False for a check that is reported but does not decide the verdict: a lossy format on a
    # synthetic edge set (zeros, inputs x100), unless --strict-edges.
    gates: bool = True
    abs_err_hist: ErrorHistogram | None = None  # the distribution of the errors (reports draw it)


class CandidateResult(BaseModel):
    """A format at a runtime (``onnx@onnxruntime``) checked on every input set."""

    model_config = ConfigDict(extra="forbid")

    candidate: str
    format: str
    runtime: str
    tolerance: Tolerance
    # "untrusted": a program file not loaded, as its folder is not trusted (verdict "fail", listed as not verified)
    status: Literal["ok", "failed", "skipped", "unproven", "untrusted"]
    verdict: CandidateVerdict
    category: Category | None = None  # when the candidate could not run at all
    reason: str | None = None
    # What verify proved for this file, e.g. "intact by sha256; replayed every golden set".
    proof: str | None = None
    checks: list[OutputCheck] = []
    # Summaries over every check: the worst error and the smallest tolerance that would have passed.
    max_abs_err: float | None = None
    min_passing_atol: float | None = None
    tolerance_used: float | None = None
    min_cosine: float | None = None
    min_top1_agreement: float | None = None
    # The runtime that ran it: its version here, and what it reported (a browser's user agent).
    runtime_version: str | None = None
    runtime_facts: dict[str, str] = {}
    # Seconds to open the artifact, and per input set to run it (the runtime's own figures where it gave them).
    load_seconds: float | None = None
    infer_seconds: dict[str, float] = {}
    # Where it first diverged, by module path, when it failed and the model's code was at hand (run, verify --model).
    localization: Localization | None = None
    # What the candidate computed, per input set (not serialised): kept for reports and localisation.
    _outputs: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)

    def outputs(self) -> dict[str, dict[str, Any]]:
        """The candidate's outputs by input set and output name (numpy arrays), as its runtime returned them."""
        return self._outputs

    def failures(self) -> list[OutputCheck]:
        """Failing checks that decide the verdict."""
        return [c for c in self.checks if c.verdict == "fail" and c.gates]

    def flagged(self) -> list[OutputCheck]:
        """Failing checks reported but not gating (a lossy format on a synthetic edge set)."""
        return [c for c in self.checks if c.verdict == "fail" and not c.gates]

"""What localisation found: the first module, in execution order, whose output left the tolerance.

Light on purpose (pydantic only): the records ride inside every report and are read by ``verify``
and the schemas without torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Localization", "LocalizeStatus", "ModuleError", "ValueCheck"]

# "localized": a module blamed (its own error, fed the reference's inputs, leaves the tolerance);
# "first-only": the first module out of tolerance named, but no module blamed (it was within tolerance alone,
# or could not be run alone: an error from outside the named modules, or small errors amplified);
# "outside-modules": every module within tolerance, the outputs not;
# "no-divergence": the final outputs within tolerance (modelport localize on a candidate that passed);
# "not-reproduced": the copy with intermediate values exposed no longer fails, so nothing is blamed;
# "unmapped": no module of the model could be matched in the artifact; "error": localisation itself failed.
LocalizeStatus = Literal[
    "localized", "first-only", "outside-modules", "no-divergence", "not-reproduced", "unmapped", "error"
]


class ValueCheck(BaseModel):
    """One comparison of a module's output with the reference's (the same figures as every other check)."""

    model_config = ConfigDict(extra="forbid")

    verdict: Literal["pass", "fail"]
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    cosine: float | None = None
    tolerance_used: float | None = None  # max |c - r| / allowed: 1.0 is at the limit
    mismatches: int | None = None
    elements: int | None = None
    message: str | None = None


class ModuleError(BaseModel):
    """One named submodule, in the reference's execution order (a module's children finish before it)."""

    model_config = ConfigDict(extra="forbid")

    module: str  # dotted path, e.g. "encoder.layers.1.mlp.fc2"
    class_name: str
    order: int  # when its forward finished in the reference, from 0
    # Its output as the candidate computed it, fed by the candidate's own earlier layers.
    chained: ValueCheck | None = None
    # Its output when fed the reference's inputs to this module: its own error, not what it inherited.
    own: ValueCheck | None = None
    unmapped: str | None = None  # why this module could not be compared in the artifact


class Localization(BaseModel):
    """Where a failing candidate first diverges from the original, by module path."""

    model_config = ConfigDict(extra="forbid")

    candidate: str
    input_set: str
    status: LocalizeStatus
    via: str  # what ran, e.g. "onnxruntime on model.onnx, 12 intermediate values exposed"
    first: str | None = None  # the first module whose output leaves the tolerance
    blamed: str | None = None  # the first module whose own error leaves it (None: no module alone)
    summary: str  # one line for terminals, JUnit messages and the CI summary
    tolerance: str  # the candidate's tolerance, as described in every report
    modules: list[ModuleError] = []  # in execution order, up to a few past ``first``
    unmapped: list[str] = []  # modules the artifact has no separate values for, and why
    notes: list[str] = []
    seconds: float | None = None

"""The validate stage: input sets, reference outputs (also in float64), every candidate, hints.

Sets, in order: the example X; ``samples`` seeded random sets with the example's
shapes; every dynamic axis at other sizes; ``--inputs`` real inputs; edge cases (zeros,
large magnitudes), which are reported as their own kind.
"""

from __future__ import annotations

from modelport.errors import UsageError, one_line
from modelport.exporters.base import FormatRecord
from modelport.pipeline.build import Built
from modelport.pipeline.inputs import InputSet, edge_sets, random_sets, sweep_sets
from modelport.pipeline.records import LostSet
from modelport.pipeline.reference64 import float64_reference
from modelport.signature import torch_to_numpy
from modelport.validators.candidate import ReplaySet
from modelport.validators.records import CandidateResult

__all__ = ["LostSet", "input_sets", "reference_replays", "specialisation_hint"]


def input_sets(built: Built, seed: int, samples: int, user: InputSet | None) -> list[InputSet]:
    example = InputSet(
        "example", "example", "the example input X", {k: torch_to_numpy(v) for k, v in built.inputs.items()}
    )
    sets = [example, *random_sets(built.inputs, built.rules, seed, samples)]
    sets += sweep_sets(built.signature, built.inputs, built.rules, seed)
    if user is not None:
        sets.append(user)
    sets += edge_sets(built.inputs, built.rules, seed)
    return sets


def reference_replays(
    built: Built, sets: list[InputSet], notes: list[str]
) -> tuple[list[InputSet], list[ReplaySet], list[LostSet]]:
    """The original's outputs on every set (and in float64). A generated set the original itself
    cannot run is dropped, and returned as lost coverage."""
    runner = built.runner()
    model64 = float64_reference(built.model, built.signature, built.info.parameters, built.source.factory, notes)
    kept: list[InputSet] = []
    replays: list[ReplaySet] = []
    lost: list[LostSet] = []
    for s in sets:
        if s.kind == "example":
            reference = built.reference
        else:
            try:
                reference = runner.infer(s.inputs)
            except Exception as e:
                if s.kind == "user":  # the user's own inputs are never dropped
                    raise UsageError(f"--inputs: the original model fails on them: {one_line(e, 200)}") from e
                why = f"the original model fails on it: {type(e).__name__}: {one_line(e, 200)}"
                notes.append(f"input set {s.name} dropped: {why}")
                lost.append(LostSet(name=s.name, kind=s.kind, reason=why))
                continue
        reference64 = None
        if model64 is not None:
            try:
                reference64 = model64.infer(s.inputs)
            except Exception as e:
                notes.append(f"float64 reference skipped: {type(e).__name__}: {one_line(e, 150)}")
                model64 = None
        kept.append(s)
        estimate = model64.estimate if model64 is not None else "copy"
        replays.append(ReplaySet(s.name, s.inputs, reference, s.kind, reference64, estimate))
    return kept, replays, lost


def specialisation_hint(result: CandidateResult, record: FormatRecord | None) -> str | None:
    """Why a candidate that is right on the example but wrong elsewhere is likely wrong."""
    if result.verdict != "fail" or not result.checks or result.tolerance.min_cosine is not None:
        return None  # lossy formats differ everywhere by design: no specialisation to point at
    structural = ("accuracy", "shape", "run")
    failing = sorted(
        {
            c.input_set
            for c in result.checks
            if c.verdict == "fail" and c.set_kind != "edge" and c.category in structural
        }
    )
    if not failing or "example" in failing:
        return None
    hint = (
        f"right on the example input but wrong on {', '.join(failing)}: the export likely specialised on the "
        "example (a shape or a data-dependent branch baked in)"
    )
    tracer = [n for n in (record.notes if record else []) if n.startswith("TracerWarning")]
    if tracer:
        hint += f"; the tracer warned: {tracer[0]}"
    return hint

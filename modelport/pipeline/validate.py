"""The validate stage: input sets, reference outputs (also in float64), every candidate, hints.

Sets, in order: the example X; ``samples`` seeded random sets with the example's
shapes; every dynamic axis at other sizes; ``--inputs`` real inputs; edge cases (zeros,
large magnitudes), which are reported as their own kind.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import torch

from modelport.errors import UsageError, one_line
from modelport.exporters.base import FormatRecord
from modelport.pipeline.build import Built
from modelport.pipeline.inputs import InputSet, edge_sets, random_sets, sweep_sets
from modelport.signature import flatten_outputs, torch_to_numpy
from modelport.validators.candidate import ReplaySet
from modelport.validators.records import CandidateResult

__all__ = ["FP64_MAX_PARAMS", "input_sets", "reference_replays", "specialisation_hint"]

# Above this many parameters the float64 re-run of the reference is skipped (it doubles memory).
FP64_MAX_PARAMS = 50_000_000


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


def _float64_runner(built: Built, notes: list[str]) -> torch.nn.Module | None:
    if built.info.parameters > FP64_MAX_PARAMS:
        notes.append(f"float64 reference skipped: {built.info.parameters:,} parameters > {FP64_MAX_PARAMS:,}")
        return None
    if not any(p.is_floating_point() for p in built.model.parameters()):
        return None
    try:
        return copy.deepcopy(built.model).double()
    except Exception:
        pass
    try:  # not deep-copyable (it holds a lock, a file...): a fresh instance with the same weights
        fresh = built.source.factory()
        fresh.load_state_dict(built.model.state_dict())
        return fresh.eval().double()
    except Exception as e:
        notes.append(f"float64 reference skipped: the model can be neither copied nor rebuilt ({one_line(e, 120)})")
        return None


def _run64(model64: torch.nn.Module, built: Built, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    args = {}
    for spec in built.signature.inputs:
        t = torch.from_numpy(np.array(inputs[spec.name]))
        args[spec.name] = t.double() if t.is_floating_point() else t.to(getattr(torch, spec.dtype))
    with torch.inference_mode():
        out = model64(**args) if built.signature.call == "keyword" else model64(*args.values())
    return {
        s.name: t.detach().double().numpy() for s, t in zip(built.signature.outputs, flatten_outputs(out), strict=True)
    }


def reference_replays(built: Built, sets: list[InputSet], notes: list[str]) -> tuple[list[InputSet], list[ReplaySet]]:
    """The original's outputs on every set. A generated set the original itself cannot run is dropped with a note."""
    runner = built.runner()
    model64 = _float64_runner(built, notes)
    kept: list[InputSet] = []
    replays: list[ReplaySet] = []
    for s in sets:
        if s.kind == "example":
            reference = built.reference
        else:
            try:
                reference = runner.infer(s.inputs)
            except Exception as e:
                if s.kind == "user":  # the user's own inputs are never dropped
                    raise UsageError(f"--inputs: the original model fails on them: {one_line(e, 200)}") from e
                notes.append(f"input set {s.name} dropped: the original model fails on it: {one_line(e, 200)}")
                continue
        reference64 = None
        if model64 is not None:
            try:
                reference64 = _run64(model64, built, s.inputs)
            except Exception as e:
                notes.append(f"float64 reference skipped: {type(e).__name__}: {one_line(e, 150)}")
                model64 = None
        kept.append(s)
        replays.append(ReplaySet(s.name, s.inputs, reference, kind=s.kind, reference64=reference64))
    return kept, replays


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

"""The sensitivity half of the verdict: a lossless format must still fail a model whose layer
nearest the output is scaled by 1.001, on every input set where that perturbed model differs
from the original beyond the tolerance, measured in float64 (where float32 rounding cannot hide
or fake the difference).

Used on the small test models (test_verdicts.py) and on the third-party zoo.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from modelport import exporters
from modelport.pipeline.golden import read_npz
from modelport.pipeline.manifest import read_manifest
from modelport.validators.compare import compare_outputs
from tests.scaled_layer import LOSSLESS, call_model, output_layer, scale_output_layer


def assert_perturbation_caught(folder: Path, model: torch.nn.Module) -> int:
    """Every lossless tolerance fails the perturbed model on every golden set where it differs in float64.

    Judged exactly as the run judges a candidate: against the golden float32 outputs, with the
    golden float64 outputs as the rounding reference. Returns how many (set, format) pairs had
    to fail, so a caller can see the check was not vacuous.
    """
    manifest = read_manifest(folder)
    golden = manifest.golden
    assert golden is not None
    model = model.eval()
    perturbed = scale_output_layer(model, output_layer(model, manifest, read_npz(folder / golden.inputs)))
    perturbed64 = copy.deepcopy(perturbed).double()
    sets = [("example", golden.inputs, golden.outputs, golden.outputs64)]
    sets += [(s.name, s.inputs, s.outputs, s.outputs64) for s in golden.sets]
    caught = 0
    for name, inputs_rel, outputs_rel, rel64 in sets:
        assert rel64 is not None, f"{name} has no float64 outputs"
        inputs = read_npz(folder / inputs_rel)
        reference, reference64 = read_npz(folder / outputs_rel), read_npz(folder / rel64)
        candidate = call_model(perturbed, manifest, inputs, double=False)
        candidate64 = call_model(perturbed64, manifest, inputs, double=True)
        for fmt in LOSSLESS:
            tol = exporters.default_tolerance(fmt, manifest.model.dtypes)
            moved = compare_outputs(reference64, {k: candidate64[k] for k in reference64}, tol, input_set=name)
            float64_differs = any(c.verdict == "fail" for c in moved)
            if not float64_differs:
                continue
            checks = compare_outputs(reference, candidate, tol, input_set=name, reference64=reference64)
            assert any(c.verdict == "fail" for c in checks), (
                f"{fmt}'s tolerance {tol.describe()} passes a last layer scaled by 1.001 on {name}: "
                + "; ".join(f"{c.output}: {c.decided_by} {c.max_abs_err} allowance {c.fp64_allowance}" for c in checks)
            )
            caught += 1
    return caught

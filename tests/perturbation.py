"""The sensitivity half of the verdict: a lossless format must still fail a model whose layer
nearest the output is scaled by 1.001, on every input set where that perturbed model differs
from the original beyond the tolerance, measured in float64 (where float32 rounding cannot hide
or fake the difference).

Used on the small test models (test_verdicts.py) and on the third-party zoo.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from modelport import exporters
from modelport.pipeline.golden import read_npz
from modelport.pipeline.manifest import read_manifest
from modelport.signature import flatten_outputs
from modelport.validators.compare import compare_outputs

LOSSLESS = [n for n in exporters.names() if not exporters.get(n).lossy]


def scaled_copy(model: torch.nn.Module, inputs: dict[str, torch.Tensor], keyword: bool) -> torch.nn.Module:
    """A copy of ``model`` whose last-run module with a floating weight has that weight x 1.001."""
    order: list[torch.nn.Module] = []
    handles = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
        for m in model.modules()
        if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.is_floating_point()
    ]
    try:
        with torch.inference_mode():
            model(**inputs) if keyword else model(*inputs.values())
    finally:
        for h in handles:
            h.remove()
    assert order, "the model has no module with a floating weight"
    target = order[-1]
    name = next(n for n, m in model.named_modules() if m is target)
    perturbed = copy.deepcopy(model)
    with torch.no_grad():
        perturbed.get_submodule(name).weight.mul_(1.001)
    return perturbed


def _run(model: torch.nn.Module, arrays: dict[str, np.ndarray], names: list[str], keyword: bool, dtype: torch.dtype):  # type: ignore[no-untyped-def]
    args = {}
    for k, v in arrays.items():
        t = torch.from_numpy(np.array(v))
        args[k] = t.to(dtype) if t.is_floating_point() else t
    with torch.inference_mode():
        out = model(**args) if keyword else model(*args.values())
    return {n: t.detach().numpy() for n, t in zip(names, flatten_outputs(out), strict=True)}


def assert_perturbation_caught(folder: Path, model: torch.nn.Module) -> int:
    """Every lossless tolerance fails the perturbed model on every golden set where it differs in float64.

    Judged exactly as the run judges a candidate: against the golden float32 outputs, with the
    golden float64 outputs as the rounding reference. Returns how many (set, format) pairs had
    to fail, so a caller can see the check was not vacuous.
    """
    manifest = read_manifest(folder)
    golden = manifest.golden
    assert golden is not None
    keyword = manifest.signature.call == "keyword"
    names = manifest.signature.output_names
    model = model.eval()
    fake_inputs = {
        s.name: torch.from_numpy(np.array(read_npz(folder / golden.inputs)[s.name])) for s in manifest.signature.inputs
    }
    perturbed = scaled_copy(model, fake_inputs, keyword)
    perturbed64 = copy.deepcopy(perturbed).double()
    sets = [("example", golden.inputs, golden.outputs, golden.outputs64)]
    sets += [(s.name, s.inputs, s.outputs, s.outputs64) for s in golden.sets]
    caught = 0
    for name, inputs_rel, outputs_rel, rel64 in sets:
        assert rel64 is not None, f"{name} has no float64 outputs"
        inputs = read_npz(folder / inputs_rel)
        reference, reference64 = read_npz(folder / outputs_rel), read_npz(folder / rel64)
        candidate = _run(perturbed, inputs, names, keyword, torch.float32)
        candidate64 = _run(perturbed64, inputs, names, keyword, torch.float64)
        for fmt in LOSSLESS:
            tol = exporters.default_tolerance(fmt, manifest.model.dtypes)
            float64_differs = any(
                c.verdict == "fail"
                for c in compare_outputs(
                    {k: reference64[k] for k in reference64},
                    {k: candidate64[k] for k in reference64},
                    tol,
                    input_set=name,
                )
            )
            if not float64_differs:
                continue
            checks = compare_outputs(reference, candidate, tol, input_set=name, reference64=reference64)
            assert any(c.verdict == "fail" for c in checks), (
                f"{fmt}'s tolerance {tol.describe()} passes a last layer scaled by 1.001 on {name}: "
                + "; ".join(f"{c.output}: {c.decided_by} {c.max_abs_err} allowance {c.fp64_allowance}" for c in checks)
            )
            caught += 1
    return caught

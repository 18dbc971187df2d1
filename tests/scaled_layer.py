"""Does a lossless artifact fail when the layer nearest the output is scaled by 1.001?

The artifacts of a folder that ``modelport run`` wrote are loaded from disk by their own runtimes and
replayed on every golden input set, with modelport's own ``check_candidate`` at each format's default
tolerance, against a *perturbed* reference: the original weights (read back from the folder's
``state_dict.pt``) with the weight of the last layer the forward pass runs scaled by 1.001. That is the
same comparison as a perturbed artifact against the true reference, up to which side ``rtol`` scales.

What must fail: every (input set, output) where the perturbed model differs from the original beyond the
format's default tolerance *in float64*, so that rounding cannot decide it. Each such check must fail as
an accuracy failure; a load or run failure would prove nothing. The run's own records (the same artifact
against the true golden outputs) say which of them the unperturbed artifact passes, so a format that fails
everywhere anyway (a false failure) cannot make this test pass on its own.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modelport import exporters
from modelport.loaders import granted
from modelport.pipeline.golden import read_npz
from modelport.pipeline.manifest import read_manifest
from modelport.pipeline.records import Report
from modelport.signature import flatten_named, numpy_to_torch, torch_to_numpy
from modelport.validators.candidate import ReplaySet, check_candidate
from modelport.validators.compare import compare_outputs

__all__ = [
    "FACTOR",
    "LOSSLESS",
    "ScaledCheck",
    "call_model",
    "output_layer",
    "scale_output_layer",
    "scaled_output_layer_checks",
]

FACTOR = 1.001
LOSSLESS = ("state_dict", "safetensors", "torchscript", "torch_export", "onnx", "onnx_optimized")
Pair = tuple[str, str]  # (input set, output)


@dataclass(frozen=True)
class ScaledCheck:
    """One lossless format of one folder, replayed against the perturbed reference."""

    fmt: str
    layer: str
    must_fail: frozenset[Pair]  # the perturbed model differs beyond the tolerance here, in float64
    failed: Mapping[Pair, str]  # what failed against the perturbed reference -> its category
    control_passed: frozenset[Pair]  # what the run passed: the same artifact against the true golden outputs

    @property
    def missed(self) -> list[Pair]:
        """Checks that should have caught the scaled layer and did not (or failed for another reason)."""
        return sorted(p for p in self.must_fail if self.failed.get(p) != "accuracy")

    @property
    def informative(self) -> frozenset[Pair]:
        """Must-fail checks whose unperturbed control passed: each one shows the perturbation was caught."""
        return self.must_fail & self.control_passed


def call_model(
    model: nn.Module, manifest: Report, inputs: Mapping[str, np.ndarray], double: bool
) -> dict[str, np.ndarray]:
    args = {}
    for spec in manifest.signature.inputs:
        t = numpy_to_torch(inputs[spec.name], spec.dtype)
        args[spec.name] = t.double() if double and t.is_floating_point() else t
    with torch.inference_mode():
        out = model(**args) if manifest.signature.call == "keyword" else model(*args.values())
    named = dict(flatten_named(out))
    return {s.name: torch_to_numpy(named[s.name]) for s in manifest.signature.outputs}


def output_layer(model: nn.Module, manifest: Report, inputs: Mapping[str, np.ndarray]) -> str:
    """The name of the last module with its own ``weight`` that the forward pass runs."""
    order: list[str] = []
    hooks = [
        m.register_forward_hook(lambda mod, args, out, name=name: order.append(name))
        for name, m in model.named_modules()
        if isinstance(m._parameters.get("weight"), torch.Tensor)
    ]
    try:
        call_model(model, manifest, inputs, double=False)
    finally:
        for h in hooks:
            h.remove()
    if not order:
        raise AssertionError("the model runs no module with a weight")
    return order[-1]


def scale_output_layer(model: nn.Module, layer: str) -> nn.Module:
    """A copy of ``model`` with ``layer``'s weight scaled by FACTOR."""
    perturbed = copy.deepcopy(model)
    weight = perturbed.get_submodule(layer)._parameters["weight"]
    assert weight is not None
    with torch.no_grad():
        weight.mul_(FACTOR)
    return perturbed


def _golden(folder: Path, manifest: Report) -> list[tuple[str, str, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    golden = manifest.golden
    assert golden is not None, f"{folder} records no golden data"
    sets = [("example", "example", golden.inputs, golden.outputs)]
    sets += [(s.name, s.kind, s.inputs, s.outputs) for s in golden.sets]
    return [(name, kind, read_npz(folder / i), read_npz(folder / o)) for name, kind, i, o in sets]


def scaled_output_layer_checks(folder: Path, factory: Callable[[], nn.Module]) -> list[ScaledCheck]:
    """Replay every lossless artifact of ``folder`` against the model with its output layer scaled by FACTOR.

    ``factory`` builds the architecture (its weights are replaced by the folder's ``state_dict.pt``).
    """
    manifest = read_manifest(folder)
    original = factory().eval()
    original.load_state_dict(torch.load(folder / "state_dict.pt", weights_only=True))
    sets = _golden(folder, manifest)
    layer = output_layer(original, manifest, sets[0][2])
    perturbed = scale_output_layer(original, layer)
    original64, perturbed64 = copy.deepcopy(original).double(), copy.deepcopy(perturbed).double()

    replays = []
    float64: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {}
    for name, kind, inputs, _ in sets:
        reference64 = call_model(perturbed64, manifest, inputs, double=True)
        float64[name] = (call_model(original64, manifest, inputs, double=True), reference64)
        reference = call_model(perturbed, manifest, inputs, double=False)
        replays.append(ReplaySet(name, inputs, reference, kind=kind, reference64=reference64))

    dtypes = {t.name: t.dtype for t in manifest.signature.outputs}
    results = []
    for fmt in LOSSLESS:
        if fmt not in manifest.formats:
            continue  # not exported: nothing to replay
        exporter = exporters.get(fmt)
        tol = exporter.tolerance
        must_fail = frozenset(
            (c.input_set, c.output)
            for name, (o64, p64) in float64.items()
            for c in compare_outputs(o64, p64, tol, input_set=name)
            if c.verdict == "fail"
        )
        load = functools.partial(exporter.load, folder, manifest.formats[fmt], manifest.signature, factory)
        with granted(folder, "the suite wrote it"):  # TorchScript and .pt2 load only from a trusted folder
            scaled = check_candidate(exporter.candidate, fmt, exporter.runtime, load, replays, tol, dtypes)
        control = next(c for c in manifest.candidates if c.format == fmt)
        results.append(
            ScaledCheck(
                fmt=fmt,
                layer=layer,
                must_fail=must_fail,
                failed={(c.input_set, c.output): c.category or "" for c in scaled.failures()},
                control_passed=frozenset((c.input_set, c.output) for c in control.checks if c.verdict == "pass"),
            )
        )
    return results

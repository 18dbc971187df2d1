"""The build stage: the model in eval mode, its example inputs, its signature and reference output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from modelport.exporters.torch_runner import TorchRunner
from modelport.models import ModelSource
from modelport.pipeline.records import ModelInfo
from modelport.signature import Signature, TensorSpec, flatten_outputs, torch_dtype_name, torch_to_numpy

__all__ = ["Built", "build_model", "infer_signature"]

# Layers whose output depends on train/eval mode.
_MODE_DEPENDENT = (
    torch.nn.modules.dropout._DropoutNd,
    torch.nn.modules.batchnorm._BatchNorm,
    torch.nn.modules.instancenorm._InstanceNorm,
)


@dataclass
class Built:
    source: ModelSource
    model: torch.nn.Module
    inputs: dict[str, torch.Tensor]
    signature: Signature
    reference: dict[str, np.ndarray]  # Y = model(X), eval mode, inference_mode
    info: ModelInfo
    notes: list[str]

    def runner(self) -> TorchRunner:
        return TorchRunner("original@torch", self.model, self.signature)


def _output_names(count: int) -> list[str]:
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def infer_signature(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], dynamic_axes: dict[str, dict[int, str]]
) -> tuple[Signature, list[torch.Tensor]]:
    """Input specs from the example; output specs from running it.

    An output axis is dynamic when it changes with a dynamic input axis: the model is run
    once more with every dynamic input axis one larger, and output dims that grew by the
    same step get the input axis' label.
    """
    in_specs = [
        TensorSpec(
            name=name,
            shape=[dynamic_axes.get(name, {}).get(i, n) for i, n in enumerate(t.shape)],
            dtype=torch_dtype_name(t.dtype),
        )
        for name, t in inputs.items()
    ]
    with torch.inference_mode():
        outputs = flatten_outputs(model(*inputs.values()))
    out_shapes: list[list[int | str]] = [list(t.shape) for t in outputs]
    if any(dynamic_axes.values()):
        grown = {
            name: t.new_zeros([n + 1 if i in dynamic_axes.get(name, {}) else n for i, n in enumerate(t.shape)])
            for name, t in inputs.items()
        }
        labels = sorted({label for axes in dynamic_axes.values() for label in axes.values()})
        try:
            with torch.inference_mode():
                probe = flatten_outputs(model(*grown.values()))
        except Exception:
            probe = []
        if len(labels) == 1 and len(probe) == len(outputs):
            for shape, before, after in zip(out_shapes, outputs, probe, strict=True):
                for i, (a, b) in enumerate(zip(before.shape, after.shape, strict=False)):
                    if b == a + 1:
                        shape[i] = labels[0]
    out_specs = [
        TensorSpec(name=name, shape=shape, dtype=torch_dtype_name(t.dtype))
        for name, shape, t in zip(_output_names(len(outputs)), out_shapes, outputs, strict=True)
    ]
    return Signature(inputs=in_specs, outputs=out_specs), outputs


def build_model(source: ModelSource, seed: int) -> Built:
    """Build the model from ``seed``, switch it to eval mode and compute the reference output."""
    model = source.build(seed)
    notes: list[str] = []
    mode_dependent = sorted({type(m).__name__ for m in model.modules() if isinstance(m, _MODE_DEPENDENT)})
    if model.training and mode_dependent:
        notes.append(
            f"the model arrived in training mode and has {', '.join(mode_dependent)} layers, which behave "
            "differently in eval mode; it is exported and compared in eval mode"
        )
    model.eval()
    inputs = source.make_inputs(seed)
    signature, outputs = infer_signature(model, inputs, source.dynamic_axes)
    reference = {spec.name: torch_to_numpy(t) for spec, t in zip(signature.outputs, outputs, strict=True)}
    info = ModelInfo(
        name=source.name,
        spec=source.spec,
        description=source.description,
        class_name=type(model).__name__,
        parameters=sum(p.numel() for p in model.parameters()),
        seed=seed,
    )
    return Built(source, model, inputs, signature, reference, info, notes)

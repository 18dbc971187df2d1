"""A Runner for anything torch can call: the original model, clones, TorchScript modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from modelport.signature import Signature, flatten_outputs, numpy_to_torch, torch_to_numpy

__all__ = ["TorchRunner"]


class TorchRunner:
    """Calls ``module(*inputs)`` in signature order under ``torch.inference_mode()``."""

    def __init__(self, name: str, module: Callable[..., Any], signature: Signature) -> None:
        self.name = name
        self.module = module
        self.signature = signature

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [numpy_to_torch(inputs[spec.name], spec.dtype) for spec in self.signature.inputs]
        return self.infer_torch(args)

    def infer_torch(self, args: list[torch.Tensor]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = self.module(*args)
        tensors = flatten_outputs(out)
        names = self.signature.output_names
        if len(tensors) != len(names):
            raise RuntimeError(f"{self.name} returned {len(tensors)} outputs, the signature declares {len(names)}")
        return {name: torch_to_numpy(t) for name, t in zip(names, tensors, strict=True)}

    def close(self) -> None:
        self.module = _closed


def _closed(*_: Any) -> Any:
    raise RuntimeError("this runner was closed")

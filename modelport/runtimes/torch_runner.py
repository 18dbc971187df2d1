"""A Runner for anything torch can call: the original model, clones, TorchScript and torch.export modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from modelport.errors import LoadError
from modelport.signature import Signature, flatten_outputs, numpy_to_torch, torch_to_numpy

if TYPE_CHECKING:  # torch only when a module runs: importing the class (torchscript's runner) stays light
    import numpy as np
    import torch

__all__ = ["TorchRunner"]


class TorchRunner:
    """Calls the module under ``torch.inference_mode()`` and names its flattened outputs.

    ``keyword`` (default: the signature's ``call``) passes inputs by name; flat exported
    modules (traced, torch.export) always take them positionally in signature order.
    """

    def __init__(
        self, name: str, module: Callable[..., Any], signature: Signature, *, keyword: bool | None = None
    ) -> None:
        self.name = name
        self.module = module
        self.signature = signature
        self.keyword = signature.call == "keyword" if keyword is None else keyword

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [numpy_to_torch(inputs[spec.name], spec.dtype) for spec in self.signature.inputs]
        return self.infer_torch(args)

    def infer_torch(self, args: list[torch.Tensor]) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            if self.keyword:
                out = self.module(**dict(zip(self.signature.input_names, args, strict=True)))
            else:
                out = self.module(*args)
        tensors = flatten_outputs(out)
        names = self.signature.output_names
        if len(tensors) != len(names):
            raise LoadError(f"{self.name} returned {len(tensors)} outputs, the signature declares {len(names)}")
        return {name: torch_to_numpy(t) for name, t in zip(names, tensors, strict=True)}

    def close(self) -> None:
        self.module = _closed


def _closed(*_: Any, **__: Any) -> Any:
    raise LoadError("this runner was closed")

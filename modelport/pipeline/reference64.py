"""The original model re-run in float64: how far float32 arithmetic itself is from the exact result.

Every check records that distance (``reference_rounding_err``), and the verdict uses it as
an error budget (``validators.tolerance``). Three estimates:

- ``copy``: a float64 deep copy of the model (twice the parameter bytes again);
- ``layerwise``: above ``FP64_MAX_PARAMS``, the model itself runs in float64 one module at a
  time: each module's own parameters and buffers are widened on entry and narrowed back on
  exit, so the extra memory is one module's weights. float32 (or float16) -> float64 -> back is exact,
  so the model is left bit-identical. The arithmetic is the same float64 arithmetic as the
  copy's, as long as every parameter is used inside the module that owns it;
- ``inplace``: where layer by layer fails (a parameter used outside its module, as in tied
  output projections, or an input cast to a weight's dtype before its module runs), every
  parameter and buffer is widened at once and narrowed back after: one extra float32 copy's
  worth of memory (float64 replaces float32), still less than the copy's two.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from modelport.errors import one_line
from modelport.signature import Signature, flatten_outputs

__all__ = ["FP64_MAX_PARAMS", "Float64Reference", "float64_reference"]

# Above this many parameters the float64 copy would cost too much memory: the estimate is layer by layer.
FP64_MAX_PARAMS = 50_000_000

Estimate = Literal["copy", "layerwise", "inplace"]


@dataclass
class Float64Reference:
    """Runs the model in float64 on a set's inputs; ``estimate`` says how."""

    model: torch.nn.Module
    signature: Signature
    estimate: Estimate

    def _call(self, args: dict[str, torch.Tensor]) -> Any:
        return self.model(**args) if self.signature.call == "keyword" else self.model(*args.values())

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = {}
        for spec in self.signature.inputs:
            t = torch.from_numpy(np.array(inputs[spec.name]))
            args[spec.name] = t.double() if t.is_floating_point() else t.to(getattr(torch, spec.dtype))
        # Layer by layer, the model's own tensors are swapped: no_grad rather than inference_mode,
        # so that what they are swapped back to are ordinary tensors.
        if self.estimate == "layerwise":
            try:
                with torch.no_grad(), _widened(self.model):
                    out = self._call(args)
            except Exception:
                self.estimate = "inplace"  # said in the golden record and in each check's decided_by
        if self.estimate == "inplace":
            with torch.no_grad(), _widened_all(self.model):
                out = self._call(args)
        if self.estimate == "copy":
            with torch.inference_mode():
                out = self._call(args)
        return {
            s.name: t.detach().double().numpy()
            for s, t in zip(self.signature.outputs, flatten_outputs(out), strict=True)
            if t.is_floating_point()
        }


def _own_floats(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    own = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    return [(name, t) for name, t in own if t is not None and t.is_floating_point() and t.dtype != torch.float64]


@contextmanager
def _widened_all(model: torch.nn.Module) -> Iterator[None]:
    """Every float parameter and buffer of the model in float64 at once; each narrowed back afterwards."""
    seen: dict[int, tuple[torch.Tensor, torch.dtype]] = {}
    try:
        for t in [*model.parameters(), *model.buffers()]:
            if id(t) not in seen and t.is_floating_point() and t.dtype != torch.float64:
                seen[id(t)] = (t, t.dtype)
                t.data = t.data.double()
        yield
    finally:
        for t, dtype in seen.values():
            t.data = t.data.to(dtype)


@contextmanager
def _widened(model: torch.nn.Module) -> Iterator[None]:
    """Each module's own float tensors in float64 while it runs; every one narrowed back afterwards."""
    widened: dict[int, tuple[torch.Tensor, torch.dtype]] = {}

    def widen(module: torch.nn.Module, _: Any) -> None:
        for _name, t in _own_floats(module):
            if id(t) not in widened:
                widened[id(t)] = (t, t.dtype)
                t.data = t.data.double()

    def narrow(module: torch.nn.Module, _: Any, __: Any) -> None:
        for _name, t in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            entry = widened.pop(id(t), None) if t is not None else None
            if entry is not None:
                t.data = t.data.to(entry[1])

    handles = []
    for module in model.modules():
        if _own_floats(module):
            handles.append(module.register_forward_pre_hook(widen))
            handles.append(module.register_forward_hook(narrow))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for t, dtype in widened.values():  # a forward that raised part-way
            t.data = t.data.to(dtype)
        widened.clear()


def float64_reference(
    model: torch.nn.Module,
    signature: Signature,
    parameters: int,
    rebuild: Callable[[], torch.nn.Module],
    notes: list[str],
) -> Float64Reference | None:
    """The float64 reference for this model, or None (with a note when one was wanted but failed)."""
    if not any(p.is_floating_point() for p in model.parameters()):
        return None
    if parameters > FP64_MAX_PARAMS:
        notes.append(
            f"float64 reference layer by layer: {parameters:,} parameters > {FP64_MAX_PARAMS:,} (one module in "
            "float64 at a time)"
        )
        return Float64Reference(model, signature, "layerwise")
    try:
        return Float64Reference(copy.deepcopy(model).double(), signature, "copy")
    except Exception:
        pass
    try:  # not deep-copyable (it holds a lock, a file...): a fresh instance with the same weights
        fresh = rebuild()
        fresh.load_state_dict(model.state_dict())
        return Float64Reference(fresh.eval().double(), signature, "copy")
    except Exception as e:
        notes.append(f"float64 reference skipped: the model can be neither copied nor rebuilt ({one_line(e, 120)})")
        return None

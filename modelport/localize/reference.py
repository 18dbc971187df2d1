"""The original's intermediate values: forward hooks on every named submodule, in execution order.

A module's forward hook fires when its forward returns, so children come before their parent and
the order is the order in which each module's output became final. A module called more than once
(a shared block) keeps its first call, and a note says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.signature import Signature, flatten_outputs, numpy_to_torch, torch_to_numpy

if TYPE_CHECKING:
    import torch

__all__ = ["ModuleCall", "Trace", "call_module", "exported_wrapped", "trace_reference"]


@dataclass
class ModuleCall:
    """One submodule's first call: what went in (as torch objects, for re-running it) and what came out."""

    path: str
    class_name: str
    order: int
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    outputs: list[np.ndarray]  # the output's tensors, flattened like a model's outputs
    calls: int = 1

    def tensor_inputs(self) -> list[torch.Tensor]:
        import torch

        return [a for a in (*self.args, *self.kwargs.values()) if isinstance(a, torch.Tensor)]


@dataclass
class Trace:
    """Every named submodule's first call, in execution order, and the model's final outputs."""

    calls: list[ModuleCall]
    outputs: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)
    wrapped: bool = False  # the exporters saw it inside FlatModel: artifact paths start with "model."
    parameters: list[str] = field(default_factory=list)  # the model's parameter and buffer names

    def prefix_in(self, names: set[str]) -> str:
        """Where the model sits in an artifact whose tensors have ``names``: "" or "model." (inside FlatModel),
        by which finds more of its own parameter names; the build rule (``wrapped``) when neither does."""
        bare = sum(n in names for n in self.parameters)
        inside = sum(f"model.{n}" in names for n in self.parameters)
        if bare != inside:
            return "" if bare > inside else "model."
        return "model." if self.wrapped else ""

    def by_path(self) -> dict[str, ModuleCall]:
        return {c.path: c for c in self.calls}


def _detached(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple | list):
        return type(value)(_detached(v) for v in value)
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    return value


def _arrays(out: Any) -> list[np.ndarray]:
    try:
        return [torch_to_numpy(t) for t in flatten_outputs(out)]
    except Exception:  # an output that is not tensors (a cache object): nothing to compare
        return []


def call_module(module: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> list[np.ndarray]:
    """Run one (sub)module on copies of the given inputs (it may change them in place) under inference mode."""
    import torch

    with torch.inference_mode():
        return _arrays(module(*_detached(args), **_detached(dict(kwargs))))


def exported_wrapped(model: Any, out: Any, keyword: bool) -> bool:
    """Whether the graph exporters saw the model inside ``FlatModel`` (its submodule ``model``): a model called
    by keyword, taking ``*args``, or returning anything but a tensor or a plain tuple/list of tensors
    (``pipeline.build``'s rule; artifact paths then start with ``model.``)."""
    import inspect

    import torch

    params = inspect.signature(model.forward).parameters.values()
    varargs = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params)
    plain = isinstance(out, torch.Tensor) or (
        type(out) in (tuple, list) and all(isinstance(t, torch.Tensor) for t in out)
    )
    return keyword or varargs or not plain


def trace_reference(
    model: torch.nn.Module, signature: Signature, inputs: Mapping[str, np.ndarray], *, keyword: bool | None = None
) -> Trace:
    """Run ``model`` once on ``inputs`` with hooks on every named submodule: what each was given (before its
    forward could change it in place) and what it returned. ``keyword`` overrides the signature's call."""
    import torch

    calls: dict[str, ModuleCall] = {}
    given: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    names = {id(m): (name, m) for name, m in model.named_modules() if name}

    def before(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        path, _ = names[id(module)]
        if path not in given:
            given[path] = (_detached(args), _detached(kwargs))

    def after(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        path, _ = names[id(module)]
        if path in calls:
            calls[path].calls += 1
            return
        first_args, first_kwargs = given[path]
        calls[path] = ModuleCall(path, type(module).__name__, len(calls), first_args, first_kwargs, _arrays(out))

    handles = [m.register_forward_pre_hook(before, with_kwargs=True) for _, m in names.values()]
    handles += [m.register_forward_hook(after, with_kwargs=True) for _, m in names.values()]
    args = [numpy_to_torch(inputs[spec.name], spec.dtype) for spec in signature.inputs]
    by_name = signature.call == "keyword" if keyword is None else keyword
    try:
        with torch.inference_mode():
            out = model(**dict(zip(signature.input_names, args, strict=True))) if by_name else model(*args)
    finally:
        for h in handles:
            h.remove()
    final = dict(zip(signature.output_names, _arrays(out), strict=False))
    ordered = sorted(calls.values(), key=lambda c: c.order)
    shared = [f"{c.path} ({c.calls} calls)" for c in ordered if c.calls > 1]
    notes = [f"called more than once, first call compared: {', '.join(shared)}"] if shared else []
    tensors = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    return Trace(ordered, final, notes, wrapped=exported_wrapped(model, out, by_name), parameters=tensors)

"""Example inputs in every shape a user may hand them, made uniform; and the flat view exporters use."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from modelport.errors import UsageError
from modelport.signature import flatten_outputs

__all__ = ["Example", "FlatModel", "forward_params", "normalize_example"]


@dataclass
class Example:
    inputs: dict[str, torch.Tensor]  # ordered as the model takes them
    keyword: bool  # call model(**inputs) rather than model(*inputs.values())


def forward_params(model: torch.nn.Module) -> list[str]:
    """Names of ``forward``'s ordinary parameters, in order."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in kinds]


def normalize_example(model: torch.nn.Module, raw: object, spec: str) -> Example:
    """One tensor, a tuple/list of tensors (positional) or a dict name -> tensor (keyword arguments)."""
    if isinstance(raw, torch.Tensor):
        raw = (raw,)
    if isinstance(raw, Mapping):
        bad = [str(k) for k, v in raw.items() if not isinstance(v, torch.Tensor) or not isinstance(k, str)]
        if bad:
            raise UsageError(f"--model {spec}: example inputs {bad} are not tensors keyed by name")
        names = list(raw)
        # Keys that are forward()'s leading parameters in order can go positionally, which
        # keeps exported graphs free of a wrapper.
        return Example(dict(raw), keyword=names != forward_params(model)[: len(names)])
    if isinstance(raw, Sequence) and not isinstance(raw, str | bytes):
        if not all(isinstance(t, torch.Tensor) for t in raw):
            raise UsageError(f"--model {spec}: example inputs must be tensors (nested containers are not supported)")
        names = forward_params(model)
        names = names[: len(raw)] + [f"input_{i}" for i in range(len(names), len(raw))]
        return Example(dict(zip(names, raw, strict=True)), keyword=False)
    raise UsageError(
        f"--model {spec}: example inputs of type {type(raw).__name__} are not supported; return a tensor, "
        "a tuple of tensors or a dict of name -> tensor"
    )


class FlatModel(torch.nn.Module):
    """Positional inputs in signature order in, a flat tuple of tensors out.

    Exporters see this instead of the user's module when it takes keyword inputs or
    returns dicts or nested outputs, so every format gets the same names in the same order.
    """

    def __init__(self, model: torch.nn.Module, input_names: list[str], keyword: bool) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names
        self.keyword = keyword
        self.train(model.training)

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.keyword:
            out = self.model(**dict(zip(self.input_names, args, strict=True)))
        else:
            out = self.model(*args)
        return tuple(flatten_outputs(out))

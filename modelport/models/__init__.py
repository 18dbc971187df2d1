"""Where models come from: a SPEC names one, a ModelSource builds it and its example inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from modelport.errors import UsageError
from modelport.models.builtin import MLP, mlp_example

__all__ = ["BUILTIN", "ModelSource", "resolve_model"]


@dataclass(frozen=True)
class ModelSource:
    """A model: how to build a fresh instance from code, and its example inputs."""

    name: str  # used for the default output folder: artifacts/<name>
    spec: str  # what the user passed to --model
    description: str
    factory: Callable[[], torch.nn.Module]  # a fresh instance of the architecture, randomly initialised
    example_inputs: Callable[[torch.Generator], dict[str, torch.Tensor]]
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)  # input -> axis -> label

    def build(self, seed: int) -> torch.nn.Module:
        """A fresh instance initialised from ``seed``, leaving the caller's RNG state alone."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.factory()

    def make_inputs(self, seed: int) -> dict[str, torch.Tensor]:
        return self.example_inputs(torch.Generator().manual_seed(seed))


BUILTIN: dict[str, ModelSource] = {
    "mlp": ModelSource(
        name="mlp",
        spec="mlp",
        description="Linear(20, 256) -> ReLU -> Linear(256, 10); X = randn(2, 20)",
        factory=MLP,
        example_inputs=mlp_example,
        dynamic_axes={"x": {0: "batch"}},
    ),
}


def resolve_model(spec: str) -> ModelSource:
    """Turn ``--model SPEC`` into a ModelSource."""
    if spec in BUILTIN:
        return BUILTIN[spec]
    raise UsageError(f"unknown model {spec!r}; built-in models: {', '.join(BUILTIN)}")

"""Built-in models. ``mlp`` is the textbook chapter's: Linear(20, 256) -> ReLU -> Linear(256, 10)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MLP", "mlp_example"]


class MLP(nn.Module):
    """The chapter's multilayer perceptron: 20 inputs, 256 hidden units, 10 outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(20, 256)
        self.output = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.output(F.relu(self.hidden(x)))
        return y


def mlp_example() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The chapter's model and its input ``X = randn(2, 20)``, both drawn from the caller's seed."""
    model = MLP()
    return model, {"x": torch.randn(2, 20)}

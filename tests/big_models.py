"""Generated MLPs far over ONNX's 2 GiB protobuf limit, for the `big` tier and benchmarks/bench_big.py.

``mlp_3g``: three 16384x16384 float32 layers (3.2 GB of parameters); ``mlp_6g``: six (6.4 GB).
Weights are drawn like ``nn.Linear``'s default (uniform in +-1/sqrt(fan_in)) from the caller's seed,
written in place into empty tensors so that building never holds a second copy.
"""

from __future__ import annotations

import torch
from torch import nn

WIDTH = 16384


class BigMLP(nn.Module):
    def __init__(self, layers: int) -> None:
        super().__init__()
        bound = WIDTH**-0.5
        self.layers = nn.ModuleList()
        for _ in range(layers):
            linear = nn.Linear(WIDTH, WIDTH, device="meta").to_empty(device="cpu")
            with torch.no_grad():
                linear.weight.uniform_(-bound, bound)
                linear.bias.uniform_(-bound, bound)
            self.layers.append(linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else torch.relu(layer(x))
        return x


def _mlp(layers: int) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    return BigMLP(layers), {"x": torch.randn(2, WIDTH)}


def mlp_3g() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    return _mlp(3)


def mlp_6g() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    return _mlp(6)


def mlp_small_big() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """Three 8192-wide layers (0.8 GB): the same shape of pipeline, four times faster, for quick memory profiles."""
    model = BigMLP.__new__(BigMLP)
    nn.Module.__init__(model)
    bound = 8192**-0.5
    model.layers = nn.ModuleList()
    for _ in range(3):
        linear = nn.Linear(8192, 8192, device="meta").to_empty(device="cpu")
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound)
            linear.bias.uniform_(-bound, bound)
        model.layers.append(linear)
    return model, {"x": torch.randn(2, 8192)}

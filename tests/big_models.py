"""Generated MLPs far over ONNX's 2 GiB protobuf limit, for the `big` tier and benchmarks/bench_big.py.

``mlp_3g``: three 16384x16384 float32 layers (3.2 GB of parameters); ``mlp_6g``: six (6.4 GB).
Weights are ``nn.Linear``'s default initialisation, drawn from the caller's seed; built on the meta device
(as modelport builds the fresh instances it loads weights into), they take no memory until assigned.
"""

from __future__ import annotations

import torch
from torch import nn

WIDTH = 16384


class BigMLP(nn.Module):
    def __init__(self, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(WIDTH, WIDTH) for _ in range(layers))

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
    """Three 8192-wide layers (0.8 GB): the same pipeline four times faster, for quick memory profiles."""
    model = BigMLP(0)
    model.layers = nn.ModuleList(nn.Linear(8192, 8192) for _ in range(3))
    return model, {"x": torch.randn(2, 8192)}

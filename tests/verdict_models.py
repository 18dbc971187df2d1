"""Models for the verdict tests (test_verdicts.py): each makes one bound or rule decide."""

from __future__ import annotations

import torch
from torch import nn


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


def wide_gain() -> tuple[nn.Module, torch.Tensor]:
    """Three 2048-wide layers with weights x3: outputs in the hundreds on inputs x100, where
    onnxruntime's float32 summation order lands a few elements beyond atol=1e-5, rtol=1e-5,
    as far from the float64 result as the float32 original itself."""
    model = nn.Sequential(
        nn.Linear(64, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(),
        nn.Linear(2048, 16),
    )  # fmt: skip
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(3.0)
    return model.eval(), _x(4, 64)


class _SmallBatches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 32:  # a service limit written into the model
            raise ValueError(f"batches of at most 32, got {x.shape[0]}")
        return self.lin(x)


def small_batches() -> tuple[nn.Module, torch.Tensor]:
    """Fails on the batch-64 sweep set: coverage the run cannot have."""
    return _SmallBatches().eval(), _x(2, 8)


class _Constant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 3) + 1e-9 * x.sum()  # an output far below any atol


def tiny_output() -> tuple[nn.Module, torch.Tensor]:
    return _Constant().eval(), _x(2, 4)


class _TiedHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(30, 16)
        self.mix = nn.Linear(16, 16)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.mix(self.emb(ids)))
        return nn.functional.linear(h, self.emb.weight)  # the table reused outside its module


def tied_head() -> tuple[nn.Module, torch.Tensor]:
    """An output projection tied to the embedding table, as language models do."""
    return _TiedHead().eval(), torch.randint(0, 30, (2, 5), generator=torch.Generator().manual_seed(0))

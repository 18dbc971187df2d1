"""Small models for the C++ runtime tests (tests/test_runtime_cpp.py), each for one thing OpenCV DNN does or lacks."""

from __future__ import annotations

import torch
from torch import nn


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


class TwoInTwoOut(nn.Module):
    """Two inputs, two outputs: a product of two towers, and one tower alone."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
        self.right = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.left(x), self.right(y)
        return torch.sigmoid(a) * b, torch.tanh(b)


def two_in_two_out() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    g = _gen()
    return TwoInTwoOut().eval(), (torch.randn(2, 8, generator=g), torch.randn(2, 12, generator=g))


class Masked(nn.Module):
    """float32 in and out, but masked_fill exports as ONNX Where, which OpenCV DNN 4.6 has no layer for."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).masked_fill(x[:, :5] > 1.5, 0.0)


def masked() -> tuple[nn.Module, torch.Tensor]:
    return Masked().eval(), torch.randn(2, 8, generator=_gen())


class Summed(nn.Module):
    """ReduceSum with its axes as an input (opset 13+), which OpenCV DNN 4.6 cannot import."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).sum(-1)


def summed() -> tuple[nn.Module, torch.Tensor]:
    return Summed().eval(), torch.randn(2, 8, generator=_gen())


class FirstColumn(nn.Module):
    """A 1-d output (batch,) that OpenCV DNN computes as a (batch, 1) Mat."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)[:, 0]


def first_column() -> tuple[nn.Module, torch.Tensor]:
    return FirstColumn().eval(), torch.randn(2, 8, generator=_gen())


class Scaled(nn.Module):
    """Keyword inputs in another order than forward's parameters: `scale` comes first in the example."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * scale


def keyword_order() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    g = _gen()
    return Scaled().eval(), {"scale": torch.rand(2, 3, generator=g), "x": torch.randn(2, 4, generator=g)}

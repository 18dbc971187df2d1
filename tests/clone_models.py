"""Models whose fresh instance cannot be built on the meta device, for tests/test_weights_clone.py."""

from __future__ import annotations

import torch
from torch import nn


class ValueInInit(nn.Module):
    """__init__ reads a value: on the meta device ``.item()`` raises, so the clone is built normally."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.gain = float(torch.ones(1).item())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.gain


class HiddenBuffer(nn.Module):
    """A buffer outside the state_dict (persistent=False): only the model's own init can give it values."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.register_buffer("scale", torch.full((4,), 3.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.scale


def value_in_init() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    return ValueInInit(), {"x": torch.randn(2, 8)}


def hidden_buffer() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    return HiddenBuffer(), {"x": torch.randn(2, 8)}

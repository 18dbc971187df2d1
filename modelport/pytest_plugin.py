"""The pytest plugin: fixtures ``modelport_parity`` and ``modelport_golden`` (see ``modelport.testing``).

Registered through the ``pytest11`` entry point, so installing modelport makes them available.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

__all__ = ["modelport_golden", "modelport_parity"]


@pytest.fixture
def modelport_parity(tmp_path: Path) -> Callable[..., Any]:
    """``modelport_parity(model, example_inputs, formats="onnx", **run_kwargs)``: export into tmp_path and assert."""
    from modelport.testing import assert_parity

    counter = iter(range(1_000_000))

    def check(model: Any, example_inputs: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("out", tmp_path / f"modelport-{next(counter)}")
        return assert_parity(model, example_inputs, **kwargs)

    return check


@pytest.fixture
def modelport_golden() -> Callable[..., None]:
    """``modelport_golden(model, folder, atol=..., rtol=...)``: the model still computes the folder's golden outputs."""
    from modelport.testing import assert_matches_golden

    return assert_matches_golden

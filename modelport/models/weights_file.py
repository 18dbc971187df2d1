"""``--weights FILE``: trained weights loaded into the model before anything else, strictly."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file

from modelport.checkpoint import CHECKPOINT_FORMAT
from modelport.errors import LoadError, UsageError
from modelport.exporters.weights import load_weights_strict

__all__ = ["load_weights_into"]


def _read(path: Path) -> Mapping[str, object]:
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except Exception as e:
            raise UsageError(f"--weights {path}: safetensors could not read it: {e}") from e
    try:
        data = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:
        raise UsageError(
            f"--weights {path}: torch.load(weights_only=True) refused it ({type(e).__name__}); pass a state_dict "
            ".pt, a .safetensors file or a modelport checkpoint"
        ) from e
    if isinstance(data, Mapping):
        if data.get("format") == CHECKPOINT_FORMAT and isinstance(data.get("model"), Mapping):
            state: Mapping[str, object] = data["model"]
            return state
        for key in ("state_dict", "model_state_dict"):  # common training-loop conventions
            if isinstance(data.get(key), Mapping):
                nested: Mapping[str, object] = data[key]
                return nested
        return data
    raise UsageError(f"--weights {path} holds a {type(data).__name__}, not a state_dict")


def load_weights_into(model: torch.nn.Module, path: str | Path) -> int:
    """Load ``path`` into ``model`` strictly; returns the number of tensors loaded."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--weights {file}: no such file")
    state = _read(file)
    try:
        load_weights_strict(model, state, f"--weights {file.name}")
    except LoadError as e:
        raise UsageError(str(e)) from e
    return len(state)

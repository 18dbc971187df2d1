"""``--weights FILE``: trained weights loaded into the model before anything else, strictly."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from modelport.checkpoint import CHECKPOINT_FORMAT
from modelport.errors import LoadError, UsageError
from modelport.exporters.weights import load_weights_strict
from modelport.loaders import load_torch

__all__ = ["load_weights_into"]


def _read(path: Path) -> Mapping[str, object]:
    if path.suffix == ".safetensors":
        from modelport.exporters.safetensors_format import SafetensorsExporter

        try:  # restores tied weights that save_model stored once (its metadata names them)
            return SafetensorsExporter().read_state(path)
        except LoadError as e:
            raise UsageError(f"--weights {path}: {e}") from e
    try:
        data = load_torch(path)
    except Exception as e:
        raise UsageError(
            f"--weights {path}: torch.load(weights_only=True) refused it ({type(e).__name__}); pass a state_dict "
            ".pt, a .safetensors file or a modelport checkpoint"
        ) from e
    if isinstance(data, Mapping):
        if data.get("format") == CHECKPOINT_FORMAT and isinstance(data.get("model"), Mapping):
            state: Mapping[str, object] = data["model"]
            return state
        for key in ("state_dict", "model_state_dict", "model"):  # common training-loop conventions
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
    expected = model.state_dict()
    if state and all(k.startswith("module.") for k in state) and not any(k.startswith("module.") for k in expected):
        # Saved from a DistributedDataParallel/DataParallel wrapper.
        state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        load_weights_strict(model, state, f"--weights {file.name}")
    except LoadError as e:
        raise UsageError(str(e)) from e
    return len(state)

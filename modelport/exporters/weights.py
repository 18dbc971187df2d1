"""Loading weights into a fresh instance of the architecture, strictly, with named errors.

``load_state_dict`` silently casts a dtype mismatch; these checks name every missing,
unexpected, mis-shaped or mis-typed key before anything is copied.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from modelport.errors import LoadError

__all__ = ["load_weights_strict"]


def _names(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_weights_strict(model: torch.nn.Module, state: Mapping[str, object], source: str) -> None:
    """Copy ``state`` into ``model``; raise LoadError naming each key that does not fit."""
    if not isinstance(state, Mapping):
        raise LoadError(f"{source} holds a {type(state).__name__}, not a state_dict (a mapping of name -> tensor)")
    expected = model.state_dict()
    problems: list[str] = []
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        problems.append(f"non-tensor values for {_names(not_tensors)}")
    missing = [k for k in expected if k not in state]
    if missing:
        problems.append(f"missing keys {_names(missing)}")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        problems.append(f"unexpected keys {_names(unexpected)}")
    common = [k for k in expected if isinstance(state.get(k), torch.Tensor)]
    shapes = [
        f"{k} {list(state[k].shape)} vs {list(expected[k].shape)}"  # type: ignore[attr-defined]
        for k in common
        if state[k].shape != expected[k].shape  # type: ignore[attr-defined]
    ]
    if shapes:
        problems.append(f"shape mismatch (file vs model) for {_names(shapes)}")
    dtypes = [
        f"{k} {state[k].dtype} vs {expected[k].dtype}"  # type: ignore[attr-defined]
        for k in common
        if state[k].dtype != expected[k].dtype  # type: ignore[attr-defined]
    ]
    if dtypes:
        problems.append(f"dtype mismatch (file vs model) for {_names(dtypes)}")
    if problems:
        raise LoadError(
            f"{source} does not fit {type(model).__name__}: {'; '.join(problems)}; "
            "check that the weights were saved from this architecture"
        )
    try:
        model.load_state_dict(state, strict=True)  # type: ignore[arg-type]
    except RuntimeError as e:
        raise LoadError(f"loading {source} failed: {e}") from e

"""Weights-only formats: loaded into a fresh instance of the architecture, strictly, with named errors.

``load_state_dict`` silently casts a dtype mismatch; ``load_weights_strict`` names every
missing, unexpected, mis-shaped or mis-typed key before anything is copied.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import threading
import weakref
from abc import abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelport.errors import LoadError
from modelport.exporters.base import Exporter
from modelport.signature import torch_as_numpy
from modelport.validators.records import Tolerance

if TYPE_CHECKING:  # torch only when weights are loaded or digested: verify's ONNX replay imports this without it
    import torch

__all__ = ["WeightsExporter", "digests_while", "load_weights_strict", "state_digests", "tensor_digest"]


def _names(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_weights_strict(
    model: torch.nn.Module, state: Mapping[str, object], source: str, *, assign: bool = False
) -> None:
    """Copy ``state`` into ``model`` (``assign``: take its tensors as they are); raise LoadError naming each key
    that does not fit."""
    import torch

    if not isinstance(state, Mapping):
        raise LoadError(f"{source} holds a {type(state).__name__}, not a state_dict (a mapping of name -> tensor)")
    expected = model.state_dict()
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes: list[str] = []
    dtypes: list[str] = []
    for key, want in expected.items():
        got = state.get(key)
        if not isinstance(got, torch.Tensor):
            continue
        if got.shape != want.shape:
            shapes.append(f"{key} {list(got.shape)} vs {list(want.shape)}")
        if got.dtype != want.dtype:
            dtypes.append(f"{key} {got.dtype} vs {want.dtype}")
    problems = [
        f"{label} {_names(keys)}"
        for label, keys in (
            ("non-tensor values for", not_tensors),
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatch (file vs model) for", shapes),
            ("dtype mismatch (file vs model) for", dtypes),
        )
        if keys
    ]
    if problems:
        raise LoadError(
            f"{source} does not fit {type(model).__name__}: {'; '.join(problems)}; "
            "check that the weights were saved from this architecture"
        )
    try:
        model.load_state_dict(state, strict=True, assign=assign)  # type: ignore[arg-type]
    except RuntimeError as e:
        raise LoadError(f"loading {source} failed: {e}") from e


def tensor_digest(array: np.ndarray) -> str:
    """sha256 of a tensor's dtype, shape and bytes (as ``torch_to_numpy`` gives it: bfloat16 widened exactly)."""
    a = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{a.dtype.str}|{list(a.shape)}|".encode())
    digest.update(a.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


# The digests of a model's state as last computed: state_dict and safetensors record the same ones, and
# hashing 3 GB twice costs seconds. Reused only for the very same tensor objects (held weakly, so a freed
# model's reused addresses cannot match) at the same version counters (bumped by every in-place change).
_last: tuple[list[tuple[str, weakref.ref[torch.Tensor], int]], dict[str, str]] | None = None
_lock = threading.Lock()


def _same_state(state: Mapping[str, torch.Tensor]) -> dict[str, str] | None:
    if _last is None or len(_last[0]) != len(state):
        return None
    for (name, ref, version), (key, tensor) in zip(_last[0], state.items(), strict=True):
        if name != key or ref() is not tensor or tensor._version != version:
            return None
    return dict(_last[1])


def state_digests(model: torch.nn.Module) -> dict[str, str]:
    """Every tensor of the model's state_dict by :func:`tensor_digest`, as the manifest records them."""
    import torch

    global _last
    state = {k: v for k, v in model.state_dict(keep_vars=True).items() if isinstance(v, torch.Tensor)}
    with _lock:
        if (known := _same_state(state)) is not None:
            return known
        # sha256 releases the GIL: tensors are hashed on every core (a 3 GB model hashes at ~0.5 GB/s per core).
        workers = min(len(state), os.cpu_count() or 1) or 1
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="modelport-sha") as pool:
            hashed = pool.map(lambda v: tensor_digest(torch_as_numpy(v)), state.values())
            digests = dict(zip(state, hashed, strict=True))
        _last = ([(k, weakref.ref(v), v._version) for k, v in state.items()], digests)
        return dict(digests)


def digests_while(model: torch.nn.Module, write: Callable[[], None]) -> dict[str, str]:
    """Run ``write`` (a save of the model's weights) while another thread hashes them: sha256 and file writes
    both release the GIL, so the stage takes about as long as the longer of the two, not their sum."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelport-digest") as pool:
        future = pool.submit(state_digests, model)
        write()
        return future.result()


class WeightsExporter(Exporter):
    """A format that holds only weights: ``load`` needs the architecture in code."""

    runtime = "torch"
    kind = "weights"
    role = "weights"
    tolerance = Tolerance(atol=0.0, rtol=0.0)
    tolerance_why = "the same weights in the same eager kernels: bit-identical by design"

    @abstractmethod
    def read_state(self, path: Path) -> Mapping[str, object]:
        """Read the weights file without executing anything in it."""

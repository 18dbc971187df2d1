"""What a bit-identical resume needs besides the weights: RNG states, threads, determinism; and a digest.

Every value here is a tensor, a number, a string or a container of those, so a checkpoint holding it
loads with ``torch.load(weights_only=True)`` (numpy's state is converted: a pickled ndarray would not).
"""

from __future__ import annotations

import contextlib
import random
import sys
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = [
    "canonical",
    "capture_rng",
    "content_crc32",
    "deterministic",
    "restore_rng",
    "run_settings",
    "seed_everything",
]


def seed_everything(seed: int) -> None:
    """Seed the three generators a training loop usually draws from: torch (CPU), numpy, Python."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def capture_rng() -> dict[str, Any]:
    """The global RNG states: torch CPU, numpy's legacy global generator, Python's ``random``."""
    kind, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "state": list(internal), "gauss_next": gauss_next},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng` captured."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    key = np_state["key"].numpy().astype(np.uint32)
    np.random.set_state((np_state["kind"], key, np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))


def run_settings() -> dict[str, Any]:
    """The process settings a CPU run's numbers depend on: a resume under others is not the same run."""
    return {
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
    }


@contextlib.contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """``torch.use_deterministic_algorithms(True)`` and a fixed intra-op thread count, restored on exit.

    The thread count matters on CPU: a reduction split across another number of threads adds in
    another order, so the last bits differ.
    """
    before = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1], warn_only=before[2])


def content_crc32(value: object) -> int:
    """A CRC-32 of every tensor's bytes, shape and dtype and every plain value, in container order.

    torch's zip reader checks no CRC, so a flipped bit inside a tensor would load silently; this is
    stored in the checkpoint and recomputed on load. CRC-32 runs at about 3 GB/s here (sha256: 0.9);
    it guards against damage, not against an attacker (who could rewrite it).
    """
    crc = 0
    for chunk in _chunks(value):
        crc = zlib.crc32(chunk, crc)
    return crc


def _chunks(value: object) -> Iterator[bytes | memoryview]:
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        yield f"T{flat.dtype}{tuple(value.shape)}".encode()
        if flat.numel():
            yield flat.view(torch.uint8).numpy().data
    elif isinstance(value, dict):
        yield b"D"
        for key, item in value.items():
            yield repr(key).encode()
            yield from _chunks(item)
    elif isinstance(value, list | tuple):
        yield b"L" if isinstance(value, list) else b"U"
        for item in value:
            yield from _chunks(item)
    else:
        yield repr(value).encode()


def canonical(value: object) -> object:
    """A fresh copy of the containers, every string interned: pickle then writes the same bytes for the same content.

    pickle shares an object it met before by reference: the ``"step"`` key of a live optimizer's
    state is the very string the payload's own ``"step"`` key is, but a fresh one after a load. So
    the checkpoint of a resumed run would hold the same values in other bytes. Tensors stay as they are.
    """
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        return {canonical(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, tuple):
        return tuple(canonical(v) for v in value)
    return value

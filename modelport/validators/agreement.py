"""Agreement metrics that suit lossy formats (fp16, int8): cosine similarity and top-1 agreement."""

from __future__ import annotations

import numpy as np

__all__ = ["cosine_similarity", "top1_agreement"]


def cosine_similarity(reference: np.ndarray, candidate: np.ndarray) -> float | None:
    """Cosine of the angle between the outputs flattened, over elements finite in both.

    1.0 when both are all zero there; None when only one of them is (the angle is undefined).
    """
    r = reference.astype(np.float64).ravel()
    c = candidate.astype(np.float64).ravel()
    keep = np.isfinite(r) & np.isfinite(c)
    r, c = r[keep], c[keep]
    if r.size == 0:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        norms = float(np.linalg.norm(r) * np.linalg.norm(c))
        if norms == 0.0:
            return 1.0 if not r.any() and not c.any() else None
        if not np.isfinite(norms):
            return None
        return float(np.clip(np.dot(r, c) / norms, -1.0, 1.0))


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float | None:
    """Share of rows whose arg-max agrees, for classifier-like outputs: float, (batch, classes)."""
    if reference.ndim != 2 or reference.shape[-1] < 2 or reference.size == 0:
        return None
    if reference.dtype.kind != "f" or not (np.isfinite(reference).all() and np.isfinite(candidate).all()):
        return None
    return float(np.mean(reference.argmax(axis=-1) == candidate.argmax(axis=-1)))

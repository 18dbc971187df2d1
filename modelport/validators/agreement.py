"""Agreement metrics that suit lossy formats (fp16, int8): cosine similarity and top-1 agreement."""

from __future__ import annotations

import numpy as np

__all__ = ["cosine_similarity", "top1_agreement"]


def cosine_similarity(reference: np.ndarray, candidate: np.ndarray) -> float | None:
    """Cosine of the angle between the two outputs flattened; None when undefined (non-finite, all zero)."""
    r = reference.astype(np.float64).ravel()
    c = candidate.astype(np.float64).ravel()
    if r.size == 0 or not (np.isfinite(r).all() and np.isfinite(c).all()):
        return None
    norms = float(np.linalg.norm(r) * np.linalg.norm(c))
    if norms == 0.0:
        return 1.0 if not r.any() and not c.any() else None
    return float(np.clip(np.dot(r, c) / norms, -1.0, 1.0))


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float | None:
    """Fraction of rows whose arg-max over the last axis agrees: for classifier-like outputs (rank >= 2)."""
    if reference.ndim < 2 or reference.shape[-1] < 2 or reference.size == 0:
        return None
    if reference.dtype.kind != "f" or not (np.isfinite(reference).all() and np.isfinite(candidate).all()):
        return None
    return float(np.mean(reference.argmax(axis=-1) == candidate.argmax(axis=-1)))

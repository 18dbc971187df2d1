"""The sweep's sizes: which size of each dynamic axis gets its own input set (``run`` draws them, ``verify``
requires them). Apart from ``inputs`` (which draws values with torch), so verify's checks stay light."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from modelport.signature import DimRange, Signature

__all__ = ["sweep_sizes"]


def _sizes(label: str, example_size: int, dims: DimRange) -> list[int]:
    """Both ends of the label's range: its minimum (1 by default) and its maximum, or a larger size if unbounded."""
    larger = dims.max if dims.max is not None else 64 if label == "batch" else 2 * example_size
    return [s for s in sorted({dims.min, larger}) if s != example_size]


def sweep_sizes(signature: Signature, example_shapes: Mapping[str, Sequence[int]]) -> list[tuple[str, int]]:
    """(label, size) of every sweep set, in order; its set is named ``f"{label}_{size}"`` (verify requires them)."""
    label_size: dict[str, int] = {}
    for spec in signature.inputs:
        for axis, label in spec.dynamic_axes().items():
            label_size.setdefault(label, int(example_shapes[spec.name][axis]))
    return [
        (label, size)
        for label, example_size in label_size.items()
        for size in _sizes(label, example_size, signature.dim_range(label))
    ]

"""The model's input/output signature: names, shapes with named dynamic dims, dtypes.

modelport's own names are used everywhere a tensor is named: the ONNX graph, the
golden files, the parity records. Runners translate to and from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

if TYPE_CHECKING:  # imported inside the functions that use them: reading a manifest stays light
    import numpy as np
    import torch

# torch's dtype names, known without importing torch; another name is looked up on torch itself.
_DTYPES = frozenset(
    [
        "float32",
        "float64",
        "float16",
        "bfloat16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
        "complex64",
        "complex128",
        "uint16",
        "uint32",
        "uint64",
        "float8_e4m3fn",
        "float8_e5m2",
    ]
)

__all__ = [
    "Dim",
    "DimRange",
    "NotATensorOutput",
    "Signature",
    "TensorSpec",
    "flatten_named",
    "flatten_outputs",
    "numpy_to_torch",
    "torch_dtype_name",
    "torch_to_numpy",
]

Dim = int | str  # an int is a fixed size; a str names a dynamic axis ("batch")


class TensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    shape: list[Dim]
    dtype: str  # torch dtype name without the "torch." prefix: "float32", "int64", "bfloat16"

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        # A manifest read from disk names dtypes that are looked up on torch: only real dtypes pass.
        if value in _DTYPES:
            return value
        import torch

        if not isinstance(getattr(torch, value, None), torch.dtype):
            raise ValueError(f"{value!r} is not a torch dtype name")
        return value

    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}


class DimRange(BaseModel):
    """The sizes a dynamic axis label may take, as every exporter was told and the sweep checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = 1
    max: int | None = None  # None: unbounded
    # default: no range given; declared: from --dynamic; narrowed: torch.export's suggested fix applied
    source: Literal["default", "declared", "narrowed"] = "default"
    reason: str | None = None  # for a narrowed range: torch's suggested fix, verbatim

    def text(self) -> str:
        return f"{self.min}..{self.max if self.max is not None else ''}"


class Signature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    call: Literal["positional", "keyword"] = "positional"  # how the original module takes its inputs
    dims: dict[str, DimRange] = {}  # dynamic axis label -> its range (every label of the inputs)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def dim_range(self, label: str) -> DimRange:
        return self.dims.get(label, DimRange())

    def dims_text(self) -> str | None:
        """``batch 1.., seq 2..16 (narrowed)``: one line for a format's record."""
        parts = [
            f"{label} {r.text()}" + (f" ({r.source})" if r.source != "default" else "")
            for label, r in self.dims.items()
        ]
        return ", ".join(parts) or None


class NotATensorOutput(TypeError):
    """An output (at ``path``) that is neither a tensor nor a container of tensors: a cache object, a string..."""

    def __init__(self, path: str, value: object) -> None:
        self.path = path
        self.type_name = type(value).__name__
        self.module = type(value).__module__
        super().__init__(
            f"model output {path} of type {self.type_name} is not a tensor, sequence or mapping of tensors"
        )


def torch_dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def flatten_outputs(out: Any) -> list[torch.Tensor]:
    """Flatten a model's output (tensor, tuple/list, dict, nested) in a stable order."""
    return [t for _, t in flatten_named(out)]


def _clean(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "_"


def _flatten(out: Any, prefix: str) -> list[tuple[str, torch.Tensor]]:
    import torch

    if isinstance(out, torch.Tensor):
        return [(prefix or "output", out)]
    if isinstance(out, tuple) and hasattr(out, "_fields"):  # a namedtuple: its field names
        out = dict(zip(out._fields, out, strict=True))
    if isinstance(out, Mapping) or (hasattr(out, "keys") and hasattr(out, "__getitem__")):
        pairs = []
        for key in out.keys():  # noqa: SIM118 - ModelOutput-like objects iterate differently
            value = out[key]
            if value is None:  # ModelOutput-like objects leave unset fields as None
                continue
            name = _clean(str(key))
            pairs += _flatten(value, f"{prefix}.{name}" if prefix else name)
        return pairs
    if isinstance(out, Sequence) and not isinstance(out, str | bytes):
        pairs = []
        for i, item in enumerate(out):
            if item is None:  # return_dict=False style tuples hold None for absent outputs
                continue
            pairs += _flatten(item, f"{prefix}.{i}" if prefix else f"output_{i}")
        return pairs
    raise NotATensorOutput(prefix or "output", out)


def flatten_named(out: Any) -> list[tuple[str, torch.Tensor]]:
    """Flatten an output to ``(name, tensor)`` pairs with stable, readable, unique names.

    A lone tensor is ``output``; a top-level tuple gives ``output_0, output_1``; mapping
    keys (dicts, ``ModelOutput``-like objects, namedtuple fields) are used as names, with
    ``None`` entries dropped; nesting joins with ``.`` (``hidden.0``). The order is the
    iteration order, which torch.export's pytree keeps. Names that collide after cleaning
    (``"a b"`` and ``"a_b"``) get a suffix (``a_b__2``).
    """
    pairs = _flatten(out, "")
    seen: dict[str, int] = {}
    unique = []
    for name, tensor in pairs:
        seen[name] = seen.get(name, 0) + 1
        unique.append((name if seen[name] == 1 else f"{name}__{seen[name]}", tensor))
    return unique


def torch_to_numpy(t: torch.Tensor) -> np.ndarray:
    """A CPU numpy copy; dtypes numpy lacks (bfloat16) widen to float32."""
    import numpy as np
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return np.asarray(t.numpy(), order="C").copy()  # keeps 0-d tensors 0-d


def torch_as_numpy(t: torch.Tensor) -> np.ndarray:
    """What :func:`torch_to_numpy` gives, as a view of the tensor's memory where numpy can have one (no copy):
    for reading only, and only while nothing writes to the tensor."""
    import torch

    t = t.detach()
    if t.dtype == torch.bfloat16 or t.device.type != "cpu" or not t.is_contiguous() or t.is_conj() or t.is_neg():
        return torch_to_numpy(t)
    return t.numpy()


def numpy_to_torch(a: np.ndarray, dtype: str | None = None) -> torch.Tensor:
    """A torch tensor from a numpy array, cast back to the declared dtype (e.g. bfloat16)."""
    import numpy as np
    import torch

    t = torch.from_numpy(np.array(a, copy=True, order="C"))
    if dtype is not None:
        target = getattr(torch, dtype)
        if t.dtype != target:
            t = t.to(target)
    return t

"""The exporter registry: one module per format, registered by name.

``--formats`` names come from here; ``all`` means every registered format.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from modelport import formats
from modelport.errors import UsageError
from modelport.exporters.base import (
    Exporter,
    ExportOptions,
    ExportRequest,
    FormatRecord,
    ModelFactory,
    Runner,
)
from modelport.exporters.onnx_format import OnnxExporter
from modelport.exporters.onnx_fp16 import OnnxFp16Exporter
from modelport.exporters.onnx_int8 import OnnxInt8Exporter
from modelport.exporters.onnx_optimized import OnnxOptimizedExporter
from modelport.exporters.safetensors_format import SafetensorsExporter
from modelport.exporters.state_dict import StateDictExporter
from modelport.exporters.torch_export import TorchExportExporter
from modelport.exporters.torchscript import TorchScriptExporter
from modelport.validators.records import Tolerance

__all__ = [
    "DEFAULT_FORMATS",
    "LOW_PRECISION_TOLERANCE",
    "ExportOptions",
    "ExportRequest",
    "Exporter",
    "FormatRecord",
    "ModelFactory",
    "Runner",
    "default_tolerance",
    "get",
    "names",
    "parse_formats",
    "parse_runtimes",
    "register",
    "runtimes",
]

_REGISTRY: dict[str, Exporter] = {}


def register(exporter: Exporter) -> Exporter:
    """Add a format; a second format with the same name is a bug, not something to skip."""
    if exporter.name in _REGISTRY:
        raise ValueError(f"format {exporter.name!r} is already registered by {type(_REGISTRY[exporter.name]).__name__}")
    _REGISTRY[exporter.name] = exporter
    return exporter


def get(name: str) -> Exporter:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}; known formats: {', '.join(_REGISTRY)}") from None


# Low-precision models round every op coarser than float32: the non-exact defaults widen to at least this.
LOW_PRECISION_TOLERANCE = {
    "float16": Tolerance(atol=1e-3, rtol=1e-2),
    "bfloat16": Tolerance(atol=1e-2, rtol=5e-2),
}


def default_tolerance(name: str, dtypes: Iterable[str] = ()) -> Tolerance:
    """A format's documented default for a model with these parameter dtypes."""
    tol = get(name).tolerance
    if tol.atol == 0 and tol.rtol == 0:
        return tol
    for dtype in ("bfloat16", "float16"):
        if dtype in dtypes:
            floor = LOW_PRECISION_TOLERANCE[dtype]
            return Tolerance(
                atol=max(tol.atol, floor.atol),
                rtol=max(tol.rtol, floor.rtol),
                rtol_scope=tol.rtol_scope,
                min_cosine=tol.min_cosine,
                source=f"default ({dtype} model)",
            )
    return tol


def names() -> list[str]:
    return list(_REGISTRY)


def runtimes() -> list[str]:
    return sorted({e.runtime for e in _REGISTRY.values()})


def parse_runtimes(value: str | Sequence[str] | None) -> set[str] | None:
    """``--runtimes`` to a set of runtime names; None means all."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    wanted = {str(v).strip() for v in items if str(v).strip()}
    unknown = wanted - set(runtimes())
    if not wanted or unknown:
        shown = ", ".join(sorted(unknown)) or "nothing"
        raise UsageError(f"--runtimes names {shown}; known runtimes: {', '.join(runtimes())}")
    return wanted


def parse_formats(text: str | None) -> list[str]:
    """``--formats`` value to an ordered, de-duplicated list of registered names."""
    if text is None:
        return list(DEFAULT_FORMATS)
    if text.strip() == "all":
        return names()
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    if not wanted:
        raise UsageError(f"--formats is empty; name one or more of: {', '.join(_REGISTRY)}, or all")
    for name in wanted:
        get(name)
    return [n for n in _REGISTRY if n in wanted]


# Registration order is stage order: the ONNX-derived formats reuse the onnx stage's file.
for _exporter in (
    StateDictExporter(),
    SafetensorsExporter(),
    TorchScriptExporter(),
    TorchExportExporter(),
    OnnxExporter(),
    OnnxOptimizedExporter(),
    OnnxFp16Exporter(),
    OnnxInt8Exporter(),
):
    register(_exporter)

# The default is every lossless format; `all` adds the lossy onnx_fp16 and onnx_int8 (modelport.formats).
DEFAULT_FORMATS: tuple[str, ...] = formats.DEFAULT_FORMATS

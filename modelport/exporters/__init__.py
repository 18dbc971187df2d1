"""The exporter registry: one module per format, registered by name.

``--formats`` names come from here; ``all`` means every registered format.
"""

from __future__ import annotations

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
from modelport.exporters.safetensors_format import SafetensorsExporter
from modelport.exporters.state_dict import StateDictExporter
from modelport.exporters.torchscript import TorchScriptExporter

__all__ = [
    "DEFAULT_FORMATS",
    "ExportOptions",
    "ExportRequest",
    "Exporter",
    "FormatRecord",
    "ModelFactory",
    "Runner",
    "get",
    "names",
    "parse_formats",
    "register",
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


def names() -> list[str]:
    return list(_REGISTRY)


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


for _exporter in (StateDictExporter(), SafetensorsExporter(), TorchScriptExporter(), OnnxExporter()):
    register(_exporter)

# Every format is cheap for a model of ordinary size, so the default is all of them.
DEFAULT_FORMATS: tuple[str, ...] = tuple(names())

"""The format names, known without importing an exporter (``--help``, records, schemas stay light).

The registry (``modelport.exporters``) must register exactly these, in this order (stage order:
the ONNX-derived formats reuse the onnx stage's file); a test fails when the two disagree.
"""

from __future__ import annotations

__all__ = ["DEFAULT_FORMATS", "FORMATS", "LOSSY"]

FORMATS: tuple[str, ...] = (
    "state_dict",
    "safetensors",
    "torchscript",
    "torch_export",
    "onnx",
    "onnx_optimized",
    "onnx_fp16",
    "onnx_int8",
)
LOSSY: tuple[str, ...] = ("onnx_fp16", "onnx_int8")
# The default is every lossless format; `all` adds the lossy ones.
DEFAULT_FORMATS: tuple[str, ...] = tuple(n for n in FORMATS if n not in LOSSY)

"""What the ONNX-derived formats (optimized, fp16, int8) share: the float32 graph they start from."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelport.errors import LoadError
from modelport.exporters.base import ExportRequest
from modelport.exporters.onnx_format import FILE as ONNX_FILE
from modelport.exporters.onnx_format import write_onnx
from modelport.exporters.runtime import require

__all__ = ["base_onnx", "count_ops", "float32_only", "op_types", "read_graph"]


@contextlib.contextmanager
def base_onnx(request: ExportRequest) -> Iterator[Path]:
    """The float32 ONNX file: the onnx stage's when it ran, else a scratch export that is not kept."""
    existing = request.folder / ONNX_FILE
    if existing.is_file():
        yield existing
        return
    with tempfile.TemporaryDirectory(prefix="modelport-onnx-") as scratch:
        path = Path(scratch) / ONNX_FILE
        write_onnx(request, path)
        yield path


def float32_only(request: ExportRequest, what: str) -> str | None:
    """A skip reason unless every floating-point parameter is float32."""
    dtypes = {str(p.dtype).removeprefix("torch.") for p in request.model.parameters() if p.is_floating_point()}
    if dtypes - {"float32"}:
        return f"{what} converts a float32 model; this one has {', '.join(sorted(dtypes))} parameters"
    return None


def read_graph(path: Path, what: str) -> Any:
    """The saved model (weights left on disk when external), or LoadError: the identity checks below read it."""
    try:
        return require("onnx").load(str(path), load_external_data=False)
    except Exception as e:
        raise LoadError(f"{path.name} cannot be read as an ONNX model ({what}): {e}") from e


def op_types(path: Path) -> dict[str, int]:
    return count_ops(require("onnx").load(str(path), load_external_data=False))


def count_ops(model: Any) -> dict[str, int]:
    """Nodes of the main graph by operator, of a loaded model."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts

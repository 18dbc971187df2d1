"""``onnx_fp16``: the float32 ONNX graph with its weights and arithmetic in float16, inputs/outputs kept float32."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from modelport.errors import ExportError, LoadError, one_line
from modelport.exporters.base import Exporter, ExportRequest, FormatRecord
from modelport.exporters.onnx_check import check_onnx_file
from modelport.exporters.onnx_derived import base_onnx, float32_only, read_graph
from modelport.exporters.onnx_save import data_file, file_roles, save_onnx
from modelport.exporters.quiet import collect_warnings
from modelport.exporters.runtime import require
from modelport.loaders import load_onnx
from modelport.validators.records import Tolerance

if TYPE_CHECKING:
    import onnx

__all__ = ["OnnxFp16Exporter", "float16_problem", "sort_nodes"]

FILE = "model.fp16.onnx"


def sort_nodes(graph: onnx.GraphProto) -> None:
    """Put nodes in dependency order (the converter appends the input casts at the end, which the checker rejects)."""
    nodes = list(graph.node)
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    ordered: list[onnx.NodeProto] = []
    while nodes:
        # Outer-scope names used inside subgraphs are not tracked: a node is ready when its direct inputs are.
        runnable = [n for n in nodes if all(i in ready for i in n.input)]
        if not runnable:
            raise ValueError(f"the graph has a cycle or an undefined input near node {nodes[0].name!r}")
        for node in runnable:
            ordered.append(node)
            ready.update(node.output)
        nodes = [n for n in nodes if all(n is not r for r in runnable)]
    del graph.node[:]
    graph.node.extend(ordered)


_FLOAT32, _FLOAT16 = 1, 10  # TensorProto.FLOAT, FLOAT16


def float16_problem(model: onnx.ModelProto) -> str | None:
    """Why this graph is not a float16 graph, or None.

    Parity alone cannot tell: the float32 graph saved under the float16 name passes the float16
    tolerance with room to spare. A float16 graph holds float16 weights, or at least casts its
    float32 inputs to float16 (a model without weights). The converter keeps a few ops' inputs in
    float32 (Resize, Range, TopK ...), so some float32 constants may stay, but never most weights.
    """
    graph = model.graph
    weights = [*graph.initializer, *(a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute)]
    float32 = sum(_elements(t) for t in weights if t.data_type == _FLOAT32)
    float16 = sum(_elements(t) for t in weights if t.data_type == _FLOAT16)
    if float32 > float16:
        return f"holds more float32 weights ({float32} values) than float16 ones ({float16}): it is not a float16 graph"
    casts = any(
        n.op_type == "Cast" and any(a.name == "to" and a.i == _FLOAT16 for a in n.attribute) for n in graph.node
    )
    if not casts and not float16:
        return "holds no float16 weight or cast to float16: it is not a float16 graph"
    return None


def _elements(tensor: onnx.TensorProto) -> int:
    n = 1
    for d in tensor.dims:
        n *= d
    return n


class OnnxFp16Exporter(Exporter):
    name = "onnx_fp16"
    main_file = FILE
    runtime = "onnxruntime"
    kind = "onnx"
    role = "model"
    derives_from = "onnx"
    lossy = True
    tolerance = Tolerance(atol=1e-3, rtol=1e-2, rtol_scope="tensor", min_cosine=0.999)
    disk_share = 0.5
    tolerance_why = "float16 keeps about 3 significant digits of each output's range, and its direction (cosine)"

    def unsupported(self, request: ExportRequest) -> str | None:
        return float32_only(request, "onnx_fp16")

    def export(self, request: ExportRequest) -> FormatRecord:
        require("onnx")  # a clear error when onnx is missing
        convert_float_to_float16 = require("onnxruntime.transformers.float16", "onnxruntime").convert_float_to_float16
        notes: list[str] = []
        with base_onnx(request) as source:
            fp32_bytes = sum(p.stat().st_size for p in (source, data_file(source)) if p.exists())
            try:
                with collect_warnings(notes, loggers=("onnxruntime",), capture_output=True):
                    # Over 2 GiB, shape inference must read the file (infer_shapes_path): the model cannot be
                    # serialized in memory. The file is this run's own export, in its staging folder.
                    big = data_file(source).exists()
                    model = convert_float_to_float16(str(source) if big else load_onnx(source), keep_io_types=True)
                sort_nodes(model.graph)
            except Exception as e:
                raise ExportError(f"float16 conversion failed: {one_line(e)}") from e
        path = request.folder / FILE
        save_onnx(model, path)  # with model.fp16.onnx.data beside it when its tensors pass 1.8 GB
        del model
        check_onnx_file(path)
        files, roles = file_roles(path)
        size = sum((request.folder / f).stat().st_size for f in files)
        return FormatRecord(
            format=self.name,
            runtime=self.runtime,
            files=files,
            roles=roles,
            details={"bytes": size, "fp32_bytes": fp32_bytes, "size_vs_fp32": round(size / fp32_bytes, 3)},
            notes=notes,
        )

    def check_file(self, folder: Path, record: FormatRecord) -> None:
        path = folder / record.files[0]
        if path.is_file() and (problem := float16_problem(read_graph(path, self.name))) is not None:
            raise LoadError(f"{record.files[0]} {problem}; re-export it with --formats onnx_fp16")

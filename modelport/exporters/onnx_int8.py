"""``onnx_int8``: onnxruntime's dynamic quantization: int8 weights, activations quantized at run time.

MatMul and Gemm are quantized (MatMulInteger); convolutions stay float, because
onnxruntime's CPU provider has no ConvInteger kernel for int8 weights.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from modelport.errors import ExportError, LoadError, one_line
from modelport.exporters.base import Exporter, ExportRequest, FormatRecord
from modelport.exporters.onnx_check import check_onnx_file
from modelport.exporters.onnx_derived import base_onnx, float32_only, op_types, read_graph
from modelport.exporters.onnx_format import FILE as ONNX_FILE
from modelport.exporters.onnx_save import data_file, file_roles, onnx_output, over_limit
from modelport.exporters.quiet import collect_warnings
from modelport.exporters.runtime import require
from modelport.loaders import load_onnx
from modelport.validators.records import Tolerance

if TYPE_CHECKING:
    import onnx

__all__ = ["INTEGER_OPS", "OnnxInt8Exporter", "WeightShare", "float_weight_ops", "int8_problem"]

FILE = "model.int8.onnx"
INTEGER_OPS = frozenset(
    {"MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv", "DynamicQuantizeMatMul", "QGemm", "QAttention"}
)
# Ops that only move a weight on to the op that uses it (the dynamo exporter reshapes an LSTM's weights first).
_PASS_THROUGH = frozenset(
    {"Cast", "Concat", "Flatten", "Identity", "Reshape", "Slice", "Split", "Squeeze", "Transpose", "Unsqueeze"}
)
_FLOAT_TYPES = frozenset({1, 10, 11, 16})  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16
_BYTE_TYPES = frozenset({2, 3})  # UINT8, INT8: quantized weights


class WeightShare(NamedTuple):
    """An op type whose weights stay float: how many of its nodes hold some, and their share of all weight bytes."""

    op: str
    nodes: int
    share: float

    def __str__(self) -> str:
        return f"{self.op} x{self.nodes} ({self.share:.0%})"


def _tensor_bytes(tensor: onnx.TensorProto) -> int:
    n = 1
    for d in tensor.dims:
        n *= d
    return n * {10: 2, 16: 2, 11: 8, 2: 1, 3: 1}.get(tensor.data_type, 4)


def _user(name: str, consumers: dict[str, list[onnx.NodeProto]]) -> onnx.NodeProto | None:
    """The first node that computes with ``name``, looking through the ops that only reshape or cast it."""
    queue, seen = [name], {name}
    last = None
    while queue:
        for node in consumers.get(queue.pop(0), []):
            if node.op_type not in _PASS_THROUGH:
                return node
            last = node
            for out in node.output:
                if out not in seen:
                    seen.add(out)
                    queue.append(out)
    return last


def float_weight_ops(model: onnx.ModelProto) -> tuple[list[WeightShare], float]:
    """The ops whose weights stay in float in a quantized graph, largest first; and the float share of all weights.

    Weights are the float and 8-bit initializers and constants; each is counted for the op that
    uses it. Shares are of all weight bytes (float and int8), so a model whose weights were
    quantized shows a small float share however large its file is next to its weights.
    """
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    tensors = [(t.name, t) for t in graph.initializer]
    tensors += [
        (n.output[0], a.t) for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"
    ]
    total = sum(_tensor_bytes(t) for _, t in tensors if t.data_type in _FLOAT_TYPES | _BYTE_TYPES)
    by_op: Counter[str] = Counter()
    holders: dict[str, set[int]] = {}
    for name, tensor in tensors:
        if tensor.data_type not in _FLOAT_TYPES or (user := _user(name, consumers)) is None:
            continue
        by_op[user.op_type] += _tensor_bytes(tensor)
        holders.setdefault(user.op_type, set()).add(id(user))
    if not total:
        return [], 0.0
    shares = [WeightShare(op, len(holders[op]), size / total) for op, size in by_op.most_common()]
    return shares, sum(by_op.values()) / total


def int8_problem(model: onnx.ModelProto) -> str | None:
    """Why this graph is not an int8 graph, or None (parity alone cannot tell: the float32 graph passes)."""
    graph = model.graph
    if not any(n.op_type in INTEGER_OPS for n in graph.node):
        return "holds no integer operator (MatMulInteger, ...): it is not an int8 graph"
    if not any(t.data_type in _BYTE_TYPES for t in graph.initializer):
        return "holds no 8-bit weight: it is not an int8 graph"
    return None


def _size_note(ratio: float, shares: list[WeightShare], float_share: float) -> str:
    """Why the int8 file is nearly as large as the float32 one, from what the quantized graph holds."""
    if float_share >= 0.5:
        named: list[str] = []
        covered = 0.0
        for share in shares[:3]:  # the ops that hold most of the float weights
            named.append(str(share) if named else f"{share.op} x{share.nodes} ({share.share:.0%} of the weights)")
            covered += share.share
            if covered >= 0.9 * float_share:
                break
        return (
            f"{ratio:.0%} of the float32 size: dynamic quantization converts only MatMul and Gemm weights, "
            f"and these ops keep theirs in float: {', '.join(named)}"
        )
    return (
        f"{ratio:.0%} of the float32 size although {1 - float_share:.0%} of the weights are int8: the weights are "
        "small next to the graph itself (names, shapes, scales and zero points)"
    )


def _inline(target: Path) -> None:
    """Rewrite a quantized graph saved with external data as one self-contained file (it fits in protobuf)."""
    model = load_onnx(target)
    data_file(target).unlink()
    target.write_bytes(model.SerializeToString())  # in onnx_output's scratch folder: moved into place after


# onnxruntime's dynamic quantizer holds the float32 graph, its int8 copy and full-size temporaries at once:
# measured 5.9x the float32 weights for a 3.2 GB MLP (19 GB), and a 6.4 GB one was killed at 24.9 GB.
INT8_MEMORY_FACTOR = 6.5
_BIG = 1 << 30  # above this the run sets its own copy of the weights aside while the derived graphs convert


def _too_big_to_quantize(request: ExportRequest) -> str | None:
    """A skip reason when this machine cannot hold onnxruntime's quantizer at work on this model."""
    from modelport.memory import available_memory, module_bytes

    free = available_memory()
    if free is None:
        return None
    # What the quantizer loads is the float32 graph: its files when the onnx stage wrote them (a big run has set
    # the original's weights aside by now), else the weights the model still holds (set aside for it when big).
    held = module_bytes(request.model)
    graph = [p for p in (request.folder / ONNX_FILE, data_file(request.folder / ONNX_FILE)) if p.is_file()]
    fp32 = sum(p.stat().st_size for p in graph) if graph else held
    needed = int(INT8_MEMORY_FACTOR * fp32)
    room = free + (held if held >= _BIG else 0)
    if needed <= room:
        return None
    gib = 1 << 30
    return (
        f"onnxruntime's int8 quantizer holds about {INT8_MEMORY_FACTOR:g}x the float32 weights while it works "
        f"({needed / gib:.1f} GiB for this model), more than this machine has ({room / gib:.1f} GiB): quantize "
        "on a machine with more memory, or leave onnx_int8 out"
    )


class OnnxInt8Exporter(Exporter):
    name = "onnx_int8"
    main_file = FILE
    runtime = "onnxruntime"
    kind = "onnx"
    role = "model"
    derives_from = "onnx"
    lossy = True
    tolerance = Tolerance(atol=1e-2, rtol=0.05, rtol_scope="tensor", min_cosine=0.99)
    disk_share = 0.25
    tolerance_why = "int8 error follows each output's range (5% of max|ref|), and its direction (cosine >= 0.99)"

    def unsupported(self, request: ExportRequest) -> str | None:
        return float32_only(request, "onnx_int8") or _too_big_to_quantize(request)

    def export(self, request: ExportRequest) -> FormatRecord:
        require("onnx")  # a clear error when onnx is missing
        quantization = require("onnxruntime.quantization", "onnxruntime")
        QuantType, quantize_dynamic = quantization.QuantType, quantization.quantize_dynamic
        notes: list[str] = []
        path = request.folder / FILE
        with base_onnx(request) as source:
            fp32_bytes = sum(p.stat().st_size for p in (source, data_file(source)) if p.exists())
            # Over 2 GiB the quantizer must keep tensors outside the protobuf while it works (shape inference
            # serializes the model); its result is written as one file again when it is small enough.
            external = over_limit(fp32_bytes)
            try:
                with (
                    collect_warnings(notes, loggers=("onnxruntime", "root"), capture_output=True),
                    onnx_output(path) as target,
                ):
                    quantize_dynamic(
                        str(source),
                        str(target),
                        op_types_to_quantize=["MatMul", "Gemm"],
                        weight_type=QuantType.QInt8,
                        use_external_data_format=external,
                    )
                    if external and not over_limit(data_file(target).stat().st_size):
                        _inline(target)
            except Exception as e:
                raise ExportError(f"onnxruntime dynamic quantization failed: {one_line(e)}") from e
        ops = op_types(path)
        integer = {op: n for op, n in ops.items() if op in INTEGER_OPS}
        if not integer:
            raise ExportError(
                "dynamic quantization left no integer operator (it quantizes MatMul and Gemm, and this graph has "
                "none): leave onnx_int8 out of --formats"
            )
        check_onnx_file(path)
        files, roles = file_roles(path)
        size = sum((request.folder / f).stat().st_size for f in files)
        shares, float_share = float_weight_ops(load_onnx(path, load_external_data=False))
        if size > 0.8 * fp32_bytes:
            notes.append(_size_note(size / fp32_bytes, shares, float_share))
        return FormatRecord(
            format=self.name,
            runtime=self.runtime,
            files=files,
            roles=roles,
            details={
                "bytes": size,
                "fp32_bytes": fp32_bytes,
                "size_vs_fp32": round(size / fp32_bytes, 3),
                "integer_ops": ", ".join(f"{k}x{v}" for k, v in sorted(integer.items())),
                "weight_type": "int8",
                "float_weight_ops": ", ".join(str(share) for share in shares if share.share >= 0.01),
            },
            notes=[n for n in notes if "pre-processing" not in n],
        )

    def check_file(self, folder: Path, record: FormatRecord) -> None:
        path = folder / record.files[0]
        if path.is_file() and (problem := int8_problem(read_graph(path, self.name))) is not None:
            raise LoadError(f"{record.files[0]} {problem}; re-export it with --formats onnx_int8")

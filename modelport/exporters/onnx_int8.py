"""``onnx_int8``: onnxruntime's dynamic quantization: int8 weights, activations quantized at run time.

MatMul and Gemm are quantized (MatMulInteger); convolutions stay float, because
onnxruntime's CPU provider has no ConvInteger kernel for int8 weights.
"""

from __future__ import annotations

from pathlib import Path

from modelport.errors import ExportError, one_line
from modelport.exporters.base import Exporter, ExportRequest, FormatRecord, ModelFactory, Runner
from modelport.exporters.onnx_check import check_onnx_file
from modelport.exporters.onnx_derived import base_onnx, float32_only, load_ort, op_types
from modelport.exporters.quiet import collect_warnings
from modelport.exporters.runtime import require
from modelport.fsutil import atomic_path
from modelport.signature import Signature
from modelport.validators.records import Tolerance

__all__ = ["INTEGER_OPS", "OnnxInt8Exporter"]

FILE = "model.int8.onnx"
INTEGER_OPS = frozenset(
    {"MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv", "DynamicQuantizeMatMul", "QGemm", "QAttention"}
)


class OnnxInt8Exporter(Exporter):
    name = "onnx_int8"
    main_file = FILE
    runtime = "onnxruntime"
    role = "model"
    derives_from = "onnx"
    tolerance = Tolerance(atol=1e-2, rtol=0.05, rtol_scope="tensor", min_cosine=0.99)
    tolerance_why = "int8 error follows each output's range (5% of max|ref|), and its direction (cosine >= 0.99)"

    def unsupported(self, request: ExportRequest) -> str | None:
        return float32_only(request, "onnx_int8")

    def export(self, request: ExportRequest) -> FormatRecord:
        quantization = require("onnxruntime.quantization", "onnxruntime")
        QuantType, quantize_dynamic = quantization.QuantType, quantization.quantize_dynamic
        notes: list[str] = []
        with base_onnx(request) as source:
            fp32_bytes = source.stat().st_size
            try:
                with (
                    collect_warnings(notes, loggers=("onnxruntime", "root"), capture_output=True),
                    atomic_path(request.folder / FILE) as tmp,
                ):
                    quantize_dynamic(
                        str(source), str(tmp), op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8
                    )
            except Exception as e:
                raise ExportError(f"onnxruntime dynamic quantization failed: {one_line(e)}") from e
        path = request.folder / FILE
        ops = op_types(path)
        integer = {op: n for op, n in ops.items() if op in INTEGER_OPS}
        if not integer:
            raise ExportError(
                "dynamic quantization left no integer operator (it quantizes MatMul and Gemm, and this graph has "
                "none): leave onnx_int8 out of --formats"
            )
        check_onnx_file(path)
        size = path.stat().st_size
        if size > 0.8 * fp32_bytes:
            notes.append(
                f"only {size / fp32_bytes:.0%} of the float32 size: most weights are outside MatMul/Gemm "
                "(convolutions, embeddings), which dynamic quantization leaves in float"
            )
        return FormatRecord(
            format=self.name,
            runtime=self.runtime,
            files=[FILE],
            details={
                "bytes": size,
                "fp32_bytes": fp32_bytes,
                "size_vs_fp32": round(size / fp32_bytes, 3),
                "integer_ops": ", ".join(f"{k}x{v}" for k, v in sorted(integer.items())),
                "weight_type": "int8",
            },
            notes=[n for n in notes if "pre-processing" not in n],
        )

    def load(self, folder: Path, record: FormatRecord, signature: Signature, factory: ModelFactory | None) -> Runner:
        return load_ort(self.candidate, folder, record, signature)

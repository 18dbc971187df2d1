"""The ONNX-derived formats of a big model (optimized, fp16, int8), each in its own process.

They need only the float32 ``model.onnx`` in the folder, but onnxruntime's converter and quantizer
hold the whole graph in memory, several times over while they work, and what protobuf and the
allocator take is not given back to the system afterwards. In the run's process that came on top
of the original's weights and of each other: a 6.4 GB model through ``--formats all`` was killed
for memory. In a child process each conversion's memory ends with it.

    python -m modelport.exporters.derived_worker REQUEST.json   (the run's own use; writes RESULT.json)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from modelport.errors import ExportError, one_line
from modelport.exporters.base import ExportOptions
from modelport.format_record import FormatRecord

__all__ = ["CHILD_EXPORT_LIMIT", "DERIVED", "export_in_child"]

DERIVED = frozenset({"onnx_optimized", "onnx_fp16", "onnx_int8"})
# Weights above this are converted in a child process (smaller ones stay in the run's process: a new
# interpreter importing torch and onnxruntime costs seconds, which a small model's run would feel).
CHILD_EXPORT_LIMIT = 1 << 30


def _options_json(options: ExportOptions) -> dict[str, object]:
    target = options.target
    return {
        "onnx_exporter": options.onnx_exporter,
        "opset": options.opset,
        "torchscript_method": options.torchscript_method,
        "target": f"{target.runtime}=={target.version[0]}.{target.version[1]}" if target is not None else None,
    }


def export_in_child(fmt: str, folder: Path, options: ExportOptions, signature_json: str) -> FormatRecord:
    """Run format ``fmt``'s export in a new interpreter over ``folder``; its record, or ExportError."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="modelport-derived-") as scratch:
        request, result = Path(scratch) / "request.json", Path(scratch) / "result.json"
        data = {"format": fmt, "folder": str(folder), "options": _options_json(options), "signature": signature_json}
        request.write_text(json.dumps(data), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "modelport.exporters.derived_worker", str(request), str(result)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode < 0:
            raise ExportError(
                f"the {fmt} export process was killed by signal {-done.returncode}"
                + (" (out of memory?)" if done.returncode == -9 else "")
            )
        if not result.is_file():
            tail = " ".join(done.stderr.strip().splitlines()[-3:])[:500]
            raise ExportError(f"the {fmt} export process exited {done.returncode} with no result: {tail}")
        answer = json.loads(result.read_text(encoding="utf-8"))
    if "error" in answer:
        raise ExportError(answer["error"])
    return FormatRecord.model_validate(answer["record"])


def _main(request_path: str, result_path: str) -> int:
    from modelport import exporters
    from modelport.exporters.base import ExportRequest
    from modelport.exporters.targets import parse_target
    from modelport.signature import Signature

    data = json.loads(Path(request_path).read_text(encoding="utf-8"))
    opts = data["options"]
    options = ExportOptions(
        onnx_exporter=opts["onnx_exporter"],
        opset=opts["opset"],
        torchscript_method=opts["torchscript_method"],
        target=parse_target(opts["target"]) if opts["target"] else None,
    )
    import torch

    # The derived formats read model.onnx from the folder; they never touch the module or the inputs.
    request = ExportRequest(
        torch.nn.Module(), {}, Signature.model_validate_json(data["signature"]), Path(data["folder"]), options
    )
    try:
        answer: dict[str, object] = {"record": exporters.get(data["format"]).export(request).model_dump(mode="json")}
    except Exception as e:
        answer = {"error": str(e) if isinstance(e, ExportError) else f"{type(e).__name__}: {one_line(e)}"}
    Path(result_path).write_text(json.dumps(answer), encoding="utf-8")
    return 0


if __name__ == "__main__":
    from modelport.shutdown import exit_quickly

    exit_quickly(_main(sys.argv[1], sys.argv[2]))

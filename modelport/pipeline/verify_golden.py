"""The golden data verify replays: each set read from the folder, with its ONNX test-data copy and float64 outputs.

Every path is checked to lie inside the folder; a copy that disagrees with its ``.npz`` set is an
integrity problem, not a reason to skip the set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelport.errors import UsageError
from modelport.exporters.runtime import require
from modelport.pipeline.golden import read_npz
from modelport.pipeline.outdir import MANIFEST_NAME
from modelport.pipeline.records import IntegrityProblem, Report
from modelport.pipeline.verify_manifest import inside
from modelport.validators.candidate import ReplaySet

__all__ = ["golden_paths", "golden_replays"]


def _pb_matches(folder: Path, rel: str, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> str | None:
    """Why the ONNX test-data copy of a set differs from its .npz files, or None."""
    onnx = require("onnx")
    base = inside(folder, rel)
    if base is None:
        return "points outside the folder"
    for prefix, arrays in (("input", inputs), ("output", outputs)):
        for k, (name, array) in enumerate(arrays.items()):
            proto = onnx.TensorProto()
            try:
                proto.ParseFromString((base / f"{prefix}_{k}.pb").read_bytes())
            except Exception as e:
                return f"{prefix}_{k}.pb cannot be read ({e})"
            got = onnx.numpy_helper.to_array(proto)
            if proto.name != name or got.shape != array.shape or not np.array_equal(got, array, equal_nan=True):
                return f"{prefix}_{k}.pb is not the .npz set's {name!r}"
        if (base / f"{prefix}_{len(arrays)}.pb").exists():
            return f"holds more {prefix}s than the .npz set"
    return None


def _outputs64(
    folder: Path, rel: str | None, outputs: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """A set's float64 outputs, which must be float64 arrays shaped like the float outputs they re-run."""
    if rel is None:
        return None, None
    path = inside(folder, rel)
    if path is None:
        return None, "points outside the folder"
    try:
        arrays = read_npz(path)
    except UsageError as e:
        return None, str(e)
    for key, array in arrays.items():
        if key not in outputs or array.shape != outputs[key].shape or array.dtype != np.float64:
            return None, f"{key!r} is not a float64 re-run of a golden output"
    return arrays, None


def golden_replays(folder: Path, manifest: Report) -> tuple[list[ReplaySet], list[IntegrityProblem]]:
    golden = manifest.golden
    if golden is None:
        return [], [IntegrityProblem(path=MANIFEST_NAME, problem="records no golden data")]
    sets = [("example", "example", golden.inputs, golden.outputs, golden.onnx_test_data, golden.outputs64)]
    sets += [(s.name, s.kind, s.inputs, s.outputs, s.onnx_test_data, s.outputs64) for s in golden.sets]
    estimate = golden.float64_estimate or "copy"
    replays, problems = [], []
    for name, kind, inputs_rel, outputs_rel, pb_rel, rel64 in sets:
        in_path, out_path = inside(folder, inputs_rel), inside(folder, outputs_rel)
        if in_path is None or out_path is None:
            return [], [IntegrityProblem(path=inputs_rel, problem=f"golden set {name!r} points outside the folder")]
        try:
            inputs, outputs = read_npz(in_path), read_npz(out_path)
        except UsageError as e:
            return [], [IntegrityProblem(path=inputs_rel, problem=str(e))]
        if pb_rel is not None and (why := _pb_matches(folder, pb_rel, inputs, outputs)) is not None:
            problems.append(IntegrityProblem(path=pb_rel, problem=why))
        outputs64, why64 = _outputs64(folder, rel64, outputs)
        if why64 is not None:
            problems.append(IntegrityProblem(path=rel64 or outputs_rel, problem=why64))
        replays.append(ReplaySet(name, inputs, outputs, kind, outputs64, estimate))
    return replays, problems


def golden_paths(manifest: Report) -> set[str]:
    g = manifest.golden
    if g is None:
        return set()
    return {g.inputs, g.outputs, *(s.inputs for s in g.sets), *(s.outputs for s in g.sets)}

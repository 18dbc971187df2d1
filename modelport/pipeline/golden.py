"""Golden data: ``.npz`` files any numpy can read, written byte-for-byte reproducibly.

``numpy.savez`` stamps each zip member with the current time, so two identical runs
would give different bytes; these members carry a fixed timestamp instead.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelport.errors import UsageError
from modelport.fsutil import atomic_write
from modelport.loaders import load_npz
from modelport.pipeline.records import Golden, GoldenSet

if TYPE_CHECKING:
    from modelport.pipeline.inputs import InputSet
    from modelport.validators.candidate import ReplaySet

__all__ = ["read_npz", "write_golden", "write_npz"]

_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    with atomic_write(path) as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(array, order="C"), allow_pickle=False)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read every array; object arrays (pickles) are refused."""
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path.name} is not an .npz archive")
    try:
        with load_npz(path) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise UsageError(f"cannot read golden data {path}: {e}") from e


ONNX_TEST_DATA = "golden/onnx"


def write_onnx_test_data(
    folder: Path, index: int, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]
) -> str:
    """One set in the ONNX test-data layout: ``test_data_set_N/input_K.pb`` and ``output_K.pb`` (TensorProto).

    K follows the graph's input and output order, and each tensor carries its name, so
    ONNX's backend test runners and any protobuf reader can replay the set.
    """
    from modelport.exporters.runtime import require

    numpy_helper = require("onnx").numpy_helper
    rel = f"{ONNX_TEST_DATA}/test_data_set_{index}"
    for prefix, arrays in (("input", inputs), ("output", outputs)):
        for k, (name, array) in enumerate(arrays.items()):
            with atomic_write(folder / rel / f"{prefix}_{k}.pb") as fh:
                fh.write(numpy_helper.from_array(np.asarray(array, order="C"), name=name).SerializeToString())
    return rel


def write_golden(folder: Path, sets: Sequence[InputSet], replays: Sequence[ReplaySet]) -> Golden:
    """The example set as ``golden/{inputs,outputs}.npz``, every other set under ``golden/sets/<name>/``;
    all of them again in the ONNX test-data layout under ``golden/onnx/``."""
    for index, (s, replay) in enumerate(zip(sets, replays, strict=True)):
        write_onnx_test_data(folder, index, s.inputs, replay.reference)
    write_npz(folder / "golden" / "inputs.npz", sets[0].inputs)
    write_npz(folder / "golden" / "outputs.npz", replays[0].reference)
    golden_sets: list[GoldenSet] = []
    for s, replay in zip(sets[1:], replays[1:], strict=True):
        base = f"golden/sets/{s.name}"
        write_npz(folder / base / "inputs.npz", s.inputs)
        write_npz(folder / base / "outputs.npz", replay.reference)
        golden_sets.append(
            GoldenSet(
                name=s.name,
                kind=s.kind,
                description=s.description,
                inputs=f"{base}/inputs.npz",
                outputs=f"{base}/outputs.npz",
                onnx_test_data=f"{ONNX_TEST_DATA}/test_data_set_{len(golden_sets) + 1}",
                outputs64=_write64(folder, f"{base}/outputs64.npz", replay),
            )
        )
    with64 = [r for r in replays if r.reference64]
    return Golden(
        inputs="golden/inputs.npz",
        outputs="golden/outputs.npz",
        onnx_test_data=f"{ONNX_TEST_DATA}/test_data_set_0",
        outputs64=_write64(folder, "golden/outputs64.npz", replays[0]),
        float64_estimate=with64[-1].reference64_estimate if with64 else None,  # type: ignore[arg-type]
        sets=golden_sets,
    )


def _write64(folder: Path, rel: str, replay: ReplaySet) -> str | None:
    """The float64 re-run of the original's float outputs, when there is one."""
    if not replay.reference64:
        return None
    write_npz(folder / rel, {k: np.asarray(v, dtype=np.float64) for k, v in replay.reference64.items()})
    return rel

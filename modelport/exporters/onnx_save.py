"""Writing derived ONNX graphs (fp16, int8) that may be over protobuf's 2 GiB limit.

A graph whose tensors pass ``EXTERNAL_DATA_THRESHOLD`` bytes is saved with them in one
``NAME.data`` file beside ``NAME`` (the layout the base ``onnx`` export uses); below it, one
self-contained file. Libraries write both files themselves and name the data file after the
graph's own name, so they write into a scratch folder beside the target under the final names,
and both files move into place when complete: the data file first, so that a graph file in the
folder never points at data that is not there yet.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.exporters.runtime import require
from modelport.fsutil import fsync_dir, publish_mode

if TYPE_CHECKING:
    import onnx

__all__ = [
    "EXTERNAL_DATA_THRESHOLD",
    "data_file",
    "file_roles",
    "onnx_output",
    "over_limit",
    "save_onnx",
    "tensor_bytes",
]

# Protobuf cannot hold a message over 2 GiB; above this many bytes of tensors the graph keeps them
# in one external data file beside it (the graph itself, names and shapes, stays far below the limit).
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def over_limit(nbytes: int) -> bool:
    """Whether this many bytes of tensors must live outside the protobuf."""
    return nbytes > EXTERNAL_DATA_THRESHOLD


def data_file(path: Path) -> Path:
    return path.with_name(f"{path.name}.data")


def tensor_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the graph's initializers and constant tensors, as they would be serialized."""
    total = 0
    for t in model.graph.initializer:
        total += len(t.raw_data) or _typed_bytes(t)
    for node in model.graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                total += len(a.t.raw_data) or _typed_bytes(a.t)
    return total


def _typed_bytes(t: Any) -> int:
    fields = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")
    return sum(len(getattr(t, f)) for f in fields) * 8 + sum(len(s) for s in t.string_data)


@contextlib.contextmanager
def onnx_output(path: Path) -> Iterator[Path]:
    """A scratch path under the final name: what is written there (NAME, NAME.data) replaces ``path`` on success."""
    scratch = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part"))
    try:
        target = scratch / path.name
        yield target
        written = [p for p in (data_file(target), target) if p.exists()]
        for p in written:
            with p.open("rb+") as fh:
                os.fsync(fh.fileno())
            publish_mode(p)
        if not data_file(target).exists():
            data_file(path).unlink(missing_ok=True)  # a stale one from a previous export must not ship
        for p in written:
            os.replace(p, path.parent / p.name)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def save_onnx(model: onnx.ModelProto, path: Path) -> None:
    """Save ``model`` to ``path``: one file, or ``path.data`` beside it above the threshold."""
    onnx = require("onnx")
    with onnx_output(path) as target:
        if not over_limit(tensor_bytes(model)):
            target.write_bytes(model.SerializeToString())
        else:
            onnx.save_model(
                model,
                str(target),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=data_file(target).name,
                size_threshold=1024,
                convert_attribute=True,
            )


def file_roles(path: Path) -> tuple[list[str], dict[str, str]]:
    """The record's files and roles for a graph at ``path``: the data file too when there is one."""
    data = data_file(path)
    if data.exists():
        return [path.name, data.name], {data.name: "external-data"}
    return [path.name], {}

"""Builders of hostile files for tests/test_untrusted.py. Each code-running payload creates a sentinel file:
a test passes only if the file is refused *and* the sentinel never appears."""

from __future__ import annotations

import builtins
import functools
import json
import os
import pickle
import runpy
import struct
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


class Call:
    """Pickles as ``fn(*args)``; nests, so ``Call(Call(getattr, ...), ...)`` builds a getattr chain."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __call__(self, *args: Any) -> Any:  # pickle requires the reduce callable to be callable
        raise AssertionError("never called at build time")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.fn, self.args


def _touch_code(sentinel: Path) -> str:
    return f"open({str(sentinel)!r}, 'w').close()"


def payloads(sentinel: Path, workdir: Path) -> dict[str, object]:
    """Objects whose unpickling creates ``sentinel``, one per technique."""
    script = workdir / "payload_script.py"
    script.write_text(_touch_code(sentinel) + "\n")
    touch = f"touch {sentinel}"
    return {
        "os.system": Call(os.system, touch),
        "eval": Call(builtins.eval, _touch_code(sentinel)),
        "exec": Call(builtins.exec, _touch_code(sentinel)),
        "subprocess.Popen": Call(subprocess.Popen, ["touch", str(sentinel)]),
        "functools.partial": Call(functools.partial(os.system, touch)),
        "runpy.run_path": Call(runpy.run_path, str(script)),
        "getattr-chain": Call(Call(builtins.getattr, Call(builtins.__import__, "os"), "system"), touch),
    }


def pickle_bytes(obj: object, protocol: int) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


def rewrite_zip(
    path: Path, replace: Callable[[str, bytes], bytes | None], extra: dict[str, bytes] | None = None
) -> None:
    """Rewrite a zip archive in place: ``replace(name, data)`` returns new bytes (or None to keep)."""
    with zipfile.ZipFile(path) as src:
        members = [(info.filename, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for name, data in members:
            new = replace(name, data)
            dst.writestr(name, data if new is None else new)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)


def member(path: Path, suffix: str) -> str:
    with zipfile.ZipFile(path) as z:
        (name,) = [n for n in z.namelist() if n.endswith(suffix)]
    return name


def torch_zip_with_payload(path: Path, payload: bytes) -> Path:
    """A real ``torch.save`` archive whose ``data.pkl`` was replaced by ``payload``."""
    import torch

    torch.save({"weight": torch.zeros(2)}, path)
    rewrite_zip(path, lambda name, data: payload if name.endswith("/data.pkl") else None)
    return path


def npz_with_object_array(path: Path, obj: object) -> Path:
    np.savez(path, x=np.array([obj], dtype=object))
    return path


def safetensors_raw(path: Path, header_text: str, data: bytes, header_len: int | None = None) -> Path:
    """A safetensors file written by hand: 8-byte length, the header text as given, then ``data``."""
    header = header_text.encode()
    n = len(header) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", n) + header + data)
    return path


def f32_entry(start: int, end: int, n: int) -> str:
    return json.dumps({"dtype": "F32", "shape": [n], "data_offsets": [start, end]})


def onnx_with_external(folder: Path, location: str, *, offset: int = 0, length: int = 16) -> Path:
    """A one-initializer ONNX model in ``folder`` whose tensor data is at ``location`` (not checked here)."""
    from onnx import TensorProto, helper

    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    node = helper.make_node("Identity", ["w"], ["y"])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    graph = helper.make_graph([node], "g", [], [out], initializer=[tensor])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def secret_file(path: Path) -> Path:
    path.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    return path


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth

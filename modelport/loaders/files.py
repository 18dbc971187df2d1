"""Checks on safetensors headers, ONNX external-data references and TorchScript pickles, before loading."""

from __future__ import annotations

import math
import os
import pickletools
import re
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from modelport.loaders.jsonsafe import UnsafeFile, parse_json

__all__ = ["check_onnx_external_data", "check_safetensors", "check_torchscript"]

MAX_SAFETENSORS_HEADER = 100_000_000  # safetensors' own MAX_HEADER_SIZE
_DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "U16": 16, "I16": 16, "F16": 16,
    "BF16": 16, "U32": 32, "I32": 32, "F32": 32, "U64": 64, "I64": 64, "F64": 64, "C64": 64, "F4": 4, "F6_E2M3": 6,
    "F6_E3M2": 6,
}  # fmt: skip


def _safetensors_entry(name: str, entry: Any, where: str) -> tuple[int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise UnsafeFile(f"{where}: tensor {name!r} is not dtype/shape/data_offsets; refused")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in _DTYPE_BITS:
        raise UnsafeFile(f"{where}: tensor {name!r} has unknown dtype {dtype!r}; refused")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise UnsafeFile(f"{where}: tensor {name!r} has an invalid shape; refused")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        raise UnsafeFile(f"{where}: tensor {name!r} has invalid data_offsets; refused")
    start, end = offsets
    if not 0 <= start <= end or (end - start) * 8 != math.prod(shape) * _DTYPE_BITS[dtype]:
        raise UnsafeFile(f"{where}: tensor {name!r} data_offsets {offsets} do not match its shape and dtype; refused")
    return start, end


def check_safetensors(path: Path) -> dict[str, Any]:
    """Header bounded and well-typed, names unique, tensors tiling the data exactly (no overlap, gap, truncation);
    returns the header's tensor entries (name -> dtype, shape, offsets), read without torch."""
    where = path.name
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise UnsafeFile(f"{where} is too short for a safetensors file; refused")
            n = int.from_bytes(head, "little")
            if n > MAX_SAFETENSORS_HEADER or n > size - 8:
                raise UnsafeFile(f"{where}: header of {n} bytes is oversize for a {size}-byte file; refused")
            header = parse_json(fh.read(n), f"{where} header", max_bytes=MAX_SAFETENSORS_HEADER, max_depth=4)
    except OSError as e:
        raise UnsafeFile(f"cannot read {where}: {e.strerror or e}") from e
    if not isinstance(header, dict):
        raise UnsafeFile(f"{where}: header is not a JSON object; refused")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise UnsafeFile(f"{where}: __metadata__ is not a string map; refused")
    spans = sorted(_safetensors_entry(k, v, where) for k, v in header.items())
    expected = 0
    for start, end in spans:
        if start != expected:
            why = "overlap" if start < expected else "leave a gap"
            raise UnsafeFile(f"{where}: tensor data offsets {why} at byte {start}; refused")
        expected = end
    if expected != size - 8 - n:
        raise UnsafeFile(
            f"{where}: tensors cover {expected} bytes but the file holds {size - 8 - n}; truncated or padded"
        )
    return header


def _external_entries(model: Any) -> list[tuple[str, dict[str, str]]]:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    out = []
    for tensor in _get_all_tensors(model):
        if uses_external_data(tensor):
            out.append((tensor.name, {e.key: e.value for e in tensor.external_data}))
    return out


def _check_location(base: Path, name: str, location: str) -> Path:
    rel = PurePosixPath(location.replace("\\", "/"))
    if not location or rel.is_absolute() or Path(location).is_absolute() or location.startswith(("/", "\\")):
        raise UnsafeFile(f"external data of {name!r} has absolute location {location!r}; refused")
    if ".." in rel.parts or ":" in location:
        raise UnsafeFile(f"external data of {name!r} escapes the model folder ({location!r}); refused")
    target = base
    for part in rel.parts:
        target = target / part
        if target.is_symlink():
            raise UnsafeFile(f"external data of {name!r} goes through the symlink {part!r}; refused")
    info = os.stat(target, follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"external data of {name!r} ({location!r}) is not a regular file; refused")
    if info.st_nlink > 1:
        raise UnsafeFile(f"external data of {name!r} ({location!r}) is a hard link; refused (copy the file instead)")
    return target


def check_onnx_external_data(path: Path) -> None:
    """Every external-data reference of an ONNX file: a plain file inside its folder, offset and length within it."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    base = path.parent
    for name, entry in _external_entries(model):
        unknown = set(entry) - {"location", "offset", "length", "checksum", "basepath"}
        if unknown:
            raise UnsafeFile(f"external data of {name!r} has unknown keys {sorted(unknown)}; refused")
        try:
            target = _check_location(base, name, entry.get("location", ""))
            offset, length = int(entry.get("offset", "0")), int(entry.get("length", "-2")) if "length" in entry else -2
        except FileNotFoundError as e:
            raise UnsafeFile(f"external data of {name!r} is missing ({entry.get('location')!r})") from e
        except ValueError as e:
            raise UnsafeFile(f"external data of {name!r} has a non-integer offset or length; refused") from e
        size = target.stat().st_size
        if offset < 0 or length < -2 or length == -1 or offset > size or (length >= 0 and offset + length > size):
            raise UnsafeFile(
                f"external data of {name!r}: offset {offset} / length {entry.get('length')} outside "
                f"{entry['location']!r} ({size} bytes); refused"
            )


# TorchScript's pickles name only tensors, TorchScript classes and containers; anything else was put there.
_TS_GLOBAL = re.compile(
    r"__torch__\.[\w.]+|torch\._utils\._rebuild_\w+|torch\.jit\._pickle\.\w+|torch\.\w+Storage|collections\.OrderedDict"
)


def _pickle_globals(data: bytes) -> list[str]:
    """Every global a pickle imports; a name it builds in ways this scan cannot follow comes back as "?"."""
    found: list[str] = []
    pushed: list[str | None] = []  # what each opcode pushed: a string, or None for anything else
    memo: dict[int, str | None] = {}
    for opcode, arg, _ in pickletools.genops(data):
        name = opcode.name
        if name in ("GLOBAL", "INST"):
            found.append(str(arg).replace(" ", "."))
        elif name == "STACK_GLOBAL":
            module, attr = (pushed[-2:] if len(pushed) >= 2 else [None, None])[:2]
            found.append(f"{module}.{attr}" if module and attr else "?")
        elif isinstance(arg, str) and ("UNICODE" in name or name.endswith("STRING")):
            pushed.append(arg)
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ("BINPUT", "LONG_BINPUT", "PUT") and isinstance(arg, int):
            memo[arg] = pushed[-1] if pushed else None
        elif name in ("BINGET", "LONG_BINGET", "GET") and isinstance(arg, int):
            pushed.append(memo.get(arg))
        else:
            pushed.append(None)
    return found


def check_torchscript(path: Path) -> None:
    """Refuse a TorchScript archive whose pickles import anything but tensors and TorchScript classes."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".pkl"):
                    continue
                try:
                    names = _pickle_globals(archive.read(info))
                except (ValueError, IndexError, KeyError) as e:
                    raise UnsafeFile(f"{path.name}:{info.filename} is not a readable pickle ({e}); refused") from e
                bad = [n for n in names if not _TS_GLOBAL.fullmatch(n)]
                if bad:
                    raise UnsafeFile(f"{path.name}:{info.filename} imports {bad[0]!r}; refused (a pickle payload)")
    except (zipfile.BadZipFile, OSError) as e:
        raise UnsafeFile(f"{path.name} is not a readable TorchScript archive ({e}); refused") from e

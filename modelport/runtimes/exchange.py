"""The tensor files modelport and the programs of other runtimes exchange (Node.js, the browser, C++).

One folder holds a JSON index and one raw file per tensor:

    sets.json    {"kind": "modelport-tensors", "version": 1,
                  "sets": [{"name": "example",
                            "tensors": [{"name": "x", "dtype": "float32", "shape": [2, 20],
                                         "file": "example/x.bin"}]}]}
    example/x.bin   the tensor's elements, C order, little-endian, nothing else

A program reads ``inputs/sets.json`` and writes ``outputs/sets.json`` in the same form (one entry
per input set, in the same order, with the outputs by signature name), plus, per set, either
``tensors`` or ``"error": "one line"``, and at the top level optional ``"runtime"`` (name, version,
anything worth recording) and ``"load_seconds"``; each set may carry ``"seconds"``.
For a latency profile the input index also holds ``"profile": {"warmup", "min_iterations", "min_seconds",
"max_iterations", "max_seconds"}`` (``ProfileSettings``): the program then runs each set repeatedly by
that rule and adds ``"times"`` (seconds per timed call, by its own clock) and ``"warmup"`` to the set. Raw bytes
and JSON need no library in any language; modelport checks everything it reads back (names,
dtypes, shapes, sizes, paths inside the folder) before a number is compared.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import LoadError

if TYPE_CHECKING:
    import numpy as np

    from modelport.profiling.loop import Timing
    from modelport.profiling.records import ProfileSettings

__all__ = ["DTYPES", "ProgramOutputs", "program_timing", "read_sets", "write_sets"]

INDEX = "sets.json"
# The dtypes a program may exchange; bool is one byte per element (0 or 1).
DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
_MAX_INDEX = 16 * 2**20


def _safe(name: str) -> str:
    """A file-name form of a set or tensor name: letters, digits, '-', '_' and '.' (no path)."""
    text = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")
    return text or "_"


def write_sets(
    folder: Path, sets: Sequence[tuple[str, Mapping[str, np.ndarray]]], profile: Mapping[str, float] | None = None
) -> Path:
    """Write ``(set name, tensors by name)`` pairs under ``folder``; returns the index file.

    ``profile`` (``ProfileSettings`` as a dict) asks the program to time each set repeatedly.
    """
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    index: list[dict[str, Any]] = []
    for k, (set_name, tensors) in enumerate(sets):
        sub = f"{k}_{_safe(set_name)}"
        (folder / sub).mkdir(exist_ok=True)
        entries = []
        for j, (name, array) in enumerate(tensors.items()):
            a = np.ascontiguousarray(array)
            dtype = str(a.dtype)
            if dtype not in DTYPES:
                raise LoadError(f"tensor {name!r} of set {set_name!r} is {dtype}, which no runtime program reads")
            rel = f"{sub}/{j}_{_safe(name)}.bin"
            (folder / rel).write_bytes(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(order="C"))
            entries.append({"name": name, "dtype": dtype, "shape": list(a.shape), "file": rel})
        index.append({"name": set_name, "tensors": entries})
    path = folder / INDEX
    data: dict[str, Any] = {"kind": "modelport-tensors", "version": 1, "sets": index}
    if profile is not None:
        data["profile"] = dict(profile)
    path.write_text(json.dumps(data, indent=1))
    return path


@dataclass
class ProgramOutputs:
    """What a program wrote: per set, its outputs or its error; the runtime facts it reported."""

    sets: list[tuple[str, dict[str, np.ndarray] | None, str | None, float | None]]  # name, outputs, error, seconds
    runtime: dict[str, str] = field(default_factory=dict)
    load_seconds: float | None = None
    times: dict[str, list[float]] = field(default_factory=dict)  # set name -> timed calls, in profile mode
    calls_per_sample: dict[str, int] = field(default_factory=dict)  # set name -> calls each time averages


_MAX_TIMES = 1_000_000


def _times(value: object, what: str, name: str) -> list[float] | None:
    """A set's ``times`` (profile mode): a non-empty list of finite seconds >= 0, or None when absent."""
    if value is None:
        return None
    numbers = [_number(v) for v in value] if isinstance(value, list) and len(value) <= _MAX_TIMES else [None]
    if not numbers or any(v is None for v in numbers):
        raise LoadError(f"{what}: set {name!r} has times that are not a list of seconds")
    return [v for v in numbers if v is not None]


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def read_sets(folder: Path, expected: Sequence[str], outputs: Sequence[str], what: str) -> ProgramOutputs:
    """Read ``folder/sets.json`` written by a program, for the ``expected`` set names, in order.

    Every set must list exactly the ``outputs`` names, or carry an error; anything else (a missing
    file, a size that does not match the shape, a path leaving the folder, an unknown dtype) is a
    ``LoadError`` naming what is wrong: a program that prints garbage fails cleanly.
    """
    from modelport.loaders import UnsafeFile, parse_json

    path = folder / INDEX
    try:
        data = parse_json(path.read_bytes()[: _MAX_INDEX + 1], f"{what}'s {INDEX}")
    except FileNotFoundError as e:
        raise LoadError(f"{what} wrote no {INDEX}") from e
    except (OSError, UnsafeFile) as e:
        raise LoadError(f"{what}'s {INDEX} cannot be read: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("sets"), list):
        raise LoadError(f"{what}'s {INDEX} is not a modelport tensor index (no 'sets' list)")
    if [s.get("name") if isinstance(s, dict) else None for s in data["sets"]] != list(expected):
        raise LoadError(f"{what} answered other input sets than it was given (expected {list(expected)})")
    reported = data.get("runtime")
    runtime: dict[str, Any] = reported if isinstance(reported, dict) else {}
    result = ProgramOutputs(
        sets=[], runtime={str(k): str(v) for k, v in runtime.items()}, load_seconds=_number(data.get("load_seconds"))
    )
    for entry in data["sets"]:
        seconds = _number(entry.get("seconds"))
        times = _times(entry.get("times"), what, entry["name"])
        if times is not None:
            result.times[entry["name"]] = times
            block = entry.get("calls_per_sample", 1)
            if isinstance(block, bool) or not isinstance(block, int) or block < 1:
                raise LoadError(f"{what}: set {entry['name']!r} has calls_per_sample {block!r}, not a count")
            result.calls_per_sample[entry["name"]] = block
        if entry.get("error") is not None:
            result.sets.append((entry["name"], None, str(entry["error"])[:500], seconds))
            continue
        tensors = entry.get("tensors")
        if not isinstance(tensors, list):
            raise LoadError(f"{what}: set {entry['name']!r} has neither tensors nor an error")
        names = [t.get("name") if isinstance(t, dict) else None for t in tensors]
        if names != list(outputs):
            raise LoadError(f"{what}: set {entry['name']!r} returned outputs {names}, expected {list(outputs)}")
        arrays = {t["name"]: _read_tensor(folder, t, what) for t in tensors}
        result.sets.append((entry["name"], arrays, None, seconds))
    return result


def _read_tensor(folder: Path, entry: dict[str, Any], what: str) -> np.ndarray:
    import numpy as np

    name, dtype, shape, rel = entry.get("name"), entry.get("dtype"), entry.get("shape"), entry.get("file")
    if dtype not in DTYPES:
        raise LoadError(f"{what}: output {name!r} has dtype {dtype!r}, not one of {', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise LoadError(f"{what}: output {name!r} has shape {shape!r}, not a list of sizes")
    if not isinstance(rel, str) or rel.startswith("/") or ".." in Path(rel).parts:
        raise LoadError(f"{what}: output {name!r} names the file {rel!r}, outside its folder")
    file = folder / rel
    if file.is_symlink() or not file.is_file():
        raise LoadError(f"{what}: output {name!r}'s file {rel} is missing or not a plain file")
    np_dtype = np.dtype(dtype).newbyteorder("<")
    expected = math.prod(shape) * np_dtype.itemsize
    size = file.stat().st_size
    if size != expected:
        raise LoadError(f"{what}: output {name!r} holds {size} bytes, its shape {shape} {dtype} needs {expected}")
    array = np.fromfile(file, dtype=np_dtype).reshape(shape)
    return array.astype(np_dtype.newbyteorder("="), copy=False)


def program_timing(what: str, answer: ProgramOutputs, settings: ProfileSettings, facts: Mapping[str, str]) -> Timing:
    """A profiled program run's one set as a Timing: its own clock's times, its thread count when it said."""
    from modelport.profiling.loop import Timing

    (name, _, error, _) = answer.sets[0]
    if error is not None:
        raise LoadError(f"{what}: {error}")
    if name not in answer.times:
        raise LoadError(f"{what} timed nothing: its answer has no times for the profiled set")
    threads = str(facts.get("threads", ""))
    return Timing(
        times=answer.times[name],
        warmup=settings.warmup,
        timed_in="program",
        calls_per_sample=answer.calls_per_sample.get(name, 1),
        threads=int(threads) if threads.isdigit() else None,
        facts=dict(facts),
    )

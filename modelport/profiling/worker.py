"""One candidate's latency profile, in a process of its own: ``python -m modelport.profiling.worker REQUEST RESULT``.

Each candidate runs in a fresh process so that one runtime's thread pools (torch's, onnxruntime's)
never compete with another's or with modelport's own. The request (JSON, written by
``modelport.profiling.profiler``) names the artifact, its signature and the batch sizes; the worker
opens the artifact with its runtime (under the same trust grant the parent had), builds each batch by
tiling the folder's golden example along the batch axis, times it with ``Session.profile`` (inside the
runtime's program for node, the browser, libtorch and OpenCV) and writes the raw times to RESULT.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import one_line, raise_if_interrupted
from modelport.profiling.records import ProfileSettings
from modelport.signature import Signature

if TYPE_CHECKING:
    import numpy as np

    from modelport.runtimes.base import Session

__all__ = ["batch_plan", "main", "tile"]


def batch_plan(
    signature: Signature, example: Mapping[str, np.ndarray], sizes: list[int]
) -> tuple[list[int], dict[int, str]]:
    """The batch sizes this signature can run (tiled from the example) and why each other one is skipped."""
    labels = {s.shape[0] for s in signature.inputs if s.shape and isinstance(s.shape[0], str)}
    if len(labels) != 1:
        exported = next((int(example[s.name].shape[0]) for s in signature.inputs if example[s.name].ndim), 1)
        why = f"the batch axis is static (exported at batch {exported}): only that size runs"
        return [exported], {b: why for b in sizes if b != exported}
    label = labels.pop()
    dim = signature.dim_range(label)
    outside = {b: f"outside the {label} axis's range {dim.text()}" for b in sizes if b < dim.min or (dim.max or b) < b}
    return [b for b in sizes if b not in outside], outside


def tile(signature: Signature, example: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """The example's inputs repeated along their dynamic batch axis (axis 0) to ``batch`` rows."""
    import numpy as np

    out = {}
    for spec in signature.inputs:
        x = example[spec.name]
        if spec.shape and isinstance(spec.shape[0], str) and x.shape[0] != batch:
            x = np.ascontiguousarray(np.take(x, np.arange(batch) % x.shape[0], axis=0))
        out[spec.name] = x
    return out


def _physical_cores() -> int | None:
    """Physical cores this process may run on: onnxruntime's default intra-op thread count on Linux."""
    cores = set()
    for cpu in os.sched_getaffinity(0):
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topology / "physical_package_id").read_text().strip() + ":" + (topology / "core_id").read_text())
        except OSError:
            return None
    return len(cores) or None


def _threads(runtime: str, session: Session) -> int | None:
    """The intra-op threads of an in-process runtime (a program's own report wins for the others)."""
    if runtime in ("torch", "torchscript"):
        import torch

        return int(torch.get_num_threads())
    if runtime == "onnxruntime":
        runner = getattr(session, "_runner", None)
        configured = runner.session.get_session_options().intra_op_num_threads if runner is not None else 0
        return int(configured) or _physical_cores()  # 0 means onnxruntime's default: one per physical core
    return None


@contextlib.contextmanager
def _trusted(folder: Path, why: str | None) -> Iterator[None]:
    """The grant the parent held for this folder (``run`` its staging folder, ``profile`` a trusted one)."""
    if why is None:
        yield
        return
    from modelport.loaders.trust import granted

    with granted(folder, why):
        yield


def _profile(request: dict[str, Any]) -> dict[str, Any]:
    from modelport import exporters, runtimes
    from modelport.loaders import load_npz
    from modelport.runtimes.base import Artifact

    folder, fmt, name = Path(request["folder"]), request["format"], request["runtime"]
    signature = Signature.model_validate(request["signature"])
    settings = ProfileSettings.model_validate(request["settings"])
    with load_npz(folder / request["inputs"]) as data:
        example = {spec.name: data[spec.name] for spec in signature.inputs}
    runs, skips = batch_plan(signature, example, list(request["batch_sizes"]))
    factory = None
    if request.get("model") is not None:
        from modelport.models import resolve_model

        factory = resolve_model(request["model"]).factory
    artifact = Artifact(
        fmt, exporters.get(fmt).kind, folder, tuple(request["files"]), signature, factory, request["details"]
    )
    runtime = runtimes.get(name)
    why = runtime.unsupported(artifact)
    if why is not None:
        return {"error": why}
    rows = []
    with _trusted(folder, request.get("trust")):
        session = runtime.open(artifact, timeout=float(request["timeout"]))
        try:
            for batch in runs:
                try:
                    timing = session.profile(tile(signature, example, batch), settings)
                except Exception as e:
                    raise_if_interrupted(e)
                    skips[batch] = f"failed at this batch size: {type(e).__name__}: {one_line(e)}"
                    continue
                threads = timing.threads if timing.threads is not None else _threads(name, session)
                rows.append({"batch": batch, "times": timing.times, "warmup": timing.warmup,
                             "timed_in": timing.timed_in, "threads": threads,
                             "calls_per_sample": timing.calls_per_sample})  # fmt: skip
        finally:
            session.close()
    return {"rows": rows, "skips": [{"batch": b, "reason": r} for b, r in sorted(skips.items())]}


def main(argv: list[str]) -> int:
    request_file, result_file = Path(argv[0]), Path(argv[1])
    request = json.loads(request_file.read_text())
    try:
        result = _profile(request)
    except Exception as e:
        raise_if_interrupted(e)
        result = {"error": f"{type(e).__name__}: {one_line(e)}"}
    result_file.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    from modelport.shutdown import exit_quickly

    exit_quickly(main(sys.argv[1:]))

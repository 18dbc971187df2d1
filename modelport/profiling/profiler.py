"""The latency profile of a set of candidates: each in its own worker process, figures assembled here.

Used by ``run --profile`` (the candidates that passed, in the staging folder) and ``modelport profile DIR``.
The worker (``modelport.profiling.worker``) times the calls; this side computes p50/p95 and items per
second, names the fastest candidate per batch size, and turns anything that could not be timed into a
``ProfileSkip`` with the reason, so a profile never fails a run.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import modelport
from modelport.errors import LoadError, one_line
from modelport.format_record import FormatRecord
from modelport.profiling.figures import fastest_by_batch, latency_row
from modelport.profiling.records import LatencyRow, Profile, ProfileSettings, ProfileSkip
from modelport.runtimes.process import DEFAULT_TIMEOUT, run_program
from modelport.signature import Signature

__all__ = ["Target", "profile_candidates"]

# The worker's own start (imports) on top of the runtime's load and the timed cells, on a busy 2-core machine.
_WORKER_SLACK = 120.0


@dataclass(frozen=True)
class Target:
    """What is profiled: the folder's artifacts as recorded, and how the worker may open them."""

    folder: Path
    signature: Signature
    formats: Mapping[str, FormatRecord]
    inputs: str  # the golden example's inputs, relative to the folder
    model: str | None  # a --model SPEC the worker may import to rebuild the architecture for weights, or None
    trust: str | None  # why the folder's programs (TorchScript, .pt2) may be loaded, or None
    no_model_reason: str = "the weights need the model's code, which this command does not import"


def profile_candidates(
    target: Target,
    candidates: Sequence[str],
    batch_sizes: Sequence[int],
    settings: ProfileSettings,
    *,
    timeout: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Profile:
    """Every candidate (FORMAT@RUNTIME) at every batch size, one worker process per candidate."""
    from modelport import exporters

    start = time.perf_counter()
    rows: list[LatencyRow] = []
    skipped: list[ProfileSkip] = []
    for candidate in candidates:
        fmt = candidate.partition("@")[0]
        if exporters.get(fmt).kind == "weights" and target.model is None:
            skipped.append(ProfileSkip(candidate=candidate, reason=target.no_model_reason))
            continue
        if progress is not None:
            progress(f"profiling {candidate} at batch {', '.join(map(str, batch_sizes))}")
        try:
            result = _run_worker(target, candidate, batch_sizes, settings, timeout or DEFAULT_TIMEOUT)
        except LoadError as e:
            result = {"error": one_line(e)}
        found, lost = _figures(candidate, result)
        rows += found
        skipped += lost
    return Profile(
        batch_sizes=list(batch_sizes),
        rows=rows,
        fastest=fastest_by_batch(rows),
        skipped=skipped,
        seconds=round(time.perf_counter() - start, 3),
        settings=settings,
    )


def _run_worker(
    target: Target, candidate: str, batch_sizes: Sequence[int], settings: ProfileSettings, timeout: float
) -> dict[str, Any]:
    fmt, _, runtime = candidate.partition("@")
    record = target.formats[fmt]
    request = {
        "folder": str(target.folder.resolve()),
        "format": fmt,
        "runtime": runtime,
        "files": list(record.files),
        "details": dict(record.details),
        "signature": target.signature.model_dump(mode="json"),
        "inputs": target.inputs,
        "batch_sizes": list(batch_sizes),
        "settings": settings.model_dump(),
        "model": target.model,
        "trust": target.trust,
        "timeout": timeout,
    }
    # The worker imports this very modelport, wherever it was imported from.
    root = str(Path(modelport.__file__).resolve().parent.parent)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    with tempfile.TemporaryDirectory(prefix="modelport-profile-") as tmp:
        request_file, result_file = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request_file.write_text(json.dumps(request))
        cmd = [sys.executable, "-m", "modelport.profiling.worker", str(request_file), str(result_file)]
        run_program(cmd, what=f"profiling {candidate}", timeout=timeout + _WORKER_SLACK, env=env)
        try:
            result: dict[str, Any] = json.loads(result_file.read_text())
        except (OSError, ValueError) as e:
            raise LoadError(f"profiling {candidate}: the worker wrote no readable result ({e})") from e
    return result


def _figures(candidate: str, result: Mapping[str, Any]) -> tuple[list[LatencyRow], list[ProfileSkip]]:
    """The worker's raw times as rows, and what it could not time as skips."""
    if result.get("error"):
        return [], [ProfileSkip(candidate=candidate, reason=str(result["error"]))]
    rows = [
        latency_row(
            candidate,
            int(r["batch"]),
            [float(t) for t in r["times"]],
            warmup=int(r["warmup"]),
            threads=r.get("threads"),
            timed_in=str(r["timed_in"]),
            calls_per_sample=int(r.get("calls_per_sample", 1)),
        )
        for r in result.get("rows", [])
    ]
    skips = [ProfileSkip(candidate=candidate, batch=s["batch"], reason=s["reason"]) for s in result.get("skips", [])]
    return rows, skips

"""Shared by the runtime tests: open an artifact of a folder in a runtime, replay its golden sets, judge them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from modelport import exporters, runtimes
from modelport.loaders import granted
from modelport.pipeline.golden import read_npz
from modelport.pipeline.manifest import read_manifest
from modelport.runtimes.base import Runtime, SetResult
from modelport.runtimes.plan import artifact_for
from modelport.validators.compare import compare_outputs
from modelport.validators.records import OutputCheck

REQUIRE = os.environ.get("MODELPORT_REQUIRE_RUNTIMES") == "1"


def available_or_skip(name: str) -> Runtime:
    """The runtime, or a skip naming why it is missing (a failure under MODELPORT_REQUIRE_RUNTIMES=1: CI)."""
    runtime = runtimes.get(name)
    state = runtime.available()
    if not state.ok:
        message = f"runtime {name} {state.describe()}"
        if REQUIRE:
            pytest.fail(message + " (MODELPORT_REQUIRE_RUNTIMES=1)")
        pytest.skip(message)
    return runtime


def golden_sets(folder: Path) -> list[tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """(name, inputs, golden outputs) of every set the folder records, the example first."""
    golden = read_manifest(folder).golden
    assert golden is not None
    pairs = [("example", golden.inputs, golden.outputs)] + [(s.name, s.inputs, s.outputs) for s in golden.sets]
    return [(name, read_npz(folder / i), read_npz(folder / o)) for name, i, o in pairs]


def replay(name: str, folder: Path, fmt: str, *, timeout: float = 300) -> tuple[list[SetResult], list[OutputCheck]]:
    """Open ``fmt`` of ``folder`` in runtime ``name``, run every golden set at once, compare at the format's default."""
    runtime = available_or_skip(name)
    manifest = read_manifest(folder)
    artifact = artifact_for(folder, manifest, fmt)
    sets = golden_sets(folder)
    with granted(folder, "the suite wrote it"):
        session = runtime.open(artifact, timeout=timeout)
        try:
            results = session.infer_all([inputs for _, inputs, _ in sets])
        finally:
            session.close()
    tol = exporters.get(fmt).tolerance
    checks: list[OutputCheck] = []
    for (set_name, _, reference), result in zip(sets, results, strict=True):
        assert result.outputs is not None, f"{name} failed on set {set_name}: {result.error}"
        checks += compare_outputs(reference, result.outputs, tol, input_set=set_name)
    return results, checks

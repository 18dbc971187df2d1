"""Latency profiles of the runtimes outside Python (node, browser, libtorch, OpenCV): timed inside their program.

Each program gets the ``profile`` field in its input index and answers every timed call's seconds by its
own clock; the rows must say ``timed_in="program"`` and hold the calls the program timed, never one
time across the pipe. Needs ``make runtimes`` (a missing runtime skips; under MODELPORT_REQUIRE_RUNTIMES=1
it fails).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from runtime_harness import available_or_skip
from test_profile import check_profile

from modelport.loaders.trust import granted
from modelport.pipeline.manifest import read_manifest
from modelport.profiling.folder import profile_folder
from modelport.profiling.records import ProfileSettings
from modelport.runtimes.plan import artifact_for

pytestmark = pytest.mark.runtimes

PROGRAMS = {"node": "onnx", "browser": "onnx", "libtorch": "torchscript", "opencv": "onnx"}
QUICK = ProfileSettings(warmup=2, min_iterations=5, min_seconds=0.05, max_seconds=1.0)


@pytest.mark.parametrize("runtime", list(PROGRAMS))
def test_a_program_times_each_call_itself(runtime: str, mlp_folder: Path) -> None:
    """Session.profile on the program's session: many calls timed inside it, not one program run."""
    artifact = artifact_for(mlp_folder, read_manifest(mlp_folder), PROGRAMS[runtime])
    with granted(mlp_folder, "written by this test suite"):
        session = available_or_skip(runtime).open(artifact, timeout=300)
        try:
            timing = session.profile({"x": np.ones((8, 20), np.float32)}, QUICK)
        finally:
            session.close()
    # One program run answered every timed call (across the pipe there would be one time per run).
    assert timing.timed_in == "program" and timing.warmup == 2 and timing.calls_per_sample >= 1
    assert len(timing.times) >= QUICK.min_iterations and all(t >= 0 for t in timing.times)


def test_profile_dir_with_every_program_runtime(artifact_copy: Path) -> None:
    for runtime in PROGRAMS:
        available_or_skip(runtime)
    result = profile_folder(
        artifact_copy, runtimes="node,browser,libtorch,opencv", batch_sizes="1,8", trust=True, settings=QUICK
    )
    # onnx_optimized is bound to onnxruntime, the weights and .pt2 to torch: these are every pairing.
    expected = {"onnx@node", "onnx@browser", "onnx@opencv", "torchscript@libtorch"}
    check_profile(result.profile, {(c, b) for c in expected for b in (1, 8)})
    for row in result.profile.rows:
        assert row.timed_in == "program"
    threads = {r.runtime: r.threads for r in result.profile.rows}
    assert threads["browser"] == 1 and threads["libtorch"] and threads["opencv"]  # what each program reported

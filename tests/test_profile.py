"""Latency profiles: ``run --profile`` and ``modelport profile DIR`` on the built-in MLP with the default runtimes.

Real runs, real worker processes, real timings; speed itself is never asserted, only what the figures must
satisfy whatever the machine: one row per candidate and batch size, p50 <= p95, items/s = batch / p50, the
fastest is a measured candidate with the lowest p50, the manifest holds the profile and verify still passes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import load_manifest, unsign

import modelport
from modelport.errors import LoadError
from modelport.pipeline.manifest import read_manifest
from modelport.pipeline.records import Report
from modelport.pipeline.stages import StageEvent
from modelport.profiling.figures import fastest_by_batch, latency_row, parse_batch_sizes, percentile
from modelport.profiling.records import Profile
from modelport.profiling.worker import batch_plan, tile
from modelport.runtimes import exchange
from modelport.signature import DimRange, Signature, TensorSpec

IN_PROCESS = {"torch", "torchscript", "onnxruntime"}


def check_profile(profile: Profile, expected: set[tuple[str, int]]) -> None:
    """What every profile must satisfy, whatever the machine's speed."""
    assert {(r.candidate, r.batch) for r in profile.rows} == expected
    assert len(profile.rows) == len(expected)  # one row per candidate x batch size
    for row in profile.rows:
        assert row.iterations >= 1 and row.calls_per_sample >= 1
        assert 0 < row.min_ms <= row.p50_ms <= row.p95_ms
        assert row.min_ms <= row.mean_ms
        assert math.isclose(row.items_per_second, row.batch / (row.p50_ms / 1e3), rel_tol=1e-9)
    for batch in {b for _, b in expected}:
        at = [r for r in profile.rows if r.batch == batch]
        assert profile.fastest[str(batch)] == min(at, key=lambda r: r.p50_ms).candidate


EVENTS: list[StageEvent] = []


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Report:
    folder = tmp_path_factory.mktemp("profile") / "mlp"
    return modelport.run("mlp", out=folder, profile=True, batch_sizes="1,8", on_event=EVENTS.append)


def test_run_profile_times_every_passing_candidate_at_every_batch_size(profiled: Report) -> None:
    assert profiled.verdict == "pass" and profiled.profile is not None
    passed = {c.candidate for c in profiled.candidates if c.verdict == "pass"}
    assert len(passed) == 6
    check_profile(profiled.profile, {(c, b) for c in passed for b in (1, 8)})
    assert profiled.profile.skipped == []
    for row in profiled.profile.rows:  # the Python runtimes, each in its own process, say their threads
        assert row.runtime in IN_PROCESS and row.timed_in == "process"
        assert row.threads is not None and row.threads >= 1


def test_run_profile_reports_progress_candidate_by_candidate(profiled: Report) -> None:
    said = [e.message or "" for e in EVENTS if e.stage == "profile" and e.kind == "progress"]
    assert [m.split()[1] for m in said] == [c.candidate for c in profiled.candidates if c.verdict == "pass"]


def test_run_profile_is_in_the_manifest_and_report_and_verify_passes(profiled: Report) -> None:
    folder = Path(str(profiled.output_dir))
    assert read_manifest(folder).profile == profiled.profile
    assert [s["name"] for s in load_manifest(folder)["stages"]][-2:] == ["profile", "manifest"]
    assert "## Latency profile" in (folder / "report.md").read_text()
    assert modelport.verify(folder, require_signature=True).verdict == "pass"


def test_profile_dir_writes_the_manifest_renews_the_signature_and_verify_passes(
    artifact_copy: Path, tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "profile.json"
    result = cli("profile", str(artifact_copy), "--runtimes", "onnxruntime", "--batch-sizes", "4,1", "--json", str(out))
    assert result.code == 0, result.err
    assert "fastest" in result.out and "manifest.sig: renewed" in result.out
    profile = read_manifest(artifact_copy).profile
    assert profile is not None and profile.batch_sizes == [1, 4]
    check_profile(profile, {(c, b) for c in ("onnx@onnxruntime", "onnx_optimized@onnxruntime") for b in (1, 4)})
    assert Profile.model_validate(json.loads(out.read_text())) == profile
    # The folder's own reports show the new figures (their new hashes are in the manifest: verify passes).
    assert "## Latency profile" in (artifact_copy / "report.md").read_text()
    assert 'id="latency"' in (artifact_copy / "report.html").read_text()
    assert modelport.verify(artifact_copy, require_signature=True).verdict == "pass"


def test_profile_dir_loads_no_program_from_an_untrusted_folder(artifact_copy: Path, cli) -> None:  # type: ignore[no-untyped-def]
    unsign(artifact_copy)
    result = cli("profile", str(artifact_copy), "--runtimes", "torchscript")
    assert result.code == 1  # nothing could be timed
    profile = read_manifest(artifact_copy).profile
    assert profile is not None and profile.rows == []
    (skip,) = profile.skipped
    # Refused before any process starts (the loaders' own gate would refuse it too, in the worker).
    assert skip.candidate == "torchscript@torchscript"
    assert "is a program" in skip.reason and "not trusted" in skip.reason
    assert "manifest.sig: absent" in result.out


@pytest.mark.parametrize(
    "argv",
    [
        ["profile", "{folder}", "--batch-sizes", "0,8"],
        ["profile", "{folder}", "--batch-sizes", "1,x"],
        ["profile", "{folder}", "--batch-sizes", ""],
        ["profile", "{missing}"],
        ["run", "--out", "{missing}", "--batch-sizes", "1,8"],  # without --profile
        ["run", "--out", "{missing}", "--profile", "--batch-sizes", "-1"],
    ],
)
def test_bad_profile_input_is_one_line_exit_2(argv: list[str], mlp_folder: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    args = [a.format(folder=mlp_folder, missing=tmp_path / "missing") for a in argv]
    result = cli(*args)
    assert result.code == 2
    assert result.err.startswith("modelport: error:") and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "missing").exists()


def test_batch_sizes_parse_sorted_and_distinct() -> None:
    assert parse_batch_sizes(None) == (1, 8, 64)
    assert parse_batch_sizes("64, 1,8,8") == (1, 8, 64)
    assert parse_batch_sizes([2, 1]) == (1, 2)


def _signature(shape: list[int | str], dims: dict[str, DimRange] | None = None) -> Signature:
    return Signature(
        inputs=[TensorSpec(name="x", shape=shape, dtype="float32")],
        outputs=[TensorSpec(name="output", shape=shape, dtype="float32")],
        dims=dims or {},
    )


def test_a_static_batch_axis_runs_only_its_exported_size() -> None:
    example = {"x": np.zeros((2, 3), np.float32)}
    runs, skips = batch_plan(_signature([2, 3]), example, [1, 2, 8])
    assert runs == [2] and set(skips) == {1, 8}
    assert all("static (exported at batch 2)" in r for r in skips.values())


def test_a_batch_range_skips_the_sizes_outside_it() -> None:
    example = {"x": np.zeros((2, 3), np.float32)}
    runs, skips = batch_plan(_signature(["batch", 3], {"batch": DimRange(min=1, max=4)}), example, [1, 4, 8])
    assert runs == [1, 4] and list(skips) == [8] and "1..4" in skips[8]


def test_tiling_repeats_the_example_along_the_batch_axis() -> None:
    example = {"x": np.arange(6, dtype=np.float32).reshape(2, 3)}
    tiled = tile(_signature(["batch", 3]), example, 5)["x"]
    assert tiled.shape == (5, 3)
    np.testing.assert_array_equal(tiled, example["x"][[0, 1, 0, 1, 0]])


def test_percentiles_match_numpy_and_the_fastest_has_the_lowest_median() -> None:
    times = list(np.random.default_rng(0).exponential(1e-3, size=101))
    for q in (50, 95):
        assert math.isclose(percentile(sorted(times), q), float(np.percentile(times, q)), rel_tol=1e-12)
    row = latency_row("onnx@onnxruntime", 4, times, warmup=3, threads=2, timed_in="process")
    assert math.isclose(row.p50_ms, float(np.percentile(times, 50)) * 1e3, rel_tol=1e-12)
    assert math.isclose(row.p95_ms, float(np.percentile(times, 95)) * 1e3, rel_tol=1e-12)
    assert row.iterations == 101 and math.isclose(row.mean_ms, float(np.mean(times)) * 1e3, rel_tol=1e-12)
    steady = latency_row("a@torch", 8, [2e-3, 3e-3], warmup=0, threads=1, timed_in="process")
    jumpy = latency_row("b@onnxruntime", 8, [1e-3, 5e-3], warmup=0, threads=1, timed_in="process")  # lower min
    assert steady.p50_ms == 2.5 and jumpy.p50_ms == 3.0 and fastest_by_batch([jumpy, steady]) == {"8": "a@torch"}


def test_a_program_answer_with_bad_times_fails_cleanly(tmp_path: Path) -> None:
    exchange.write_sets(tmp_path, [("set0", {"x": np.zeros(2, np.float32)})])
    index = json.loads((tmp_path / "sets.json").read_text())
    index["sets"][0] = {"name": "set0", "error": "x", "times": [0.001, -1]}
    (tmp_path / "sets.json").write_text(json.dumps(index))
    with pytest.raises(LoadError, match="not a list of seconds"):
        exchange.read_sets(tmp_path, ["set0"], ["x"], "prog")

"""Parity assertions for your own test suite.

    from modelport.testing import assert_parity, assert_matches_golden

    def test_my_model_exports(tmp_path):
        assert_parity(MyModel().eval(), torch.randn(4, 16), formats="onnx,torch_export", out=tmp_path / "a")

    def test_still_matches_the_release():
        assert_matches_golden(load_my_trained_model(), "artifacts/my_model")

The pytest plugin (installed with modelport) also offers them as the fixtures
``modelport_parity`` and ``modelport_golden``, which write into the test's ``tmp_path``.
A failure message lists every failing check with its numbers.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelport.pipeline.golden import read_npz
from modelport.pipeline.manifest import read_manifest
from modelport.pipeline.records import Report
from modelport.signature import flatten_named, numpy_to_torch, torch_to_numpy
from modelport.validators.compare import compare_outputs
from modelport.validators.records import OutputCheck, Tolerance

__all__ = ["assert_matches_golden", "assert_parity", "describe_failures"]


def _line(check: OutputCheck) -> str:
    figures = ", ".join(
        f"{name} {value:.3g}"
        for name, value in (
            ("max abs err", check.max_abs_err),
            ("max rel err", check.max_rel_err),
            ("min passing atol", check.min_passing_atol),
        )
        if value is not None
    )
    return f"{check.input_set}/{check.output}: {check.message}" + (f" [{figures}]" if figures else "")


def describe_failures(report: Report) -> str:
    lines = [f"modelport parity failed ({report.output_dir}):"]
    for cand in report.candidates:
        if cand.verdict == "pass":
            continue
        lines.append(f"  {cand.candidate} [{cand.tolerance.describe()}]" + (f": {cand.reason}" if cand.reason else ""))
        lines += [f"    {_line(c)}" for c in cand.failures()]
    failed = [s for s in report.stages if s.status == "failed" and s.name not in ("validate",)]
    lines += [f"  stage {s.name} failed: {s.reason}" for s in failed]
    return "\n".join(lines)


def assert_parity(
    model: torch.nn.Module | Callable[[], object] | str,
    example_inputs: object = None,
    *,
    formats: str = "onnx",
    out: str | Path | None = None,
    **run_kwargs: Any,
) -> Report:
    """Export ``model`` to ``formats`` and assert every artifact agrees with it; returns the report.

    Keyword arguments are ``modelport.run``'s (``tol``, ``atol``, ``rtol``, ``dynamic``, ``samples``...).
    Without ``out`` the artifacts go to a temporary folder that is removed afterwards.
    """
    from modelport.pipeline.run import run

    def go(folder: Path, force: bool) -> Report:
        report = run(model, out=folder, formats=formats, example_inputs=example_inputs, force=force, **run_kwargs)
        if report.verdict != "pass":
            raise AssertionError(describe_failures(report))
        return report

    if out is not None:  # the caller's folder: replaced only if modelport wrote it, as on the command line
        return go(Path(out), force=False)
    with tempfile.TemporaryDirectory(prefix="modelport-test-") as tmp:
        return go(Path(tmp) / "artifacts", force=True)


def assert_matches_golden(
    model: torch.nn.Module, folder: str | Path, *, atol: float = 1e-6, rtol: float = 1e-5
) -> None:
    """Run ``model`` (eval mode) on every golden input set of an artifact folder; assert its outputs match.

    For a release check: the model you are about to ship must compute what the folder's
    golden data says, within ``atol``/``rtol`` (float32 eager on another machine may differ
    in the last bits).
    """
    root = Path(folder)
    manifest = read_manifest(root)
    if manifest.golden is None:
        raise AssertionError(f"{root} holds no golden data")
    signature = manifest.signature
    tol = Tolerance(atol=atol, rtol=rtol, source="assert_matches_golden")
    sets = [("example", manifest.golden.inputs, manifest.golden.outputs)]
    sets += [(s.name, s.inputs, s.outputs) for s in manifest.golden.sets]
    was_training = model.training
    model.eval()
    failures: list[OutputCheck] = []
    try:
        for name, inputs_path, outputs_path in sets:
            inputs = read_npz(root / inputs_path)
            args = {s.name: numpy_to_torch(inputs[s.name], s.dtype) for s in signature.inputs}
            with torch.inference_mode():
                out = model(**args) if signature.call == "keyword" else model(*args.values())
            # By name, as run names them: a reordered dict or an extra output is a difference.
            got: dict[str, np.ndarray] = {name: torch_to_numpy(t) for name, t in flatten_named(out)}
            checks = compare_outputs(read_npz(root / outputs_path), got, tol, input_set=name)
            failures += [c for c in checks if c.verdict == "fail"]
    finally:
        model.train(was_training)
    if failures:
        lines = [f"the model does not match the golden outputs of {root} [{tol.describe()}]:"]
        lines += [f"  {_line(c)}" for c in failures]
        raise AssertionError("\n".join(lines))

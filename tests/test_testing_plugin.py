"""The pytest plugin and modelport.testing, as a user's own test suite would use them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modelport.models import BUILTIN
from modelport.testing import assert_matches_golden, assert_parity

pytest_plugins = ["pytester"]

EXAMPLE_TEST = """
import torch
from modelport.models import BUILTIN


def _model(scale):
    model = BUILTIN["mlp"].build(0)[0]
    with torch.no_grad():
        model.output.weight.mul_(scale)
    return model.eval()


def test_the_release_model_matches(modelport_golden):
    modelport_golden(_model(1.0), r"{folder}")


def test_a_perturbed_model_is_caught(modelport_golden):
    modelport_golden(_model(1.001), r"{folder}")


def test_export_parity(modelport_parity):
    modelport_parity(_model(1.0), {{"x": torch.randn(2, 20)}}, formats="onnx,torch_export", samples=1)
"""


@pytest.mark.slow
def test_the_plugin_catches_a_perturbed_model(mlp_folder: Path, pytester: pytest.Pytester) -> None:
    # mlp_folder comes first: pytester unloads at teardown every module imported after it is set up,
    # and torch's extension modules cannot be imported twice in one process.
    pytester.makepyfile(test_example=EXAMPLE_TEST.format(folder=mlp_folder))
    # A subprocess: an in-process run would unload and re-import torch's extension modules.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*does not match the golden outputs*", "*example/output: * elements outside atol=1e-06 rtol=1e-05*"]
    )


def test_assert_parity_reports_every_failing_output(tmp_path: Path) -> None:
    model = BUILTIN["mlp"].build(0)[0].eval()
    with pytest.raises(AssertionError) as info:
        assert_parity(model, torch.randn(2, 20), formats="onnx", tol="onnx=0,0", samples=1, out=tmp_path / "a")
    message = str(info.value)
    assert "onnx@onnxruntime [exact]" in message and "example/output" in message and "max abs err" in message


def test_assert_parity_passes_and_returns_the_report() -> None:
    model = BUILTIN["mlp"].build(0)[0].eval()
    report = assert_parity(model, {"x": torch.randn(3, 20)}, formats="onnx", samples=0)
    assert report.verdict == "pass" and report.model.spec == "python:MLP"


def test_golden_check_passes_for_the_same_weights(mlp_folder: Path) -> None:
    assert_matches_golden(BUILTIN["mlp"].build(0)[0], mlp_folder)

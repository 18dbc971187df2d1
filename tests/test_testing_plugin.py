"""The pytest plugin and modelport.testing, as a user's own test suite would use them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import modelport
from modelport.models import BUILTIN
from modelport.testing import assert_matches_golden, assert_parity

pytest_plugins = ["pytester"]

EXAMPLE_TEST = """
import torch
import modelport
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


def test_golden_outputs_are_matched_by_name(tmp_path: Path) -> None:
    """A model whose dict outputs come back in another order still matches; an extra output does not."""
    from modelport.pipeline.run import run

    class Two(torch.nn.Module):
        def __init__(self, swap: bool = False, extra: bool = False) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)
            self.swap, self.extra = swap, extra

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            h = self.lin(x)
            out = {"probs": h.softmax(-1), "logits": h} if self.swap else {"logits": h, "probs": h.softmax(-1)}
            return {**out, "more": h * 2} if self.extra else out

    base = Two().eval()
    assert (
        run(base, example_inputs=torch.randn(2, 4), out=tmp_path / "two", formats="onnx", samples=0).verdict == "pass"
    )
    swapped = Two(swap=True).eval()
    swapped.load_state_dict(base.state_dict())
    assert_matches_golden(swapped, tmp_path / "two")
    extra = Two(extra=True).eval()
    extra.load_state_dict(base.state_dict())
    with pytest.raises(AssertionError, match="more"):
        assert_matches_golden(extra, tmp_path / "two")


def test_assert_parity_never_replaces_a_folder_it_did_not_write(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.txt").write_text("mine")
    with pytest.raises(modelport.UsageError, match="--force"):
        assert_parity(BUILTIN["mlp"].build(0)[0].eval(), torch.randn(2, 20), out=victim)
    assert (victim / "notes.txt").read_text() == "mine"

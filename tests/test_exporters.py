"""Conformance: every registered format exports, loads back *from disk* and runs.

A format registered without an entry in CONFORMANCE fails ``test_every_format_has_a_conformance_case``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from modelport import exporters
from modelport.errors import LoadError
from modelport.exporters import ExportRequest
from modelport.exporters.weights import load_weights_strict
from modelport.models import BUILTIN
from modelport.pipeline.build import build_model
from modelport.pipeline.tensor_io import first_difference, tensor_round_trips
from modelport.validators.compare import compare_outputs

# format -> (main file, a check of its container)
CONFORMANCE = {
    "state_dict": ("state_dict.pt", zipfile.is_zipfile),
    "safetensors": ("model.safetensors", lambda p: int.from_bytes(p.read_bytes()[:8], "little") > 0),
    "torchscript": ("model.torchscript.pt", zipfile.is_zipfile),
    "onnx": ("model.onnx", lambda p: __import__("onnx").load(str(p)).graph.node is not None),
    "torch_export": ("model.pt2", zipfile.is_zipfile),
    "onnx_optimized": ("model.optimized.onnx", lambda p: __import__("onnx").load(str(p)).graph.node is not None),
    "onnx_fp16": ("model.fp16.onnx", lambda p: _has_initializer_type(p, 10)),  # 10: FLOAT16
    "onnx_int8": ("model.int8.onnx", lambda p: _has_initializer_type(p, 3)),  # 3: INT8
}


def _has_initializer_type(path: Path, elem_type: int) -> bool:
    import onnx

    return any(t.data_type == elem_type for t in onnx.load(str(path)).graph.initializer)


def test_every_format_has_a_conformance_case() -> None:
    assert set(exporters.names()) == set(CONFORMANCE)


@pytest.fixture(scope="module")
def built():  # type: ignore[no-untyped-def]
    return build_model(BUILTIN["mlp"], seed=0)


@pytest.mark.parametrize("name", sorted(CONFORMANCE))
def test_export_then_load_from_disk_and_run(name: str, built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exporter = exporters.get(name)
    record = exporter.export(ExportRequest(built.model, built.inputs, built.signature, tmp_path))
    main_file, container_ok = CONFORMANCE[name]
    assert record.files[0] == main_file and record.format == name
    assert all((tmp_path / f).is_file() for f in record.files)
    assert container_ok(tmp_path / main_file)
    assert not list(tmp_path.glob(".*.part")), "temporary files must not be left behind"

    # A new process would have only the folder: load from it, not from the in-memory export.
    runner = exporter.load(tmp_path, record, built.signature, built.source.factory)
    try:
        outputs = runner.infer({"x": built.inputs["x"].numpy()})
    finally:
        runner.close()
    checks = compare_outputs(built.reference, outputs, exporter.tolerance, input_set="example")
    assert [c.verdict for c in checks] == ["pass"], checks


def test_registering_a_name_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="already registered"):
        exporters.register(exporters.get("onnx"))


def test_weights_that_do_not_fit_are_named(built) -> None:  # type: ignore[no-untyped-def]
    state = dict(built.model.state_dict())
    state["extra.weight"] = torch.zeros(1)
    del state["output.bias"]
    state["hidden.weight"] = torch.zeros(3, 3)
    state["output.weight"] = state["output.weight"].double()
    fresh = BUILTIN["mlp"].build(seed=1)[0]
    with pytest.raises(LoadError) as info:
        load_weights_strict(fresh, state, "weights.pt")
    message = str(info.value)
    for needle in (
        "missing keys output.bias",
        "unexpected keys extra.weight",
        "hidden.weight [3, 3] vs [256, 20]",
        "output.weight torch.float64 vs torch.float32",
    ):
        assert needle in message


def test_loading_weights_refuses_pickled_code(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A state_dict file that smuggles a callable must be refused by weights_only loading."""
    exporter = exporters.get("state_dict")
    record = exporter.export(ExportRequest(built.model, built.inputs, built.signature, tmp_path))
    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (sentinel,))

    torch.save({"hidden.weight": Payload()}, tmp_path / "state_dict.pt")
    with pytest.raises(LoadError, match="weights_only"):
        exporter.load(tmp_path, record, built.signature, built.source.factory)
    assert not sentinel.exists()


def test_chapter_tensor_round_trips_are_exact(tmp_path: Path) -> None:
    results = tensor_round_trips(tmp_path)
    assert set(results) == {"tensor", "list", "dict"}
    assert all(r["exact"] and r["bytes"] > 0 for r in results.values())


@pytest.mark.parametrize(
    ("saved", "loaded", "needle"),
    [
        (torch.arange(4), torch.arange(4).float(), "dtype"),
        (torch.arange(4), torch.arange(5), "shape"),
        (torch.arange(4), torch.arange(4) + 1, "values"),
        ([torch.zeros(1)], (torch.zeros(1),), "list"),
        ({"x": torch.zeros(1)}, {"y": torch.zeros(1)}, "keys"),
        ([torch.zeros(1), torch.zeros(2)], [torch.zeros(1)], "items"),
    ],
)
def test_round_trip_checker_names_the_difference(saved, loaded, needle: str) -> None:  # type: ignore[no-untyped-def]
    diff = first_difference(saved, loaded)
    assert diff is not None and needle in diff


def test_reference_is_the_eval_mode_output(built) -> None:  # type: ignore[no-untyped-def]
    with torch.inference_mode():
        expected = built.model(built.inputs["x"]).numpy()
    assert not built.model.training
    np.testing.assert_array_equal(built.reference["output"], expected)


LOSSY = {"onnx_fp16", "onnx_int8"}


@pytest.mark.parametrize("layer", ["hidden", "output"])
@pytest.mark.parametrize("name", sorted(set(CONFORMANCE) - LOSSY))
def test_default_tolerance_catches_one_layer_scaled_by_1_001(built, layer: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """Each documented default is tight enough that a 0.1% change in one layer's weights fails."""
    perturbed = BUILTIN["mlp"].build(seed=0)[0]
    perturbed.load_state_dict(built.model.state_dict())
    perturbed.eval()
    with torch.no_grad():
        getattr(perturbed, layer).weight.mul_(1.001)
        out = perturbed(built.inputs["x"]).numpy()
    checks = compare_outputs(built.reference, {"output": out}, exporters.get(name).tolerance, input_set="example")
    assert [c.verdict for c in checks] == ["fail"]


@pytest.mark.parametrize("layer", ["hidden", "output"])
@pytest.mark.parametrize("name", sorted(LOSSY))
def test_lossy_tolerance_still_catches_wrong_weights(built, layer: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """fp16/int8 tolerances are loose, but one layer with other weights (a wrong checkpoint) still fails."""
    wrong = BUILTIN["mlp"].build(seed=0)[0]
    wrong.load_state_dict(built.model.state_dict())
    wrong.eval()
    with torch.no_grad():
        torch.manual_seed(123)
        getattr(wrong, layer).reset_parameters()
        out = wrong(built.inputs["x"]).numpy()
    checks = compare_outputs(built.reference, {"output": out}, exporters.get(name).tolerance, input_set="example")
    assert [c.verdict for c in checks] == ["fail"]

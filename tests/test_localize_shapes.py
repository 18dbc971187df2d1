"""Localisation on the model shapes that trip a naive mapping (found by review): wrapped exports, a module
that owns a submodule called ``model``, shared modules, in-place residuals, fused derived graphs, .pt2."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest
import torch
from conftest import rehash
from onnx import numpy_helper

import modelport

MODELS = Path(__file__).with_name("localize_models.py")


def _folder(tmp_path: Path, factory: str, formats: str, **options: object) -> tuple[str, Path]:
    spec = f"{MODELS}:{factory}"
    folder = tmp_path / factory
    assert modelport.run(spec, out=folder, formats=formats, samples=1, **options).verdict == "pass"  # type: ignore[arg-type]
    return spec, folder


def _onnx_add(folder: Path, name: str, delta: float, file: str = "model.onnx") -> None:
    model = onnx.load(folder / file)
    init = next(i for i in model.graph.initializer if i.name == name)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + np_float(delta), name))
    onnx.save(model, folder / file)
    rehash(folder, file)


def np_float(delta: float) -> object:
    import numpy as np

    return np.float32(delta)


def _loc(report: modelport.VerifyReport, candidate: str) -> object:
    result = next(c for c in report.candidates if c.candidate == candidate)
    assert result.verdict == "fail" and result.localization is not None, result
    return result.localization


def test_a_keyword_model_owning_a_submodule_called_model(tmp_path: Path) -> None:
    spec, folder = _folder(tmp_path, "keyword_model", "onnx,torchscript")
    # Both artifacts hold the model itself, not FlatModel around it (keyword inputs are passed as such), so
    # "model.fc" is the inner module's and "fc" the culprit: each artifact's own names say which it is.
    names = {i.name for i in onnx.load(folder / "model.onnx").graph.initializer}
    assert {"fc.weight", "model.fc.weight"} <= names
    _onnx_add(folder, "fc.weight", 0.05)
    ts = torch.jit.load(str(folder / "model.torchscript.pt"))
    with torch.no_grad():
        ts.fc.weight += 0.05
    ts.save(str(folder / "model.torchscript.pt"))
    rehash(folder, "model.torchscript.pt")
    report = modelport.verify(folder, model=spec, trust=True)
    for candidate in ("onnx@onnxruntime", "torchscript@torchscript"):
        loc = _loc(report, candidate)
        assert (loc.first, loc.blamed) == ("fc", "fc"), (candidate, loc.summary)  # type: ignore[attr-defined]


def test_wrapped_pt2_is_localized_through_its_submodules(tmp_path: Path) -> None:
    spec, folder = _folder(tmp_path, "dict_out", "torch_export")
    program = torch.export.load(str(folder / "model.pt2"))
    with torch.no_grad():
        program.state_dict["model.fc2.weight"] += 0.05
    torch.export.save(program, str(folder / "model.pt2"))
    rehash(folder, "model.pt2")
    loc = _loc(modelport.verify(folder, model=spec, trust=True), "torch_export@torch")
    assert (loc.first, loc.blamed) == ("fc2", "fc2"), loc.summary  # type: ignore[attr-defined]


def test_a_module_called_twice_is_compared_on_its_first_call(tmp_path: Path) -> None:
    spec, folder = _folder(tmp_path, "shared", "onnx")
    _onnx_add(folder, "fc.bias", 0.05)
    loc = _loc(modelport.verify(folder, model=spec), "onnx@onnxruntime")
    assert (loc.first, loc.blamed) == ("fc", "fc"), loc.summary  # type: ignore[attr-defined]


def test_an_in_place_residual_does_not_blame_its_block(tmp_path: Path) -> None:
    spec, folder = _folder(tmp_path, "inplace_res", "onnx")
    model = onnx.load(folder / "model.onnx")
    next(n for n in model.graph.node if n.op_type == "Sigmoid").op_type = "Tanh"  # the root's own operation
    onnx.save(model, folder / "model.onnx")
    rehash(folder, "model.onnx")
    loc = _loc(modelport.verify(folder, model=spec), "onnx@onnxruntime")
    assert loc.blamed is None and "outside every named module" in loc.summary, loc.summary  # type: ignore[attr-defined]


def test_a_fused_derived_graph_never_blames_the_layer_whose_bias_it_moved(tmp_path: Path) -> None:
    spec, folder = _folder(tmp_path, "tiny_transformer", "onnx,onnx_optimized")
    clean = modelport.verify(folder, model=spec, localize_all=True)
    for result in clean.candidates:
        assert result.localization is not None and result.localization.status == "no-divergence", result.localization
        assert result.localization.notes == [] or all(
            "leaves the tolerance" not in n for n in result.localization.notes
        )
    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged)
    _onnx_add(damaged, "blocks.1.attn.proj.bias", 0.5, "model.optimized.onnx")
    loc = _loc(modelport.verify(damaged, model=spec), "onnx_optimized@onnxruntime")
    assert loc.first == "blocks.1.attn.proj", loc.summary  # type: ignore[attr-defined]


@pytest.mark.parametrize("exporter", ["legacy"])
def test_legacy_graphs_measure_a_modules_own_error(tmp_path: Path, exporter: str) -> None:
    spec, folder = _folder(tmp_path, "tiny_transformer", "onnx", onnx_exporter=exporter)
    model = onnx.load(folder / "model.onnx")
    add = next(n for n in model.graph.node if n.name.startswith("/blocks.1/mlp/fc2/") and n.op_type == "Add")
    bias = next(v for v in add.input if any(i.name == v for i in model.graph.initializer))
    _onnx_add(folder, bias, 0.05)
    loc = _loc(modelport.verify(folder, model=spec), "onnx@onnxruntime")
    assert (loc.first, loc.blamed) == ("blocks.1.mlp.fc2", "blocks.1.mlp.fc2"), loc.summary  # type: ignore[attr-defined]

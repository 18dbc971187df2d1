"""Localisation: the report names the first module whose output leaves the tolerance, by its dotted path.

Artifacts are damaged the way a broken exporter would damage them (a weight off, an operator swapped) and
re-hashed, so that verify loads them and finds the parity failure; ``verify --model`` then localises.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from conftest import rehash
from onnx import numpy_helper

import modelport
from modelport.localize.judge import pair_by_shape
from modelport.localize.onnx_scopes import node_module
from modelport.pipeline.ci_outputs import junit_xml

MODELS = Path(__file__).with_name("localize_models.py")
TRANSFORMER = f"{MODELS}:tiny_transformer"
CHAPTER = f"{MODELS}:chapter_mlp"


@pytest.fixture(scope="module")
def transformer_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loc") / "tt"
    report = modelport.run(TRANSFORMER, out=folder, formats="onnx,torchscript,safetensors")
    assert report.verdict == "pass"
    return folder


@pytest.fixture(scope="module")
def chapter_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loc") / "chapter"
    assert modelport.run(CHAPTER, out=folder, formats="onnx,safetensors").verdict == "pass"
    return folder


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    return target


def _perturb_onnx(folder: Path, name: str) -> None:
    model = onnx.load(folder / "model.onnx")
    init = next(i for i in model.graph.initializer if i.name == name)
    array = numpy_helper.to_array(init).copy()
    array[..., 0] += 0.05  # one column of one layer's weight: a wrong value where the exporter wrote it
    init.CopyFrom(numpy_helper.from_array(array, name))
    onnx.save(model, folder / "model.onnx")
    rehash(folder, "model.onnx")


def _perturb_torchscript(folder: Path, name: str) -> None:
    path = folder / "model.torchscript.pt"
    module = torch.jit.load(str(path))
    with torch.no_grad():
        dict(module.named_parameters())[name][..., 0] += 0.05
    module.save(str(path))
    rehash(folder, "model.torchscript.pt")


def _located(report: Any, candidate: str) -> Any:
    result = next(c for c in report.candidates if c.candidate == candidate)
    assert result.verdict == "fail"
    assert result.localization is not None, f"{candidate} was not localised"
    return result.localization


def _earlier_pass(loc: Any) -> None:
    """Every module before the first diverging one stays within tolerance where it was compared."""
    before = [e for e in loc.modules if e.order < next(m.order for m in loc.modules if m.module == loc.first)]
    assert before, "the modules before the first one are reported with their figures"
    for entry in before:
        check = entry.chained or entry.own
        assert entry.unmapped or (check is not None and check.verdict == "pass"), entry


def test_mlp_second_layer_in_onnx_and_torchscript(artifact_copy: Path) -> None:
    _perturb_onnx(artifact_copy, "output.weight")
    _perturb_torchscript(artifact_copy, "output.weight")
    report = modelport.verify(artifact_copy, model="mlp", trust=True)
    for candidate in ("onnx@onnxruntime", "torchscript@torchscript"):
        loc = _located(report, candidate)
        assert (loc.status, loc.first, loc.blamed) == ("localized", "output", "output"), loc.summary
        _earlier_pass(loc)
        first = next(e for e in loc.modules if e.module == "output")
        assert (first.chained or first.own).max_abs_err > 0.01  # type: ignore[union-attr]
    onnx_loc = _located(report, "onnx@onnxruntime")
    assert next(e for e in onnx_loc.modules if e.module == "hidden").chained.verdict == "pass"  # type: ignore[union-attr]
    # The JSON report and the JUnit failure message carry it too.
    data = json.loads(report.model_dump_json())
    firsts = {c["candidate"]: (c["localization"] or {}).get("first") for c in data["candidates"]}
    assert firsts["onnx@onnxruntime"] == "output"
    assert "[output]" in junit_xml(report).decode()


def test_transformer_block_weight_in_onnx_and_torchscript(transformer_folder: Path, tmp_path: Path) -> None:
    folder = _copy(transformer_folder, tmp_path)
    _perturb_onnx(folder, "blocks.1.mlp.fc2.bias")  # its weight is folded into a transposed constant
    _perturb_torchscript(folder, "blocks.1.mlp.fc2.bias")
    report = modelport.verify(folder, model=TRANSFORMER, trust=True)
    for candidate in ("onnx@onnxruntime", "torchscript@torchscript"):
        loc = _located(report, candidate)
        assert (loc.first, loc.blamed) == ("blocks.1.mlp.fc2", "blocks.1.mlp.fc2"), loc.summary
        _earlier_pass(loc)
    onnx_loc = _located(report, "onnx@onnxruntime")
    # One onnxruntime pass compared every block's modules, in execution order, up to the first failing one.
    compared = [e.module for e in onnx_loc.modules if e.chained is not None]
    assert compared[:3] == ["embed", "blocks.0.ln1", "blocks.0.attn.qkv"]
    assert "blocks.1.mlp" in compared and "blocks.1.attn.proj" in compared
    # The weights file was not damaged: it passes, and is not localised.
    assert next(c for c in report.candidates if c.format == "safetensors").localization is None


def _swap_operator(folder: Path, old: str, new: str) -> None:
    model = onnx.load(folder / "model.onnx")
    node = next(n for n in model.graph.node if n.op_type == old)
    node.op_type = new
    onnx.save(model, folder / "model.onnx")
    rehash(folder, "model.onnx")


def test_swapped_activation_module_is_named(chapter_folder: Path, tmp_path: Path) -> None:
    folder = _copy(chapter_folder, tmp_path)
    _swap_operator(folder, "Relu", "Sigmoid")
    loc = _located(modelport.verify(folder, model=CHAPTER), "onnx@onnxruntime")
    assert (loc.first, loc.blamed) == ("1", "1"), loc.summary
    assert next(e for e in loc.modules if e.module == "0").chained.verdict == "pass"  # type: ignore[union-attr]


def test_swapped_operator_outside_modules_is_named_as_such(artifact_copy: Path) -> None:
    """The built-in MLP calls relu as a function: the first module out is the next Linear, which is right alone."""
    _swap_operator(artifact_copy, "Relu", "Sigmoid")
    loc = _located(modelport.verify(artifact_copy, model="mlp", runtimes="onnxruntime"), "onnx@onnxruntime")
    assert (loc.first, loc.blamed) == ("output", None)
    own = next(e for e in loc.modules if e.module == "output").own
    assert own is not None and own.verdict == "pass"
    assert "outside every named module" in loc.summary and "Relu" not in loc.summary and "Sigmoid" in loc.summary


def test_run_localizes_a_trace_that_baked_a_branch(tmp_path: Path) -> None:
    spec = f"{MODELS}:branchy"
    report = modelport.run(spec, out=tmp_path / "on", formats="torchscript")
    loc = _located(report, "torchscript@torchscript")
    assert (loc.first, loc.blamed) == ("gate", "gate")
    # Every human report shows it: report.md and report.html name the module in their own section.
    markdown = (tmp_path / "on" / "report.md").read_text()
    assert (
        "## Where it diverged" in markdown
        and f"| torchscript@torchscript | {loc.input_set} | gate | Gate |" in markdown
    )
    html = (tmp_path / "on" / "report.html").read_text()
    assert '<section id="localized">' in html and "first diverging module: gate (Gate)" in html
    off = modelport.run(spec, out=tmp_path / "off", formats="torchscript", localize=False)
    assert off.verdict == "fail" and all(c.localization is None for c in off.candidates)
    assert next(s for s in off.stages if s.name == "localize").reason == "not requested (--no-localize)"


def test_localize_command_on_a_clean_folder(cli, mlp_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("localize", str(mlp_folder), "--model", "mlp", "--json", str(tmp_path / "loc.json"))
    code, text = result.code, result.out + result.err
    assert code == 0, text
    found = json.loads((tmp_path / "loc.json").read_text())["localizations"]
    assert found and {f["status"] for f in found} == {"no-divergence"}
    assert "no divergence" in text


def test_localize_without_model_code_refuses(cli, mlp_folder: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("localize", str(mlp_folder))
    code, text = result.code, result.out + result.err
    assert code == 2 and "--model SPEC" in text and "never imported" in text


def test_localize_command_names_the_module(cli, artifact_copy: Path) -> None:  # type: ignore[no-untyped-def]
    _perturb_onnx(artifact_copy, "hidden.weight")
    result = cli("localize", str(artifact_copy), "--model", "mlp", "--runtimes", "onnxruntime")
    code, text = result.code, result.out + result.err
    assert code == 1
    assert "onnx@onnxruntime: localized: first diverging module: hidden (Linear)" in text


def test_pairing_by_shape_never_guesses() -> None:
    a, b = np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)
    pairs, why = pair_by_shape([a], [("v1", a), ("v2", b)])
    assert pairs == [] and why is not None and "2 values of shape [2, 3]" in why
    pairs, why = pair_by_shape([a], [("v1", b), ("i", np.zeros((2, 3), np.int64))])
    assert why is None and pairs[0][1] is b


def test_node_module_reads_both_exporters() -> None:
    legacy = onnx.helper.make_node("Gemm", ["a", "b"], ["c"], name="/encoder/layers.1/fc2/Gemm")
    assert node_module(legacy) == "encoder.layers.1.fc2"
    dynamo = onnx.helper.make_node("Gemm", ["a", "b"], ["c"], name="node_linear_3")
    dynamo.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'encoder', 'layers.1', 'fc2', 'linear_3']")
    assert node_module(dynamo) == "encoder.layers.1.fc2"
    assert node_module(onnx.helper.make_node("Relu", ["a"], ["b"], name="node_relu")) is None


@pytest.mark.runtimes
def test_a_node_failure_is_localized_through_onnxruntime_on_the_same_file(artifact_copy: Path) -> None:
    from runtime_harness import available_or_skip

    available_or_skip("node")
    _perturb_onnx(artifact_copy, "hidden.bias")
    loc = _located(modelport.verify(artifact_copy, model="mlp", runtimes="node"), "onnx@node")
    assert (loc.first, loc.blamed) == ("hidden", "hidden"), loc.summary
    assert loc.via.startswith("onnxruntime on model.onnx")
    assert "node ran the file; localised through onnxruntime on the same file" in loc.notes


@pytest.fixture(scope="module")
def derived_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loc") / "derived"
    assert modelport.run(out=folder, formats="onnx,onnx_optimized,onnx_int8", samples=1).verdict == "pass"
    return folder


def _swap_in(folder: Path, name: str, old: str, new: str) -> None:
    model = onnx.load(folder / name)
    next(n for n in model.graph.node if n.op_type == old).op_type = new
    onnx.save(model, folder / name)
    rehash(folder, name)


def test_derived_graphs_map_by_the_base_graphs_names_or_say_unmapped(derived_folder: Path, tmp_path: Path) -> None:
    folder = _copy(derived_folder, tmp_path)
    # The quantizer names what it puts in a node's place after it (node_linear_1_MatMul_quant): mapped.
    _swap_in(folder, "model.int8.onnx", "Relu", "Sigmoid")
    # The optimizer fused hidden's Gemm with the relu after it (FusedGemm "fused node_linear"): not a module's own.
    optimized = onnx.load(folder / "model.optimized.onnx")
    bias = next(n for n in optimized.graph.node if n.op_type == "Gemm").input[2]
    init = next(i for i in optimized.graph.initializer if i.name == bias)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 0.05, bias))
    onnx.save(optimized, folder / "model.optimized.onnx")
    rehash(folder, "model.optimized.onnx")
    report = modelport.verify(folder, model="mlp", runtimes="onnxruntime")
    int8 = _located(report, "onnx_int8@onnxruntime")
    assert (int8.status, int8.first, int8.blamed) == ("first-only", "output", None), int8.summary
    assert "could not be run alone" in int8.summary  # the quantizer feeds it quantized values, not the relu's
    optimized = next(c for c in report.candidates if c.format == "onnx_optimized")
    loc = optimized.localization
    assert loc is not None and (loc.first, loc.blamed) == ("output", "output"), loc.summary
    assert any(u.startswith("hidden: ") for u in loc.unmapped), loc.unmapped


def test_the_onnxruntime_runner_gives_extra_outputs_on_request(mlp_folder: Path) -> None:
    """The runtime layer's runner, not a copy of it: intermediate values by name, the outputs unchanged."""
    from modelport.pipeline.manifest import read_manifest
    from modelport.runtimes.ort_runner import OrtRunner

    signature = read_manifest(mlp_folder).signature
    x = {"x": np.random.default_rng(0).standard_normal((3, 20)).astype(np.float32)}
    plain = OrtRunner("onnx", mlp_folder / "model.onnx", signature)
    extra = OrtRunner("onnx", mlp_folder / "model.onnx", signature, extra_outputs=["linear", "relu", "output"])
    try:
        values = extra.infer_values(x)
        assert extra.extra == ["linear", "relu"]  # a value already among the outputs is not listed twice
        assert np.array_equal(values["output"], plain.infer(x)["output"])
        assert np.array_equal(values["relu"], np.maximum(values["linear"], 0))
        assert extra.infer(x).keys() == {"output"}
    finally:
        plain.close()
        extra.close()

"""Conformance: every registered format exports, loads back *from disk* and runs.

A format registered without an entry in CONFORMANCE fails ``test_every_format_has_a_conformance_case``.
"""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from modelport import exporters
from modelport.errors import LoadError
from modelport.exporters import ExportRequest
from modelport.exporters.weights import load_weights_strict
from modelport.loaders import Untrusted, granted
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

    # A program format loads only from a folder the command trusts (``code`` says which formats
    # are programs); any other format loads with no grant at all.
    trust = contextlib.nullcontext()
    if exporter.code:
        with pytest.raises(Untrusted, match="runs code when loaded"):
            exporter.load(tmp_path, record, built.signature, built.source.factory)
        trust = granted(tmp_path, "the test wrote it")
    # A new process would have only the folder: load from it, not from the in-memory export.
    with trust:
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


# --- graphs onnxruntime wrote: its own operators are known, anything else is not ------------------


class _RMSNorm(torch.nn.Module):
    """T5's layer norm: no mean subtracted, no bias (onnxruntime fuses it into SimplifiedLayerNormalization)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(1 + 0.1 * torch.randn(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


def _norm_model(norm: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), norm, torch.nn.GELU(), torch.nn.Linear(32, 4)).eval()


@pytest.fixture(scope="module")
def fused_graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Optimized graphs holding onnxruntime's own operators, from the legacy exporter (which spells norms out)."""
    import modelport

    x = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    folders = {}
    for name, norm, opset in (("rms", _RMSNorm(32), None), ("layernorm14", torch.nn.LayerNorm(32), 14)):
        folder = tmp_path_factory.mktemp("fused") / name
        report = modelport.run(
            _norm_model(norm), example_inputs=x, out=folder, formats="onnx,onnx_optimized,onnx_fp16,onnx_int8",
            onnx_exporter="legacy", opset=opset, samples=1,
        )  # fmt: skip
        assert report.verdict == "pass", [(c.candidate, c.reason) for c in report.candidates]
        folders[name] = folder
    return folders


@pytest.mark.parametrize(
    ("name", "ops"),
    [
        ("rms", {("", "SimplifiedLayerNormalization")}),
        # ONNX defines LayerNormalization from opset 17 only; below it is onnxruntime's own, in the default domain.
        ("layernorm14", {("", "LayerNormalization"), ("com.microsoft", "Gelu")}),
    ],
)
def test_an_optimized_graph_with_onnxruntimes_own_operators_passes(
    fused_graphs: dict[str, Path], name: str, ops: set[tuple[str, str]]
) -> None:
    import onnx

    import modelport

    path = fused_graphs[name] / "model.optimized.onnx"
    model = onnx.load(str(path))
    assert ops <= {(n.domain, n.op_type) for n in model.graph.node}
    with pytest.raises(onnx.checker.ValidationError):  # what used to fail this correct file
        onnx.checker.check_model(model)
    assert modelport.verify(fused_graphs[name]).verdict == "pass"


def _with_node(path: Path, node: object, opset: tuple[str, int] | None = None) -> object:
    """A copy of the graph with ``node`` reading the first graph input and feeding the first graph output."""
    import onnx

    model = onnx.load(str(path))
    assert isinstance(node, onnx.NodeProto)
    first = model.graph.node[0]
    node.input[:] = [model.graph.input[0].name, *node.input]
    node.output[:] = ["injected"]
    first.input[0] = "injected"  # the rest of the graph now depends on it
    model.graph.node.insert(0, node)
    if opset is not None:
        model.opset_import.append(onnx.helper.make_opsetid(*opset))
    return model


@pytest.mark.parametrize(
    ("node", "opset", "needle"),
    [
        (("Frobnicate", ""), None, "no operator Frobnicate in the default domain"),
        (("Frobnicate", "com.microsoft"), None, "no operator Frobnicate in domain 'com.microsoft'"),
        (("Frobnicate", "org.bogus"), ("org.bogus", 1), "no operator Frobnicate in domain 'org.bogus'"),
        (("Gelu", "org.bogus"), None, "its domain 'org.bogus' is not in the model's opset imports"),
        (("FusedMatMul", "com.microsoft"), None, "1 inputs, its schema takes 2 to 2"),  # a known op, misused
        (("Affine", ""), None, "onnxruntime's Affine is deprecated at opset"),  # removed from ONNX at opset 10
        # onnxruntime's NHWC GridSample exists from version 16 of its domain: not at version 1.
        (("GridSample", "com.ms.internal.nhwc"), ("com.ms.internal.nhwc", 1), "GridSample in domain"),
        (("Relu", ""), None, None),  # a standard op, used right: the control
    ],
    ids=[
        "default-domain",
        "com.microsoft",
        "bogus-domain",
        "not-imported",
        "contrib-arity",
        "deprecated",
        "too-old",
        "control",
    ],
)
def test_an_operator_neither_onnx_nor_onnxruntime_knows_is_rejected(
    fused_graphs: dict[str, Path], node: tuple[str, str], opset: tuple[str, int] | None, needle: str | None
) -> None:
    import onnx

    from modelport.errors import ExportError
    from modelport.exporters.onnx_check import check_onnx_file, graph_problems

    source = fused_graphs["rms"] / "model.optimized.onnx"
    model = _with_node(source, onnx.helper.make_node(node[0], [], [], domain=node[1], name="injected"), opset)
    problems = graph_problems(model)  # type: ignore[arg-type]
    if needle is None:
        assert problems == []
        return
    assert len(problems) == 1 and needle in problems[0] and "'injected'" in problems[0], problems
    path = source.parent.parent / f"injected-{node[0]}.onnx"
    onnx.save(model, str(path))  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="failed the graph check"):
        check_onnx_file(path)


def test_a_standard_operator_misused_is_rejected_by_onnx_rules(fused_graphs: dict[str, Path]) -> None:
    import onnx

    from modelport.exporters.onnx_check import graph_problems

    model = onnx.load(str(fused_graphs["layernorm14"] / "model.optimized.onnx"))
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    gemm.attribute.append(onnx.helper.make_attribute("frob", 1))
    (problem,) = graph_problems(model)
    assert "Gemm" in problem and "frob" in problem


@pytest.mark.parametrize("fault", ["undefined", "twice", "output", "order"])
def test_a_broken_graph_structure_is_rejected(fused_graphs: dict[str, Path], fault: str) -> None:
    import onnx

    from modelport.exporters.onnx_check import graph_problems

    model = onnx.load(str(fused_graphs["rms"] / "model.optimized.onnx"))
    nodes = model.graph.node
    assert graph_problems(model) == []
    if fault == "undefined":
        nodes[1].input[0] = "nowhere"
        needle = "reads 'nowhere'"
    elif fault == "twice":
        nodes[1].output[0] = nodes[0].output[0]
        needle = "is produced more than once"
    elif fault == "output":
        model.graph.output[0].name = "never_made"
        needle = "graph output 'never_made' is produced by no node"
    else:
        first = onnx.NodeProto()
        first.CopyFrom(nodes[0])
        nodes[0].CopyFrom(nodes[1])  # the second node now runs before the one it reads from
        nodes[1].CopyFrom(first)
        needle = "before any input, initializer or node gives it"
    problems = graph_problems(model)
    assert problems and any(needle in p for p in problems), problems


@pytest.mark.parametrize("op", ["Gelu", "Frobnicate"])
def test_subgraphs_are_checked_with_the_names_they_see(op: str) -> None:
    """An If's branches read the outer graph's values; an operator inside a branch is checked like any other."""
    import onnx
    from onnx import TensorProto, helper

    from modelport.exporters.onnx_check import graph_problems

    def branch(name: str, node: onnx.NodeProto) -> onnx.GraphProto:
        return helper.make_graph(
            [node], name, [], [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)]
        )

    then = branch("then", helper.make_node(op, ["x"], ["t"], domain="com.microsoft"))
    other = branch("else", helper.make_node("Neg", ["x"], ["e"]))
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
        "g",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    problems = graph_problems(model)
    if op == "Gelu":
        assert problems == []
        other.node[0].input[0] = "unseen"  # a name no scope gives
        model.graph.node[0].attribute[1].g.CopyFrom(other)
        assert graph_problems(model) == [
            "subgraph 'else': a Neg node reads 'unseen' before any input, initializer or node gives it"
        ]
    else:
        assert problems == [
            "subgraph 'then': a com.microsoft::Frobnicate node: no operator Frobnicate in domain 'com.microsoft' "
            "at opset 1, in onnx or in onnxruntime"
        ]


# --- the int8 size note names the ops that kept their weights in float ---------------------------


class _LSTMClassifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(100, 32)
        self.lstm = torch.nn.LSTM(32, 64, batch_first=True)
        self.head = torch.nn.Linear(64, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.emb(ids))
        return self.head(h[:, -1])


def _int8_record(model: object, tmp_path: Path, **kwargs: object) -> tuple[list[str], dict[str, object]]:
    import modelport

    report = modelport.run(model, out=tmp_path / "int8", formats="onnx_int8", samples=0, **kwargs)  # type: ignore[arg-type]
    assert report.verdict == "pass", [(c.candidate, c.reason) for c in report.candidates]
    stage = next(s for s in report.stages if s.name == "onnx_int8")
    return stage.notes, dict(report.formats["onnx_int8"].details)


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_the_int8_note_names_an_lstm_not_convolutions(tmp_path: Path, exporter: str) -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, 100, (2, 7), generator=torch.Generator().manual_seed(0))
    notes, details = _int8_record(_LSTMClassifier().eval(), tmp_path, example_inputs=ids, onnx_exporter=exporter)
    # LSTM: 4*64*(32+64) weights + 8*64 biases; the embedding 100*32; the head's 64*3 became int8.
    lstm, emb = 4 * 64 * (32 + 64 + 2) * 4, 100 * 32 * 4
    total = lstm + emb + 64 * 3 + 3 * 4 + 8  # + the head's bias, scale and zero point (about)
    (note,) = [n for n in notes if "of the float32 size" in n]
    assert f"LSTM x1 ({lstm / total:.0%} of the weights), Gather x1 ({emb / total:.0%})" in note, note
    assert "convolution" not in note and "embeddings" not in note
    assert str(details["float_weight_ops"]).startswith(f"LSTM x1 ({lstm / total:.0%}), Gather x1")


def test_the_int8_note_names_the_convolutions_of_a_cnn(tmp_path: Path) -> None:
    notes, details = _int8_record("tests/zoo.py:cnn", tmp_path)
    (note,) = [n for n in notes if "of the float32 size" in n]
    assert "these ops keep theirs in float: Conv x2 (" in note and "LSTM" not in note, note
    assert str(details["float_weight_ops"]).startswith("Conv x2")


def test_the_int8_note_of_a_quantized_model_says_its_weights_are_int8(tmp_path: Path) -> None:
    """A tiny MLP's int8 file stays near the float32 size because of its graph, not because weights stayed float."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)).eval()
    notes, _ = _int8_record(model, tmp_path, example_inputs=torch.randn(2, 16), onnx_exporter="legacy")
    (note,) = [n for n in notes if "of the float32 size" in n]
    assert "of the weights are int8" in note and "keep theirs in float" not in note, note

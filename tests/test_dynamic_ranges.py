"""Dynamic axes end to end: ranges in --dynamic, the shape probe that narrows them as torch.export suggests,
RNN sequence axes that stay dynamic in every graph format, and outputs that are not tensors."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import onnx
import pytest
import shape_models  # tests/ is on sys.path under pytest
import torch

import modelport
from modelport.errors import UsageError
from modelport.exporters.base import ExportOptions, ExportRequest
from modelport.exporters.onnx_format import OnnxExporter, _why_fixed
from modelport.exporters.shapes import Fix, narrow, parse_fixes, probe_shapes, torch_message
from modelport.pipeline.inputs import ValueRule, sweep_sets
from modelport.signature import DimRange, Signature, TensorSpec
from modelport.specs import Bounds, format_dynamic, parse_dynamic_spec

SPEC = "tests/shape_models.py"
GRAPH_FORMATS = ["torchscript", "torch_export", "onnx", "onnx_optimized"]


def _run(name: str, tmp_path: Path, **kwargs: Any) -> modelport.Report:
    kwargs.setdefault("samples", 0)  # the example and the sweep are what these tests are about
    return modelport.run(f"{SPEC}:{name}", out=tmp_path / name, **kwargs)


def _verdicts(report: modelport.Report) -> dict[str, str]:
    return {c.format: c.verdict for c in report.candidates}


def _onnx_input_dims(path: Path) -> list[list[int | str]]:
    graph = onnx.load(str(path), load_external_data=False).graph
    return [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input]


def _stage(report: modelport.Report, name: str) -> Any:
    return next(s for s in report.stages if s.name == name)


# --dynamic ranges: the parser


@pytest.mark.parametrize(
    ("text", "bounds"),
    [
        ("input_ids:1=seq<=512", Bounds(None, 512)),
        ("x:1=seq>=2", Bounds(2, None)),
        ("x:1=2<=seq<=512", Bounds(2, 512)),
        ("x:1 = 2 <= seq <= 512", Bounds(2, 512)),
    ],
)
def test_a_label_takes_a_range(text: str, bounds: Bounds) -> None:
    spec = parse_dynamic_spec([text])
    assert list(spec.axes.values()) == [{1: "seq"}]
    assert spec.bounds == {"seq": bounds}
    assert parse_dynamic_spec(format_dynamic(spec.axes, spec.bounds)) == spec  # what --check-determinism replays


def test_inputs_sharing_a_label_share_its_range() -> None:
    spec = parse_dynamic_spec(["input_ids:1=seq<=512,attention_mask:1=seq", "attention_mask:1=2<=seq"])
    assert spec.axes == {"input_ids": {1: "seq"}, "attention_mask": {1: "seq"}}
    assert spec.bounds == {"seq": Bounds(2, 512)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x:1=seq<512", "is not a label with an optional range"),
        ("x:1=seq<=", "is not a label with an optional range"),
        ("x:1=9<=seq<=3", "minimum 9 is above its maximum 3"),
        ("x:1=2<=seq>=3", "gives seq's minimum twice"),
        ("x:1=seq<=0", "maximum must be at least 1"),
        ("x:1=0<=seq", "minimum must be at least 1"),
        ("a:1=seq<=4,b:1=seq<=5", "gives seq the maximum 4 and 5"),
        ("a:1=seq>=4,b:1=seq<=3", "minimum 4 is above its maximum 3"),
    ],
)
def test_a_bad_range_is_a_usage_error(text: str, message: str, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        parse_dynamic_spec([text])
    result = cli("run", "--model", f"{SPEC}:lstm", "--dynamic", text, "--out", str(tmp_path / "o"))
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1


def test_an_example_outside_the_declared_range_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--dynamic seq<=8: the example's x axis 1 has size 10, outside that range"):
        _run("lstm", tmp_path, dynamic="x:1=seq<=8", formats="onnx")
    assert not (tmp_path / "lstm").exists()


# RNN sequence axes: the ONNX graph keeps them dynamic, torch.export too


@pytest.mark.parametrize(("name", "formats"), [("lstm", GRAPH_FORMATS), ("gru_full", ["torch_export", "onnx"])])
def test_an_rnn_sequence_axis_stays_dynamic_in_every_graph_format(  # type: ignore[no-untyped-def]
    name: str, formats: list[str], tmp_path: Path, cli
) -> None:
    # torch_export runs before onnx, as by default: it used to leave torch's cached, unrolling
    # LSTM/GRU kernel in place, and the ONNX graph came out with seq fixed at 10.
    report = _run(name, tmp_path, dynamic="x:1=seq", formats=",".join(formats))
    assert _verdicts(report) == dict.fromkeys(formats, "pass"), [c.reason for c in report.candidates]
    assert _onnx_input_dims(tmp_path / name / "model.onnx") == [["batch", "seq", 8]]
    validate = _stage(report, "validate")
    assert {"seq_1", "seq_20", "batch_64"} <= set(validate.details["input_sets"])
    assert report.signature.dims["seq"] == DimRange(min=1, max=None, source="default")
    assert cli("verify", str(tmp_path / name), "--quiet").code == 0


def test_onnx_of_an_lstm_is_dynamic_after_any_earlier_torch_export(tmp_path: Path) -> None:
    # torch installs its while_loop LSTM decomposition without clearing the op's dispatch
    # cache; an export anywhere earlier in the process (here, a plain one) must not fix seq,
    # also when the onnx exporter runs on its own (no shape probe before it).
    model, x = shape_models.lstm()
    with pytest.raises(Exception, match="seq"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.export(model, (x,), dynamic_shapes=({1: torch.export.Dim("seq")},), strict=False)
    request = ExportRequest(model, {"x": x}, _lstm_signature(), tmp_path)
    record = OnnxExporter().export(request)
    assert _onnx_input_dims(tmp_path / record.files[0]) == [["batch", "seq", 8]]


def _lstm_signature() -> Signature:
    spec = TensorSpec(name="x", shape=["batch", "seq", 8], dtype="float32")
    return Signature(inputs=[spec], outputs=[TensorSpec(name="output", shape=["batch", 3], dtype="float32")])


def test_the_legacy_exporter_keeps_an_lstm_sequence_dynamic(tmp_path: Path) -> None:
    report = _run("lstm_full", tmp_path, dynamic="x:1=seq", formats="torch_export,onnx", onnx_exporter="legacy")
    assert _verdicts(report) == {"torch_export": "pass", "onnx": "pass"}, [c.reason for c in report.candidates]
    assert _onnx_input_dims(tmp_path / "lstm_full" / "model.onnx") == [["batch", "seq", 8]]


# Narrowing: torch.export's suggested range applied, recorded and swept


def test_a_position_table_narrows_seq_to_its_size(tmp_path: Path) -> None:
    formats = ["torchscript", "torch_export", "onnx", "onnx_int8"]
    report = _run("bert_like", tmp_path, dynamic="input_ids:1=seq,attention_mask:1=seq", formats=",".join(formats))
    assert report.verdict == "pass", [c.reason for c in report.candidates]
    narrowed = report.signature.dims["seq"]
    assert (narrowed.min, narrowed.max, narrowed.source) == (1, 16, "narrowed")
    assert narrowed.reason == "seq = Dim('seq', max=16)"
    build = _stage(report, "build")
    assert any("seq narrowed to 1..16" in n and "Dim('seq', max=16)" in n for n in build.notes)
    for name in formats:
        assert "seq 1..16 (narrowed)" in str(report.formats[name].details["dynamic_dims"]), name
    assert "VR[0, 16]" in str(report.formats["torch_export"].details["range_constraints"])
    # Both ends of the range, not twice the example (20, which the model cannot run).
    sets = _stage(report, "validate").details["input_sets"]
    assert "seq_1" in sets and "seq_16" in sets and "seq_20" not in sets


def test_a_hard_cap_narrows_and_the_sweep_reaches_it(tmp_path: Path) -> None:
    report = _run("capped", tmp_path, dynamic="x:1=seq", formats="torch_export,onnx")
    assert report.verdict == "pass", [c.reason for c in report.candidates]
    assert report.signature.dims["seq"].max == 32
    assert "seq_32" in _stage(report, "validate").details["input_sets"]


def test_a_declared_range_reaches_every_exporter_and_the_sweep(tmp_path: Path) -> None:
    dynamic = "input_ids:1=3<=seq<=12,attention_mask:1=seq"
    report = _run("bert_like", tmp_path, dynamic=dynamic, formats="torch_export,onnx")
    assert report.verdict == "pass", [c.reason for c in report.candidates]
    assert report.signature.dims["seq"] == DimRange(min=3, max=12, source="declared")
    assert "VR[3, 12]" in str(report.formats["torch_export"].details["range_constraints"])
    sets = _stage(report, "validate").details["input_sets"]
    assert "seq_3" in sets and "seq_12" in sets and "seq_1" not in sets
    assert report.options.dynamic == ["input_ids:1=3<=seq<=12", "attention_mask:1=3<=seq<=12"]


def test_a_range_at_the_example_size_is_probed_below_it(tmp_path: Path) -> None:
    # Finding which outputs follow seq grows it by one; at the declared maximum it shrinks instead.
    report = _run("bert_full_table", tmp_path, dynamic="input_ids:1=seq<=8,attention_mask:1=seq", formats="onnx")
    assert report.verdict == "pass", [c.reason for c in report.candidates]
    assert report.signature.dims["seq"].max == 8


def test_narrowing_against_the_users_bound_is_a_usage_error(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "run",
        "--model",
        f"{SPEC}:bert_like",
        "--dynamic",
        "input_ids:1=seq<=512,attention_mask:1=seq",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.code == 2, result.out
    assert "--dynamic seq<=512: the model does not support that range" in result.err
    assert "Dim('seq', max=16)" in result.err and "declare seq<=16 or leave the bound out" in result.err
    assert not (tmp_path / "o").exists()


def test_narrowing_below_the_example_or_a_declared_minimum_is_refused() -> None:
    dims = {"seq": DimRange()}
    with pytest.raises(UsageError, match=r"leaves out the example's size 20"):
        narrow(dims, [Fix("seq", "seq = Dim('seq', max=16)", max=16)], {"seq": 20}, {})
    with pytest.raises(UsageError, match=r"--dynamic 2<=seq: the model does not support that range"):
        narrow(dims, [Fix("seq", "seq = Dim('seq', min=4)", min=4)], {"seq": 8}, {"seq": Bounds(2, None)})
    ok = narrow(dims, [Fix("seq", "seq = Dim('seq', max=16)", max=16)], {"seq": 8}, {})
    assert ok["seq"] == DimRange(min=1, max=16, source="narrowed", reason="seq = Dim('seq', max=16)")


def test_torchs_suggested_fix_is_parsed_and_kept_verbatim() -> None:
    model, x = shape_models.capped()
    with pytest.raises(Exception) as info:
        torch.export.export(model, (x,), dynamic_shapes=({1: torch.export.Dim("seq")},), strict=False)
    assert parse_fixes(str(info.value)) == [Fix("seq", "seq = Dim('seq', max=32)", max=32)]
    message = torch_message(info.value)
    assert "\n" not in message and len(message) <= 400
    assert message.startswith("Constraints violated (seq)!")
    assert "torch's suggested fix: seq = Dim('seq', max=32)" in message


# Who fixed an axis: the model or the exporter


def test_an_axis_the_model_specialises_is_blamed_on_the_model_with_torchs_fix(tmp_path: Path) -> None:
    report = _run("size_branch", tmp_path, dynamic="x:1=seq", formats="torch_export,onnx")
    reasons = {c.format: c.reason or "" for c in report.candidates}
    assert report.verdict == "fail"
    assert "torch.export fixes seq to the example's size (seq = 6)" in reasons["torch_export"]
    assert "the model's code takes a size-dependent path" in reasons["torch_export"]
    assert "torch.export fixes it too (seq = 6)" in reasons["onnx"]
    assert "the model's code specialises on that size" in reasons["onnx"]
    assert "data-dependent control flow" not in reasons["torch_export"]


def test_an_axis_torch_export_keeps_symbolic_is_blamed_on_the_exporter(tmp_path: Path) -> None:
    model, x = shape_models.lstm()
    probe = probe_shapes(model, {"x": x}, _lstm_signature(), {}, {"batch": 2, "seq": 10})
    assert probe.program is not None, probe.error
    request = ExportRequest(model, {"x": x}, probe.signature, tmp_path, ExportOptions(), None, probe)
    message = _why_fixed(request, {"seq": ["x axis 1 (seq) at 10"]})
    assert "torch.export keeps seq symbolic, so the exporter caused it, not the model" in message
    assert "--onnx-exporter legacy" in message


# The sweep covers both ends of a range


def test_the_sweep_covers_both_ends_of_each_range() -> None:
    spec = TensorSpec(name="x", shape=["batch", "seq"], dtype="float32")
    example = {"x": torch.zeros(2, 10)}
    rules = {"x": ValueRule("float", torch.float32)}
    unbounded = Signature(inputs=[spec], outputs=[spec])
    assert [s.name for s in sweep_sets(unbounded, example, rules, 0)] == ["batch_1", "batch_64", "seq_1", "seq_20"]
    ranged = unbounded.model_copy(
        update={"dims": {"batch": DimRange(max=8, source="declared"), "seq": DimRange(min=3, max=12)}}
    )
    sets = sweep_sets(ranged, example, rules, 0)
    assert [s.name for s in sets] == ["batch_1", "batch_8", "seq_3", "seq_12"]
    assert [s.inputs["x"].shape for s in sets] == [(1, 10), (8, 10), (2, 3), (2, 12)]


# Outputs that are not tensors


def test_a_cache_output_is_named_with_how_to_turn_it_off(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "--model", f"{SPEC}:caching_decoder", "--out", str(tmp_path / "o"))
    assert result.code == 2
    assert "the model ran, but its output 'past_key_values' is a DynamicCache, not a tensor" in result.err
    assert "use_cache=False" in result.err and "fails on its example inputs" not in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_another_non_tensor_output_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"its output 'output_1.labels' is a set, not a tensor; return tensors only"):
        _run("labelled", tmp_path, formats="onnx")


# Hugging Face models from configs, when transformers is installed (the zoo's tier: `make zoo`)


@pytest.mark.zoo
def test_a_hugging_face_bert_exports_with_a_dynamic_sequence(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    report = _run("hf_bert", tmp_path, dynamic="input_ids:1=seq,attention_mask:1=seq", formats="torch_export,onnx")
    assert _verdicts(report) == {"torch_export": "pass", "onnx": "pass"}, [c.reason for c in report.candidates]
    assert report.signature.dims["seq"].max == 64  # max_position_embeddings, narrowed as torch.export suggests
    assert "seq_64" in _stage(report, "validate").details["input_sets"]


@pytest.mark.zoo
def test_gpt2_with_its_default_cache_says_use_cache_false(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    with pytest.raises(UsageError, match=r"is a DynamicCache, not a tensor; turn the cache off: use_cache=False"):
        _run("hf_gpt2", tmp_path, formats="onnx")


def test_ranges_round_trip_through_the_manifest_json() -> None:
    sig = Signature(
        inputs=[TensorSpec(name="x", shape=["batch", "seq"], dtype="float32")],
        outputs=[],
        dims={"seq": DimRange(min=2, max=16, source="narrowed", reason="seq = Dim('seq', max=16)")},
    )
    again = Signature.model_validate_json(sig.model_dump_json())
    assert again == sig and again.dims_text() == "seq 2..16 (narrowed)"
    assert again.dim_range("batch") == DimRange()

"""verify on weights files of a user's model: matched by name, by value, through BatchNorm folds, else unproven.

The ONNX exporters do not keep weights under their names (dynamo: ``val_7``, transposed Linear
weights, BatchNorm folded into the Linear/Conv under its name; legacy: LSTM/GRU gates repacked).
These folders used to pass ``run`` and fail ``verify``; a tampered tensor must still fail it.
"""

from __future__ import annotations

import json
import shutil
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
import torch
from conftest import rehash, unsign
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import modelport
from modelport.pipeline.verify_weights import PROGRAM_FIX
from modelport.validators.records import CandidateResult

MODELS = "tests/weights_models.py"
WEIGHTS = {"state_dict.pt": "state_dict@torch", "model.safetensors": "safetensors@torch"}
SCALE = 1.001


def _run(folder: Path, model: str, formats: str, exporter: str = "dynamo", **kwargs: object) -> Path:
    report = modelport.run(model, out=folder, formats=formats, onnx_exporter=exporter, samples=0, **kwargs)  # type: ignore[arg-type]
    assert report.verdict == "pass", [(c.candidate, c.reason) for c in report.candidates]
    return folder


@pytest.fixture(scope="module")
def bert_dynamo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights") / "bert"
    dynamic = "input_ids:1=seq,attention_mask:1=seq"
    return _run(folder, f"{MODELS}:bert", "state_dict,safetensors,onnx", dynamic=dynamic)


@pytest.fixture(scope="module")
def lstm_legacy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights") / "lstm"
    return _run(folder, f"{MODELS}:lstm", "state_dict,safetensors,onnx", "legacy", dynamic="x:1=seq")


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    return target


def _candidate(report: object, name: str) -> CandidateResult:
    return next(c for c in report.candidates if c.candidate == name)  # type: ignore[attr-defined]


def _onnx_names(folder: Path) -> set[str]:
    return {t.name for t in onnx.load(str(folder / "model.onnx")).graph.initializer}


# --- 1. the folders run passes, verify passes, and says how each tensor was found ------------------


@pytest.mark.parametrize(
    ("fixture", "how"),
    [("bert_dynamo", "12 transposed"), ("lstm_legacy", "4 as row blocks")],
    ids=["bert-dynamo", "lstm-legacy"],
)
def test_verify_passes_folders_whose_onnx_renames_weights(
    request: pytest.FixtureRequest, cli, fixture: str, how: str
) -> None:  # type: ignore[no-untyped-def]
    folder: Path = request.getfixturevalue(fixture)
    state = torch.load(folder / "state_dict.pt", weights_only=True)
    assert set(state) - _onnx_names(folder), "the ONNX file must have renamed some weights for this test to mean much"
    result = cli("verify", str(folder))
    assert result.code == 0, result.out
    assert "unproven" not in result.out and "warning" not in result.out
    report = modelport.verify(folder)
    assert report.verdict == "pass"
    for name in WEIGHTS.values():
        cand = _candidate(report, name)
        assert (cand.status, cand.verdict) == ("ok", "pass")
        assert cand.proof is not None
        assert cand.proof.startswith(
            f"intact by sha256; all {len(state)} tensors identical to the verified onnx file's"
        )
        assert how in cand.proof and "by name" in cand.proof
        assert len(cand.checks) == len(state) and all(c.bit_exact for c in cand.checks)
    assert _candidate(report, "onnx@onnxruntime").proof == "intact by sha256; replayed every golden set"


# --- 2. a tensor scaled by 1.001, re-hashed, fails verify by name ------------------------------------


def _scale_state_dict(path: Path, key: str, rows: slice = slice(None)) -> None:
    state = torch.load(path, weights_only=True)
    state[key] = state[key].clone()
    state[key][rows] *= SCALE
    torch.save(state, path)


def _scale_safetensors(path: Path, key: str, rows: slice = slice(None)) -> None:
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    state = load_file(str(path))
    state[key] = state[key].clone()
    state[key][rows] *= SCALE
    save_file(state, str(path), metadata=metadata)


SCALERS: dict[str, Callable[..., None]] = {"state_dict.pt": _scale_state_dict, "model.safetensors": _scale_safetensors}


@pytest.mark.parametrize(
    ("fixture", "rel", "key", "by_name", "rows"),
    [
        ("bert_dynamo", "state_dict.pt", "pooler.weight", True, slice(None)),
        ("bert_dynamo", "model.safetensors", "layers.0.query.weight", False, slice(None)),  # val_N, transposed
        ("lstm_legacy", "state_dict.pt", "rnn.weight_ih_l0", False, slice(None)),  # gates repacked
        ("lstm_legacy", "model.safetensors", "head.weight", True, slice(None)),
        ("lstm_legacy", "state_dict.pt", "rnn.weight_hh_l0", False, slice(16, 32)),  # one gate of four
    ],
    ids=["bert-name", "bert-value", "lstm-value", "lstm-name", "lstm-one-gate"],
)
def test_a_scaled_tensor_fails_verify(
    request: pytest.FixtureRequest, cli, tmp_path: Path, fixture: str, rel: str, key: str, by_name: bool, rows: slice
) -> None:  # type: ignore[no-untyped-def]
    folder = _copy(request.getfixturevalue(fixture), tmp_path)
    assert (key in _onnx_names(folder)) == by_name, "the tensor must be matched the way this case says"
    SCALERS[rel](folder / rel, key, rows)
    rehash(folder, rel)  # the hash check alone can no longer catch it

    result = cli("verify", str(folder))
    assert result.code == 1 and "integrity FAIL" not in result.out
    assert key in result.out and "verdict: FAIL" in result.out
    report = modelport.verify(folder)
    assert report.verdict == "fail"
    bad = _candidate(report, WEIGHTS[rel])
    assert (bad.status, bad.verdict) == ("ok", "fail") and bad.proof is None
    assert [(f.output, f.category) for f in bad.failures()] == [(key, "accuracy")]
    failure = bad.failures()[0]
    assert failure.input_set == "weights vs onnx"
    expected = "differs from the tensor of that name" if by_name else "matches no verified tensor, while"
    assert (failure.message or "").startswith(expected) or rows != slice(None)
    if rows == slice(None):  # the numbers: the tensor against the one it should have been
        assert failure.max_abs_err is not None and failure.max_abs_err > 0
        assert failure.max_rel_err is not None and failure.max_rel_err == pytest.approx(SCALE - 1, rel=0.01)
    else:
        assert "3 of its 4 row blocks lie in verified tensors" in (failure.message or "")
        assert "rows 16:32" in (failure.message or "")
    other = next(r for r in WEIGHTS if r != rel)
    assert _candidate(report, WEIGHTS[other]).verdict == "pass"


# --- 3. keys only removed ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def with_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose .pt2 program holds every tensor by name (even a buffer no graph reads)."""
    folder = _run(tmp_path_factory.mktemp("weights") / "ub", f"{MODELS}:unused_buffer", "state_dict,torch_export")
    cand = _candidate(modelport.verify(folder), "state_dict@torch")
    assert cand.proof == "intact by sha256; all 3 tensors identical to the verified torch_export program's (3 by name)"
    return folder


def test_a_scaled_tensor_fails_against_the_program(with_program: Path, tmp_path: Path) -> None:
    folder = _copy(with_program, tmp_path)
    _scale_state_dict(folder / "state_dict.pt", "step_count")
    rehash(folder, "state_dict.pt")
    bad = _candidate(modelport.verify(folder, trust=True), "state_dict@torch")
    assert bad.verdict == "fail"
    assert [(f.output, f.input_set) for f in bad.failures()] == [("step_count", "weights vs torch_export")]
    assert bad.failures()[0].max_rel_err == pytest.approx(SCALE - 1, rel=0.01)


def test_a_0d_tensor_stored_with_shape_1_fails_against_the_program(tmp_path: Path) -> None:
    # tensor_digest hashes a 0-d tensor as shape [1]: the file must not stand in for the program on that digest.
    folder = _run(tmp_path / "scalar", f"{MODELS}:scalar_buffer", "state_dict,torch_export")
    state = torch.load(folder / "state_dict.pt", weights_only=True)
    state["scale"] = state["scale"].reshape(1)
    torch.save(state, folder / "state_dict.pt")
    rehash(folder, "state_dict.pt")
    bad = _candidate(modelport.verify(folder, trust=True), "state_dict@torch")
    assert bad.verdict == "fail" and bad.reason == "state_dict.pt: tampered tensors scale"


def test_weights_with_a_key_only_removed_fail(with_program: Path, tmp_path: Path) -> None:
    folder = _copy(with_program, tmp_path)
    state = torch.load(folder / "state_dict.pt", weights_only=True)
    del state["fc.bias"]
    torch.save(state, folder / "state_dict.pt")
    rehash(folder, "state_dict.pt")
    report = modelport.verify(folder, trust=True)
    bad = _candidate(report, "state_dict@torch")
    assert report.verdict == "fail" and bad.verdict == "fail" and bad.category == "missing"
    assert bad.reason == "state_dict.pt lacks tensors the torch_export program has: fc.bias"


# --- 4. the anchor must itself have passed -------------------------------------------------------------


def _scale_pt2(path: Path, key: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.load(str(path))
        with torch.no_grad():
            program.state_dict[key].mul_(SCALE)
        torch.export.save(program, str(path))


@pytest.mark.parametrize("formats", ["state_dict,torch_export,onnx", "state_dict,torch_export"])
def test_weights_are_never_proven_by_a_program_that_failed(tmp_path: Path, formats: str) -> None:
    """The .pt2 and the weights file tampered alike: the .pt2 fails its replay, so it proves nothing."""
    folder = _run(tmp_path / "ub", f"{MODELS}:unused_buffer", formats)
    _scale_pt2(folder / "model.pt2", "fc.weight")
    _scale_state_dict(folder / "state_dict.pt", "fc.weight")
    rehash(folder, "model.pt2")
    rehash(folder, "state_dict.pt")
    report = modelport.verify(folder, trust=True)  # trusted, so the .pt2 is replayed and fails
    assert report.verdict == "fail"
    assert _candidate(report, "torch_export@torch").verdict == "fail"
    weights = _candidate(report, "state_dict@torch")
    if "onnx" in formats:  # compared with the ONNX file instead, which holds the original
        assert weights.verdict == "fail"
        assert [(f.output, f.input_set) for f in weights.failures()] == [("fc.weight", "weights vs onnx")]
    else:  # nothing verified holds its tensors: unproven, and the message says why
        assert (weights.status, weights.verdict) == ("unproven", "unproven")
        assert weights.reason == f"torch_export failed verification; {PROGRAM_FIX}"
        assert "include torch_export in --formats)" not in (weights.reason or "").removesuffix(PROGRAM_FIX)


# --- 5-6. a tensor no graph holds: unproven, a warning, a failure with --require-proof; run says so first


@pytest.mark.parametrize(
    ("model", "exporter", "unproven", "proven"),
    [
        ("unused_buffer", "dynamo", "step_count", "2 by name"),
        ("bn_mlp", "legacy", "1.num_batches_tracked", "8 by name"),
        ("bn_mlp", "dynamo", "1.num_batches_tracked", "2 by name, 6 through 1 BatchNorm fold"),
    ],
    ids=["unused-buffer", "batchnorm-legacy", "batchnorm-folded-dynamo"],
)
def test_a_tensor_in_no_graph_is_unproven(
    cli, tmp_path: Path, model: str, exporter: str, unproven: str, proven: str
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / model
    ran = cli(
        "run", "--model", f"{MODELS}:{model}", "--out", str(folder), "--formats", "state_dict,onnx",
        "--onnx-exporter", exporter, "--samples", "0",
    )  # fmt: skip
    assert ran.code == 0, ran.out
    note = "note: validate: verify will only be able to call state_dict.pt unproven where this folder's signature"
    assert note in ran.out and f"({unproven})" in ran.out and PROGRAM_FIX in ran.out
    assert "intact by sha256 only: 1 of" in ran.out

    # Under the folder's valid signature the manifest's per-tensor sha256 prove what no graph holds.
    signed = _candidate(modelport.verify(folder), "state_dict@torch")
    assert (signed.status, signed.verdict) == ("ok", "pass")
    assert "1 by the signed sha256" in (signed.proof or "") and "signed manifest" in (signed.proof or "")
    unsign(folder)  # as a machine that does not know the signer's key sees it

    ci = tmp_path / "ci"
    outputs = ["--report-json", str(ci / "r.json"), "--junit-xml", str(ci / "j.xml"), "--summary-md", str(ci / "s.md")]
    result = cli("verify", str(folder), *outputs)
    assert result.code == 0, result.out
    assert "warning: state_dict@torch is unproven: intact by sha256 only" in result.out
    assert "verdict: PASS" in result.out
    report = modelport.verify(folder)
    cand = _candidate(report, "state_dict@torch")
    assert (report.verdict, cand.status, cand.verdict) == ("pass", "unproven", "unproven")
    assert cand.proof is not None and cand.proof.startswith(
        f"intact by sha256 only: 1 of {len(torch.load(folder / 'state_dict.pt', weights_only=True))} tensors appear "
        f"in no verified artifact ({unproven}); the other"
    )
    assert f"the verified onnx file's ({proven}" in cand.proof
    assert cand.reason == f"torch_export was not selected; {PROGRAM_FIX}"
    data = json.loads((ci / "r.json").read_text())
    assert [(c["status"], c["verdict"]) for c in data["candidates"] if c["format"] == "state_dict"] == [
        ("unproven", "unproven")
    ]
    skipped = [c for c in ET.parse(ci / "j.xml").getroot().iter("testcase") if c.find("skipped") is not None]
    # The unsigned folder's manifest.sig case is skipped too (a signature is not required here).
    assert [(c.get("classname"), c.get("name")) for c in skipped] == [
        ("signature", "manifest.sig"),
        ("state_dict@torch", "proof"),
    ]
    assert "unproven" in (ci / "s.md").read_text()

    assert "│ unproven: intact by sha256 only" in result.out  # the table's verdict column
    strict = cli("verify", str(folder), "--require-proof", "--quiet", "--junit-xml", str(ci / "strict.xml"))
    assert strict.code == 1 and "FAIL: state_dict@torch is unproven" in strict.out
    failed = [c for c in ET.parse(ci / "strict.xml").getroot().iter("testcase") if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [("state_dict@torch", "proof")]
    assert modelport.verify(folder, require_proof=True).verdict == "fail"


def test_run_notes_nothing_when_verify_will_prove_every_tensor(bert_dynamo: Path) -> None:
    manifest = json.loads((bert_dynamo / "manifest.json").read_text())
    notes = [n for s in manifest["stages"] for n in s["notes"]]
    assert not [n for n in notes if "verify will" in n]


# --- BatchNorm folded into the graph: proven by recomputing the fold; a tampered statistic fails ----------


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
@pytest.mark.parametrize("key", ["1.running_var", "0.weight"])
def test_a_tampered_tensor_folded_into_the_graph_fails(tmp_path: Path, exporter: str, key: str) -> None:
    folder = _run(tmp_path / "cnn", "tests/zoo.py:cnn", "state_dict,onnx", exporter)
    unsign(folder)  # num_batches_tracked is proven by no graph: unproven without the signature's sha256
    clean = _candidate(modelport.verify(folder), "state_dict@torch")
    assert clean.verdict == "unproven" and "through 2 BatchNorm folds" in (clean.proof or "")
    _scale_state_dict(folder / "state_dict.pt", key)
    rehash(folder, "state_dict.pt")
    report = modelport.verify(folder)
    bad = _candidate(report, "state_dict@torch")
    assert report.verdict == "fail" and bad.verdict == "fail"
    assert key in {f.output for f in bad.failures()}


def test_without_a_program_the_weights_files_must_agree_on_their_names(lstm_legacy: Path, tmp_path: Path) -> None:
    """Every remaining tensor is proven against the ONNX file, but the file no longer loads: the other file says so."""
    folder = _copy(lstm_legacy, tmp_path)
    state = torch.load(folder / "state_dict.pt", weights_only=True)
    del state["head.bias"]
    torch.save(state, folder / "state_dict.pt")
    rehash(folder, "state_dict.pt")
    report = modelport.verify(folder)
    assert report.verdict == "fail"
    for name in WEIGHTS.values():
        cand = _candidate(report, name)
        assert (cand.verdict, cand.category) == ("fail", "missing")
        assert "only model.safetensors holds head.bias" in (cand.reason or "")


def test_one_layer_copied_over_another_fails(tmp_path: Path) -> None:
    """Review finding: l2 overwritten with l1's tensors in both files; l1's values are in the graph, under l1's
    name, while l2's name holds other values: only a fold could explain that, and none does."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "three"
    spec = "tests/weights_models.py:three_linear"
    assert modelport.run(spec, out=folder, formats="state_dict,safetensors,onnx", samples=0).verdict == "pass"
    state = torch.load(folder / "state_dict.pt", weights_only=True)
    tensors = load_file(str(folder / "model.safetensors"))
    for held in (state, tensors):
        held["l2.weight"], held["l2.bias"] = held["l1.weight"].clone(), held["l1.bias"].clone()
    torch.save(state, folder / "state_dict.pt")
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    rehash(folder, "state_dict.pt")
    rehash(folder, "model.safetensors")
    report = modelport.verify(folder)
    assert report.verdict == "fail"
    for fmt in ("state_dict", "safetensors"):
        (cand,) = [c for c in report.candidates if c.format == fmt]
        assert cand.verdict == "fail" and "l2.weight" in (cand.reason or "")


def test_the_file_stands_in_for_the_program_only_when_every_tensor_hashes_alike() -> None:
    # verify compares a weights file with itself in the program's place (so a big model's weights and program are
    # never held together) only when the program's sha256 of every tensor, by name, is the file's.
    import numpy as np

    from modelport.exporters.weights import tensor_digest
    from modelport.pipeline.verify_weights import stand_in_for_program

    def print_of(a: np.ndarray) -> tuple[str, tuple[int, ...]]:
        return tensor_digest(a), a.shape

    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3, dtype=np.float32)}
    state["t"] = np.array(0.5, dtype=np.float32)  # 0-d
    program = {k: print_of(v) for k, v in state.items()}
    same = stand_in_for_program(state, program)
    assert same is not None and same.source == "torch_export" and same.tensors is state
    assert stand_in_for_program(state, None) is None
    assert stand_in_for_program(state, {**program, "extra": program["b"]}) is None  # another name
    assert stand_in_for_program(state, {**program, "b": print_of(np.ones(3, dtype=np.float32))}) is None
    # the same bytes under another dtype or shape are another tensor
    assert stand_in_for_program(state, {**program, "w": print_of(state["w"].reshape(3, 2))}) is None
    assert stand_in_for_program(state, {**program, "b": print_of(np.zeros(3, dtype=np.int32))}) is None
    assert stand_in_for_program(state, {**program, "t": print_of(state["t"].reshape(1))}) is None

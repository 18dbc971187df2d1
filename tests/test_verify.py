"""``modelport verify``: integrity (hashes) and parity (replaying golden data) on real artifacts.

Every test works on a private copy of the session's folder (``artifact_copy``); nothing
here calls ``run`` again, so the suite stays fast.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import DEFAULT_CANDIDATES, load_manifest, rehash, unsign
from onnx import numpy_helper
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import modelport
from modelport.pipeline.verify_weights import PROGRAM_FIX

CANDIDATES = DEFAULT_CANDIDATES
SCALE = 1.001  # small enough that every file still loads, far beyond every recorded tolerance


def _rows(out: str, candidate: str) -> list[str]:
    """The parity table's lines for one candidate."""
    return [line for line in out.splitlines() if f" {candidate} " in line]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- 1. a clean folder passes, wherever it lives -------------------------------------------------


def test_fresh_copy_passes(cli, artifact_copy: Path) -> None:
    result = cli("verify", str(artifact_copy))
    assert result.code == 0, result.out + result.err
    assert "PASS" in result.out
    for candidate in CANDIDATES:
        assert _rows(result.out, candidate), f"{candidate} missing from the table"


def test_moved_folder_still_passes(cli, artifact_copy: Path, tmp_path: Path) -> None:
    # The manifest must record paths relative to the folder, never absolute ones.
    moved = Path(shutil.move(str(artifact_copy), str(tmp_path / "elsewhere" / "moved")))
    assert not artifact_copy.exists()
    result = cli("verify", str(moved))
    assert result.code == 0, result.out + result.err
    assert "PASS" in result.out


# --- 2. a re-hashed tampered artifact is caught by parity ----------------------------------------


def _scale_onnx(path: Path) -> None:
    model = onnx.load(str(path))
    # The largest initializer is a weight matrix; a bias could be too small to matter everywhere.
    init = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    array = numpy_helper.to_array(init)
    scaled = numpy_helper.from_array((array * SCALE).astype(array.dtype), name=init.name)
    init.CopyFrom(scaled)
    onnx.save(model, str(path))


def _scale_torchscript(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # every torch.jit call warns in torch 2.13
        module = torch.jit.load(str(path))
        weight = next(p for name, p in module.named_parameters() if name.endswith("weight"))
        with torch.no_grad():
            weight.mul_(SCALE)
        torch.jit.save(module, str(path))


def _scale_safetensors(path: Path) -> None:
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    state = load_file(str(path))
    key = next(k for k in state if k.endswith("weight"))
    state[key] = state[key] * SCALE
    save_file(state, str(path), metadata=metadata)


def _scale_state_dict(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    key = next(k for k in state if k.endswith("weight"))
    state[key] = state[key] * SCALE
    torch.save(state, path)


def _scale_pt2(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.load(str(path))
        name = next(k for k in program.state_dict if k.endswith("weight"))
        with torch.no_grad():
            program.state_dict[name].mul_(SCALE)
        torch.export.save(program, str(path))


# Every format replays the golden data, so the failing check names the output: the built-in MLP's
# architecture is modelport's own code, so even its weights files run (a user's model is never
# imported: see test_weights_of_a_user_model_are_checked_against_the_verified_program).
@pytest.mark.parametrize(
    ("rel", "candidate", "tamper", "where"),
    [
        ("model.onnx", "onnx@onnxruntime", _scale_onnx, "output"),
        ("model.torchscript.pt", "torchscript@torchscript", _scale_torchscript, "output"),
        ("model.pt2", "torch_export@torch", _scale_pt2, "output"),
        ("model.safetensors", "safetensors@torch", _scale_safetensors, "output"),
        ("state_dict.pt", "state_dict@torch", _scale_state_dict, "output"),
    ],
    ids=["onnx", "torchscript", "torch_export", "safetensors", "state_dict"],
)
def test_rehashed_tampering_fails_parity(
    cli, artifact_copy: Path, rel: str, candidate: str, tamper: Callable[[Path], None], where: str
) -> None:
    before = (artifact_copy / rel).read_bytes()
    tamper(artifact_copy / rel)
    assert (artifact_copy / rel).read_bytes() != before, "the tamper must change the file"
    rehash(artifact_copy, rel)  # the hash check alone can no longer catch it

    result = cli("verify", str(artifact_copy), "--trust")
    assert result.code == 1, result.out
    assert "integrity FAIL" not in result.out, "the file was re-hashed: only parity may complain"
    failing = [line for line in _rows(result.out, candidate) if "FAIL (accuracy)" in line]
    assert failing, result.out
    assert all(f" {where} " in line for line in failing)
    for other in set(CANDIDATES) - {candidate}:
        assert all("FAIL" not in line for line in _rows(result.out, other)), result.out
    assert "verdict: FAIL" in result.out

    # The typed report says the same: one candidate fails, on accuracy, for `output`.
    report = modelport.verify(artifact_copy, trust=True)
    assert report.verdict == "fail"
    assert report.integrity == []
    verdicts = {c.candidate: c.verdict for c in report.candidates}
    # A tampered .pt2 is also the anchor the weights files are compared with: they are not
    # compared against a failed artifact, they fall back to the ONNX initializers.
    assert verdicts == {c: ("fail" if c == candidate else "pass") for c in CANDIDATES}
    bad = next(c for c in report.candidates if c.candidate == candidate)
    assert bad.status == "ok"  # it loaded and ran; only its numbers are wrong
    assert bad.failures()
    assert {(f.category, f.output) for f in bad.failures()} == {("accuracy", where)}


# --- 3-4. integrity: a flipped byte or a missing file is named -----------------------------------


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("model.onnx", "onnx@onnxruntime"),
        ("model.torchscript.pt", "torchscript@torchscript"),
        ("model.safetensors", "safetensors@torch"),
        ("state_dict.pt", "state_dict@torch"),
        ("model.pt2", "torch_export@torch"),
        ("model.optimized.onnx", "onnx_optimized@onnxruntime"),
        ("golden/outputs.npz", "no golden data"),  # nothing to replay against: every candidate fails
    ],
    ids=["onnx", "torchscript", "safetensors", "state_dict", "torch_export", "onnx_optimized", "golden"],
)
def test_flipped_byte_fails_integrity(cli, artifact_copy: Path, rel: str, reason: str) -> None:
    path = artifact_copy / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, so only the sha256 can tell
    path.write_bytes(bytes(data))

    result = cli("verify", str(artifact_copy))
    assert result.code == 1, result.out
    assert f"integrity FAIL: {rel}: sha256" in result.out, result.out
    # A damaged file is never loaded: its candidate is failed on integrity, not run.
    assert any("FAIL (integrity)" in line and reason in line for line in result.out.splitlines()), result.out
    assert "verdict: FAIL" in result.out


@pytest.mark.parametrize("rel", ["model.onnx", "golden/sets/batch_1/inputs.npz", "report.md"])
def test_deleted_file_is_named_missing(cli, artifact_copy: Path, rel: str) -> None:
    (artifact_copy / rel).unlink()
    result = cli("verify", str(artifact_copy))
    assert result.code == 1, result.out
    problem = next((line for line in result.out.splitlines() if "integrity FAIL" in line), "")
    assert rel in problem and "missing" in problem, result.out


# --- 5. re-hashed wrong golden outputs --------------------------------------------------------------


def test_rehashed_golden_outputs_fail_every_candidate(cli, artifact_copy: Path) -> None:
    rel = "golden/outputs.npz"
    with np.load(artifact_copy / rel) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["output"] = arrays["output"] + np.float32(1e-3)
    np.savez(artifact_copy / rel, **arrays)  # same path: np.savez keeps a name ending in .npz
    rehash(artifact_copy, rel)

    result = cli("verify", str(artifact_copy), "--trust")
    assert result.code == 1, result.out
    # The ONNX test-data copy of the set no longer agrees, and every candidate disagrees with the edit.
    assert "golden/onnx/test_data_set_0: output_0.pb is not the .npz set's 'output'" in result.out
    for candidate in CANDIDATES:
        example = [line for line in _rows(result.out, candidate) if " example " in line]
        assert example and all("FAIL (accuracy)" in line for line in example), result.out


# --- 6. bad input: exit 2, one line on stderr, no traceback ---------------------------------------


def _no_manifest(folder: Path) -> Path:
    (folder / "manifest.json").unlink()
    return folder


def _not_there(folder: Path) -> Path:
    return folder.parent / "does-not-exist"


def _not_json(folder: Path) -> Path:
    (folder / "manifest.json").write_text("{ this is not json")
    return folder


def _wrong_schema(folder: Path) -> Path:
    manifest = load_manifest(folder)
    manifest["schema_version"] = 999
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        (_no_manifest, "manifest.json"),
        (_not_there, "not a folder"),
        (_wrong_schema, "schema_version 999; this modelport reads 1, 2; upgrade modelport"),
    ],
    ids=["no-manifest", "missing-path", "wrong-schema"],
)
def test_bad_input_exits_2_with_one_line(
    cli, artifact_copy: Path, breaker: Callable[[Path], Path], expected: str
) -> None:
    target = breaker(artifact_copy)
    result = cli("verify", str(target))
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("modelport: error: ")
    assert result.err.endswith("\n") and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
    assert expected in result.err


# --- 7. verify is read-only ---------------------------------------------------------------------------


def test_verify_writes_nothing(cli, artifact_copy: Path) -> None:
    before = _snapshot(artifact_copy)
    result = cli("verify", str(artifact_copy))
    assert result.code == 0, result.out
    after = _snapshot(artifact_copy)
    assert sorted(after) == sorted(before)  # no new file (cache, lock, report), none removed
    assert after == before


# --- 8. files the manifest does not account for, and paths that leave the folder ----------------


def test_unlisted_file_is_named(cli, artifact_copy: Path) -> None:
    (artifact_copy / "golden" / "extra.npz").write_bytes(b"not ours")
    result = cli("verify", str(artifact_copy))
    assert result.code == 1
    assert "golden/extra.npz: present but not listed" in result.out


def test_manifest_path_with_dotdot_is_refused(cli, artifact_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    manifest = load_manifest(artifact_copy)
    manifest["artifacts"].append({**manifest["artifacts"][0], "path": "../outside.txt"})
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    result = cli("verify", str(artifact_copy))
    assert result.code == 1
    assert "../outside.txt: path leaves the artifact folder" in result.out


def test_symlink_out_of_the_folder_is_refused(cli, artifact_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "report-elsewhere.md"
    shutil.copy(artifact_copy / "report.md", outside)
    (artifact_copy / "report.md").unlink()
    (artifact_copy / "report.md").symlink_to(outside)
    result = cli("verify", str(artifact_copy))
    assert result.code == 1
    assert "report.md: path leaves the artifact folder" in result.out


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda m: m.write_text("{ this is not json"), "manifest.json: manifest.json is not valid JSON"),
        (lambda m: m.write_bytes(b"\xff\xfe"), "is not UTF-8"),
        (lambda m: m.write_text(m.read_text().replace('"candidates"', '"candidatez"')), "is not a valid manifest"),
    ],
    ids=["bad-json", "not-utf8", "bad-structure"],
)
def test_damaged_manifest_fails_integrity(cli, artifact_copy: Path, edit, expected: str) -> None:  # type: ignore[no-untyped-def]
    """A corrupted manifest is a failed check (exit 1) on the receiving side, not a usage error."""
    edit(artifact_copy / "manifest.json")
    result = cli("verify", str(artifact_copy))
    assert result.code == 1, result.out + result.err
    assert expected in result.out


def test_run_that_failed_does_not_verify(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "strict"
    assert cli("run", "--out", str(out), "--formats", "onnx", "--tol", "onnx=0,0", "--quiet").code == 1
    result = cli("verify", str(out))
    assert result.code == 1
    assert "the run that wrote this folder failed" in result.out


def test_loaded_files_must_be_listed_and_inside(cli, artifact_copy: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A manifest pointing a format at a file outside the folder must not get it loaded (TorchScript runs code)."""
    other = tmp_path / "other"
    other.mkdir()
    shutil.move(artifact_copy / "model.torchscript.pt", other / "model.torchscript.pt")
    manifest = load_manifest(artifact_copy)
    manifest["formats"]["torchscript"]["files"] = ["../other/model.torchscript.pt"]
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["path"] != "model.torchscript.pt"]
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    report = modelport.verify(artifact_copy)
    assert report.verdict == "fail"
    ts = next(c for c in report.candidates if c.format == "torchscript")
    assert ts.status == "failed" and ts.category == "integrity" and "not loaded" in (ts.reason or "")


def test_a_tolerance_edited_in_the_manifest_is_caught(cli, artifact_copy: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = load_manifest(artifact_copy)
    manifest["tolerances"]["state_dict"]["atol"] = 1e9
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    result = cli("verify", str(artifact_copy))
    assert result.code == 1
    assert "state_dict's tolerance is recorded as atol=1e+09" in result.out


def test_quiet_verify_names_the_failing_candidate(cli, artifact_copy: Path) -> None:  # type: ignore[no-untyped-def]
    _scale_safetensors(artifact_copy / "model.safetensors")
    rehash(artifact_copy, "model.safetensors")
    result = cli("verify", str(artifact_copy), "--quiet")
    assert result.code == 1
    assert "FAIL safetensors@torch example output" in result.out


def test_a_hard_link_is_refused(cli, artifact_copy: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """onnxruntime follows hard links; a listed file that shares its inode with another file is not trusted."""
    outside = tmp_path / "outside.md"
    os.link(artifact_copy / "report.md", outside)
    result = cli("verify", str(artifact_copy))
    assert result.code == 1 and "report.md: has 2 hard links" in result.out


def test_runtime_versions_that_differ_are_a_warning(cli, artifact_copy: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = load_manifest(artifact_copy)
    manifest["environment"]["onnxruntime"] = "1.17.0"
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    result = cli("verify", str(artifact_copy), "--trust", "--report-json", str(artifact_copy.parent / "r.json"))
    assert result.code == 0
    assert "warning: onnxruntime" in result.out and "1.17.0 when the folder was made" in result.out
    report = json.loads((artifact_copy.parent / "r.json").read_text())
    assert any("onnxruntime" in d for d in report["environment_drift"])


def test_runtimes_limits_what_is_checked(artifact_copy: Path) -> None:
    report = modelport.verify(artifact_copy, runtimes="onnxruntime")
    assert report.verdict == "pass"
    assert {c.runtime for c in report.candidates} == {"onnxruntime"}
    with pytest.raises(modelport.UsageError, match=r"unknown runtime 'tensorrt'; choose from"):
        modelport.verify(artifact_copy, runtimes="tensorrt")


def test_verify_imports_no_model_code(artifact_copy: Path) -> None:
    """A manifest naming a Python file as the model must not get it imported (verify runs on untrusted folders)."""
    sentinel = artifact_copy.parent / "pwned"
    evil = artifact_copy.parent / "evil.py"
    evil.write_text(f"open({str(sentinel)!r}, 'w').close()\ndef f():\n    raise SystemExit(0)\n")
    manifest = load_manifest(artifact_copy)
    manifest["model"]["spec"] = f"{evil}:f"
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    report = modelport.verify(artifact_copy, trust=True)
    assert not sentinel.exists()
    assert report.verdict == "pass"  # weights files are checked against the verified .pt2 instead


def test_weights_of_a_user_model_are_checked_against_the_verified_program(tmp_path: Path) -> None:
    """verify never imports a user's model code: its weights files are compared with the .pt2's tensors."""
    folder = tmp_path / "cnn"
    report = modelport.run("tests/zoo.py:cnn", out=folder, formats="safetensors,state_dict,torch_export", samples=0)
    assert report.verdict == "pass"
    clean = modelport.verify(folder, trust=True)
    assert clean.verdict == "pass"
    weights = next(c for c in clean.candidates if c.format == "safetensors")
    assert weights.checks and all(c.input_set == "weights vs torch_export" for c in weights.checks)

    _scale_safetensors(folder / "model.safetensors")
    rehash(folder, "model.safetensors")
    tampered = modelport.verify(folder, trust=True)
    bad = next(c for c in tampered.candidates if c.format == "safetensors")
    assert tampered.verdict == "fail" and bad.failures()
    assert all(f.category == "accuracy" and f.output.endswith("weight") for f in bad.failures())


def _user_folder(tmp_path: Path, formats: str) -> Path:
    folder = tmp_path / "tied"
    assert modelport.run("tests/zoo.py:tied", out=folder, formats=formats, samples=0).verdict == "pass"
    return folder


def test_weights_with_keys_removed_or_added_fail(tmp_path: Path) -> None:
    folder = _user_folder(tmp_path, "state_dict,torch_export")
    assert modelport.verify(folder, trust=True).verdict == "pass"
    state = torch.load(folder / "state_dict.pt", weights_only=True)
    del state["mix.bias"]
    state["evil"] = torch.zeros(1)
    torch.save(state, folder / "state_dict.pt")
    rehash(folder, "state_dict.pt")
    report = modelport.verify(folder, trust=True)
    bad = next(c for c in report.candidates if c.format == "state_dict")
    assert report.verdict == "fail" and bad.category == "missing" and "evil" in (bad.reason or "")


def test_weights_that_nothing_can_vouch_for_do_not_pass(tmp_path: Path) -> None:
    """Without the model's code or a verified artifact, a weights-only folder is unproven: never a pass."""
    folder = _user_folder(tmp_path, "state_dict,safetensors")
    # Under the folder's valid signature the manifest's per-tensor sha256 prove every tensor.
    signed = modelport.verify(folder)
    assert [(c.status, c.verdict) for c in signed.candidates] == [("ok", "pass")] * 2
    assert all("the signed manifest's" in (c.proof or "") for c in signed.candidates)
    unsign(folder)
    report = modelport.verify(folder)
    assert [(c.status, c.verdict) for c in report.candidates] == [("unproven", "unproven")] * 2
    assert all((c.proof or "").startswith("intact by sha256 only: no verified") for c in report.candidates)
    assert all(c.reason == "torch_export was not selected; " + PROGRAM_FIX for c in report.candidates)
    assert report.verdict == "pass"  # nothing failed; the CLI warns, and --require-proof fails it
    assert modelport.verify(folder, require_proof=True).verdict == "fail"


def test_a_model_without_parameters_verifies(tmp_path: Path) -> None:
    folder = tmp_path / "colliding"
    report = modelport.run("tests/edge_models.py:colliding", out=folder, formats="state_dict,torch_export", samples=0)
    assert report.verdict == "pass"
    assert modelport.verify(folder).verdict == "pass"


def test_verify_says_what_it_proved_for_each_file(mlp_folder: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("verify", str(mlp_folder))
    assert result.code == 0
    for candidate in ("state_dict@torch", "onnx@onnxruntime", "torch_export@torch"):
        assert f"proof: {candidate}: intact by sha256; replayed every golden set" in result.out


def test_a_folder_written_by_modelport_0_1_0_still_verifies(artifact_copy: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """Schema 1 (0.1.0): one candidate per format, no runtime versions or timings, no per-tensor hashes, unsigned."""
    manifest = load_manifest(artifact_copy)
    manifest["schema_version"] = 1
    manifest["options"].pop("runtimes")
    for record in manifest["formats"].values():
        record.pop("tensors")
    for cand in manifest["candidates"]:
        for key in ("runtime_version", "runtime_facts", "load_seconds", "infer_seconds"):
            cand.pop(key)
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (artifact_copy / "manifest.sig").unlink()  # 0.1.0 did not sign
    result = cli("verify", str(artifact_copy), "--trust", "--quiet")
    assert result.code == 0, result.out + result.err
    untrusted = cli("verify", str(artifact_copy), "--quiet")  # unsigned: its programs need --trust
    assert untrusted.code == 1 and "signature absent" in untrusted.out


@pytest.mark.parametrize(
    "options",
    [
        {"tol": [], "dynamic": {"x": [1]}},
        {"tol": [], "dynamic": {"x": "abc"}},
        {"tol": [], "dynamic_ranges": [1]},
        {"tol": ["onnx=abc"]},
        {"tol": ["onnx"]},
    ],
    ids=["axes-list", "axes-text", "ranges-list", "tol-not-number", "tol-no-value"],
)
def test_a_hostile_schema_1_manifest_is_one_line(artifact_copy: Path, cli, options: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    """Review finding: schema 1's loose options dict crashed the conversion with a traceback."""
    manifest = load_manifest(artifact_copy)
    manifest["schema_version"] = 1
    manifest["options"].update(options)
    manifest["options"].pop("runtimes")
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    result = cli("verify", str(artifact_copy), "--quiet")
    assert result.code == 1 and "Traceback" not in result.err, result.err
    assert "is not a valid manifest: options" in result.out, result.out

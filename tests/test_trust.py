"""The trust gate: TorchScript and .pt2 files are programs, loaded only from folders whose signature
checks out or that the user trusts with ``--trust``; weights files stay verifiable without trust.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from conftest import rehash, unsign
from malicious import payloads, pickle_bytes, rewrite_zip

import modelport
from modelport.signing import Signer

PROGRAMS = ("torchscript@torchscript", "torch_export@torch")


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder signed by this machine's local key, with both program formats. Do not modify: copy it."""
    out = tmp_path_factory.mktemp("trust") / "mlp"
    report = modelport.run(out=out, formats="torchscript,torch_export,onnx", samples=0)
    assert report.verdict == "pass"
    return out


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Another machine: a config folder that does not hold the local key the folder was signed with."""
    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(tmp_path / "elsewhere"))
    return tmp_path / "elsewhere"


def _by_candidate(report: modelport.VerifyReport) -> dict[str, modelport.CandidateResult]:
    return {c.candidate: c for c in report.candidates}


def test_programs_of_an_unknown_signer_are_listed_as_not_verified(
    programs: Path, elsewhere: Path, tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    report = modelport.verify(programs)
    found = _by_candidate(report)
    assert report.verdict == "fail" and report.trusted is None
    assert report.signature is not None and report.signature.status == "unknown-key"
    for name in PROGRAMS:
        cand = found[name]
        assert (cand.status, cand.verdict, cand.category, cand.checks) == ("untrusted", "fail", "trust", [])
        for how in ("--trusted-key KEY.pub", "--trust", "--runtimes onnxruntime", "signature unknown-key"):
            assert how in (cand.reason or ""), cand.reason
    assert found["onnx@onnxruntime"].verdict == "pass"

    ci = tmp_path / "ci"
    result = cli("verify", str(programs), "--report-json", str(ci / "r.json"), "--junit-xml", str(ci / "j.xml"))
    assert result.code == 1, result.out
    assert "NOT VERIFIED: model.pt2 is a program" in result.out.replace("\n│", "")
    data = json.loads((ci / "r.json").read_text())
    assert {c["candidate"]: c["status"] for c in data["candidates"]}["torch_export@torch"] == "untrusted"
    failures = [c for c in ET.parse(ci / "j.xml").getroot().iter("testcase") if c.find("failure") is not None]
    assert {(c.get("classname"), c.find("failure").get("type")) for c in failures} == {  # type: ignore[union-attr]
        (name, "trust") for name in PROGRAMS
    }

    # Narrowed to what needs no trust, or trusted by the user: a pass.
    assert cli("verify", str(programs), "--runtimes", "onnxruntime", "--quiet").code == 0
    trusted = cli("verify", str(programs), "--trust")
    assert trusted.code == 0, trusted.out
    assert "programs (TorchScript, .pt2) loaded: --trust" in trusted.out
    assert not elsewhere.exists(), "verify never creates a key"


def test_a_valid_signature_is_what_lets_programs_load(programs: Path, tmp_path: Path) -> None:
    report = modelport.verify(programs)  # this machine: the local key signed it
    assert report.verdict == "pass"
    assert report.trusted is not None and report.trusted.startswith("signature valid")
    assert all(_by_candidate(report)[name].status == "ok" for name in PROGRAMS)
    copy = tmp_path / "copy"
    shutil.copytree(programs, copy)
    unsign(copy)
    assert {_by_candidate(modelport.verify(copy))[name].status for name in PROGRAMS} == {"untrusted"}


def test_a_colleagues_public_key_lets_programs_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:  # type: ignore[no-untyped-def]
    key = tmp_path / "team"
    assert cli("key", "create", str(key)).code == 0
    out = tmp_path / "shared"
    ran = cli("run", "--out", str(out), "--formats", "torchscript,onnx", "--samples", "0", "--sign-with", str(key))
    assert ran.code == 0, ran.out
    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(tmp_path / "colleague"))
    assert cli("verify", str(out), "--quiet").code == 1
    result = cli("verify", str(out), "--trusted-key", f"{key}.pub")
    assert result.code == 0, result.out
    assert f"programs (TorchScript, .pt2) loaded: signature valid: signed by trusted key {key}.pub" in result.out


def test_an_untrusted_program_is_never_opened(programs: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """A TorchScript archive whose pickle would run a payload, re-hashed: not opened, so not even refused."""
    copy = tmp_path / "copy"
    shutil.copytree(programs, copy)
    sentinel = tmp_path / "pwned"
    payload = pickle_bytes(payloads(sentinel, tmp_path)["os.system"], 2)
    rewrite_zip(copy / "model.torchscript.pt", lambda name, data: payload if name.endswith("/data.pkl") else None)
    rehash(copy, "model.torchscript.pt")
    result = cli("verify", str(copy), "--quiet")
    assert result.code == 1
    assert "model.torchscript.pt is a program" in result.out and "signature invalid" in result.out
    assert "imports" not in result.out, "the archive was opened: its pickle was checked"
    trusted = cli("verify", str(copy), "--trust", "--quiet")  # opened, and refused by the pickle check
    assert trusted.code == 1 and "imports" in trusted.out
    assert not sentinel.exists()


def test_signed_tensor_hashes_prove_weights_and_catch_a_contradiction(tmp_path: Path) -> None:
    """step_count is in no graph: only the signed manifest's sha256 can prove it, and it must disagree when wrong."""
    folder = tmp_path / "ub"
    assert modelport.run("tests/weights_models.py:unused_buffer", out=folder, formats="state_dict,onnx", samples=0)
    cand = _by_candidate(modelport.verify(folder))["state_dict@torch"]
    assert cand.verdict == "pass" and "1 by the signed sha256" in (cand.proof or "")

    state = torch.load(folder / "state_dict.pt", weights_only=True)
    state["step_count"] = state["step_count"] + 1
    torch.save(state, folder / "state_dict.pt")
    rehash(folder, "state_dict.pt")
    Signer.create().sign(folder)  # the signer's manifest now contradicts its own per-tensor hashes
    report = modelport.verify(folder)
    cand = _by_candidate(report)["state_dict@torch"]
    assert report.verdict == "fail" and cand.verdict == "fail"
    assert [(f.output, f.input_set) for f in cand.failures()] == [("step_count", "weights vs signed")]
    assert "differs from the sha256 the signed manifest records" in (cand.failures()[0].message or "")

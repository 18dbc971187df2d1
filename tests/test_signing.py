"""Who wrote this folder: every manifest is signed (manifest.sig), and verify can require it.

A consistent rewrite (weights x 1.001, golden data regenerated, manifest re-hashed) passes the
hash and parity checks by construction; only the signature tells it from the original.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

import modelport
from modelport.models.source import BUILTIN
from modelport.signing import SIGNATURE_NAME, signature_status
from tests.conftest import load_manifest

TINY = ("--formats", "onnx", "--samples", "0", "--quiet")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config")


@pytest.fixture(autouse=True)
def local_config(config: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This machine's config folder (holds the local HMAC key) for every test here."""
    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(config))
    return config


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, config: Path) -> Path:
    """A tiny folder signed by the local key only. Do not modify it: copy it."""
    out = tmp_path_factory.mktemp("signed") / "mlp"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELPORT_CONFIG_DIR", str(config))
        report = modelport.run(out=out, formats="onnx", samples=0)
    assert report.verdict == "pass"
    return out


@pytest.fixture
def copy(signed: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(signed, target)
    return target


def _json(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_run_signs_with_a_local_key_kept_outside_the_folder(signed: Path, config: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    key = config / "local-hmac.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().strip() not in "".join(p.read_text(errors="replace") for p in signed.rglob("*.*"))
    entries = _json(signed / SIGNATURE_NAME)["signatures"]
    assert [e["algorithm"] for e in entries] == ["hmac-sha256"]
    assert SIGNATURE_NAME not in {a["path"] for a in load_manifest(signed)["artifacts"]}
    ci = tmp_path / "ci"
    result = cli(
        "verify", str(signed), "--require-signature", "--report-json", str(ci / "r.json"),
        "--junit-xml", str(ci / "j.xml"), "--summary-md", str(ci / "s.md"),
    )  # fmt: skip
    assert result.code == 0, result.out
    assert "signature: valid: signed by this machine's local key (hmac:" in result.out
    sig = _json(ci / "r.json")["signature"]
    assert (sig["status"], sig["key"], sig["algorithm"]) == ("valid", "local", "hmac-sha256")
    assert sig["key_id"] == entries[0]["key_id"]
    case = next(c for c in ET.parse(ci / "j.xml").getroot().iter("testcase") if c.get("classname") == "signature")
    assert case.find("failure") is None and case.find("skipped") is None
    assert "- signature (required): valid: signed by this machine's local key" in (ci / "s.md").read_text()


def _rewrite_with_scaled_weights(out: Path) -> None:
    """The attacker's rewrite: the MLP with its last layer x 1.001, exported by modelport itself."""
    torch.manual_seed(0)
    model, inputs = BUILTIN["mlp"].build(0)
    with torch.no_grad():
        model.output.weight.mul_(1.001)  # type: ignore[operator]
    assert modelport.run(model, example_inputs=inputs, out=out, formats="onnx", samples=0).verdict == "pass"


def test_a_consistent_rewrite_fails_require_signature(
    copy: Path, local_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(tmp_path / "attacker-config"))
    forged = tmp_path / "forged"
    _rewrite_with_scaled_weights(forged)
    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(local_config))  # back on this machine
    original_sig = (copy / SIGNATURE_NAME).read_bytes()
    original_onnx = (copy / "model.onnx").read_bytes()
    shutil.rmtree(copy)
    shutil.copytree(forged, copy)
    (copy / SIGNATURE_NAME).write_bytes(original_sig)  # the signature the folder came with
    assert (copy / "model.onnx").read_bytes() != original_onnx  # other weights
    assert cli("verify", str(copy), "--quiet").code == 0  # hashes and parity cannot tell
    result = cli("verify", str(copy), "--require-signature")
    assert result.code == 1
    assert "FAIL signature: invalid: the hmac-sha256 signature of key hmac:" in result.out
    assert "changed after it was signed" in result.out

    (copy / SIGNATURE_NAME).write_bytes((forged / SIGNATURE_NAME).read_bytes())  # the attacker's own signature
    result = cli("verify", str(copy), "--require-signature", "--quiet")
    assert result.code == 1 and "signature: unknown-key" in result.out

    (copy / SIGNATURE_NAME).unlink()
    assert cli("verify", str(copy), "--quiet").code == 0
    result = cli("verify", str(copy), "--require-signature", "--quiet")
    assert result.code == 1 and "signature: absent" in result.out


def test_one_changed_byte_of_the_manifest_is_invalid(copy: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    manifest = copy / "manifest.json"
    manifest.write_bytes(manifest.read_bytes() + b" ")  # still the same JSON, not the same bytes
    status = signature_status(copy)
    assert status.status == "invalid" and status.algorithm == "hmac-sha256"
    result = cli("verify", str(copy), "--junit-xml", str(tmp_path / "j.xml"))
    assert result.code == 0 and "signature: invalid" in result.out  # reported; required only on request
    case = next(c for c in ET.parse(tmp_path / "j.xml").getroot().iter("testcase") if c.get("classname") == "signature")
    assert case.find("skipped") is not None
    result = cli("verify", str(copy), "--require-signature", "--junit-xml", str(tmp_path / "j.xml"))
    assert result.code == 1
    case = next(c for c in ET.parse(tmp_path / "j.xml").getroot().iter("testcase") if c.get("classname") == "signature")
    assert case.find("failure") is not None


def test_another_machine_does_not_know_the_local_key(
    signed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(tmp_path / "elsewhere"))
    status = signature_status(signed)
    assert status.status == "unknown-key" and "--trusted-key" in status.message
    assert modelport.verify(signed, require_signature=True).verdict == "fail"
    assert not (tmp_path / "elsewhere").exists(), "verify never creates a key"


def test_ed25519_signature_checked_with_the_public_key_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:  # type: ignore[no-untyped-def]
    key = tmp_path / "keys" / "team"
    key.parent.mkdir()
    created = cli("key", "create", str(key))
    assert created.code == 0, created.err
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and Path(f"{key}.pub").is_file()
    key_id = created.out.split("key id: ")[1].split()[0]
    assert cli("key", "show", f"{key}.pub").out.split("key id: ")[1].split()[0] == key_id
    assert cli("key", "create", str(key)).code == 2  # never overwritten
    out = tmp_path / "shared"
    assert cli("run", "--out", str(out), *TINY, "--sign-with", str(key)).code == 0

    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(tmp_path / "colleague"))  # a machine without the local key
    result = cli("verify", str(out), "--trusted-key", f"{key}.pub")
    assert result.code == 0 and f"signature: valid: signed by trusted key {key}.pub ({key_id})" in result.out
    status = signature_status(out, [Path(f"{key}.pub")])
    assert (status.status, status.key, status.key_id, status.algorithm) == ("valid", "trusted", key_id, "ed25519")

    other = tmp_path / "keys" / "other"
    assert cli("key", "create", str(other)).code == 0
    result = cli("verify", str(out), "--trusted-key", f"{other}.pub", "--quiet")  # implies --require-signature
    assert result.code == 1 and "signature: unknown-key" in result.out

    manifest = out / "manifest.json"
    data = load_manifest(out)
    data["tolerances"]["onnx"]["atol"] = 1.0  # loosened, and the hashes left alone
    manifest.write_text(json.dumps(data, indent=2))
    result = cli("verify", str(out), "--trusted-key", f"{key}.pub", "--allow-loose", "--quiet")
    assert result.code == 1 and f"signature: invalid: the ed25519 signature of key {key_id}" in result.out


def test_bad_keys_are_one_line_usage_errors(tmp_path: Path, signed: Path, cli) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    out = tmp_path / "never"
    result = cli("run", "--out", str(out), *TINY, "--sign-with", str(junk))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1 and "key create" in result.err
    assert not out.exists() and not list(tmp_path.glob(".never*"))
    result = cli("verify", str(signed), "--trusted-key", str(junk))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1 and ".pub" in result.err


def test_only_manifest_sig_itself_is_exempt_from_the_unlisted_files_rule(copy: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("verify", str(copy), "--quiet").code == 0
    (copy / "golden" / SIGNATURE_NAME).write_text("{}")
    (copy / "manifest.sig.bak").write_text("{}")
    result = cli("verify", str(copy), "--quiet")
    assert result.code == 1
    assert f"golden/{SIGNATURE_NAME}: present but not listed" in result.out
    assert "manifest.sig.bak: present but not listed" in result.out


@pytest.mark.parametrize("damage", ["symlink", "fifo", "huge", "not-json", "no-entries"])
def test_a_damaged_signature_file_is_invalid_not_a_crash(copy: Path, tmp_path: Path, damage: str) -> None:
    sig = copy / SIGNATURE_NAME
    if damage == "symlink":
        outside = tmp_path / "outside.sig"
        shutil.move(sig, outside)
        sig.symlink_to(outside)
    elif damage == "fifo":  # opening it would wait forever for a writer
        sig.unlink()
        os.mkfifo(sig)
    elif damage == "huge":
        sig.write_bytes(sig.read_bytes() + b" " * 70_000)
    elif damage == "not-json":
        sig.write_text("[" * 100_000)
    else:
        sig.write_text(json.dumps({"kind": "modelport-signature", "version": 1, "signatures": []}))
    status = signature_status(copy)
    assert status.status == "invalid", status
    assert modelport.verify(copy, require_signature=True).verdict == "fail"


def test_a_config_folder_that_cannot_be_written_is_a_usage_error(tmp_path: Path, monkeypatch, cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(tmp_path / "file" / "config"))
    result = cli("run", "--out", str(tmp_path / "out"), *TINY)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "MODELPORT_CONFIG_DIR" in result.err and not (tmp_path / "out").exists()


def test_concurrent_first_runs_share_one_local_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from modelport.signing import Signer

    monkeypatch.setenv("MODELPORT_CONFIG_DIR", str(tmp_path / "fresh"))
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: Signer.create().hmac_key, range(32)))
    assert len(keys) == 1 and [p.name for p in (tmp_path / "fresh").iterdir()] == ["local-hmac.key"]

"""Shared fixtures. One real pipeline run per session is reused; tests that change a
folder work on their own copy of it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelport.cli import main

# Written out rather than taken from the registry, so that a change to the format set is a
# deliberate change to these tests too.
ALL_FORMATS = [
    "state_dict",
    "safetensors",
    "torchscript",
    "torch_export",
    "onnx",
    "onnx_optimized",
    "onnx_fp16",
    "onnx_int8",
]
LOSSY_FORMATS = {"onnx_fp16", "onnx_int8"}  # `all` only
RUNTIMES = {"state_dict": "torch", "safetensors": "torch", "torchscript": "torchscript", "torch_export": "torch"}
DEFAULT_CANDIDATES = [f"{f}@{RUNTIMES.get(f, 'onnxruntime')}" for f in ALL_FORMATS if f not in LOSSY_FORMATS]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Call the CLI in-process: ``cli("run", "--out", str(d))`` -> CliResult."""

    def call(*argv: str) -> CliResult:
        code = main(list(argv))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return call


@pytest.fixture(scope="session", autouse=True)
def private_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The suite never reads or writes the user's ~/.config/modelport (the local signing key lives there)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELPORT_CONFIG_DIR", str(tmp_path_factory.mktemp("modelport-config")))
        yield


@pytest.fixture(scope="session")
def mlp_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder written by one default ``modelport run`` (every format). Do not modify it."""
    folder = tmp_path_factory.mktemp("session") / "mlp"
    code = main(["run", "--out", str(folder), "--quiet"])
    assert code == 0, "the default run must pass"
    return folder


@pytest.fixture
def artifact_copy(mlp_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the session's artifact folder, safe to tamper with."""
    target = tmp_path / "copy"
    shutil.copytree(mlp_folder, target)
    return target


def load_manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return data


def rehash(folder: Path, rel: str) -> None:
    """Update one file's sha256 and size in the manifest, as an attacker or a careless edit would."""
    import hashlib

    manifest = load_manifest(folder)
    data = (folder / rel).read_bytes()
    for entry in manifest["artifacts"]:
        if entry["path"] == rel:
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["bytes"] = len(data)
            break
    else:
        raise AssertionError(f"{rel} is not listed in the manifest")
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def unsign(folder: Path) -> None:
    """Drop manifest.sig: the folder as a machine that knows no key of its signer sees it."""
    (folder / "manifest.sig").unlink()


@pytest.fixture(autouse=True)
def run_and_verify_agree(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The suite's invariant: every folder any test writes with verdict pass also passes ``verify``.

    Checked the moment ``run`` commits the folder, before a test may tamper with it. Recorded
    tolerances looser than the defaults are accepted here (``allow_loose``): that policy has its
    own tests; this one is about run and verify reaching the same verdict on the same folder.
    """
    import modelport
    from modelport.pipeline import run as run_module

    original = run_module.OutputFolder.commit
    disagreements: list[str] = []

    def commit(self: Any) -> Path:
        final: Path = original(self)
        if load_manifest(final)["verdict"] == "pass":
            # Every folder run writes is signed: its manifest.sig is valid under the local key.
            report = modelport.verify(final, allow_loose=True, require_signature=True)
            if report.verdict != "pass":
                why = (
                    [p.problem for p in report.integrity]
                    + report.notes
                    + [
                        f"{c.candidate}: {c.reason or [f.message for f in c.failures()]}"
                        for c in report.candidates
                        if c.verdict == "fail"
                    ]
                )
                disagreements.append(f"{final}: run passed, verify failed: {why}")
        return final

    monkeypatch.setattr(run_module.OutputFolder, "commit", commit)
    yield
    assert not disagreements, disagreements


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``folder`` for the block (a disk that fills up), or a skip without root."""
    folder.mkdir(parents=True, exist_ok=True)
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]).returncode
    ):
        pytest.skip("mounting a small tmpfs needs root with CAP_SYS_ADMIN")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)

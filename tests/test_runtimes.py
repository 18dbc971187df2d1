"""The runtime layer's conformance guard: every registered runtime runs the built-in MLP's artifact from its
folder and matches the golden outputs; a registered runtime without a case here fails the suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_harness import replay

from modelport import runtimes

# runtime -> the format of the MLP folder it runs
CONFORMANCE = {
    "onnx_reference": "onnx",
    "libtorch": "torchscript",
    "opencv": "onnx",
}
# Runtimes outside Python: their cases need a toolchain (`make runtimes`), so they run under the marker.
MARKED = {"libtorch": pytest.mark.runtimes, "opencv": pytest.mark.runtimes}


def test_every_registered_runtime_has_a_conformance_case() -> None:
    assert set(runtimes.names()) == set(CONFORMANCE), "add the new runtime's case to CONFORMANCE"


@pytest.mark.parametrize("name", [pytest.param(n, marks=MARKED[n]) if n in MARKED else n for n in sorted(CONFORMANCE)])
def test_runtime_runs_the_mlp_from_its_folder(name: str, mlp_folder: Path) -> None:
    results, checks = replay(name, mlp_folder, CONFORMANCE[name])
    assert checks and all(c.verdict == "pass" for c in checks), [c.message for c in checks if c.verdict == "fail"]
    runtime = runtimes.get(name)
    assert runtime.available().version
    assert len(results) == len({c.input_set for c in checks})


def test_listing_runtimes_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from modelport import runtimes; runtimes.names(); "
        "print(','.join(m for m in ('torch','onnx','onnxruntime','numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", done.stdout


def test_unknown_runtimes_are_named() -> None:
    from modelport.errors import UsageError

    with pytest.raises(UsageError, match="unknown runtime 'tensorrt'"):
        runtimes.parse_runtimes("onnx_reference,tensorrt")
    assert runtimes.parse_runtimes("all") == runtimes.names()

"""Light things stay light: the CLI's parser, --help, --version, the records, the schemas and the reports'
rows and pages import no torch, onnx, onnxruntime or numpy (measured with ``python -X importtime`` in a fresh
process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelport import exporters, formats

HEAVY = ("torch", "onnx", "onnxruntime", "numpy")


def _imported(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return {m for m in HEAVY if m in names}


@pytest.mark.parametrize(
    "code",
    [
        "import modelport.cli",
        "from modelport.cli import main; main(['--version'])",
        "from modelport.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        "from modelport.cli import main; main(['run', '--no-such-flag'])",
        "import modelport.pipeline.records, modelport.pipeline.settings",
        "from modelport.schema import report_schemas; report_schemas()",
        "from modelport import runtimes; [runtimes.get(n).name for n in runtimes.names()]",
        "import modelport.reports.rows, modelport.reports.cases, modelport.reports.html_report",
    ],
    ids=["cli-module", "version", "help", "usage-error", "records", "schemas", "runtime-registry", "reports"],
)
def test_starts_without_heavy_imports(code: str) -> None:
    assert _imported(code) == set(), "light paths must not import the ML stack"


def test_the_light_format_names_are_the_registry() -> None:
    assert exporters.names() == list(formats.FORMATS)
    assert [n for n in exporters.names() if exporters.get(n).lossy] == list(formats.LOSSY)


@pytest.mark.slow
def test_verify_of_onnx_files_imports_no_torch(mlp_folder: Path) -> None:
    """A replay of ONNX files alone (verify --runtimes onnxruntime) needs no torch: the integrity checks, the
    manifest, the golden data, the dtype policy and onnxruntime all run without it (benchmarks/bench_verify.py)."""
    code = (
        "import sys\nfrom modelport.cli import main\n"
        f"sys.exit(main(['verify', {str(mlp_folder)!r}, '--runtimes', 'onnxruntime', '--quiet']))"
    )
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "verdict: PASS" in done.stdout
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert any(n.startswith("onnxruntime.") for n in names)  # it did replay
    assert not {n for n in names if n == "torch" or n.startswith("torch.")}, "verify of ONNX files imported torch"

"""`modelport verify DIR --runtimes onnxruntime` next to Polygraphy's replay of the same ONNX file, alternating.

The folder is the built-in MLP written by `modelport run --formats onnx --runtimes onnxruntime` (one ONNX file,
so both tools replay exactly one file). Polygraphy gets the same golden data, written here from the folder's
golden `.npz` files in its own formats (`--load-inputs`: a JSON list of feed dicts saved with
`polygraphy.json.save_json`; `--load-outputs`: a `RunResults` JSON), and the same atol and rtol the manifest
records for `onnx`. Both run as commands in new processes, alternately, so load on the shared machine hits
both alike; medians and the ratio are printed, nothing is asserted. Needs polygraphy (`pip install '.[bench]'`).
Polygraphy imports torch when it is importable (its JSON reader checks), as it is beside modelport; modelport's
replay of ONNX files does not (tests/test_startup.py).

    .venv/bin/python benchmarks/bench_verify.py [--runs 11] [--formats onnx]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import modelport


def _golden_sets(folder: Path) -> list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """(inputs, outputs) of every golden set, in the manifest's order: the example, then ``golden.sets``."""
    manifest = json.loads((folder / "manifest.json").read_text())
    golden = manifest["golden"]
    pairs = [(golden["inputs"], golden["outputs"]), *((s["inputs"], s["outputs"]) for s in golden["sets"])]
    out = []
    for inputs, outputs in pairs:
        with np.load(folder / inputs) as i, np.load(folder / outputs) as o:
            out.append(({k: i[k] for k in i.files}, {k: o[k] for k in o.files}))
    return out


def _polygraphy_data(folder: Path, scratch: Path) -> tuple[Path, Path]:
    """The folder's golden sets as Polygraphy's input and output files."""
    from polygraphy.comparator import RunResults
    from polygraphy.comparator.struct import IterationResult
    from polygraphy.json import save_json

    sets = _golden_sets(folder)
    inputs, outputs = scratch / "inputs.json", scratch / "outputs.json"
    save_json([feed for feed, _ in sets], str(inputs), description="golden inputs")
    results = RunResults([("golden", [IterationResult(outputs=out, runner_name="golden") for _, out in sets])])
    results.save(str(outputs))
    return inputs, outputs


def _seconds(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--formats", default="onnx", help="formats of the folder (default onnx: one ONNX file)")
    args = parser.parse_args()
    polygraphy = shutil.which("polygraphy", path=str(Path(sys.executable).parent))
    if polygraphy is None:
        sys.exit("polygraphy is not installed: pip install -c constraints.txt '.[bench]'")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mlp"
        report = modelport.run(out=folder, formats=args.formats, runtimes="onnxruntime")
        if report.verdict != "pass":
            sys.exit(f"the run that writes the folder failed: {report.verdict}")
        tol = report.tolerances["onnx"]
        inputs, outputs = _polygraphy_data(folder, Path(tmp))
        replay = ["--load-inputs", str(inputs), "--load-outputs", str(outputs)]
        tolerances = ["--atol", str(tol.atol), "--rtol", str(tol.rtol)]
        commands = {
            "modelport verify": [sys.executable, "-m", "modelport", "verify", str(folder), "--runtimes", "onnxruntime"],
            "polygraphy run": [polygraphy, "run", str(folder / "model.onnx"), "--onnxrt", *replay, *tolerances],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        codes: dict[str, set[int]] = {name: set() for name in commands}
        for _ in range(args.runs):  # alternating, so that load on the machine hits both alike
            for name, cmd in commands.items():
                seconds, code = _seconds(cmd)
                times[name].append(seconds)
                codes[name].add(code)
    sets = len(report.golden.sets) + 1 if report.golden else 0
    print(f"replay of model.onnx (folder: {args.formats}; {sets} golden sets; atol={tol.atol} rtol={tol.rtol}),")
    print(f"{args.runs} alternating runs (median seconds; exit codes seen)")
    mine, theirs = statistics.median(times["modelport verify"]), statistics.median(times["polygraphy run"])
    for name, values in times.items():
        print(f"  {name:<18} {statistics.median(values):6.3f} s  exit {sorted(codes[name])}")
    print(f"  ratio modelport / polygraphy: {mine / theirs:.2f}x")


if __name__ == "__main__":
    main()

"""What localising a parity failure costs: ``verify`` with and without ``--model``, side by side.

    .venv/bin/python benchmarks/bench_localize.py [--runs 5]

Two models, each exported to ONNX and then damaged the way a broken exporter would (one layer's bias
off by 0.05, re-hashed): the built-in MLP, and a 100-layer MLP (``tests/localize_models.py:deep_mlp``).
For each, ``verify --runtimes onnxruntime`` runs alternately without and with ``--model`` in this
process; the medians, the seconds localising adds, and that as a multiple of the replay alone. The
aim: a few seconds on the MLP; within 2x of one full replay on 100 layers (one onnxruntime pass with
every intermediate value exposed, not one pass per layer). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _damage(folder: Path, name: str) -> None:
    import onnx
    from conftest import rehash
    from onnx import numpy_helper

    model = onnx.load(folder / "model.onnx")
    init = next(i for i in model.graph.initializer if i.name == name)
    array = numpy_helper.to_array(init).copy()
    array += 0.05
    init.CopyFrom(numpy_helper.from_array(array, name))
    onnx.save(model, folder / "model.onnx")
    rehash(folder, "model.onnx")


def _case(label: str, spec: str, bias: str, runs: int, tmp: Path) -> None:
    import modelport

    folder = tmp / label.split()[0]
    modelport.run(spec, out=folder, formats="onnx", samples=1)
    _damage(folder, bias)
    plain: list[float] = []
    local: list[float] = []
    first = "?"
    for _ in range(runs):
        start = time.perf_counter()
        modelport.verify(folder, runtimes="onnxruntime")
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        report = modelport.verify(folder, runtimes="onnxruntime", model=spec)
        local.append(time.perf_counter() - start)
        found = report.candidates[0].localization
        first = found.first if found is not None else "none"
    p, q = statistics.median(plain), statistics.median(local)
    print(f"{label}: verify {p:.3f} s, with --model {q:.3f} s (medians of {runs} alternating runs)")
    print(f"  localising adds {q - p:.3f} s = {(q - p) / p:.2f}x the replay alone; first diverging module: {first}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    models = ROOT / "tests" / "localize_models.py"
    with tempfile.TemporaryDirectory(prefix="modelport-bench-localize-") as tmp:
        _case("mlp", "mlp", "output.bias", args.runs, Path(tmp))
        _case("deep_mlp (100 Linear + 100 Tanh)", f"{models}:deep_mlp", "190.bias", args.runs, Path(tmp))


if __name__ == "__main__":
    main()

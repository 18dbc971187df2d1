"""The float64 reference: a float64 copy of the model against the layer-by-layer estimate.

For an MLP of about ``--params`` parameters, each estimate runs in its own process (so peak
memory is its own), alternately, ``--runs`` times. Prints the median time of one float64
forward and the median peak resident memory above the float32 model, for both, and their
ratios; and checks the two agree bit for bit. Nothing is asserted.

    .venv/bin/python benchmarks/bench_float64.py [--params 60e6] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch


def _model(params: float) -> torch.nn.Module:
    width = int((params / 3) ** 0.5)
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, width), torch.nn.ReLU(),
        torch.nn.Linear(width, width),
    ).eval()  # fmt: skip


def _child(estimate: str, params: float) -> None:
    from modelport.pipeline.reference64 import Float64Reference
    from modelport.signature import Signature, TensorSpec

    model = _model(params)
    width = model[0].in_features
    x = np.random.default_rng(0).standard_normal((8, width)).astype(np.float32)
    sig = Signature(
        inputs=[TensorSpec(name="x", shape=["batch", width], dtype="float32")],
        outputs=[TensorSpec(name="output", shape=["batch", width], dtype="float32")],
        call="positional",
    )
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if estimate == "copy":
        import copy

        ref = Float64Reference(copy.deepcopy(model).double(), sig, "copy")
    else:
        ref = Float64Reference(model, sig, "layerwise")
    out = ref.infer({"x": x})["output"]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "extra_mb": (peak - base) / 1024, "checksum": float(np.abs(out).sum())}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", type=float, default=60e6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=["copy", "layerwise"])
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.params)
        return
    results: dict[str, list[dict[str, float]]] = {"copy": [], "layerwise": []}
    for _ in range(args.runs):
        for estimate in results:  # alternately, so drift on a shared machine hits both alike
            cmd = [sys.executable, __file__, "--child", estimate, "--params", str(args.params)]
            results[estimate].append(json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout))
    weights_mb = args.params * 4 / 2**20
    print(f"MLP of about {args.params:,.0f} parameters ({weights_mb:,.0f} MB float32), {args.runs} runs each")
    print(f"{'estimate':<10} {'median s':>9} {'median extra peak MB':>22} {'x weights':>10}")
    medians = {}
    for estimate, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        extra = statistics.median(r["extra_mb"] for r in runs)
        medians[estimate] = (seconds, extra)
        print(f"{estimate:<10} {seconds:>9.3f} {extra:>22,.0f} {extra / weights_mb:>10.2f}")
    (cs, cm), (ls, lm) = medians["copy"], medians["layerwise"]
    print(f"layerwise / copy: time {ls / cs:.2f}x, extra memory {lm / max(cm, 1e-9):.2f}x")
    same = {r["checksum"] for rs in results.values() for r in rs}
    print(f"outputs identical across estimates: {len(same) == 1}")


if __name__ == "__main__":
    main()

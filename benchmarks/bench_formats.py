"""Every format on every test model: export time, file size, worst error and the margin to its tolerance.

This is where the default tolerances come from: each row shows the largest error seen
over all input sets, the smallest atol that would have passed (at the default rtol) and
how far below the default atol that is. Nothing is asserted.

    .venv/bin/python benchmarks/bench_formats.py [--models cnn,transformer] [--samples 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import modelport

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["mlp", "cnn", "transformer", "embedding_bag", "multi_input", "tied", "dropout_bn", "double", "half"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    header = f"{'model':<14} {'format':<15} {'export s':>9} {'bytes':>9} {'max abs err':>12} {'min atol':>10} "
    print(header + f"{'default atol':>13} {'margin':>8} {'min cos':>9}  verdict")
    print("(margin: how many times the worst error fits in its tolerance bound)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            spec = name if name == "mlp" else f"{ROOT / 'tests' / 'zoo.py'}:{name}"
            report = modelport.run(spec, out=Path(tmp) / name, formats="all", samples=args.samples)
            seconds = {s.name: s.seconds for s in report.stages}
            sizes = {a.format: a.bytes for a in report.artifacts if a.role in ("model", "weights")}
            for cand in report.candidates:
                if cand.status == "skipped":
                    print(f"{name:<14} {cand.format:<15} skipped: {cand.reason}")
                    continue
                tol = cand.tolerance.atol
                needed = cand.min_passing_atol
                used = cand.tolerance_used
                margin = "-" if not used else f"{1 / used:.0f}x"
                cos = "-" if cand.min_cosine is None else f"{cand.min_cosine:.6f}"
                err = "-" if cand.max_abs_err is None else f"{cand.max_abs_err:.3g}"
                print(
                    f"{name:<14} {cand.format:<15} {seconds.get(cand.format, 0):9.3f} {sizes.get(cand.format, 0):9d} "
                    f"{err:>12} {needed or 0:10.3g} {tol:13.3g} {margin:>8} {cos:>9}  {cand.verdict}"
                )


if __name__ == "__main__":
    main()

"""The real-model zoo's table: each case of tests/thirdparty.py through ``--formats all``, then ``verify``.

One markdown row per case: per format the run's verdict and worst error (``verify`` shown only where it
disagrees with the run), then the run's and verify's wall times. Then every failure's reason. Nothing is
asserted: tests/test_thirdparty_zoo.py asserts the verdicts. Needs the zoo extra (transformers, torchvision).

    .venv/bin/python benchmarks/zoo_table.py [--cases bert,lstm] [--samples 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import modelport
from modelport import exporters

ROOT = Path(__file__).resolve().parent.parent
FORMATS = exporters.names()  # every registered format, in stage order


def _cell(run: modelport.Report, verified: modelport.VerifyReport, fmt: str) -> str:
    cand = next((c for c in run.candidates if c.format == fmt), None)
    if cand is None:
        return "-"
    text = cand.verdict if cand.status != "failed" else "fail (export)"
    if cand.max_abs_err is not None:
        text += f" {cand.max_abs_err:.2g}"
    ver = next((c.verdict for c in verified.candidates if c.format == fmt), "-")
    if ver != cand.verdict and cand.status != "failed":
        text += f", verify {ver}"
    return text


def _reasons(case: str, run: modelport.Report, verified: modelport.VerifyReport) -> list[str]:
    lines = []
    for source, cands in (("run", run.candidates), ("verify", verified.candidates)):
        for c in cands:
            if c.verdict != "fail":
                continue
            failing = c.failures()
            why = c.reason or f"{failing[0].input_set}/{failing[0].output}: {failing[0].message}"
            lines.append(f"- {case} {c.format} ({source}): {why}")
    return lines


def main() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from thirdparty import CASES, available

    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--samples", type=int, default=1)
    args = parser.parse_args()
    missing = available()
    if missing:
        sys.exit(missing)
    print("| case | " + " | ".join(FORMATS) + " | run s | verify s |")
    print("|---" * (len(FORMATS) + 3) + "|")
    reasons: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            spec = f"{ROOT / 'tests' / 'thirdparty.py'}:{CASES[case].factory}"
            started = time.perf_counter()
            run = modelport.run(spec, out=Path(tmp) / case, formats="all", samples=args.samples, **CASES[case].options)
            ran = time.perf_counter()
            verified = modelport.verify(Path(tmp) / case)
            done = time.perf_counter()
            cells = " | ".join(_cell(run, verified, f) for f in FORMATS)
            print(f"| {case} | {cells} | {ran - started:.0f} | {done - ran:.0f} |", flush=True)
            reasons += _reasons(case, run, verified)
    print()
    print("\n".join(reasons))


if __name__ == "__main__":
    main()

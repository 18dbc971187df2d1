#!/usr/bin/env python3
"""A misbehaving stand-in for the C++ runtime programs (MODELPORT_LIBTORCH_PROGRAM / MODELPORT_OPENCV_PROGRAM).

It tests modelport's handling of a program that fails, not a runtime: MODELPORT_FAKE_CPP picks how.
  hang         sleeps (with a child sleeping too) until killed
  crash        writes a line to stderr and dies of SIGSEGV
  exit         writes a line to stderr and exits 1
  garbage      writes a sets.json that is not JSON
  short        an output whose file holds fewer bytes than its shape needs
  wrong_shape  outputs of shape (batch, MODELPORT_FAKE_WIDTH or 9), consistent with their bytes
  wrong_dtype  the same outputs declared float64
  layer_fails  zeros of the right shape (width MODELPORT_FAKE_WIDTH) for every set but the last, which reports
               an OpenCV layer that failed: wrong numbers that must not hide behind "unsupported"
With MODELPORT_FAKE_LOG set, it appends its arguments there, and hang appends its child's pid.
Usage as the real programs: PROG MODEL INPUT_DIR OUTPUT_DIR [--dtypes D,...] NAME...; PROG --check MODEL.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    mode, log = os.environ.get("MODELPORT_FAKE_CPP", ""), os.environ.get("MODELPORT_FAKE_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(" ".join(sys.argv[1:]) + "\n")
    if sys.argv[1] == "--check":
        return 0
    args = sys.argv[4:]
    if args[:1] == ["--dtypes"]:
        args = args[2:]
    inputs, out = json.loads((Path(sys.argv[2]) / "sets.json").read_text()), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    if mode == "hang":
        child = subprocess.Popen(["sleep", "600"])  # a child: the whole process group must go
        if log:
            with open(log, "a") as fh:
                fh.write(f"child {child.pid}\n")
        print("fake: hanging", file=sys.stderr, flush=True)
        time.sleep(600)
    if mode == "crash":
        print("fake: about to crash", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "exit":
        print("fake: cannot load the model", file=sys.stderr)
        return 1
    if mode == "garbage":
        (out / "sets.json").write_text("tensor([0.1, 0.2]) {not json")
        return 0
    width = int(os.environ.get("MODELPORT_FAKE_WIDTH", "9"))
    sets = []
    for k, entry in enumerate(inputs["sets"]):
        if mode == "layer_fails" and k == len(inputs["sets"]) - 1:
            sets.append({"name": entry["name"], "error": "OpenCV layer onnx_node!n1 of type Scale failed: boom"})
            continue
        batch = entry["tensors"][0]["shape"][0]
        tensors = []
        for j, name in enumerate(args):
            shape, dtype, size = [batch, width], "float32", batch * width * 4
            if mode == "wrong_dtype":
                dtype, size = "float64", batch * width * 8
            if mode == "short":
                size -= 4
            (out / f"{k}_{j}.bin").write_bytes(bytes(size))
            tensors.append({"name": name, "dtype": dtype, "shape": shape, "file": f"{k}_{j}.bin"})
        sets.append({"name": entry["name"], "tensors": tensors})
    (out / "sets.json").write_text(json.dumps({"sets": sets}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The seed pipeline as a minimal hand-written script: the library calls and nothing more.

The baseline of ``bench_seed.py``: build the MLP, tensor save/load, ``state_dict`` save and load
into a clone, trace + save + load, dynamo ONNX export, one ONNX Runtime run.

    .venv/bin/python benchmarks/seed_script.py OUT_DIR [--freeze-at-exit]

``--freeze-at-exit`` gives the script modelport's own exit (``gc.freeze()`` before the interpreter shuts down,
see ``modelport/shutdown.py``), so that the benchmark can show how much of the difference that exit is.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import onnxruntime as ort
import torch
from torch import nn


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    x = torch.randn(2, 20)

    torch.save(x, out / "x.pt")
    torch.load(out / "x.pt", weights_only=True)

    torch.save(model.state_dict(), out / "model.pt")
    clone = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
    clone.load_state_dict(torch.load(out / "model.pt", weights_only=True))

    traced = torch.jit.trace(model, x)
    traced.save(str(out / "model.ts"))
    torch.jit.load(str(out / "model.ts"))

    torch.onnx.export(model, (x,), str(out / "model.onnx"), dynamo=True, input_names=["x"], output_names=["y"])
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    session.run(None, {"x": x.numpy()})


if __name__ == "__main__":
    main()
    if "--freeze-at-exit" in sys.argv[2:]:
        gc.freeze()

#!/usr/bin/env python3
"""A runtime program that answers every set in modelport's exchange form, but wrongly, as $DOUBLE_MODE says.

Called as: node run_node.js MODEL INPUT_DIR OUTPUT_DIR. Every set gets one float32 output named by
$DOUBLE_OUTPUT. wrong_shape: shape (1, 10) whatever the batch (a well-formed, wrong answer);
short_file: declares (batch, 10) but writes one element less; wrong_dtype: the right values (the bytes of
$DOUBLE_ANSWER), but float64.
"""

import json
import os
import sys
from pathlib import Path

_, _, _, inputs, outputs = sys.argv
mode, output = os.environ["DOUBLE_MODE"], os.environ["DOUBLE_OUTPUT"]
index = json.loads((Path(inputs) / "sets.json").read_text())
sets = []
for k, entry in enumerate(index["sets"]):
    batch = entry["tensors"][0]["shape"][0]
    shape, dtype, count = [batch, 10], "float32", batch * 10
    if mode == "wrong_shape":
        shape, count = [1, 10], 10
    elif mode == "short_file":
        count -= 1
    elif mode == "wrong_dtype":
        dtype = "float64"
    size = 8 if dtype == "float64" else 4
    data = Path(os.environ["DOUBLE_ANSWER"]).read_bytes() if mode == "wrong_dtype" else b"\0" * count * size
    (Path(outputs) / f"{k}.bin").write_bytes(data)
    sets.append(
        {"name": entry["name"], "tensors": [{"name": output, "dtype": dtype, "shape": shape, "file": f"{k}.bin"}]}
    )
(Path(outputs) / "sets.json").write_text(json.dumps({"kind": "modelport-tensors", "version": 1, "sets": sets}))

"""Localisation on a real model's real failure (zoo tier): T5's float16 graph, wrong only at long sequences.

float16 rounds log(16) in T5's relative-position bucket formula, so key-query distances of 16 and 32 fall
into the neighbouring bucket: the bias embedding's output is the first module out of tolerance, but fed
the right indices it is right; the attention module around it, which computes the buckets, is to blame.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from thirdparty import available

import modelport

pytestmark = pytest.mark.zoo

SPEC = f"{Path(__file__).with_name('thirdparty.py')}:t5_long"
BUCKETS = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias"


def test_t5_float16_bucket_error_is_localized(tmp_path: Path) -> None:
    missing = available()
    if missing is not None:
        pytest.skip(missing)
    report = modelport.run(
        SPEC, out=tmp_path / "t5", formats="onnx,onnx_fp16", onnx_exporter="legacy", samples=1,
        dynamic="input_ids:1=seq,attention_mask:1=seq,decoder_input_ids:1=dec",
    )  # fmt: skip
    fp16 = next(c for c in report.candidates if c.format == "onnx_fp16")
    assert fp16.verdict == "fail", "t5-small's buckets in float16 must fail parity at 64 tokens"
    assert next(c for c in report.candidates if c.format == "onnx").verdict == "pass"
    loc = fp16.localization
    assert loc is not None and loc.status == "localized", loc
    assert loc.first == BUCKETS, loc.summary
    order = {e.module: e for e in loc.modules}
    first = order[BUCKETS].chained
    assert first is not None and first.verdict == "fail" and (first.tolerance_used or 0) > 1
    # Fed the right bucket indices the embedding is right: the attention's own bucket arithmetic is to blame.
    assert order[BUCKETS].own is not None and order[BUCKETS].own.verdict == "pass"
    assert loc.blamed == BUCKETS.rsplit(".", 1)[0], loc.summary
    earlier = [e for e in loc.modules if e.order < order[BUCKETS].order and e.chained is not None]
    assert len(earlier) >= 4  # the embedding, the layer norm, q, k, v
    assert all(e.chained.verdict == "pass" for e in earlier if e.chained), [
        (e.module, e.chained) for e in earlier if e.chained and e.chained.verdict != "pass"
    ]

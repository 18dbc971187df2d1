"""The real-model zoo: third-party models (tests/thirdparty.py) through ``--formats all``, then ``verify``.

EXPECTED is today's verdict of every model x format, for the run and for ``verify`` on the folder it
wrote; a test fails as soon as any cell changes, in either direction, so a fix flips its cells on purpose.
Cells marked ``FALSE FAILURE`` fail a correct artifact (an issue 7 item); the other failures are real.
The run's figures behind each cell are in the README's zoo table.

Marked ``zoo`` (``make zoo``, run by ``.ci/run``; ``make test`` leaves it out). Skipped, with the reason,
when transformers or torchvision is not installed (``pip install -e '.[zoo]'``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import thirdparty
import torch
from scaled_layer import LOSSLESS, scaled_output_layer_checks
from thirdparty import CASES

import modelport

pytestmark = pytest.mark.zoo


@pytest.fixture(scope="module", autouse=True)
def _zoo_packages() -> None:
    """Skip, saying why, without transformers or torchvision; checked only when a zoo test runs, so that
    collecting this module for `make test` (which deselects it) does not import them (seconds)."""
    missing = thirdparty.available()
    if missing is not None:
        pytest.skip(missing)


SPEC = Path(__file__).with_name("thirdparty.py")


# format -> (run verdict, verify verdict); verify "-": the format was not exported, so verify has no candidate.
P, F = "pass", "fail"
NOT_EXPORTED = (F, "-")
ALL_PASS = dict.fromkeys([*LOSSLESS, "onnx_fp16", "onnx_int8"], (P, P))
# Every false failure issue 7 found here is fixed: resnet18's and mobilenet's ONNX on the x100 set pass on the
# float64 budget (item 2), BERT/LSTM/GRU weights files are proven by value (item 1), T5's optimized graph passes
# a checker that knows onnxruntime's operators (item 3), LSTM/GRU keep their sequence axis in ONNX (item 4) and
# export with torch.export, BERT's torch.export takes torch's suggested range (seq <= 64), and mobilenet's fp16
# miss on the x100 set is flagged, not failed (item 5). One real failure remains:
EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "resnet18": ALL_PASS,
    "mobilenet": ALL_PASS,
    "bert": ALL_PASS,
    "gpt2": ALL_PASS,
    "vit": ALL_PASS,
    "t5": {
        **ALL_PASS,
        # Real export failure (no artifact): the dynamo exporter with dynamic seq/dec axes raises "Cannot view a
        # tensor with shape torch.Size([s.., s.., 2, 16]) and strides (...) as a tensor with shape (s.., s.., 32)!",
        # also when torch.onnx.export is called directly with keyword inputs (a torch.onnx decomposition bug);
        # torch.export of the same model works, and the legacy exporter exports it (t5_legacy).
        "onnx": NOT_EXPORTED,
        "onnx_optimized": NOT_EXPORTED,  # needs the onnx export
        "onnx_fp16": NOT_EXPORTED,
        "onnx_int8": NOT_EXPORTED,
    },
    "t5_legacy": ALL_PASS,
    "lstm": ALL_PASS,
    "lstm_legacy": ALL_PASS,
    "gru": ALL_PASS,
}
# Checks reported but not gating (item 5): (case, format) -> the edge sets flagged.
FLAGGED = {("mobilenet", "onnx_fp16"): {"large"}}  # float16 overflows on inputs x100 (max err 4.7e3, cosine 0.72)


@dataclass
class Ran:
    report: modelport.Report
    folder: Path
    verified: modelport.VerifyReport | None = None

    def verify(self) -> modelport.VerifyReport:
        if self.verified is None:
            self.verified = modelport.verify(self.folder)
        return self.verified


Zoo = Callable[[str], Ran]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    """One ``--formats all --samples 1`` run per case (and one verify), shared by this module's tests."""
    root = tmp_path_factory.mktemp("thirdparty")
    cache: dict[str, Ran] = {}

    def get(case: str) -> Ran:
        if case not in cache:
            out = root / case
            spec = f"{SPEC}:{CASES[case].factory}"
            cache[case] = Ran(modelport.run(spec, out=out, formats="all", samples=1, **CASES[case].options), out)
        return cache[case]

    return get


def _describe(c: Any) -> str:
    failures = c.failures()
    why = c.reason or (f"{failures[0].input_set}/{failures[0].output}: {failures[0].message}" if failures else "")
    err = "-" if c.max_abs_err is None else f"{c.max_abs_err:.3g}"
    return f"{c.verdict} (max abs err {err}) {why}".strip()


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_verdict_per_format(case: str, zoo: Zoo) -> None:
    report = zoo(case).report
    observed = {c.format: c for c in report.candidates}
    expected = {fmt: run for fmt, (run, _) in EXPECTED[case].items()}
    changed = {
        fmt: f"expected {expected.get(fmt)}, got {_describe(c)}"
        for fmt, c in observed.items()
        if expected.get(fmt) != c.verdict
    }
    assert not changed and set(observed) == set(expected), changed
    assert report.verdict == (P if all(v == P for v in expected.values()) else F)
    flagged = {(case, c.format): {k.input_set for k in c.flagged()} for c in report.candidates if c.flagged()}
    assert flagged == {k: v for k, v in FLAGGED.items() if k[0] == case}


@pytest.mark.parametrize("case", sorted(CASES))
def test_verify_verdict_per_format(case: str, zoo: Zoo) -> None:
    result = zoo(case).verify()
    observed = {c.format: c for c in result.candidates}
    expected = {fmt: ver for fmt, (_, ver) in EXPECTED[case].items()}
    changed = {
        fmt: f"expected {want}, got {_describe(observed[fmt]) if fmt in observed else '-'}"
        for fmt, want in expected.items()
        if (observed[fmt].verdict if fmt in observed else "-") != want
    }
    assert not changed and set(observed) <= set(expected), changed
    assert not result.integrity, result.integrity


@pytest.mark.parametrize("case", sorted(CASES))
def test_what_the_run_passed_verify_passes(case: str, zoo: Zoo) -> None:
    """The invariant: a candidate the run passed passes verify, and a folder the run passed passes verify."""
    ran = zoo(case)
    report, result = ran.report, ran.verify()
    verified = {c.format: c for c in result.candidates}
    broken = {
        c.format: _describe(verified[c.format]) if c.format in verified else "missing from verify"
        for c in report.candidates
        if c.verdict == P and (c.format not in verified or verified[c.format].verdict != P)
    }
    assert not broken, broken
    if report.verdict == P:
        assert result.verdict == P, result.notes


def _factory(case: str) -> Callable[[], torch.nn.Module]:
    create = getattr(thirdparty, CASES[case].factory)

    def build() -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):  # its weights are replaced: leave the caller's RNG alone
            module: torch.nn.Module = create()[0]
            return module

    return build


@pytest.mark.parametrize("case", sorted(CASES))
def test_lossless_formats_fail_a_scaled_output_layer(case: str, zoo: Zoo) -> None:
    """Issue 7: every lossless artifact fails once the layer nearest the output is scaled by 1.001.

    Checked wherever the scaled model differs from the original beyond the format's default tolerance in
    float64; at least one such check must be one the unscaled artifact passes (else it proves nothing).
    """
    results = scaled_output_layer_checks(zoo(case).folder, _factory(case))
    assert results, "no lossless artifact was exported"
    for r in results:
        assert any(s == "example" for s, _ in r.must_fail), f"{r.fmt}: scaling {r.layer} changes nothing in float64"
        assert not r.missed, f"{r.fmt}: scaling {r.layer} by 1.001 went unnoticed on {r.missed} ({dict(r.failed)})"
        assert r.informative, f"{r.fmt}: fails every set it should, but also without the scaled layer"


def test_bert_weights_files_are_proven_against_the_onnx_file(tmp_path: Path) -> None:
    """Issue 7 item 1's folder: no .pt2, the dynamo exporter renames, transposes and folds BERT's weights."""
    folder = tmp_path / "bert"
    report = modelport.run(
        f"{SPEC}:bert", out=folder, formats="state_dict,safetensors,onnx", samples=0, **CASES["bert"].options
    )
    assert report.verdict == P
    result = modelport.verify(folder)
    assert result.verdict == P
    for cand in result.candidates:
        if cand.format in ("state_dict", "safetensors"):
            assert cand.verdict == P and "identical to the verified onnx file's" in (cand.proof or ""), cand.proof
            assert "by value" in (cand.proof or ""), cand.proof


def test_default_formats_give_the_tables_lossless_cells(tmp_path: Path) -> None:
    """A run with the default formats judges each lossless format as the table does."""
    report = modelport.run(f"{SPEC}:bert", out=tmp_path / "bert", samples=1, **CASES["bert"].options)
    assert {c.format: c.verdict for c in report.candidates} == {f: EXPECTED["bert"][f][0] for f in LOSSLESS}
    verified = {c.format: c.verdict for c in modelport.verify(tmp_path / "bert").candidates}
    assert verified == {f: EXPECTED["bert"][f][1] for f in LOSSLESS if EXPECTED["bert"][f][1] != "-"}

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
ITEM1 = (P, F)  # FALSE FAILURE: issue 7 item 1 (verify's weights check matches ONNX initializer names)
UNPROVEN = (P, F)  # correct weights file; verify has no verified .pt2/.onnx left to check it against
EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "resnet18": {
        "state_dict": (P, P),
        "safetensors": (P, P),
        "torchscript": (P, P),
        "torch_export": (P, P),
        # FALSE FAILURE: issue 7 item 2. `large` set only: onnx is 3.6e-4 from float64, the float32 original 3.5e-4.
        "onnx": (F, F),
        "onnx_optimized": (F, F),  # FALSE FAILURE: issue 7 item 2 (the same graph, the same figures)
        "onnx_fp16": (P, P),
        "onnx_int8": (P, P),
    },
    "mobilenet": {
        "state_dict": (P, P),
        "safetensors": (P, P),
        "torchscript": (P, P),
        "torch_export": (P, P),
        # FALSE FAILURE: issue 7 item 2. `large` set only: onnx is 0.34 from float64, closer than the original (0.38).
        "onnx": (F, F),
        "onnx_optimized": (F, F),  # FALSE FAILURE: issue 7 item 2 (as onnx)
        # Issue 7 item 5: fails only on the x100 `large` edge set, where float16 really is far off (max err 4.7e3);
        # a false failure under item 5's policy (lossy formats gate on representative sets only).
        "onnx_fp16": (F, F),
        "onnx_int8": (P, P),
    },
    "bert": {
        "state_dict": ITEM1,
        "safetensors": ITEM1,
        "torchscript": (P, P),
        # FALSE FAILURE: issue 7 "messages" (torch.export range): torch's own error suggests
        # `seq = Dim('seq', max=64)` (max_position_embeddings), with which it exports; modelport drops that hint.
        "torch_export": NOT_EXPORTED,
        "onnx": (P, P),
        "onnx_optimized": (P, P),
        "onnx_fp16": (P, P),
        "onnx_int8": (P, P),
    },
    "gpt2": dict.fromkeys([*LOSSLESS, "onnx_fp16", "onnx_int8"], (P, P)),
    "vit": dict.fromkeys([*LOSSLESS, "onnx_fp16", "onnx_int8"], (P, P)),
    "t5": {
        "state_dict": (P, P),
        "safetensors": (P, P),
        "torchscript": (P, P),
        "torch_export": (P, P),
        # Real export failure (no artifact), not in issue 7: the dynamo exporter with dynamic seq/dec axes raises
        # "Cannot view a tensor with shape torch.Size([s.., s.., 2, 16]) and strides (...) as a tensor with shape
        # (s.., s.., 32)!", also when called directly with keyword inputs (a torch.onnx decomposition bug);
        # torch.export of the same model works. The legacy exporter (t5_legacy) exports it.
        "onnx": NOT_EXPORTED,
        "onnx_optimized": NOT_EXPORTED,  # needs the onnx export
        "onnx_fp16": NOT_EXPORTED,
        "onnx_int8": NOT_EXPORTED,
    },
    "t5_legacy": {
        "state_dict": (P, P),
        "safetensors": (P, P),
        "torchscript": (P, P),
        "torch_export": (P, P),
        "onnx": (P, P),
        # FALSE FAILURE: issue 7 item 3: "onnx.checker rejected model.optimized.onnx: No Op registered for
        # SimplifiedLayerNormalization with domain_version of 20" (onnxruntime's own com.microsoft fusion).
        "onnx_optimized": NOT_EXPORTED,
        "onnx_fp16": (P, P),
        "onnx_int8": (P, P),
    },
    "lstm": {
        # FALSE FAILURE (verify): a correct file that verify cannot prove (item 4 and torch.export leave no .onnx
        # or .pt2 to check its tensors against); item 1 asks for "unproven"; the message also misleads (issue 7
        # "messages"): "(include torch_export in --formats)" although it was included and failed.
        "state_dict": UNPROVEN,
        "safetensors": UNPROVEN,
        "torchscript": (P, P),
        # Real failure (torch's limit, not modelport's): torch.export specialises nn.LSTM's sequence axis,
        # "You marked seq as dynamic but your code specialized it to be a constant (10)", suggested fix `seq = 10`,
        # keyword or positional alike. Issue 7 counts it with BERT's; unlike BERT's, no range fixes it.
        "torch_export": NOT_EXPORTED,
        # FALSE FAILURE: issue 7 item 4: "the exported graph fixes x axis 1 (seq) at 10 ... the model likely
        # specialises": plain torch.onnx.export(dynamo=True) given x as a keyword keeps `seq` dynamic and is
        # within 4e-8 at length 20; given x positionally (as modelport's flat wrapper does) it fixes it at 10.
        "onnx": NOT_EXPORTED,
        "onnx_optimized": NOT_EXPORTED,  # needs the onnx export (item 4)
        "onnx_fp16": NOT_EXPORTED,
        "onnx_int8": NOT_EXPORTED,
    },
    "lstm_legacy": {
        "state_dict": ITEM1,  # the legacy exporter repacks LSTM weights: "holds tensors the onnx artifact does not"
        "safetensors": ITEM1,
        "torchscript": (P, P),
        "torch_export": NOT_EXPORTED,  # real: torch.export specialises nn.LSTM's sequence axis (as lstm)
        "onnx": (P, P),
        "onnx_optimized": (P, P),
        "onnx_fp16": (P, P),
        "onnx_int8": (P, P),
    },
}
EXPECTED["gru"] = EXPECTED["lstm"]  # the same cells for the same reasons (checked the same way for nn.GRU)


def _expected_verify_false_failures(case: str) -> list[str]:
    """Formats that pass the run and fail verify: always false failures (the run proved them)."""
    return [fmt for fmt, (run, ver) in EXPECTED[case].items() if run == P and ver == F]


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
def test_what_the_run_passed_verify_passes(case: str, zoo: Zoo, request: pytest.FixtureRequest) -> None:
    """The invariant: a candidate the run passed passes verify, and a folder the run passed passes verify."""
    known = _expected_verify_false_failures(case)
    if known:
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason=f"FALSE FAILURE (issue 7 item 1): the run passed {', '.join(known)}, verify fails it",
            )
        )
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


def test_default_formats_give_the_tables_lossless_cells(tmp_path: Path) -> None:
    """A run with the default formats judges each lossless format as the table does (BERT: items 1 and torch.export)."""
    report = modelport.run(f"{SPEC}:bert", out=tmp_path / "bert", samples=1, **CASES["bert"].options)
    assert {c.format: c.verdict for c in report.candidates} == {f: EXPECTED["bert"][f][0] for f in LOSSLESS}
    verified = {c.format: c.verdict for c in modelport.verify(tmp_path / "bert").candidates}
    assert verified == {f: EXPECTED["bert"][f][1] for f in LOSSLESS if EXPECTED["bert"][f][1] != "-"}

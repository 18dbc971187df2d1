"""Tolerance flags: parsing --atol/--rtol/--tol and the precedence between them."""

from __future__ import annotations

import pytest

from modelport.errors import UsageError
from modelport.validators.records import Tolerance
from modelport.validators.tolerance import parse_float, parse_tol_list, resolve_tolerances

KNOWN = ["state_dict", "safetensors", "torchscript", "onnx"]
DEFAULTS = {
    "state_dict": Tolerance(atol=0, rtol=0),  # an exact clone: must never be loosened by accident
    "onnx": Tolerance(atol=1e-5, rtol=1e-5),
    "torchscript": Tolerance(atol=1e-6, rtol=1e-6),
}


# --- parse_float ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["abc", "", "-1", "-1e-9", "nan", "inf", "-inf"])
def test_parse_float_rejects_with_the_flag_name(text: str) -> None:
    with pytest.raises(UsageError, match="--atol"):
        parse_float(text, "--atol")


@pytest.mark.parametrize(("text", "value"), [("1e-5", 1e-5), ("0", 0.0), ("0.25", 0.25), (" 3 ", 3.0)])
def test_parse_float_accepts(text: str, value: float) -> None:
    assert parse_float(text, "--rtol") == value


# --- parse_tol_list ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["onnx=1e-5,1e-4"], {"onnx": (1e-5, 1e-4)}),
        (["onnx=1e-5"], {"onnx": (1e-5, None)}),  # rtol left to the global flag or default
        (
            ["onnx=1e-5,1e-4,torchscript=1e-6,1e-5"],
            {"onnx": (1e-5, 1e-4), "torchscript": (1e-6, 1e-5)},
        ),
        (["onnx=1e-5,torchscript=1e-6,1e-5"], {"onnx": (1e-5, None), "torchscript": (1e-6, 1e-5)}),
        (  # the flag repeated
            ["onnx=1e-5,1e-4", "state_dict=0"],
            {"onnx": (1e-5, 1e-4), "state_dict": (0.0, None)},
        ),
        ([" onnx = 1e-5 , 1e-4 "], {"onnx": (1e-5, 1e-4)}),  # spaces are tolerated
        ([], {}),
    ],
)
def test_parse_tol_list(texts: list[str], expected: dict[str, tuple[float, float | None]]) -> None:
    assert parse_tol_list(texts, KNOWN) == expected


def test_parse_tol_list_unknown_format_names_it_and_lists_known() -> None:
    with pytest.raises(UsageError) as info:
        parse_tol_list(["onnxx=1e-5"], KNOWN)
    message = str(info.value)
    assert "onnxx" in message
    for fmt in KNOWN:
        assert fmt in message


@pytest.mark.parametrize(
    "texts",
    [
        ["1e-5"],  # a number with no FORMAT= entry
        ["onnx=1,2,3"],  # a third number
        ["onnx=1e-5,1e-4", "1e-3"],  # a stray number in a repeated flag after a complete entry
        ["onnx=-1e-5"],  # negative atol
        ["onnx=1e-5,-1e-4"],  # negative rtol
        ["onnx=abc"],
        ["onnx="],
        ["onnx=1e-5,nan"],
    ],
)
def test_parse_tol_list_rejects(texts: list[str]) -> None:
    with pytest.raises(UsageError, match="--tol"):
        parse_tol_list(texts, KNOWN)


# --- resolve_tolerances --------------------------------------------------------------------


def resolve(**kw) -> dict[str, Tolerance]:
    return resolve_tolerances(DEFAULTS, **kw)


def test_no_overrides_keeps_defaults() -> None:
    assert resolve() == DEFAULTS
    assert all(t.source == "default" for t in resolve().values())


def test_global_flags_override_non_exact_formats() -> None:
    got = resolve(atol=1e-3, rtol=1e-2)
    assert got["onnx"] == Tolerance(atol=1e-3, rtol=1e-2, source="--atol/--rtol")
    assert got["torchscript"] == Tolerance(atol=1e-3, rtol=1e-2, source="--atol/--rtol")


@pytest.mark.parametrize(
    ("kw", "atol", "rtol"),
    [
        ({"atol": 1e-3}, 1e-3, 1e-5),  # rtol stays the default
        ({"rtol": 1e-2}, 1e-5, 1e-2),  # atol stays the default
    ],
)
def test_one_global_flag_keeps_the_other_default(kw: dict[str, float], atol: float, rtol: float) -> None:
    assert resolve(**kw)["onnx"] == Tolerance(atol=atol, rtol=rtol, source="--atol/--rtol")


@pytest.mark.parametrize("kw", [{"atol": 1.0, "rtol": 1.0}, {"atol": 1.0}, {"rtol": 1.0}, {"atol": 0.0}])
def test_global_flags_never_loosen_an_exact_format(kw: dict[str, float]) -> None:
    assert resolve(**kw)["state_dict"] == Tolerance(atol=0, rtol=0, source="default")


def test_per_format_tol_wins_over_global() -> None:
    got = resolve(atol=1e-3, rtol=1e-2, per_format={"onnx": (1e-7, 1e-6)})
    assert got["onnx"] == Tolerance(atol=1e-7, rtol=1e-6, source="--tol")
    assert got["torchscript"].source == "--atol/--rtol"


def test_per_format_tol_can_loosen_an_exact_format_when_named() -> None:
    got = resolve(per_format={"state_dict": (1e-6, 1e-5)})
    assert got["state_dict"] == Tolerance(atol=1e-6, rtol=1e-5, source="--tol")


@pytest.mark.parametrize(
    ("global_kw", "fmt", "rtol"),
    [
        ({}, "onnx", 1e-5),  # rtol from the default
        ({"rtol": 1e-2}, "onnx", 1e-2),  # rtol from --rtol
        ({"atol": 1.0, "rtol": 1e-2}, "onnx", 1e-2),  # --atol is replaced, --rtol kept
        ({}, "state_dict", 0.0),  # exact default: rtol stays 0
        ({"rtol": 1e-2}, "state_dict", 0.0),  # global rtol never reached the exact format
    ],
)
def test_per_format_atol_only_keeps_rtol(global_kw: dict[str, float], fmt: str, rtol: float) -> None:
    got = resolve(**global_kw, per_format={fmt: (1e-4, None)})
    assert got[fmt] == Tolerance(atol=1e-4, rtol=rtol, source="--tol")


def test_untouched_formats_keep_default_source() -> None:
    got = resolve(per_format={"onnx": (1e-4, 1e-4)})
    assert got["torchscript"] == DEFAULTS["torchscript"]
    assert got["state_dict"] == DEFAULTS["state_dict"]
    assert got["torchscript"].source == got["state_dict"].source == "default"


def test_parsed_flags_flow_into_resolution() -> None:
    per_format = parse_tol_list(["state_dict=0,1e-7", "onnx=2e-5"], KNOWN)
    got = resolve(atol=parse_float("1e-3", "--atol"), per_format=per_format)
    assert got["state_dict"] == Tolerance(atol=0.0, rtol=1e-7, source="--tol")
    assert got["onnx"] == Tolerance(atol=2e-5, rtol=1e-5, source="--tol")
    assert got["torchscript"] == Tolerance(atol=1e-3, rtol=1e-6, source="--atol/--rtol")

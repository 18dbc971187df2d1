"""compare_array / compare_outputs: the elementwise pass rule and the numbers reported with it.

Values are dyadic fractions (k / 2**n) wherever a bound is probed, so float64 arithmetic
is exact and "just inside" / "just outside" are unambiguous.
"""

from __future__ import annotations

import numpy as np
import pytest

from modelport.validators.compare import compare_array, compare_outputs
from modelport.validators.records import OutputCheck, Tolerance

EXACT = Tolerance(atol=0, rtol=0)
LOOSE = Tolerance(atol=1e-3, rtol=1e-3)
nan, inf = np.nan, np.inf


def check(ref, cand, tol=LOOSE, **kw) -> OutputCheck:
    return compare_array(np.asarray(ref), np.asarray(cand), tol, input_set="s", output="y", **kw)


@pytest.mark.parametrize(
    ("r", "c", "atol", "rtol", "verdict"),
    [
        # bound = 0.5 + 0.25 * 1 = 0.75
        (1.0, 1.75, 0.5, 0.25, "pass"),  # exactly on the bound: inclusive
        (1.0, 1.71875, 0.5, 0.25, "pass"),  # just inside
        (1.0, 1.78125, 0.5, 0.25, "fail"),  # just outside
        (1.0, 0.25, 0.5, 0.25, "pass"),  # below the reference, on the bound
        (1.0, 0.21875, 0.5, 0.25, "fail"),
        # atol only: the bound does not grow with |r|
        (0.0, 0.5, 0.5, 0.0, "pass"),
        (0.0, 0.5625, 0.5, 0.0, "fail"),
        (1024.0, 1024.5625, 0.5, 0.0, "fail"),
        # rtol only: bound = 0.25 * |r|, and |r| (not r) for negative references
        (4.0, 5.0, 0.0, 0.25, "pass"),
        (4.0, 5.0625, 0.0, 0.25, "fail"),
        (-4.0, -5.0, 0.0, 0.25, "pass"),
        (-4.0, -5.0625, 0.0, 0.25, "fail"),
        (0.0, 2.0**-40, 0.0, 0.25, "fail"),  # rtol alone allows nothing around zero
    ],
)
def test_pass_rule_boundary(r: float, c: float, atol: float, rtol: float, verdict: str) -> None:
    got = check([r], [c], Tolerance(atol=atol, rtol=rtol))
    assert got.verdict == verdict
    assert got.mismatches == (verdict == "fail")
    assert got.category == (None if verdict == "pass" else "accuracy")


def test_exact_tolerance_catches_one_float32_ulp() -> None:
    ref = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    cand = ref.copy()
    cand[1] = np.nextafter(ref[1], np.float32(np.inf))
    got = check(ref, cand, EXACT)
    assert (got.verdict, got.category, got.mismatches) == ("fail", "accuracy", 1)
    assert "exact" in got.message
    same = check(ref, ref.copy(), EXACT)
    assert (same.verdict, same.bit_exact, same.mismatches) == ("pass", True, 0)


@pytest.mark.parametrize(
    ("ref", "cand", "verdict", "mismatches", "nan_ref", "nan_cand"),
    [
        ([1.0, nan, 3.0], [1.0, nan, 3.0], "pass", 0, 1, 1),  # NaN expected where produced
        ([1.0, 2.0, 3.0], [1.0, nan, 3.0], "fail", 1, 0, 1),  # NaN only in candidate
        ([1.0, nan, 3.0], [1.0, 2.0, 3.0], "fail", 1, 1, 0),  # NaN only in reference
        ([nan, 2.0, 3.0], [1.0, nan, 3.0], "fail", 2, 1, 1),  # NaN at different places
    ],
)
def test_nan_handling(ref, cand, verdict: str, mismatches: int, nan_ref: int, nan_cand: int) -> None:
    got = check(ref, cand)
    assert (got.verdict, got.mismatches) == (verdict, mismatches)
    assert (got.nan_reference, got.nan_candidate) == (nan_ref, nan_cand)
    assert got.max_abs_err is not None and np.isfinite(got.max_abs_err)


@pytest.mark.parametrize(
    ("ref", "cand", "verdict", "mismatches"),
    [
        ([inf, -inf, 1.0], [inf, -inf, 1.0], "pass", 0),
        ([inf, 1.0], [-inf, 1.0], "fail", 1),  # opposite infinities
        ([inf, 1.0], [5.0, 1.0], "fail", 1),  # inf expected, finite produced
        ([5.0, 1.0], [inf, 1.0], "fail", 1),  # finite expected, inf produced
        ([inf, 1.0], [nan, 1.0], "fail", 1),
    ],
)
def test_inf_handling(ref, cand, verdict: str, mismatches: int) -> None:
    got = check(ref, cand)
    assert (got.verdict, got.mismatches) == (verdict, mismatches)


def test_max_abs_err_is_over_elements_finite_in_both() -> None:
    got = check([inf, -inf, nan, 1.0, 2.0], [5.0, -inf, 0.0, 1.5, 2.0])
    assert got.verdict == "fail"
    assert got.max_abs_err == 0.5  # only 1.0 vs 1.5 counts
    assert got.max_rel_err == 0.5
    assert np.isfinite(got.min_passing_atol)


def test_shape_mismatch_fails_without_numeric_stats() -> None:
    got = check(np.zeros((2, 3)), np.zeros((3, 2)))
    assert (got.verdict, got.category, got.shape_match) == ("fail", "shape", False)
    assert (got.reference_shape, got.shape) == ([2, 3], [3, 2])
    assert "[2, 3]" in got.message and "[3, 2]" in got.message
    for field in ("elements", "mismatches", "max_abs_err", "max_rel_err", "min_passing_atol", "bit_exact"):
        assert getattr(got, field) is None, field


def test_dtype_mismatch_fails_even_when_values_agree() -> None:
    ref = np.array([1.0, 2.5], dtype=np.float32)
    got = check(ref, ref.astype(np.float64))
    assert (got.verdict, got.category, got.dtype_match) == ("fail", "dtype", False)
    assert (got.reference_dtype, got.dtype, got.mismatches) == ("float32", "float64", 0)
    assert "float64" in got.message and "float32" in got.message


def test_declared_dtypes_override_array_dtypes() -> None:
    # Golden files store bfloat16 as float32; the declared dtype is what is compared.
    arr = np.array([1.0, 2.5], dtype=np.float32)
    got = check(arr, arr.copy(), reference_dtype="bfloat16", candidate_dtype="bfloat16")
    assert (got.verdict, got.dtype, got.reference_dtype) == ("pass", "bfloat16", "bfloat16")
    half = check(arr, arr.copy(), reference_dtype="bfloat16")  # candidate falls back to float32
    assert (half.verdict, half.category) == ("fail", "dtype")


@pytest.mark.parametrize(
    ("ref", "cand", "bit_exact"),
    [
        ([1.0, 2.0], [1.0, 2.0], True),
        ([1.0, 2.0], [1.0, 2.0 + 2.0**-20], False),  # within LOOSE, but not the same bits
        ([0.0, 1.0], [-0.0, 1.0], False),  # equal as numbers, different sign bit
    ],
)
def test_bit_exact(ref, cand, bit_exact: bool) -> None:
    got = check(np.array(ref, dtype=np.float32), np.array(cand, dtype=np.float32))
    assert got.verdict == "pass"
    assert got.bit_exact is bit_exact


def test_stats_on_hand_computed_example() -> None:
    ref = np.array([[1.0, -2.0], [0.0, 4.0]])
    cand = np.array([[1.5, -2.0], [0.25, 3.0]])
    got = check(ref, cand, Tolerance(atol=0.5, rtol=0.0))
    # diffs 0.5, 0, 0.25, 1.0 -> only 1.0 > 0.5
    assert (got.elements, got.mismatches, got.verdict) == (4, 1, "fail")
    assert got.max_abs_err == 1.0
    assert got.max_rel_err == 0.5  # 0.5/1; the zero reference (0.25/0) is ignored
    assert got.min_passing_atol == 1.0
    assert (got.nan_reference, got.nan_candidate) == (0, 0)


def test_max_rel_err_ignores_zero_reference_elements() -> None:
    got = check([0.0, 0.0, 8.0], [1.0, -1.0, 9.0], Tolerance(atol=2.0, rtol=0.0))
    assert got.max_abs_err == 1.0
    assert got.max_rel_err == 0.125


@pytest.mark.parametrize("rtol", [0.0, 1e-6, 1e-3, 0.1])
@pytest.mark.parametrize("seed", range(5))
def test_min_passing_atol_is_the_smallest_atol_that_passes(rtol: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((4, 16)) * 10.0 ** rng.uniform(-3, 3)
    cand = ref + rng.standard_normal(ref.shape) * 10.0 ** rng.uniform(-6, 0)
    ref[0, 0] = 0.0  # a zero reference takes part too
    m = check(ref, cand, Tolerance(atol=0.0, rtol=rtol)).min_passing_atol
    assert check(ref, cand, Tolerance(atol=m, rtol=rtol)).verdict == "pass"
    if m > 0:
        assert check(ref, cand, Tolerance(atol=m * 0.99, rtol=rtol)).verdict == "fail"


def test_min_passing_atol_is_zero_when_rtol_alone_passes() -> None:
    got = check([4.0], [4.5], Tolerance(atol=0.0, rtol=0.25))
    assert (got.verdict, got.min_passing_atol) == ("pass", 0.0)


def test_empty_arrays_pass_with_zero_stats() -> None:
    got = check(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), EXACT)
    assert (got.verdict, got.elements, got.mismatches) == ("pass", 0, 0)
    assert (got.max_abs_err, got.max_rel_err, got.min_passing_atol) == (0.0, 0.0, 0.0)
    assert (got.nan_reference, got.nan_candidate) == (0, 0)


@pytest.mark.parametrize(
    ("ref", "cand", "verdict", "mismatches"),
    [
        (np.array([1, 2, 3], np.int32), np.array([1, 2, 3], np.int32), "pass", 0),
        (np.array([1, 2, 3], np.int64), np.array([1, 2, 4], np.int64), "fail", 1),
        (np.array([0, 255], np.uint8), np.array([1, 255], np.uint8), "fail", 1),
        (np.array([True, False]), np.array([True, False]), "pass", 0),
        (np.array([True, False]), np.array([True, True]), "fail", 1),
    ],
)
def test_integer_and_bool_compared_exactly(ref, cand, verdict: str, mismatches: int) -> None:
    got = check(ref, cand, EXACT)
    assert (got.verdict, got.mismatches) == (verdict, mismatches)
    assert got.bit_exact is (verdict == "pass")


def test_large_int64_differences_are_not_lost() -> None:
    ref = np.array([2**53], dtype=np.int64)
    got = check(ref, ref + 1, EXACT)
    assert got.verdict == "fail"


def test_compare_outputs_missing_and_extra_outputs_fail_as_missing() -> None:
    a = np.ones(3, np.float32)
    checks = compare_outputs({"logits": a, "probs": a}, {"logits": a, "extra": a}, LOOSE, input_set="s")
    by_name = {c.output: c for c in checks}
    assert set(by_name) == {"logits", "probs", "extra"}
    assert by_name["logits"].verdict == "pass"
    for name in ("probs", "extra"):
        assert (by_name[name].verdict, by_name[name].category) == ("fail", "missing")
        assert name in by_name[name].message
    assert all(c.input_set == "s" for c in checks)


def test_compare_outputs_collects_every_failure() -> None:
    ref = {"a": np.zeros(2), "b": np.zeros((2, 2)), "c": np.zeros(2), "d": np.zeros(2)}
    cand = {"a": np.ones(2), "b": np.zeros(4), "c": np.zeros(2, np.float32), "d": np.zeros(2)}
    cats = {c.output: (c.verdict, c.category) for c in compare_outputs(ref, cand, EXACT, input_set="s")}
    assert cats == {
        "a": ("fail", "accuracy"),
        "b": ("fail", "shape"),
        "c": ("fail", "dtype"),
        "d": ("pass", None),
    }


def test_compare_outputs_applies_declared_dtypes() -> None:
    a = np.ones(2, np.float32)
    (got,) = compare_outputs({"y": a}, {"y": a.copy()}, EXACT, input_set="s", declared_dtypes={"y": "bfloat16"})
    assert (got.verdict, got.reference_dtype, got.dtype) == ("pass", "bfloat16", "bfloat16")


@pytest.mark.parametrize(
    ("ref", "cand"),
    [
        (np.array([1.0, nan, inf], np.float32), np.array([1.0, nan, inf], np.float32)),  # pass
        (np.array([1.0, 2.0]), np.array([1.5, nan])),  # accuracy failure
        (np.zeros((2, 3)), np.zeros(6)),  # shape failure: None stats
    ],
)
def test_output_check_json_round_trip(ref, cand) -> None:
    got = check(ref, cand)
    assert OutputCheck.model_validate(got.model_dump(mode="json")) == got
    assert OutputCheck.model_validate_json(got.model_dump_json()) == got


def test_tensor_scope_scales_rtol_with_the_largest_magnitude() -> None:
    """Lossy formats: error follows an output's range, so small elements are judged against max|r|."""
    ref = np.array([100.0, 0.01], np.float64)
    cand = np.array([100.5, 0.4], np.float64)
    element = Tolerance(atol=0.0, rtol=0.01)
    tensor = Tolerance(atol=0.0, rtol=0.01, rtol_scope="tensor")
    assert check(ref, cand, element).verdict == "fail"  # 0.39 > 0.01 * 0.01
    got = check(ref, cand, tensor)
    assert got.verdict == "pass" and got.tolerance_used == pytest.approx(0.5)  # worst: 0.5 / (0.01 * 100)
    assert "max|ref|" in tensor.describe()


def test_cosine_gate_fails_a_lossy_candidate_pointing_elsewhere() -> None:
    ref = np.array([[1.0, 0.0, 0.0]], np.float32)
    cand = np.array([[0.9, 0.3, 0.1]], np.float32)
    tol = Tolerance(atol=1.0, rtol=0.0, min_cosine=0.99)  # elementwise it passes easily
    got = check(ref, cand, tol)
    assert got.verdict == "fail" and got.category == "accuracy" and "cosine" in (got.message or "")
    assert got.top1_agreement == 1.0


def _identical_cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    floats = rng.standard_normal((40, 30)).astype(np.float32)
    special = floats.copy()
    special[0, :3] = [np.nan, np.inf, -np.inf]
    special[1, :4] = 0.0
    return [
        ("float32", floats),
        ("nan-inf-zeros", special),
        ("all-zero", np.zeros((8, 50), np.float32)),
        ("all-nan", np.full((3, 70), np.nan, np.float32)),
        ("float16-1d", rng.standard_normal(300).astype(np.float16)),
        ("float64-3d", rng.standard_normal((4, 5, 6))),
        ("int64", rng.integers(-5, 5, (20, 20))),
        ("bool", rng.random((10, 30)) > 0.5),
        ("strided", floats.T),
        ("one-column", floats[:, :1].copy()),
    ]


@pytest.mark.parametrize(
    "tol",
    [
        Tolerance(atol=1e-5, rtol=1e-5),
        Tolerance(atol=0.0, rtol=1e-3),
        Tolerance(atol=0.0, rtol=0.0),
        Tolerance(atol=1e-2, rtol=0.05, rtol_scope="tensor", min_cosine=0.99),
        Tolerance(atol=100.0, rtol=0.0),
    ],
    ids=["default", "rtol-only", "exact", "tensor-scope", "vacuous"],
)
@pytest.mark.parametrize("case", _identical_cases(), ids=lambda c: c[0])
def test_identical_arrays_streamed_give_the_element_wise_record(
    case: tuple[str, np.ndarray], tol: Tolerance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big bit-identical arrays skip the float64 temporaries (validators/identical.py): same record, bounded memory."""
    from modelport.validators import compare, identical

    _, array = case
    full = compare_array(array, array.copy(), tol, input_set="s", output="o")
    monkeypatch.setattr(compare, "STREAM_MIN", 1)
    monkeypatch.setattr(identical, "CHUNK", 7)  # many chunks, one of them short
    streamed = compare_array(array, array.copy(), tol, input_set="s", output="o")
    assert streamed.model_dump(exclude={"cosine"}) == full.model_dump(exclude={"cosine"})
    assert (streamed.cosine is None) == (full.cosine is None)
    if full.cosine is not None:
        assert streamed.cosine == pytest.approx(full.cosine, abs=1e-12)


def test_streamed_path_is_taken_only_for_identical_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelport.validators import compare

    monkeypatch.setattr(compare, "STREAM_MIN", 1)
    ref = np.ones((10, 10), np.float32)
    cand = ref.copy()
    cand[9, 9] = np.nextafter(np.float32(1), np.float32(2))  # one ulp, in the last chunk
    check = compare_array(ref, cand, Tolerance(atol=0.0, rtol=0.0), input_set="s", output="o")
    assert check.verdict == "fail" and check.mismatches == 1 and not check.bit_exact
    negzero = np.zeros(5, np.float32)
    check = compare_array(negzero, -negzero, Tolerance(atol=0.0, rtol=0.0), input_set="s", output="o")
    assert check.verdict == "pass" and not check.bit_exact  # -0.0 equals 0.0 but is not the same bits


def test_the_error_histogram_counts_every_finite_element_per_power_of_ten() -> None:
    """Reports draw this: exact elements apart, then one count per decade from the smallest error to the largest."""
    ref = np.zeros(8)
    cand = np.array([0.0, 0.0, 2**-20, 3 * 2**-20, 0.5, 0.75, 4.0, nan])  # 2**-20 ~ 9.5e-7: decade -7
    hist = check(ref, cand).abs_err_hist
    assert hist is not None
    assert hist.exact == 2 and hist.low == -7
    assert hist.counts == [1, 1, 0, 0, 0, 0, 2, 1]  # 9.5e-7, 2.9e-6, ..., 0.5 and 0.75, 4
    assert hist.exact + sum(hist.counts) == 7  # the NaN disagreement is counted in mismatches, not here
    # Errors beyond the stored span land in its end decades instead of stretching it.
    tiny = check(np.zeros(2), np.array([1e-300, 1e-29])).abs_err_hist
    assert tiny is not None and (tiny.low, tiny.counts) == (-30, [1, 1])
    assert check(np.ones(3), np.ones(3)).abs_err_hist == check(np.ones(3), np.ones(3), tol=EXACT).abs_err_hist
    assert check([1.0, 2.0], [1.0]).abs_err_hist is None  # a shape mismatch compares no element

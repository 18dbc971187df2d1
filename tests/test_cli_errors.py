"""Bad input: exit 2, one line on stderr that says what is wrong and what to do, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest


def _snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _assert_one_line_error(err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_out_under_a_regular_file(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me")
    before = _snapshot(tmp_path)
    result = cli("run", "--out", str(blocker / "sub"), "--formats", "state_dict")
    assert result.code == 2
    _assert_one_line_error(result.err, "is a file", "choose a folder")
    assert _snapshot(tmp_path) == before and blocker.read_text() == "keep me"


def test_out_is_a_regular_file(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me")
    result = cli("run", "--out", str(blocker))
    assert result.code == 2
    _assert_one_line_error(result.err, "is a file")
    assert blocker.read_text() == "keep me"


def test_non_empty_foreign_folder_is_refused(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("1,2,3")
    before = _snapshot(tmp_path)
    result = cli("run", "--out", str(foreign), "--formats", "state_dict")
    assert result.code == 2
    _assert_one_line_error(result.err, "not empty", "--force")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--formats", "state_dict,nope"], "unknown format 'nope'"),
        (["--formats", ""], "--formats is empty"),
        (["--seed", "abc"], "--seed"),
        (["--atol", "-1"], "--atol"),
        (["--rtol", "abc"], "--rtol"),
        (["--atol", "nan"], "--atol"),
        (["--opset", "x"], "--opset"),
        (["--opset", "999"], "--opset must be a whole number from 7"),
        (["--seed", "-1"], "--seed must be a whole number from 0"),
        (["--samples", "5000"], "--samples must be a whole number"),
        (["--input", "x=2xq"], "--input x: shape"),
        (["--input", "x=2x3:float99"], "unknown dtype 'float99'"),
        (["--dynamic", "x:one=batch"], "--dynamic"),
        (["--weights", "/no/such/file.pt"], "--weights /no/such/file.pt: no such file"),
        (["--inputs", "/no/such/inputs.npz"], "--inputs /no/such/inputs.npz: no such file"),
        (["--torchscript-method", "compile"], "--torchscript-method"),
        (["--tol", "onnx=abc"], "--tol onnx atol"),
        (["--tol", "nope=1e-5"], "unknown format 'nope'"),
        (["--tol", "onnx=1,2,3"], "--tol could not read"),
        (["--onnx-exporter", "fast"], "--onnx-exporter"),
        (["--model", "resnet9000"], "unknown model 'resnet9000'"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_flag_values(tmp_path: Path, cli, argv: list[str], needle: str) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli("run", "--out", str(out), *argv)
    assert result.code == 2
    _assert_one_line_error(result.err, needle)
    assert result.out == ""
    assert list(tmp_path.iterdir()) == [], "nothing may be written on bad input"


def test_missing_subcommand(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli()
    assert result.code == 2
    assert "--help" in result.err and "Traceback" not in result.err


def test_version_and_help(cli) -> None:  # type: ignore[no-untyped-def]
    import modelport

    result = cli("--version")
    assert result.code == 0 and result.out.strip() == f"modelport {modelport.__version__}"
    result = cli("run", "--help")
    assert result.code == 0
    for flag in ("--model", "--out", "--formats", "--seed", "--atol", "--rtol", "--tol", "--onnx-exporter", "--opset"):
        assert flag in result.out


def test_force_never_replaces_the_current_folder(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "project"
    work.mkdir()
    (work / "train.py").write_text("precious")
    monkeypatch.chdir(work)
    for out in (".", str(tmp_path)):
        result = cli("run", "--out", out, "--force", "--formats", "state_dict")
        assert result.code == 2
        _assert_one_line_error(result.err, "choose a subfolder")
    assert (work / "train.py").read_text() == "precious"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"atol": float("inf")},
        {"atol": "1e-5"},
        {"rtol": -1.0},
        {"opset": "18"},
        {"tol": 1e-5},
        {"seed": -1},
        {"seed": 2**64},
        {"samples": True},
        {"formats": []},
        {"formats": "onnx,nope"},
        {"onnx_exporter": "fast"},
    ],
)
def test_the_api_checks_what_the_cli_checks(tmp_path: Path, kwargs: dict[str, object]) -> None:
    import modelport

    with pytest.raises(modelport.UsageError):
        modelport.run(out=tmp_path / "o", **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_text_with_brackets_is_printed_as_it_is(artifact_copy, cli) -> None:  # type: ignore[no-untyped-def]
    """Review finding: rich markup in a message (a runtime's stderr, a file name) crashed or vanished."""
    (artifact_copy / "[red]x").write_text("not listed")  # an opening tag: rich would drop it
    (artifact_copy / "[").mkdir()
    (artifact_copy / "[" / "tmp]").write_text("not listed")  # listed as "[/tmp]": a closing tag rich fails on
    for quiet in ([], ["--quiet"]):
        result = cli("verify", str(artifact_copy), *quiet)
        assert result.code == 1 and "Traceback" not in result.err, result.err
        assert "[red]x" in result.out and "[/tmp]" in result.out, result.out

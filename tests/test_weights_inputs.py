"""--weights loads trained weights strictly before anything else; --inputs replays real inputs by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import modelport
from modelport.checkpoint import load_checkpoint, save_checkpoint
from modelport.models import BUILTIN


def _trained() -> torch.nn.Module:
    """The MLP with weights no seed would give: a stand-in for a trained model."""
    model = BUILTIN["mlp"].factory()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.linspace(-0.5, 0.5, p.numel()).reshape(p.shape))
    return model.eval()


def _expected(model: torch.nn.Module, folder: Path) -> np.ndarray:
    x = torch.from_numpy(np.load(folder / "golden" / "inputs.npz")["x"])
    with torch.no_grad():
        out: np.ndarray = model(x).numpy()
    return out


@pytest.mark.parametrize("kind", ["state_dict", "safetensors", "checkpoint"])
def test_weights_are_loaded_before_everything(tmp_path: Path, kind: str) -> None:
    model = _trained()
    path = tmp_path / {"state_dict": "w.pt", "safetensors": "w.safetensors", "checkpoint": "ckpt.pt"}[kind]
    if kind == "state_dict":
        torch.save(model.state_dict(), path)
    elif kind == "safetensors":
        save_file(model.state_dict(), str(path))
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        save_checkpoint(path, model, optimizer=optimizer, epoch=3, step=120, metrics={"loss": 0.25})
        assert load_checkpoint(path)["epoch"] == 3
    out = tmp_path / "out"
    report = modelport.run(out=out, weights=path, formats="state_dict,onnx", samples=1)
    assert report.verdict == "pass"
    assert report.model.weights_sha256 is not None
    np.testing.assert_array_equal(np.load(out / "golden" / "outputs.npz")["output"], _expected(model, out))


def test_weights_that_do_not_fit_are_named(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    state = _trained().state_dict()
    state["extra.bias"] = torch.zeros(3)
    del state["output.bias"]
    torch.save(state, tmp_path / "bad.pt")
    result = cli("run", "--weights", str(tmp_path / "bad.pt"), "--out", str(tmp_path / "o"))
    assert result.code == 2
    assert "missing keys output.bias" in result.err and "unexpected keys extra.bias" in result.err
    assert not (tmp_path / "o").exists()


def test_weights_with_code_in_them_are_refused(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (sentinel,))

    torch.save({"hidden.weight": Payload()}, tmp_path / "evil.pt")
    result = cli("run", "--weights", str(tmp_path / "evil.pt"), "--out", str(tmp_path / "o"))
    assert result.code == 2 and "weights_only=True" in result.err
    assert not sentinel.exists()


def test_real_inputs_are_replayed_as_their_own_set(tmp_path: Path) -> None:
    x = np.linspace(-3, 3, 5 * 20, dtype=np.float32).reshape(5, 20)
    np.savez(tmp_path / "real.npz", x=x)
    out = tmp_path / "out"
    report = modelport.run(out=out, inputs_file=tmp_path / "real.npz", formats="onnx", samples=1)
    assert report.verdict == "pass"
    user = [g for g in report.golden.sets if g.kind == "user"]  # type: ignore[union-attr]
    assert [g.name for g in user] == ["inputs_file"]
    np.testing.assert_array_equal(np.load(out / user[0].inputs)["x"], x)
    assert any(c.input_set == "inputs_file" for c in report.candidates[0].checks)


@pytest.mark.parametrize(
    ("arrays", "needle"),
    [
        ({"y": np.zeros((2, 20), np.float32)}, "missing ['x']"),
        ({"x": np.zeros((2, 21), np.float32)}, "axis 1, which is fixed at 20"),
        ({"x": np.zeros((2, 20), np.float64)}, "dtype float64"),
        ({"x": np.zeros((20,), np.float32)}, "rank 1"),
    ],
)
def test_real_inputs_that_do_not_fit_are_refused(tmp_path: Path, cli, arrays, needle: str) -> None:  # type: ignore[no-untyped-def]
    np.savez(tmp_path / "bad.npz", **arrays)
    result = cli("run", "--inputs", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o"), "--formats", "onnx")
    assert result.code == 2 and needle in result.err, result.err
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_write_is_all_or_nothing(tmp_path: Path) -> None:
    """A save that fails half-way (here: an unpicklable value) leaves the previous checkpoint intact."""
    model = _trained()
    path = save_checkpoint(tmp_path / "ckpt.pt", model, epoch=1)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        save_checkpoint(path, model, epoch=2, metrics={"loss": object()})  # type: ignore[dict-item]
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_extra_arrays_in_real_inputs_are_ignored_and_said(tmp_path: Path) -> None:
    np.savez(tmp_path / "real.npz", x=np.ones((3, 20), np.float32), labels=np.arange(3))
    report = modelport.run(out=tmp_path / "o", inputs_file=tmp_path / "real.npz", formats="onnx", samples=0)
    user = next(g for g in report.golden.sets if g.kind == "user")  # type: ignore[union-attr]
    assert "ignored: labels" in user.description and report.verdict == "pass"


def test_weights_from_our_own_safetensors_with_tied_weights(tmp_path: Path) -> None:
    first = modelport.run("tests/zoo.py:tied", out=tmp_path / "a", formats="safetensors", samples=0)
    assert first.verdict == "pass"
    again = modelport.run(
        "tests/zoo.py:tied", out=tmp_path / "b", formats="onnx", samples=0, weights=tmp_path / "a" / "model.safetensors"
    )
    assert again.verdict == "pass"


def test_weights_saved_from_a_data_parallel_wrapper(tmp_path: Path) -> None:
    model = _trained()
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "ddp.pt")
    report = modelport.run(out=tmp_path / "o", weights=tmp_path / "ddp.pt", formats="state_dict", samples=0)
    assert report.verdict == "pass"
    np.testing.assert_array_equal(
        np.load(tmp_path / "o" / "golden" / "outputs.npz")["output"], _expected(model, tmp_path / "o")
    )

"""Weights are loaded into a fresh instance built on the meta device, with the file's tensors assigned
(one copy of the weights, not two); models that cannot be built that way are built normally."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import modelport
from modelport.runtimes.torch_eager import _on_meta, aligned

MODELS = Path(__file__).with_name("clone_models.py")


@pytest.mark.parametrize("factory", ["value_in_init", "hidden_buffer"])
def test_models_the_meta_device_cannot_build_still_verify(tmp_path: Path, factory: str) -> None:
    report = modelport.run(
        model=f"{MODELS}:{factory}", out=tmp_path / factory, formats=["state_dict", "safetensors"], samples=1
    )
    assert report.verdict == "pass", [c.reason for c in report.candidates if c.verdict != "pass"]


def test_a_plain_model_is_built_without_memory_for_its_weights() -> None:
    model = _on_meta(lambda: torch.nn.Linear(4, 3))
    assert model is not None and model.weight.is_meta
    assert _on_meta(lambda: torch.nn.Linear(4, 3).weight[0, 0].item()) is None  # not a module: built normally


def test_unaligned_tensors_are_copied_to_aligned_memory_and_ties_kept() -> None:
    buffer = torch.zeros(1000)
    unaligned = buffer[3:43]  # 12 bytes past a 64-byte boundary
    whole = torch.zeros(40)
    state = aligned({"a": unaligned, "tied": unaligned, "b": whole})
    assert state["a"].data_ptr() % 64 == 0 and torch.equal(state["a"], unaligned)
    assert state["a"] is state["tied"] and state["b"] is whole


def test_a_big_model_is_loaded_back_once_by_validate_with_the_original_freed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelport.pipeline import run_stages

    monkeypatch.setattr(run_stages, "LOAD_BACK_LIMIT", 0)  # the MLP's 31 KB of weights count as big
    freed: list[int] = []
    release = run_stages.release_weights
    monkeypatch.setattr(run_stages, "release_weights", lambda built: freed.append(release(built)) or freed[-1])
    report = modelport.run(out=tmp_path / "mlp", samples=1)
    assert report.verdict == "pass"
    assert freed == [(20 * 256 + 256 + 256 * 10 + 10) * 4]  # every weight freed before the candidates load
    for stage in report.stages:
        if stage.name in report.formats:
            assert any("loaded back by the validate stage" in n for n in stage.notes), stage.name
    assert {c.candidate for c in report.candidates if c.verdict == "pass"} >= {"state_dict@torch", "onnx@onnxruntime"}


def test_run_predicts_verify_from_the_program_digests_alone(mlp_folder: Path) -> None:
    """run's weights notes: a program holding every tensor bit for bit settles them without reading the files."""
    from modelport.loaders.trust import granted
    from modelport.pipeline.manifest import read_manifest
    from modelport.pipeline.verify_weights import program_digests

    manifest = read_manifest(mlp_folder)
    with granted(mlp_folder, "test"):
        digests = program_digests(mlp_folder, manifest.formats)
    assert digests is not None
    assert digests == manifest.formats["state_dict"].tensors == manifest.formats["safetensors"].tensors
    assert program_digests(mlp_folder, manifest.formats) is None  # not trusted: the full comparison decides


def test_cycles_holding_big_copies_are_collected_at_once_small_ones_left_to_the_collector() -> None:
    import gc
    import weakref

    from modelport.memory import COLLECT_ABOVE, let_go

    class Node:
        pass

    def cycle() -> weakref.ref[Node]:
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        return weakref.ref(a)

    gc.disable()
    try:
        small = cycle()
        let_go(COLLECT_ABOVE - 1)  # a full collection costs 0.2 to 1 s: not for a small model
        assert small() is not None
        let_go(COLLECT_ABOVE)
        assert small() is None
    finally:
        gc.enable()

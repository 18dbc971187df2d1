"""The per-tensor sha256 the manifest records for weights files: computed without copies, once per state."""

from __future__ import annotations

import torch

from modelport.exporters.weights import digests_while, state_digests, tensor_digest
from modelport.signature import torch_to_numpy


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), torch.nn.Linear(5, 3))
    model.register_buffer("strided", torch.arange(12.0).reshape(3, 4).t())  # not contiguous
    model.register_buffer("brain", torch.randn(4, dtype=torch.bfloat16))  # widened to float32 for numpy
    return model


def _reference(model: torch.nn.Module) -> dict[str, str]:
    return {k: tensor_digest(torch_to_numpy(v)) for k, v in model.state_dict().items()}


def test_digests_are_those_of_the_numpy_copies() -> None:
    model = _model()
    assert state_digests(model) == _reference(model)


def test_an_in_place_change_or_another_model_is_hashed_again() -> None:
    model = _model()
    before = state_digests(model)
    with torch.no_grad():
        model[0].weight[0, 0] += 1.0  # in place: same tensor object, new version
    after = state_digests(model)
    assert after == _reference(model) and after["0.weight"] != before["0.weight"]
    other = _model()  # same names and shapes, other objects: never the cached digests
    with torch.no_grad():
        other[2].bias.fill_(7.0)
    assert state_digests(other) == _reference(other) != after


def test_digests_while_writing_returns_the_digests_and_runs_the_write() -> None:
    model = _model()
    written: list[int] = []
    assert digests_while(model, lambda: written.append(1)) == _reference(model)
    assert written == [1]

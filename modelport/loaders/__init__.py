"""Every file modelport reads goes through here, with the checks that keep a hostile file from running code.

- ``torch.load`` always with an explicit ``weights_only=True`` (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` only
  changes calls that leave it unset); there is no fallback.
- ``torch.export.load`` and ``torch.jit.load`` only for files in a folder the command trusts
  (:mod:`modelport.loaders.trust`: its own staging folder, a valid signature, or ``--trust``), and
  then only after :func:`check_pt2` or, for TorchScript's pickles, :func:`check_torchscript`.
- ``np.load`` with ``allow_pickle=False``; safetensors after :func:`check_safetensors`; ONNX external data
  after :func:`check_onnx_external_data`; JSON through :func:`parse_json` (bounded size, depth, integers).

A test fails when any of these loaders is called anywhere else in modelport. torch, numpy and onnx
are imported inside the functions: reading a manifest stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import one_line
from modelport.loaders.files import (
    check_onnx_external_data,
    check_safetensors,
    check_torchscript,
)
from modelport.loaders.jsonsafe import UnsafeFile, parse_json
from modelport.loaders.pt2 import check_pt2
from modelport.loaders.trust import Untrusted, granted, require_trust

if TYPE_CHECKING:
    import onnx
    import torch

__all__ = [
    "UnsafeFile",
    "Untrusted",
    "check_onnx_external_data",
    "check_pt2",
    "check_safetensors",
    "check_torchscript",
    "granted",
    "load_exported_program",
    "load_npz",
    "load_onnx",
    "load_safetensors",
    "load_torch",
    "load_torchscript",
    "parse_json",
]


def load_torch(path: Path | Any, *, map_location: str | None = "cpu", mmap: bool = False) -> Any:
    """``torch.load`` that cannot unpickle code, whatever the environment says."""
    import pickle

    import torch

    try:
        return torch.load(path, weights_only=True, map_location=map_location, mmap=mmap)
    except pickle.UnpicklingError as e:  # torch's message is a page long; its cause is on one line
        name = getattr(path, "name", "the file")
        found = [ln for ln in str(e).splitlines() if "nsupported" in ln]
        cause = found[0].split("WeightsUnpickler error:")[-1].split(" was not")[0].strip() if found else one_line(e)
        raise UnsafeFile(f"{name}: torch.load(weights_only=True) refused it ({cause}); not a plain weights file") from e


def load_exported_program(path: Path) -> torch.export.ExportedProgram:
    """A ``.pt2`` program from a trusted folder (``trust``), after :func:`check_pt2` found nothing torch would run."""
    import torch

    require_trust(path, "a torch.export program (.pt2)")
    check_pt2(path)
    return torch.export.load(str(path))


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """A TorchScript module from a trusted folder (``trust``); its pickles are checked first."""
    import torch

    require_trust(path, "a TorchScript program")
    check_torchscript(path)
    module: torch.jit.ScriptModule = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    return module


def load_npz(path: Path) -> Any:
    """``np.load`` without pickles (object arrays refused); a context manager like np.load's."""
    import numpy as np

    return np.load(path, allow_pickle=False)


def load_onnx(path: Path, *, load_external_data: bool = True) -> onnx.ModelProto:
    """An ONNX model; external data only from plain files inside its folder, within their bounds."""
    import onnx

    if not load_external_data:
        return onnx.load(str(path), load_external_data=False)
    check_onnx_external_data(path)
    return onnx.load(str(path))


def load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file whose header passed :func:`check_safetensors`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    check_safetensors(path)
    try:
        # One buffer per tensor (safetensors 0.8): a caller can let each go once used; mmap's views would keep
        # every page of the file resident until the last tensor is gone.
        state = load_file(str(path), device="cpu", backend="pread")
    except TypeError:  # an older safetensors, without backends
        state = load_file(str(path), device="cpu")
    with safe_open(str(path), framework="pt") as f:
        metadata: dict[str, str] = f.metadata() or {}
    return state, metadata

"""Resolving ``--model SPEC`` to a ModelSource, importing the user's file or module."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from modelport.errors import UsageError, one_line

if TYPE_CHECKING:  # torch only when a model is built: verify reads BUILTIN's names without it
    import torch

__all__ = ["BUILTIN", "ModelSource", "from_object", "resolve_model", "split_result"]


def split_result(result: object, spec: str) -> tuple[torch.nn.Module, object | None]:
    """A callable's result as ``(module, example_inputs or None)``."""
    import torch

    if isinstance(result, torch.nn.Module):
        return result, None
    if isinstance(result, tuple | list) and len(result) == 2 and isinstance(result[0], torch.nn.Module):
        return result[0], result[1]
    raise UsageError(
        f"--model {spec} returned a {type(result).__name__}; it must return an nn.Module or a pair "
        "(module, example_inputs)"
    )


@dataclass(frozen=True)
class ModelSource:
    name: str  # used for the default output folder: artifacts/<name>
    spec: str  # what the user passed to --model
    description: str
    create: Callable[[], object]  # the user's callable

    def _call(self) -> object:
        try:
            return self.create()
        except (UsageError, KeyboardInterrupt):
            raise
        except BaseException as e:  # SystemExit from a script's argparse must not end modelport quietly
            raise UsageError(f"--model {self.spec} raised {type(e).__name__}: {one_line(e)}") from e

    def build(self, seed: int) -> tuple[torch.nn.Module, object | None]:
        """Call the callable under ``torch.manual_seed(seed)``, leaving the caller's RNG state alone."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return split_result(self._call(), self.spec)

    def factory(self) -> torch.nn.Module:
        """A fresh instance of the architecture (its initial weights do not matter: they get replaced)."""
        import torch

        with torch.random.fork_rng(devices=[]):
            return split_result(self._call(), self.spec)[0]


def _mlp() -> object:
    from modelport.models.builtin import mlp_example  # defines an nn.Module: imports torch

    return mlp_example()


BUILTIN: dict[str, ModelSource] = {
    "mlp": ModelSource(
        name="mlp",
        spec="mlp",
        description="Linear(20, 256) -> ReLU -> Linear(256, 10); X = randn(2, 20)",
        create=_mlp,
    ),
}


def _import_file(path: Path, spec: str) -> ModuleType:
    if not path.is_file():
        raise UsageError(f"--model {spec}: no such file {path}")
    resolved = path.resolve()
    # The module name ends up in exported graphs (class names), so it must not depend on
    # where the file lives: the same model exported from two checkouts gives the same bytes.
    stem = re.sub(r"\W", "_", resolved.stem)
    name, n = f"modelport_user_{stem}", 1
    while name in sys.modules:
        if getattr(sys.modules[name], "__file__", None) == str(resolved):
            return sys.modules[name]
        n += 1
        name = f"modelport_user_{stem}_{n}"
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise UsageError(f"--model {spec}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    # Registered so that inspect (torch.jit.script) finds its source; its folder goes on
    # sys.path so that it can import the files beside it.
    sys.modules[name] = module
    if str(resolved.parent) not in sys.path:
        sys.path.insert(0, str(resolved.parent))
    try:
        module_spec.loader.exec_module(module)
    except KeyboardInterrupt:
        del sys.modules[name]
        raise
    except BaseException as e:
        del sys.modules[name]
        raise UsageError(f"--model {spec}: importing {path} failed: {type(e).__name__}: {one_line(e)}") from e
    return module


def _import_module(target: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(target)
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        raise UsageError(f"--model {spec}: cannot import {target}: {type(e).__name__}: {one_line(e)}") from e


def from_object(model: object, example_inputs: object = None) -> ModelSource:
    """A ModelSource for a model already in memory (the Python API and ``modelport.testing``).

    An ``nn.Module`` is used with its current weights; each fresh instance is a deep copy.
    A callable is used like a ``--model`` callable.
    """
    import torch

    if isinstance(model, torch.nn.Module):
        module = model
        name = type(module).__name__

        def create() -> object:
            copy_ = copy.deepcopy(module)
            return copy_ if example_inputs is None else (copy_, example_inputs)

        return ModelSource(name=_safe(name), spec=f"python:{name}", description=f"{name} (in memory)", create=create)
    if callable(model):
        name = getattr(model, "__name__", type(model).__name__)
        return ModelSource(name=_safe(name), spec=f"python:{name}", description=f"{name}() (in memory)", create=model)
    raise UsageError(
        f"--model takes a string such as mlp or path/to/file.py:callable (or, from Python, an nn.Module or a "
        f"callable), got {type(model).__name__}"
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def resolve_model(spec: object, example_inputs: object = None) -> ModelSource:
    """Turn ``--model SPEC`` into a ModelSource (importing the user's code, which it runs).

    From Python, SPEC may also be an ``nn.Module`` (with ``example_inputs``) or a callable.
    """
    if isinstance(spec, ModelSource):
        return spec
    if not isinstance(spec, str):
        return from_object(spec, example_inputs)
    if spec in BUILTIN:
        return BUILTIN[spec]
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise UsageError(
            f"unknown model {spec!r}; use a built-in ({', '.join(BUILTIN)}), path/to/file.py:callable "
            "or package.module:callable"
        )
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    module = _import_file(Path(target), spec) if is_file else _import_module(target, spec)
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"--model {spec}: {target} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"--model {spec}: {attr} is a {type(obj).__name__}, not a callable")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", attr.split(".")[-1])
    return ModelSource(name=name, spec=spec, description=f"{attr}() from {target}", create=obj)

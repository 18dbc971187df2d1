"""Localising in torch artifacts: weights loaded into the architecture, torch.export programs, TorchScript.

A module with the original's structure (a weights file loaded into the model's code, a ``.pt2``
unflattened back into its submodules) gets the same forward hooks as the reference: its values
chained through its own earlier layers. A TorchScript program cannot take hooks once loaded, but its
submodules keep their paths and can be called: each one's own error, fed the reference's inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modelport.errors import one_line, raise_if_interrupted
from modelport.localize.judge import judge_pairs, pair_by_shape
from modelport.localize.records import ValueCheck
from modelport.localize.reference import ModuleCall, Trace, call_module, trace_reference
from modelport.signature import Signature
from modelport.validators.records import Tolerance

__all__ = ["TorchProbe"]


def submodule(root: Any, path: str) -> Any:
    module = root
    for part in path.split("."):
        module = getattr(module, part)
    return module


class TorchProbe:
    """A loaded candidate module; ``hooks=False`` for TorchScript (own errors only)."""

    def __init__(
        self,
        module: Any,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        tol: Tolerance,
        via: str,
        *,
        hooks: bool,
        keyword: bool | None = None,
        prefix: str = "",
    ) -> None:
        """``prefix``: where the user's model sits in ``module`` ("model." inside FlatModel, as exported)."""
        from modelport.runtimes.torch_runner import TorchRunner

        self.module, self.tol, self.via, self.notes, self.prefix = module, tol, via, list[str](), prefix
        self.calls: dict[str, ModuleCall] | None = None
        if hooks:
            trace: Trace = trace_reference(module, signature, inputs, keyword=keyword)
            cut = len(prefix)
            self.calls = {p[cut:]: c for p, c in trace.by_path().items() if p.startswith(prefix)}
            self.final = trace.outputs
        else:
            self.final = TorchRunner("candidate", module, signature, keyword=keyword).infer(inputs)
            self.notes.append("TorchScript takes no hooks once loaded: each module is judged on its own error")

    def final_outputs(self) -> dict[str, np.ndarray]:
        return self.final

    def chained(self, call: ModuleCall) -> ValueCheck | str | None:
        if self.calls is None:
            return None
        mine = self.calls.get(call.path)
        if mine is None:
            return "the artifact's module has no such submodule, or never called it"
        pairs, why = pair_by_shape(call.outputs, [(str(i), a) for i, a in enumerate(mine.outputs)])
        return why if why is not None else judge_pairs(pairs, self.tol, call.path)

    def own(self, call: ModuleCall) -> ValueCheck | str:
        try:
            target = submodule(self.module, self.prefix + call.path)
        except AttributeError:
            return "the artifact has no submodule at this path"
        try:
            got = call_module(target, call.args, call.kwargs)
        except Exception as e:
            raise_if_interrupted(e)
            return f"it could not be called alone: {one_line(e)}"
        pairs, why = pair_by_shape(call.outputs, [(str(i), a) for i, a in enumerate(got)])
        return why if why is not None else judge_pairs(pairs, self.tol, call.path)

    def outside(self, before: str) -> list[str]:
        return []

    def close(self) -> None:
        self.module = None

"""Localising in an ONNX file: every module's values exposed in one onnxruntime pass, own errors on request."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelport.errors import one_line, raise_if_interrupted
from modelport.localize.judge import judge_pairs, pair_by_shape
from modelport.localize.onnx_scopes import Scopes, base_modules, read_scopes
from modelport.localize.onnx_values import ExposedGraph, load_graph, run_module_alone
from modelport.localize.records import ValueCheck
from modelport.localize.reference import ModuleCall, Trace
from modelport.signature import Signature, torch_to_numpy
from modelport.validators.records import Tolerance

if TYPE_CHECKING:
    import onnx

__all__ = ["OnnxProbe"]

BASE_FILE = "model.onnx"  # the graph the optimizer, float16 and int8 variants are derived from


def _derived(graph: onnx.ModelProto, base_graph: onnx.ModelProto, known: list[str], wrapped: bool) -> Scopes:
    """A derived graph's scopes, its nodes named after the base graph's. A value counts as a module's only
    where the same value leaves (or enters) the same module in the base graph: a fusion (a bias and an
    activation folded into one new node) leaves a module's inner value at its edge, which is not its output."""
    base = read_scopes(base_graph, known, wrapped=wrapped)
    scopes = read_scopes(graph, known, base_modules(base_graph), wrapped=wrapped)
    for module, names in scopes.values.items():
        scopes.values[module] = [v for v in names if v in base.values.get(module, [])]
    for module, names in scopes.inputs.items():
        scopes.inputs[module] = [v for v in names if v in base.inputs.get(module, [])]
    return scopes


def _name(found: list[tuple[str, np.ndarray]], value: np.ndarray) -> str:
    return next(n for n, a in found if a is value)


class OnnxProbe:
    """One pass of onnxruntime over a copy of the file with every mappable module's values as outputs."""

    def __init__(
        self,
        path: Path,
        signature: Signature,
        trace: Trace,
        inputs: Mapping[str, np.ndarray],
        tol: Tolerance,
    ) -> None:
        self.path, self.tol, self.notes = path, tol, list[str]()
        self.graph = load_graph(path)
        known = [c.path for c in trace.calls]
        # Exported inside FlatModel or not: the dynamo exporter may share a capture of the model itself.
        wrapped = trace.prefix_in({i.name for i in self.graph.graph.initializer}) == "model."
        self.scopes: Scopes = read_scopes(self.graph, known, wrapped=wrapped)
        if path.name != BASE_FILE and (path.parent / BASE_FILE).is_file():
            self.scopes = _derived(self.graph, load_graph(path.parent / BASE_FILE), known, wrapped)
        if self.scopes.unscoped:
            kinds = ", ".join(sorted(set(self.scopes.unscoped)))
            count = len(self.scopes.unscoped)
            self.notes.append(f"{count} nodes record no module ({kinds}): compared only as they feed modules")
        wanted = [v for m in self.scopes.values for v in (*self.scopes.values[m], *self.scopes.inputs[m])]
        exposed = ExposedGraph(path, signature, wanted, self.graph)
        try:
            self.final, self.values = exposed.run(inputs)
        finally:
            exposed.close()
        self.via = f"onnxruntime on {path.name}, {len(exposed.values)} intermediate values exposed"

    def final_outputs(self) -> dict[str, np.ndarray]:
        return self.final

    def chained(self, call: ModuleCall) -> ValueCheck | str:
        names = self.scopes.values.get(call.path)
        if not names:
            nodes = self.scopes.nodes_of(call.path)
            return "no value leaves it" if nodes else "no nodes of its own in the graph (folded away, or an identity)"
        pairs, why = pair_by_shape(call.outputs, [(n, self.values[n]) for n in names], calls=call.calls)
        if why is not None:
            return why
        return judge_pairs(pairs, self.tol, call.path)

    def own(self, call: ModuleCall) -> ValueCheck | str:
        """The module's nodes alone, fed the reference's inputs to the module."""
        names = self.scopes.values.get(call.path)
        entering = self.scopes.inputs.get(call.path, [])
        if not names:
            return "no value leaves it in the graph"
        given = [torch_to_numpy(t) for t in call.tensor_inputs()]
        offered = [(n, self.values[n]) for n in entering if n in self.values]
        # A module called n times has n times the values at its edges; the first call's come first.
        feeds_pairs, why = pair_by_shape(given, offered, floating_only=False, calls=call.calls)
        if why is not None:
            return f"its inputs cannot be matched: {why}"
        if len(feeds_pairs) * call.calls != len(offered) and len(feeds_pairs) != len(offered):
            return f"{len(offered)} values enter its nodes, the module was given {len(given)} tensors"
        out_pairs, _ = pair_by_shape(call.outputs, [(n, self.values[n]) for n in names], calls=call.calls)
        feeds = {_name(offered, value): reference.astype(value.dtype) for reference, value in feeds_pairs}
        wanted = [_name([(n, self.values[n]) for n in names], value) for _, value in out_pairs] or names
        try:
            got = run_module_alone(self.graph, self.path.parent, feeds, wanted)
        except Exception as e:
            raise_if_interrupted(e)
            return f"its nodes could not be run alone: {one_line(e)}"
        pairs, why = pair_by_shape(call.outputs, list(got.items()))
        if why is not None:
            return why
        return judge_pairs(pairs, self.tol, call.path)

    def outside(self, before: str) -> list[str]:
        """Nodes of no module that feed ``before``'s nodes (op types and names), for the summary."""
        index = set(self.scopes.nodes_of(before))
        entering = {v for i in index for v in self.graph.graph.node[i].input}
        return [
            f"{n.name or '?'} ({n.op_type})"
            for n, p in zip(self.graph.graph.node, self.scopes.node_paths, strict=True)
            if p in (None, "") and set(n.output) & entering
        ]

    def close(self) -> None:
        self.values = {}

"""Localising in an ONNX file: every module's values exposed in one onnxruntime pass, own errors on request."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from modelport.errors import one_line, raise_if_interrupted
from modelport.localize.judge import judge_pairs, pair_by_shape
from modelport.localize.onnx_scopes import Scopes, base_modules, read_scopes
from modelport.localize.onnx_values import ExposedGraph, load_graph, run_module_alone
from modelport.localize.records import ValueCheck
from modelport.localize.reference import ModuleCall, Trace
from modelport.signature import Signature
from modelport.validators.records import Tolerance

__all__ = ["OnnxProbe"]

BASE_FILE = "model.onnx"  # the graph the optimizer, float16 and int8 variants are derived from


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
        base = None
        if path.name != BASE_FILE and (path.parent / BASE_FILE).is_file():
            base = base_modules(load_graph(path.parent / BASE_FILE))
        self.scopes: Scopes = read_scopes(self.graph, [c.path for c in trace.calls], base)
        if self.scopes.unscoped:
            kinds = ", ".join(sorted(set(self.scopes.unscoped)))
            count = len(self.scopes.unscoped)
            self.notes.append(f"{count} nodes record no module ({kinds}): compared only as they feed modules")
        wanted = [v for m in self.scopes.values for v in (*self.scopes.values[m], *self.scopes.inputs[m])]
        exposed = ExposedGraph(self.graph, path.parent, signature, wanted)
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
        pairs, why = pair_by_shape(call.outputs, [(n, self.values[n]) for n in names])
        if why is not None:
            return why
        return judge_pairs(pairs, self.tol, call.path)

    def own(self, call: ModuleCall) -> ValueCheck | str:
        """The module's nodes alone, fed the reference's inputs to the module."""
        names = self.scopes.values.get(call.path)
        entering = self.scopes.inputs.get(call.path, [])
        if not names:
            return "no value leaves it in the graph"
        given = [t.detach().numpy() for t in call.tensor_inputs() if t.is_floating_point()]
        offered = [(n, self.values[n]) for n in entering if n in self.values]
        feeds_pairs, why = pair_by_shape(given, offered)
        if why is not None:
            return f"its inputs cannot be matched: {why}"
        if len(feeds_pairs) != len(offered):
            return f"{len(offered)} values enter its nodes, the module was given {len(given)} tensors"
        feeds = {}
        for reference, value in feeds_pairs:
            name = next(n for n, a in offered if a is value)
            feeds[name] = reference.astype(value.dtype)
        try:
            got = run_module_alone(self.graph, self.path.parent, feeds, names)
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

"""Which ONNX node belongs to which module, and which values leave each module.

The exporters record a node's module: torch.onnx's dynamo exporter in the node's
``pkg.torch.onnx.name_scopes`` metadata (``['', 'blocks.1', 'blocks.1.fc2', 'linear_3']``: each
enclosing module's path, then the FX node's own name), the TorchScript-based exporter in the node's name
(``/encoder/layers.1/fc2/Gemm``). A derived graph (the optimizer's, the quantizer's) keeps the
names of the nodes it left alone but not always their metadata: a name found in the base graph
``model.onnx`` takes that node's module, and so does a name the quantizer made from one
(``NAME_MatMul_quant``). Nodes with no module (a fusion of several) stay unmapped, never guessed.

A module's values are those its nodes produce and a node outside it (or the graph's output)
consumes: the values its forward returned, as the graph computes them.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

__all__ = ["Scopes", "node_module", "read_scopes"]

_NAME_SCOPES = "pkg.torch.onnx.name_scopes"


def node_module(node: onnx.NodeProto) -> str | None:
    """The module path a node was exported from ("" for the model itself), or None when unrecorded."""
    for prop in node.metadata_props:
        if prop.key == _NAME_SCOPES:
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return None
            if isinstance(scopes, list) and scopes and all(isinstance(s, str) for s in scopes):
                return _scope_path([s for s in scopes[1:-1] if s])
            return None
    if node.name.startswith("/") and node.name.count("/") >= 1:
        return ".".join(p for p in node.name.split("/")[1:-1] if p)
    return None


def _scope_path(parts: list[str]) -> str:
    """torch 2.13 writes each level's full path (``['blocks.0', 'blocks.0.ln1']``); a plain attribute chain
    (``['encoder', 'fc2']``) is joined."""
    if parts and all(b.startswith(a + ".") for a, b in itertools.pairwise(parts)):
        return parts[-1]
    return ".".join(parts)


@dataclass
class Scopes:
    """Every top-level node's module, and each module's nodes and values, for one graph."""

    node_paths: list[str | None]  # per node of graph.node, in order
    members: dict[str, list[int]] = field(default_factory=dict)  # module -> its nodes (its submodules' too)
    values: dict[str, list[str]] = field(default_factory=dict)  # module -> values leaving it, graph order
    inputs: dict[str, list[str]] = field(default_factory=dict)  # module -> computed values entering it
    unscoped: list[str] = field(default_factory=list)  # nodes without a module (op types, for the notes)

    def nodes_of(self, module: str) -> list[int]:
        return self.members.get(module, [])


def _rebase(path: str | None, known: set[str], wrapped: bool) -> str | None:
    """A scope as a module of the user's model. A wrapped export (FlatModel around the model) records the
    user's modules under ``model.``; its own nodes (flattening the outputs) belong to the user's root."""
    if path is None:
        return None
    if wrapped:
        path = path[len("model.") :] if path.startswith("model.") else ""
    while path and path not in known:  # a scope deeper than any hooked module (a functional call)
        path = path.rsplit(".", 1)[0] if "." in path else ""
    return path


def read_scopes(
    model: onnx.ModelProto,
    known: Iterable[str],
    base: Mapping[str, str | None] | None = None,
    *,
    wrapped: bool = False,
) -> Scopes:
    """Map ``model``'s nodes to the modules in ``known`` (dotted paths); ``base``: node name -> module
    from the graph a derived graph was made from. Linear in the graph's size times its depth."""
    known_set = set(known)
    nodes = list(model.graph.node)
    paths: list[str | None] = []
    for node in nodes:
        path = node_module(node)
        if path is None and base is not None:
            path = _from_base(node.name, base)
        paths.append(_rebase(path, known_set, wrapped))
    scopes = Scopes(paths, unscoped=[n.op_type for n, p in zip(nodes, paths, strict=True) if p is None])
    # Each node's enclosing modules, and who produces and consumes each value.
    within = [set(_ancestors(p)) & known_set if p else set() for p in paths]
    producer: dict[str, int] = {}
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for m in within[i]:
            scopes.members.setdefault(m, []).append(i)
        producer.update((o, i) for o in node.output if o)
        for v in node.input:
            if v:
                consumers.setdefault(v, []).append(i)
    computed = _computed(model)
    outputs = {o.name for o in model.graph.output}
    for module in sorted(scopes.members):
        leaving: list[str] = []
        entering: list[str] = []
        for i in scopes.members[module]:
            leaving += [
                o for o in nodes[i].output
                if o and (o in outputs or any(module not in within[j] for j in consumers.get(o, [])))
            ]  # fmt: skip
            entering += [
                v for v in nodes[i].input
                if v in computed and (v not in producer or module not in within[producer[v]])
            ]  # fmt: skip
        scopes.values[module] = leaving
        scopes.inputs[module] = list(dict.fromkeys(entering))
    return scopes


def _from_base(name: str, base: Mapping[str, str | None]) -> str | None:
    """A derived node's module by its name: the base node of that name, or the one whose name it extends with
    ``_...`` (onnxruntime's quantizer names the nodes it puts in a node's place ``NAME_MatMul_quant``, ...).
    A node the optimizer fused from several (``fused NAME``) holds other modules' operations too: unmapped."""
    if name in base:
        return base[name]
    owners = [b for b in base if b and name.startswith(b + "_")]
    return base[max(owners, key=len)] if owners else None


def _ancestors(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _computed(model: onnx.ModelProto) -> set[str]:
    """Values that depend on a graph input: what a module is fed, as opposed to its weights and constants."""
    initializers = {t.name for t in model.graph.initializer}
    live = {i.name for i in model.graph.input if i.name not in initializers}
    for node in model.graph.node:  # graph.node is topologically sorted (the ONNX checker requires it)
        if any(v in live for v in node.input):
            live.update(o for o in node.output if o)
    return live


def base_modules(model: onnx.ModelProto) -> dict[str, str | None]:
    """Node name -> module, for the graphs derived from this one."""
    return {n.name: node_module(n) for n in model.graph.node if n.name}

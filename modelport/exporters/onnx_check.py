"""A checker for ONNX graphs that onnxruntime wrote (optimized, float16, int8), its own operators included.

``onnx.checker.check_model`` knows only the operators of ONNX itself. onnxruntime's optimizer
and quantizer write operators it registers on its own: ``com.microsoft`` ones, and some in the
default domain (``SimplifiedLayerNormalization``, or ``LayerNormalization`` below opset 17), so
the plain checker rejects files that load and run. Here each node is checked by onnx's own
per-node checker when ONNX defines the operator at the model's opset, and otherwise must be an
operator onnxruntime's schema registry holds at that opset (name, domain, since_version, input,
output and attribute counts). An operator neither knows is rejected, in any domain. The graph's
structure (what ``check_model`` also checks) is checked here too: every input defined before it
is read, every value produced once, every graph output produced.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import ExportError
from modelport.exporters.runtime import require
from modelport.loaders import load_onnx

if TYPE_CHECKING:
    import onnx

__all__ = ["check_onnx_file", "graph_problems"]

_STANDARD = ("", "ai.onnx.ml", "ai.onnx.preview.training")


def _domain(name: str) -> str:
    return "" if name == "ai.onnx" else name


@functools.cache
def _ort_schemas() -> dict[tuple[str, str], list[Any]]:
    """onnxruntime's registered operator schemas by (name, domain), each list sorted by since_version."""
    state = require("onnxruntime.capi.onnxruntime_pybind11_state", "onnxruntime")
    found: dict[tuple[str, str], list[Any]] = {}
    for schema in state.get_all_operator_schema():
        found.setdefault((schema.name, _domain(schema.domain)), []).append(schema)
    for schemas in found.values():
        schemas.sort(key=lambda s: s.since_version)
    return found


def _label(node: onnx.NodeProto) -> str:
    op = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
    return f"node {node.name!r} ({op})" if node.name else f"a {op} node"


def _onnx_defines(op_type: str, domain: str, version: int) -> bool:
    onnx = require("onnx")
    try:
        onnx.defs.get_schema(op_type, version, domain)
    except onnx.defs.SchemaError:
        return False
    return True


def _without_subgraphs(node: onnx.NodeProto) -> onnx.NodeProto:
    """The node with each subgraph emptied: onnx's per-node check cannot see the outer names a subgraph reads."""
    lib = require("onnx")
    stub: onnx.NodeProto = lib.NodeProto()
    stub.CopyFrom(node)
    for attr in stub.attribute:
        if attr.type == lib.AttributeProto.GRAPH:
            attr.g.CopyFrom(lib.GraphProto(name=attr.g.name))
        elif attr.type == lib.AttributeProto.GRAPHS:
            for g in attr.graphs:
                g.CopyFrom(lib.GraphProto(name=g.name))
    return stub


def _ort_node_problem(node: onnx.NodeProto, domain: str, version: int) -> str | None:
    """Why onnxruntime's own schema registry does not vouch for this node, or None."""
    schemas = [s for s in _ort_schemas().get((node.op_type, domain), []) if s.since_version <= version]
    if not schemas:
        where = f"domain {domain!r}" if domain else "the default domain"
        return f"{_label(node)}: no operator {node.op_type} in {where} at opset {version}, in onnx or in onnxruntime"
    schema = schemas[-1]
    if schema.deprecated:
        return f"{_label(node)}: onnxruntime's {node.op_type} is deprecated at opset {version}"
    n_in = len(node.input)
    while n_in and not node.input[n_in - 1]:
        n_in -= 1  # trailing optional inputs left out
    if not schema.min_input <= n_in <= schema.max_input:
        return f"{_label(node)}: {n_in} inputs, its schema takes {schema.min_input} to {schema.max_input}"
    if not schema.min_output <= len(node.output) <= schema.max_output:
        return (
            f"{_label(node)}: {len(node.output)} outputs, its schema gives {schema.min_output} to {schema.max_output}"
        )
    given = {a.name for a in node.attribute}
    if unknown := sorted(given - set(schema.attributes)):
        return f"{_label(node)}: attributes {unknown} are not in its schema"
    if missing := sorted(n for n, a in schema.attributes.items() if a.required and n not in given):
        return f"{_label(node)}: required attributes {missing} are missing"
    return None


def _node_problem(node: onnx.NodeProto, ctx: Any, opsets: dict[str, int]) -> str | None:
    onnx = require("onnx")
    domain = _domain(node.domain)
    if domain not in opsets:
        return f"{_label(node)}: its domain {node.domain!r} is not in the model's opset imports"
    version = opsets[domain]
    if domain in _STANDARD and _onnx_defines(node.op_type, domain, version):
        try:
            onnx.checker.check_node(_without_subgraphs(node), ctx)
        except onnx.checker.ValidationError as e:
            return f"{_label(node)}: {str(e).splitlines()[0]}"
        return None
    return _ort_node_problem(node, domain, version)


def _subgraphs(node: onnx.NodeProto) -> Iterable[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def _graph_problems(graph: onnx.GraphProto, outer: set[str] | None, ctx: Any, opsets: dict[str, int]) -> list[str]:
    """The graph's problems; ``outer``: the names a subgraph sees from the graphs around it (None: main graph)."""
    onnx = require("onnx")
    problems: list[str] = []
    for kind, names in (("input", [i.name for i in graph.input]), ("initializer", [t.name for t in graph.initializer])):
        for name in sorted(n for n, k in Counter(names).items() if k > 1):
            problems.append(f"{kind} {name!r} is declared more than once")
    for tensor in graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            try:
                onnx.checker.check_tensor(tensor, ctx)
            except onnx.checker.ValidationError as e:
                problems.append(f"initializer {tensor.name!r}: {str(e).splitlines()[0]}")
    seen = outer or set()
    defined = seen | {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for node in graph.node:
        if (why := _node_problem(node, ctx, opsets)) is not None:
            problems.append(why)
        for name in node.input:
            if name and name not in defined:
                problems.append(f"{_label(node)} reads {name!r} before any input, initializer or node gives it")
        for sub in _subgraphs(node):
            problems += _graph_problems(sub, defined, ctx, opsets)
        for name in node.output:
            if not name:
                continue
            if name in defined and name not in seen:
                problems.append(f"{name!r} is produced more than once (again by {_label(node)})")
            defined.add(name)
    for out in graph.output:
        if out.name not in defined:
            problems.append(f"graph output {out.name!r} is produced by no node, input or initializer")
    return [f"subgraph {graph.name!r}: {p}" for p in problems] if outer is not None else problems


def graph_problems(model: onnx.ModelProto) -> list[str]:
    """Everything wrong with the model's graph; empty when onnx or onnxruntime vouches for every node."""
    onnx = require("onnx")
    if not 3 <= model.ir_version <= onnx.IR_VERSION:
        return [f"IR version {model.ir_version} is outside what onnx {onnx.__version__} reads (3 to {onnx.IR_VERSION})"]
    opsets: dict[str, int] = {}
    for entry in model.opset_import:
        domain = _domain(entry.domain)
        if domain in opsets:
            return [f"the opset imports name the domain {entry.domain!r} twice"]
        opsets[domain] = entry.version
    if "" not in opsets:
        return ["the model imports no opset of the default ONNX domain"]
    ctx = onnx.checker.C.CheckerContext()
    ctx.ir_version = model.ir_version
    ctx.opset_imports = opsets
    return _graph_problems(model.graph, None, ctx, opsets)


def check_onnx_file(path: Path) -> onnx.ModelProto:
    """Raise ExportError naming what is wrong with the saved graph (see the module's docstring); else the graph,
    loaded without its external data, for the caller's own facts (one parse of the file)."""
    require("onnx")  # a clear error when onnx is missing
    try:
        model = load_onnx(path, load_external_data=False)
    except Exception as e:
        raise ExportError(f"{path.name} cannot be read as an ONNX model: {e}") from e
    problems = graph_problems(model)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ExportError(f"{path.name} failed the graph check: {problems[0]}{more}")
    return model

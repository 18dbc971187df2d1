"""``onnx``: ``torch.onnx.export`` with modelport's names and dynamic axes, checked, run by onnxruntime.

Facts this handles (torch 2.13): the dynamo exporter names tensors after the code unless
told otherwise, fixes every dim unless ``dynamic_shapes`` is given, prints progress unless
``verbose=False``, and writes a separate ``.onnx.data`` file unless ``external_data=False``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import ExportError, one_line, root_cause
from modelport.exporters.base import Exporter, ExportRequest, FormatRecord
from modelport.exporters.capture import shared_program
from modelport.exporters.dims import dynamic_shapes, request_probe
from modelport.exporters.onnx_save import EXTERNAL_DATA_THRESHOLD, over_limit
from modelport.exporters.quiet import TORCH_EXPORT_LOGGERS, collect_warnings
from modelport.exporters.runtime import require
from modelport.exporters.shapes import clean_rnn_dispatch, parse_fixes, rnn_chatter
from modelport.exporters.targets import Target, oldest_release_for
from modelport.fsutil import atomic_path, atomic_write
from modelport.loaders import load_onnx
from modelport.signature import Signature
from modelport.validators.records import Tolerance

if TYPE_CHECKING:  # torch only when exporting: verify's ONNX replay imports this module without it
    import torch

__all__ = ["EXTERNAL_DATA_THRESHOLD", "FILE", "OnnxExporter", "graph_facts", "model_facts", "no_bfloat16", "write_onnx"]

FILE = "model.onnx"


def _quiet_exporter(notes: list[str]) -> contextlib.AbstractContextManager[None]:
    """The exporter's log lines and warnings go into notes, not onto the user's terminal.

    torch.onnx logs "torchvision is not installed" lines; onnxscript's version converter
    logs whole tracebacks when it cannot reach an opset (reported as our own error instead).
    """
    return collect_warnings(
        notes,
        # Internal chatter: a pytree deprecation, and dim names merged when axes are equal.
        drop=lambda w: (
            "LeafSpec" in str(w.message) or "will not be used, since it shares" in str(w.message) or rnn_chatter(w)
        ),
        loggers=("torch.onnx", "onnxscript", *TORCH_EXPORT_LOGGERS),
        capture_output=True,
    )


def graph_facts(path: Path) -> dict[str, Any]:
    """Opset, IR version, producer and I/O names of a saved ONNX file (weights not loaded)."""
    return model_facts(require("onnx").load(str(path), load_external_data=False))


def model_facts(model: Any) -> dict[str, Any]:
    """:func:`graph_facts` of a loaded ModelProto."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {
        "opset": opset,
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [i.name for i in model.graph.input],
        "outputs": [o.name for o in model.graph.output],
        "nodes": len(model.graph.node),
    }


def no_bfloat16(request: ExportRequest) -> str | None:
    """onnxruntime's CPU provider has no bfloat16 Gemm/MatMul/Conv kernels (NOT_IMPLEMENTED at load)."""
    import torch

    if any(p.dtype == torch.bfloat16 for p in request.model.parameters()):
        return "onnxruntime's CPU provider has no bfloat16 kernels for Gemm/MatMul/Conv; use float32 or float16"
    return None


# Node metadata that embeds the builder's absolute source paths and line numbers. Node
# names, namespaces and scopes stay: they say which layer a node belongs to.
_PATH_METADATA = ("pkg.torch.onnx.stack_trace",)


def _strip_metadata(model: Any) -> bool:
    """Remove stack traces from node metadata, so the file neither leaks nor depends on where it was built;
    whether anything was removed."""
    graphs = [model.graph, *(f for f in model.functions)]
    changed = False
    for graph in graphs:
        for node in graph.node:
            keep = [p for p in node.metadata_props if p.key not in _PATH_METADATA]
            if len(keep) != len(node.metadata_props):
                del node.metadata_props[:]
                node.metadata_props.extend(keep)
                changed = True
    return changed


def _save_graph(model: Any, path: Path) -> None:
    """The graph (loaded without its external data, which stays as it is on disk) written back over ``path``."""
    with atomic_write(path) as fh:
        fh.write(model.SerializeToString())


def _fixed_dynamic_dims(model: Any, sig: Signature) -> dict[str, list[str]]:
    """Input axes declared dynamic that the graph pins to a number, by label."""
    graph = model.graph
    fixed: dict[str, list[str]] = {}
    for spec, graph_input in zip(sig.inputs, graph.input, strict=False):
        dims = graph_input.type.tensor_type.shape.dim
        for axis, label in spec.dynamic_axes().items():
            if axis < len(dims) and dims[axis].HasField("dim_value"):
                fixed.setdefault(label, []).append(f"{spec.name} axis {axis} ({label}) at {dims[axis].dim_value}")
    return fixed


def _why_fixed(request: ExportRequest, fixed: dict[str, list[str]]) -> str:
    """Who fixed a declared-dynamic axis: the ONNX exporter (torch.export keeps it symbolic) or the model."""
    exporter = request.options.onnx_exporter
    other = "legacy" if exporter == "dynamo" else "dynamo"
    where = ", ".join(w for ws in fixed.values() for w in ws)
    labels = ", ".join(fixed)
    head = f"the {exporter} ONNX exporter fixed {where}, which the signature declares dynamic"
    probe = request_probe(request)
    if probe.program is not None:
        return (
            f"{head}; the eager model runs at other sizes and torch.export keeps {labels} symbolic, so the exporter "
            f"caused it, not the model: try --onnx-exporter {other}, or leave onnx out of --formats"
        )
    specialised = [probe.specialised[lb].text for lb in fixed if lb in probe.specialised]
    if specialised:
        return (
            f"{head}; torch.export fixes it too ({'; '.join(specialised)}) although the eager model runs at other "
            f"sizes: the model's code specialises on that size while traced (a Python branch or int() on a size); "
            f"drop {labels} from --dynamic, or make that code size-agnostic"
        )
    return (
        f"{head}; torch.export cannot export the model to tell whether the model or the exporter caused it "
        f"({probe.error}); drop {labels} from --dynamic, or try --onnx-exporter {other}"
    )


# The oldest IR version that can hold each tensor element type newer than IR 8's.
_IR_FOR_TYPE = {17: 9, 18: 9, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11}


def _ir_needed(model: Any) -> int:
    """The oldest IR version this graph's contents need (new element types, function overloads)."""
    types = [t.data_type for t in model.graph.initializer]
    types += [v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output, *model.graph.value_info]]
    needed = max((_IR_FOR_TYPE.get(t, 3) for t in types), default=3)
    if any(getattr(f, "overload", "") for f in model.functions):
        needed = max(needed, 10)
    if len(model.functions):
        needed = max(needed, 8)
    return needed


def _fit_model(model: Any, target: Target) -> list[str]:
    """Lower the model's IR version (in place) to what ``target`` reads, when nothing in the graph needs the newer
    one; the note, or nothing when it already fits.

    Exporters stamp the newest IR version they know (the dynamo exporter writes 10) even for
    graphs that IR 9 describes exactly; onnxruntime 1.17 refuses a file stamped 10.
    """
    if model.ir_version <= target.max_ir:
        return []
    needed = _ir_needed(model)
    if needed > target.max_ir:
        raise ExportError(
            f"the graph needs ONNX IR version {needed} (its element types or functions), {target.label} reads "
            f"{target.max_ir} at most; choose a newer --target"
        )
    before = model.ir_version
    model.ir_version = target.max_ir
    return [f"IR version lowered from {before} to {target.max_ir} for {target.label} (nothing in the graph needs more)"]


def write_onnx(request: ExportRequest, path: Path) -> FormatRecord:
    """Export ``request`` to ``path`` (plus ``path.data`` above 1.8 GB), check it, and describe it."""
    opts = request.options
    sig = request.signature
    args = tuple(request.inputs.values())
    weight_bytes = sum(t.numel() * t.element_size() for t in request.model.state_dict().values())
    external = over_limit(weight_bytes)  # one threshold for every ONNX variant (onnx_save.py)
    notes: list[str] = []
    try:
        with _quiet_exporter(notes), clean_rnn_dispatch():
            if opts.onnx_exporter == "legacy":
                _export_legacy(request, args, path, external)
            else:
                _export_dynamo(request, args, path, external)
    except Exception as e:
        other = "legacy" if opts.onnx_exporter == "dynamo" else "dynamo"
        cause = root_cause(e)
        why = one_line(e) if cause is e else f"{type(cause).__name__}: {one_line(cause)}"
        fixes = [f.text for f in parse_fixes(str(cause))]
        if fixes:  # torch's own suggested fix, which one_line may have cut
            why += f"; torch's suggested fix: {'; '.join(fixes)}"
        raise ExportError(
            f"torch.onnx.export ({opts.onnx_exporter}) failed: {why}; try --onnx-exporter {other} or another "
            "--opset (data-dependent Python control flow needs torch.cond)"
        ) from e
    onnx = require("onnx")
    # One parse of the written file: every fact and fix below reads or changes this ModelProto (weights stay on
    # disk), and the file is written back only when something changed. The checker reads the file itself.
    model = load_onnx(path, load_external_data=False)
    if _strip_metadata(model):
        _save_graph(model, path)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:
        raise ExportError(f"onnx.checker rejected the exported {path.name}: {one_line(e)}") from e
    facts = model_facts(model)
    wanted = opts.onnx_opset
    if wanted is not None and facts["opset"] != wanted and opts.target is not None:
        nearest = oldest_release_for(facts["opset"], _ir_needed(model))
        raise ExportError(
            f"{opts.target.label} reads opset {opts.target.max_opset} at most, and the {opts.onnx_exporter} exporter "
            f"could not go below opset {facts['opset']} for this model; the nearest that works: --target {nearest}"
            + (" (or try --onnx-exporter legacy)" if opts.onnx_exporter == "dynamo" else "")
        )
    if wanted is not None and facts["opset"] != wanted:
        raise ExportError(
            f"asked for opset {wanted}, but the {opts.onnx_exporter} exporter wrote opset {facts['opset']} "
            "(the version converter could not convert every operator); choose a newer --opset or --target, or try "
            f"--onnx-exporter {'legacy' if opts.onnx_exporter == 'dynamo' else 'dynamo'}"
        )
    lowered = _fit_model(model, opts.target) if opts.target is not None else []
    if lowered:
        _save_graph(model, path)
        notes += lowered
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as e:
            raise ExportError(f"onnx.checker rejected {path.name} at IR {opts.target.max_ir}: {one_line(e)}") from e  # type: ignore[union-attr]
        facts = model_facts(model)
    if facts["inputs"] != sig.input_names or facts["outputs"] != sig.output_names:
        raise ExportError(
            f"the exported graph names its inputs {facts['inputs']} and outputs {facts['outputs']}, "
            f"expected {sig.input_names} and {sig.output_names}"
        )
    fixed = _fixed_dynamic_dims(model, sig)
    if fixed:
        raise ExportError(_why_fixed(request, fixed))
    files = [path.name]
    roles = {}
    data = path.with_name(f"{path.name}.data")
    if data.exists():
        files.append(data.name)
        roles[data.name] = "external-data"
    return FormatRecord(
        format="onnx",
        runtime="onnxruntime",
        files=files,
        roles=roles,
        details={
            "exporter": opts.onnx_exporter,
            "opset": facts["opset"],
            "ir_version": facts["ir_version"],
            "producer": facts["producer"],
            "external_data": external,
            "nodes": facts["nodes"],
            "dynamic_dims": sig.dims_text(),
        },
        notes=notes,
    )


def _export_dynamo(request: ExportRequest, args: tuple[torch.Tensor, ...], path: Path, external: bool) -> None:
    import torch

    sig = request.signature
    # The shape probe's torch.export program when torch.onnx would capture the same graph (see capture.py).
    captured = shared_program(request)
    program = torch.onnx.export(
        captured if captured is not None else request.graph_module,
        args,
        dynamo=True,
        verbose=False,
        input_names=sig.input_names,
        output_names=sig.output_names,
        opset_version=request.options.onnx_opset,
        dynamic_shapes=dynamic_shapes(request),
    )
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        raise ExportError("torch.onnx.export returned no program")
    program.save(str(path), external_data=external)


def _export_legacy(request: ExportRequest, args: tuple[torch.Tensor, ...], path: Path, external: bool) -> None:
    if external:
        raise ExportError("the legacy exporter scatters weights over 2 GB into one file per tensor")
    import torch

    sig = request.signature
    dynamic_axes = {s.name: s.dynamic_axes() for s in [*sig.inputs, *sig.outputs] if s.dynamic_axes()}
    with atomic_path(path) as tmp:
        torch.onnx.export(
            request.graph_module,
            args,
            str(tmp),
            dynamo=False,
            # Below opset 9 the legacy exporter would list every weight as a graph input.
            keep_initializers_as_inputs=False,
            input_names=sig.input_names,
            output_names=sig.output_names,
            opset_version=request.options.onnx_opset,
            dynamic_axes=dynamic_axes or None,
        )


class OnnxExporter(Exporter):
    name = "onnx"
    kind = "onnx"
    main_file = FILE
    runtime = "onnxruntime"
    role = "model"
    tolerance = Tolerance(atol=1e-5, rtol=1e-5)
    tolerance_why = "onnxruntime's kernels reorder float ops: measured up to 3e-7 on the MLP, 30x margin"

    def unsupported(self, request: ExportRequest) -> str | None:
        return no_bfloat16(request)

    def export(self, request: ExportRequest) -> FormatRecord:
        return write_onnx(request, request.folder / FILE)

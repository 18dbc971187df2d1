"""The build stage: the model in eval mode, its example inputs, signature and reference output."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from modelport.errors import UsageError, one_line
from modelport.exporters.shapes import ShapeProbe, declared_dims, probe_shapes
from modelport.fsutil import sha256_file
from modelport.models import ModelSource
from modelport.models.example import Example, FlatModel, forward_params, normalize_example
from modelport.models.weights_file import load_weights_into
from modelport.pipeline.inputs import ValueRule, generate, value_rules
from modelport.pipeline.records import ModelInfo
from modelport.runtimes.torch_runner import TorchRunner
from modelport.signature import (
    NotATensorOutput,
    Signature,
    TensorSpec,
    flatten_named,
    torch_dtype_name,
    torch_to_numpy,
)
from modelport.specs import Bounds, InputDecl

__all__ = ["BuildOptions", "Built", "build_model", "probe_built", "widen_for_export"]

# Layers whose output depends on train/eval mode.
_MODE_DEPENDENT = (
    torch.nn.modules.dropout._DropoutNd,
    torch.nn.modules.batchnorm._BatchNorm,
    torch.nn.modules.instancenorm._InstanceNorm,
)


@dataclass(frozen=True)
class BuildOptions:
    inputs: tuple[InputDecl, ...] = ()  # --input: replaces the model's example inputs
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)  # --dynamic, on top of the batch axis
    bounds: dict[str, Bounds] = field(default_factory=dict)  # --dynamic ranges (seq<=512), per label
    weights: Path | None = None  # --weights


@dataclass
class Built:
    source: ModelSource
    model: torch.nn.Module  # the user's module, eval mode
    flat: torch.nn.Module  # what graph exporters see: positional inputs, a flat tuple of outputs
    inputs: dict[str, torch.Tensor]
    signature: Signature
    reference: dict[str, np.ndarray]  # Y = model(X), eval mode, inference_mode
    rules: dict[str, ValueRule]
    info: ModelInfo
    notes: list[str]
    probe: ShapeProbe | None = None  # torch.export with the final dims (see probe_built)

    def runner(self) -> TorchRunner:
        return TorchRunner("original@torch", self.model, self.signature)


def _example_from_decls(model: torch.nn.Module, decls: tuple[InputDecl, ...], seed: int) -> Example:
    generator = torch.Generator().manual_seed(seed)
    probe = {d.name: torch.zeros(d.shape, dtype=getattr(torch, d.dtype)) for d in decls}
    rules = value_rules(model, probe)
    for d in decls:  # declared masks have no example values to learn from: 1/True means keep
        if rules[d.name].kind == "mask":
            rules[d.name] = ValueRule("mask", rules[d.name].dtype, keep=True if d.dtype == "bool" else 1)
    inputs = {d.name: generate(rules[d.name], list(d.shape), generator) for d in decls}
    params = forward_params(model)
    # By name when forward() has parameters of those names, so their order does not matter;
    # positionally when they are its leading parameters in order (no wrapper needed then).
    names = list(inputs)
    keyword = all(n in params for n in names) and names != params[: len(names)]
    return Example(inputs, keyword=keyword)


def _dynamic_axes(example: Example, declared: dict[str, dict[int, str]]) -> dict[str, dict[int, str]]:
    axes = {name: ({0: "batch"} if t.dim() >= 1 else {}) for name, t in example.inputs.items()}
    for name, extra in declared.items():
        if name not in axes:
            raise UsageError(f"--dynamic names input {name!r}; the model's inputs are {list(axes)}")
        rank = example.inputs[name].dim()
        for axis, label in extra.items():
            if axis >= rank:
                raise UsageError(f"--dynamic {name}:{axis}={label}: {name} has only {rank} axes")
            axes[name][axis] = label
    return axes


def _parameters(model: torch.nn.Module) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return []


def widen_for_export(inputs: dict[str, torch.Tensor], signature: Signature) -> dict[str, torch.Tensor]:
    """Size-1 dynamic axes doubled: torch.export fixes a dim whose example size is 1 (it specialises 0/1)."""
    widened = {}
    for spec in signature.inputs:
        t = inputs[spec.name]
        for axis in spec.dynamic_axes():
            if t.shape[axis] == 1:
                t = torch.cat([t, t], dim=axis)
        widened[spec.name] = t
    return widened


def _call(model: torch.nn.Module, inputs: dict[str, torch.Tensor], keyword: bool) -> object:
    with torch.inference_mode():
        return model(**inputs) if keyword else model(*inputs.values())


def _output_axes(
    model: torch.nn.Module,
    example: Example,
    axes: dict[str, dict[int, str]],
    rules: dict[str, ValueRule],
    outputs: list[torch.Tensor],
    notes: list[str],
    declared: set[str],
    bounds: dict[str, Bounds],
) -> list[list[int | str]]:
    """Output dims that follow a dynamic input axis: grow each label by one (shrink it at its max) and see what grows.

    A label the model cannot vary is removed from ``axes`` (default batch axis) or refused
    (declared with --dynamic).
    """
    shapes: list[list[int | str]] = [list(t.shape) for t in outputs]
    generator = torch.Generator().manual_seed(12345)
    for label in sorted({lb for a in axes.values() for lb in a.values()}):
        high = bounds.get(label, Bounds()).max
        step = (
            -1
            if high is not None
            and any(
                t.shape[i] + 1 > high
                for name, t in example.inputs.items()
                for i, lb in axes[name].items()
                if lb == label
            )
            else 1
        )
        grown = {
            name: generate(
                rules[name], [n + step if axes[name].get(i) == label else n for i, n in enumerate(t.shape)], generator
            )
            for name, t in example.inputs.items()
        }
        try:
            probe = [t for _, t in flatten_named(_call(model, grown, example.keyword))]
        except Exception as e:
            # The model fixes this axis (a reshape to the example's size, a position table...).
            where = [f"{n}:{i}" for n, a in axes.items() for i, lb in a.items() if lb == label]
            if label in declared:
                raise UsageError(
                    f"--dynamic {label}: the model fails when {', '.join(where)} change size "
                    f"({type(e).__name__}: {one_line(e, 150)}); drop it from --dynamic"
                ) from e
            for name in axes:
                axes[name] = {i: lb for i, lb in axes[name].items() if lb != label}
            notes.append(
                f"axis {label!r} ({', '.join(where)}) is not dynamic: the model fails at another size "
                f"({type(e).__name__}: {one_line(e, 120)}); it is exported with the example's size"
            )
            continue
        for shape, before, after in zip(shapes, outputs, probe, strict=False):
            for i, (a, b) in enumerate(zip(before.shape, after.shape, strict=False)):
                if a != b and isinstance(shape[i], int):
                    shape[i] = label
    return shapes


def _not_a_tensor(spec: str, e: NotATensorOutput) -> str:
    """An output modelport cannot export, named, with how to turn it off (a Hugging Face cache above all)."""
    cache = "Cache" in e.type_name or e.module.startswith("transformers")
    fix = (
        "turn the cache off: use_cache=False in the model's config or its forward call (Hugging Face models)"
        if cache
        else "return tensors only (or a tuple, list or dict of them), or wrap the model to drop that output"
    )
    return f"--model {spec}: the model ran, but its output {e.path!r} is a {e.type_name}, not a tensor; {fix}"


def _check_bounds(example: Example, axes: dict[str, dict[int, str]], bounds: dict[str, Bounds]) -> None:
    """The example must lie inside every declared range: it is what every exporter traces."""
    for name, per in axes.items():
        for axis, label in per.items():
            b = bounds.get(label)
            size = int(example.inputs[name].shape[axis])
            if b is not None and ((b.min is not None and size < b.min) or (b.max is not None and size > b.max)):
                raise UsageError(
                    f"--dynamic {b.text(label)}: the example's {name} axis {axis} has size {size}, outside that "
                    "range; widen the range or use another example"
                )


def probe_built(built: Built, formats: list[str], bounds: dict[str, Bounds]) -> None:
    """Run the shape probe when an export needs it, and take its final dims into the signature.

    torch_export reuses the probe's program, so with it selected the probe costs nothing extra;
    otherwise it runs only for axes beyond the batch axis, where narrowing and diagnosis matter.
    """
    graph = {"torchscript", "onnx"} & set(formats)
    beyond_batch = any(label != "batch" for label in built.signature.dims)
    if "torch_export" not in formats and not (graph and beyond_batch):
        return
    sizes = {
        label: int(built.inputs[s.name].shape[axis])
        for s in built.signature.inputs
        for axis, label in s.dynamic_axes().items()
    }
    probe = probe_shapes(built.flat, widen_for_export(built.inputs, built.signature), built.signature, bounds, sizes)
    built.signature = probe.signature
    built.probe = probe
    built.notes.extend(probe.notes)


def build_model(source: ModelSource, seed: int, options: BuildOptions | None = None) -> Built:
    """Build the model from ``seed``, load ``--weights``, switch to eval mode, compute the reference."""
    options = options or BuildOptions()
    model, raw_example = source.build(seed)
    notes: list[str] = []
    weights_sha = None
    if options.weights is not None:
        count = load_weights_into(model, options.weights)
        weights_sha = sha256_file(options.weights)
        notes.append(f"loaded {count} tensors from --weights {options.weights.name}")
    if options.inputs:
        example = _example_from_decls(model, options.inputs, seed)
    elif raw_example is None:
        raise UsageError(
            f"--model {source.spec} returns no example inputs; describe them with --input NAME=SHAPE[:DTYPE], "
            "e.g. --input x=2x20:float32"
        )
    else:
        example = normalize_example(model, raw_example, source.spec)
    mode_dependent = sorted({type(m).__name__ for m in model.modules() if isinstance(m, _MODE_DEPENDENT)})
    if model.training and mode_dependent:
        notes.append(
            f"the model arrived in training mode and has {', '.join(mode_dependent)} layers, which behave "
            "differently in eval mode; it is exported and compared in eval mode"
        )
    model.eval()
    axes = _dynamic_axes(example, options.dynamic)
    try:
        raw_out = _call(model, example.inputs, example.keyword)
    except Exception as e:
        raise UsageError(f"--model {source.spec} fails on its example inputs: {type(e).__name__}: {one_line(e)}") from e
    try:
        named = flatten_named(raw_out)
    except NotATensorOutput as e:
        raise UsageError(_not_a_tensor(source.spec, e)) from e
    rules = value_rules(model, example.inputs)
    outputs = [t for _, t in named]
    declared = {label for extra in options.dynamic.values() for label in extra.values()}
    _check_bounds(example, axes, options.bounds)
    out_shapes = _output_axes(model, example, axes, rules, outputs, notes, declared, options.bounds)
    signature = Signature(
        inputs=[
            TensorSpec(
                name=n, shape=[axes[n].get(i, d) for i, d in enumerate(t.shape)], dtype=torch_dtype_name(t.dtype)
            )
            for n, t in example.inputs.items()
        ],
        outputs=[
            TensorSpec(name=n, shape=shape, dtype=torch_dtype_name(t.dtype))
            for (n, t), shape in zip(named, out_shapes, strict=True)
        ],
        call="keyword" if example.keyword else "positional",
    )
    signature = signature.model_copy(update={"dims": declared_dims(signature, options.bounds)})
    # Exported as it is only when it takes named positional inputs and returns a tensor or a
    # plain tuple/list of tensors; anything else goes through the FlatModel wrapper.
    varargs = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in _parameters(model))
    plain = not varargs and (
        isinstance(raw_out, torch.Tensor)
        or (
            isinstance(raw_out, tuple | list)
            and type(raw_out) in (tuple, list)
            and all(isinstance(t, torch.Tensor) for t in raw_out)
        )
    )
    flat = model if plain and not example.keyword else FlatModel(model, list(example.inputs), example.keyword)
    dtypes = sorted({torch_dtype_name(p.dtype) for p in model.parameters()})
    info = ModelInfo(
        name=source.name,
        spec=source.spec,
        description=source.description,
        class_name=type(model).__name__,
        parameters=sum(p.numel() for p in model.parameters()),
        dtypes=dtypes,
        seed=seed,
        weights=str(options.weights) if options.weights else None,
        weights_sha256=weights_sha,
    )
    reference = {spec.name: torch_to_numpy(t) for spec, t in zip(signature.outputs, outputs, strict=True)}
    return Built(source, model, flat, example.inputs, signature, reference, rules, info, notes)


def release_weights(built: Built) -> int:
    """Free the original's weights once its outputs on every set are computed; the bytes freed.

    The candidates are loaded one at a time after this: a model's weights are then held once (the
    candidate's), not twice. The model object stays (its structure, names, signature); only the
    storage goes, and ``built.probe`` (a torch.export program holding the same tensors) with it.
    The model is always modelport's own instance (a spec's factory, or a copy of an in-memory one).
    """
    import torch

    freed = 0
    seen: set[int] = set()
    for module in {id(built.model): built.model, id(built.flat): built.flat}.values():
        for tensor in [*module.parameters(), *module.buffers()]:
            if id(tensor) in seen or tensor.is_meta:
                continue
            seen.add(id(tensor))
            freed += tensor.numel() * tensor.element_size()
            tensor.data = torch.empty(0, dtype=tensor.dtype)
    built.probe = None
    return freed

"""The shape probe: one ``torch.export`` with the declared dims before any export, narrowed as torch suggests.

Every graph exporter then gets the same, final dims (``Signature.dims``), the sweep covers
both ends of each range, and the manifest records them. Two torch facts shape this module:

- torch.export reports an axis it cannot keep dynamic over the whole declared range as a
  constraint violation whose text carries a *suggested fix* (``seq = Dim('seq', max=16)``
  for a 16-row position table, ``seq = 10`` for an axis it specialised). A range fix is
  applied and the export retried; a fix that leaves the example outside the range, or that
  contradicts a bound the user gave, is a usage error; torch's words are always quoted.
- ``nn.LSTM``/``nn.GRU`` decompose into a Python loop over time steps that fixes the sequence
  length. torch ships while_loop decompositions that keep it dynamic (torch.onnx uses them
  when given dynamic shapes), but installs them by assigning ``OpOverload.py_kernels``
  without clearing the op's dispatch cache: once any export has dispatched ``aten.lstm``
  in this process, the cached unrolling kernel wins and a later export silently fixes the
  axis. ``rnn_while_loops`` installs them for our own exports and clears the cache on entry
  and exit, so torch.onnx's own installation works after ours.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelport.errors import UsageError, one_line
from modelport.exporters.quiet import TORCH_EXPORT_LOGGERS, collect_warnings
from modelport.signature import DimRange, Signature
from modelport.specs import Bounds

if TYPE_CHECKING:  # torch only when probing or exporting: verify's ONNX replay imports this module without it
    import torch

__all__ = [
    "Fix",
    "ShapeProbe",
    "clean_rnn_dispatch",
    "declared_dims",
    "dynamic_shapes_for",
    "narrow",
    "parse_fixes",
    "probe_shapes",
    "rnn_chatter",
    "rnn_while_loops",
    "torch_message",
]

_ATTEMPTS = 4  # exports tried: the declared dims, then up to three rounds of torch's fixes


def dynamic_shapes_for(module: torch.nn.Module, signature: Signature) -> tuple[Any, ...] | None:
    """torch.export's ``dynamic_shapes``: one ``Dim`` per label (with its range), shared across inputs.

    None when nothing is dynamic; otherwise specs matching how ``module`` takes its inputs.
    """
    import torch

    from modelport.models.example import FlatModel

    dims: dict[str, Any] = {}

    def dim(label: str) -> Any:
        if label not in dims:
            r = signature.dim_range(label)
            # min 0/1 is torch's default; a larger one, or a max, is passed as given.
            bounds = {"min": r.min} if r.min > 1 else {}
            if r.max is not None:
                bounds["max"] = r.max
            dims[label] = torch.export.Dim(label, **bounds)
        return dims[label]

    specs = tuple({axis: dim(label) for axis, label in s.dynamic_axes().items()} or None for s in signature.inputs)
    if all(s is None for s in specs):
        return None
    # FlatModel.forward(*args): torch.export wants the specs of the varargs as one tuple.
    return (specs,) if isinstance(module, FlatModel) else specs


def rnn_chatter(w: warnings.WarningMessage) -> bool:
    """torch's own warnings from its while_loop RNN decompositions: nothing the user can act on."""
    text = str(w.message)
    return "_check_is_size will be removed" in text or "_flat_weights" in text


def _clear_rnn_dispatch_caches() -> None:
    # Private torch state (checked against torch 2.13): absent elsewhere, there is no stale cache to clear.
    import torch

    for op in (torch.ops.aten.lstm.input, torch.ops.aten.gru.input):
        cache = getattr(op, "_dispatch_cache", None)
        if cache is not None:
            cache.clear()


@contextlib.contextmanager
def clean_rnn_dispatch() -> Iterator[None]:
    """For exporters that install torch's RNN decompositions themselves (torch.onnx): no stale kernel in the way."""
    _clear_rnn_dispatch_caches()
    try:
        yield
    finally:
        _clear_rnn_dispatch_caches()


@contextlib.contextmanager
def rnn_while_loops() -> Iterator[None]:
    """LSTM/GRU traced as a while_loop over time (a dynamic sequence axis stays dynamic); caches cleared."""
    try:  # private torch API (torch 2.13); a torch without it unrolls RNNs, and the probe reports what it fixes
        from torch.export._patches import (
            register_gru_while_loop_decomposition,
            register_lstm_while_loop_decomposition,
        )
    except ImportError:
        with clean_rnn_dispatch():
            yield
        return
    _clear_rnn_dispatch_caches()
    try:
        with register_lstm_while_loop_decomposition(), register_gru_while_loop_decomposition():
            yield
    finally:
        _clear_rnn_dispatch_caches()


@dataclass(frozen=True)
class Fix:
    """One line of torch.export's suggested fixes for a label: a range, or a fixed size."""

    label: str
    text: str  # verbatim, e.g. "seq = Dim('seq', max=16)"
    min: int | None = None
    max: int | None = None
    value: int | None = None  # the axis specialised to this size


_FIX_RANGE = re.compile(r"(\w+)\s*=\s*Dim\(\s*['\"](\w+)['\"]\s*((?:,\s*(?:min|max)\s*=\s*-?\d+\s*)*)\)$")
_FIX_VALUE = re.compile(r"(\w+)\s*=\s*(\d+)$")


def parse_fixes(message: str) -> list[Fix]:
    """The lines under ``Suggested fixes:`` in a torch.export error, parsed where they are a range or a size."""
    _, found, rest = message.partition("Suggested fixes:")
    if not found:
        return []
    fixes = []
    for raw in rest.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not raw.startswith((" ", "\t")):
            break  # the indented block ended
        if m := _FIX_RANGE.match(line):
            bounds = dict(re.findall(r"(min|max)\s*=\s*(-?\d+)", m.group(3)))
            low, high = bounds.get("min"), bounds.get("max")
            fixes.append(Fix(m.group(1), line, int(low) if low else None, int(high) if high else None))
        elif m := _FIX_VALUE.match(line):
            fixes.append(Fix(m.group(1), line, value=int(m.group(2))))
        else:
            fixes.append(Fix(line.partition("=")[0].strip(), line))  # derived dims and the like: quoted only
    return fixes


def torch_message(error: BaseException, limit: int = 400) -> str:
    """torch.export's error in one line: its first line and suggested fixes verbatim, then its bullet points.

    The fix comes first so that a reason cut to length still carries it.
    """
    text = str(error)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(error).__name__
    fixes = parse_fixes(text)
    head = lines[0] + (f"; torch's suggested fix: {'; '.join(f.text for f in fixes)}" if fixes else "")
    bullets = " ".join(ln for ln in lines[1:] if ln.startswith("- "))
    room = limit - len(head) - 1
    return f"{head} {one_line(bullets, room)}" if bullets and room > 40 else head


def declared_dims(signature: Signature, bounds: Mapping[str, Bounds]) -> dict[str, DimRange]:
    """Every dynamic label of the inputs with its declared range (min 1 and no max where none was given)."""
    dims: dict[str, DimRange] = {}
    for spec in signature.inputs:
        for label in spec.dynamic_axes().values():
            b = bounds.get(label, Bounds())
            given = b.min is not None or b.max is not None
            dims.setdefault(label, DimRange(min=b.min or 1, max=b.max, source="declared" if given else "default"))
    return dims


def narrow(
    dims: Mapping[str, DimRange], fixes: list[Fix], example: Mapping[str, int], declared: Mapping[str, Bounds]
) -> dict[str, DimRange]:
    """``dims`` with torch's range fixes applied; a usage error when one leaves out the example or a declared bound."""
    out = dict(dims)
    for fix in fixes:
        if fix.label not in out or fix.value is not None or (fix.min is None and fix.max is None):
            continue
        old = out[fix.label]
        low = max(old.min, fix.min or 1)
        high = fix.max if old.max is None else min(old.max, fix.max) if fix.max is not None else old.max
        size = example.get(fix.label)
        user = declared.get(fix.label, Bounds())
        where = f"torch.export suggests `{fix.text}`"
        if (user.max is not None and high is not None and high < user.max) or (user.min is not None and low > user.min):
            raise UsageError(
                f"--dynamic {user.text(fix.label)}: the model does not support that range under torch.export "
                f"({where}); declare {Bounds(low if low > 1 else None, high).text(fix.label)} or leave the bound out"
            )
        if size is not None and (size < low or (high is not None and size > high)):
            raise UsageError(
                f"--dynamic {fix.label}: {where}, which leaves out the example's size {size}; the exported "
                f"program could not run on the example: use an example inside {low}..{high or ''} or drop {fix.label}"
            )
        out[fix.label] = DimRange(min=low, max=high, source="narrowed", reason=fix.text)
    return out


@dataclass
class ShapeProbe:
    """What the probe found: the final dims, torch.export's program (or why there is none), and notes."""

    signature: Signature  # with the final dims
    program: torch.export.ExportedProgram | None
    error: str | None = None  # torch.export's failure, suggested fix included
    specialised: dict[str, Fix] = field(default_factory=dict)  # labels torch.export fixed to one size
    notes: list[str] = field(default_factory=list)  # narrowed ranges, for the user
    warnings: list[str] = field(default_factory=list)  # what torch.export warned while tracing


def probe_shapes(
    module: torch.nn.Module,
    inputs: Mapping[str, torch.Tensor],
    signature: Signature,
    declared: Mapping[str, Bounds],
    example: Mapping[str, int],
) -> ShapeProbe:
    """Export ``module`` once with the declared dims; apply torch's range fixes and retry; return the final dims.

    ``example`` holds each label's size in the user's example (the narrowed range must hold it).
    """
    import torch

    dims = dict(signature.dims) or declared_dims(signature, declared)
    caught: list[str] = []
    for attempt in range(_ATTEMPTS):
        current = signature.model_copy(update={"dims": dims})
        try:
            with (
                collect_warnings(caught, drop=rnn_chatter, loggers=TORCH_EXPORT_LOGGERS, capture_output=True),
                rnn_while_loops(),
            ):
                program = torch.export.export(
                    module, tuple(inputs.values()), dynamic_shapes=dynamic_shapes_for(module, current), strict=False
                )
        except Exception as e:
            fixes = parse_fixes(str(e))
            ranges = [f for f in fixes if f.label in dims and f.value is None and (f.min or f.max)]
            if not ranges or attempt == _ATTEMPTS - 1:
                static = {f.label: f for f in fixes if f.value is not None and f.label in dims}
                return ShapeProbe(current, None, torch_message(e), static, _narrowed(current), caught)
            dims = narrow(dims, ranges, example, declared)
            continue
        return ShapeProbe(current, program, notes=_narrowed(current), warnings=caught)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns on its last attempt


def _narrowed(signature: Signature) -> list[str]:
    return [
        f"dynamic axis {label} narrowed to {r.text()}: torch.export suggested `{r.reason}`; every format is "
        f"exported with this range and the sweep checks both ends"
        for label, r in signature.dims.items()
        if r.source == "narrowed"
    ]

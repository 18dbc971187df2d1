"""Parsing the flags that describe inputs: ``--input NAME=SHAPE[:DTYPE]`` and ``--dynamic NAME:AXIS=label[range]``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from modelport.errors import UsageError

__all__ = [
    "DTYPES",
    "Bounds",
    "DynamicSpec",
    "InputDecl",
    "format_dynamic",
    "parse_dynamic",
    "parse_dynamic_spec",
    "parse_input_decl",
]

# Input dtypes modelport can generate values for and store in golden files.
DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class InputDecl:
    name: str
    shape: tuple[int, ...]
    dtype: str


def parse_input_decl(text: str) -> InputDecl:
    """``x=2x20:float32`` -> InputDecl("x", (2, 20), "float32"); the dtype defaults to float32."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    example = "e.g. --input x=2x20:float32"
    if not sep or not _IDENT.match(name):
        raise UsageError(f"--input {text!r} is not NAME=SHAPE[:DTYPE]; {example}")
    shape_text, _, dtype = rest.partition(":")
    dtype = dtype.strip() or "float32"
    if dtype not in DTYPES:
        raise UsageError(f"--input {name}: unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    try:
        shape = tuple(int(d) for d in shape_text.strip().lower().split("x")) if shape_text.strip() else ()
    except ValueError:
        raise UsageError(f"--input {name}: shape {shape_text!r} is not sizes joined by x; {example}") from None
    if any(d < 1 for d in shape):
        raise UsageError(f"--input {name}: every size must be at least 1, got {shape_text!r}")
    return InputDecl(name, shape, dtype)


@dataclass(frozen=True)
class Bounds:
    """A dynamic axis's range as the user wrote it: ``None`` where a bound was not given."""

    min: int | None = None
    max: int | None = None

    def text(self, label: str) -> str:
        low = f"{self.min}<=" if self.min is not None else ""
        high = f"<={self.max}" if self.max is not None else ""
        return f"{low}{label}{high}"


@dataclass(frozen=True)
class DynamicSpec:
    """``--dynamic`` parsed: axes per input, and the bounds declared per label (labels without any are absent)."""

    axes: dict[str, dict[int, str]] = field(default_factory=dict)
    bounds: dict[str, Bounds] = field(default_factory=dict)


# label, 2<=label, label<=512, label>=2, 2<=label<=512
_RANGED = re.compile(r"(?:(\d+)\s*<=\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:(<=|>=)\s*(\d+))?$")


def _label_and_bounds(token_label: str, text: str, example: str) -> tuple[str, Bounds]:
    match = _RANGED.match(token_label.strip())
    if not match:
        raise UsageError(
            f"--dynamic {text!r}: {token_label.strip()!r} is not a label with an optional range (seq, seq<=512, "
            f"seq>=2, 2<=seq<=512); {example}"
        )
    low_text, label, op, bound_text = match.groups()
    low = int(low_text) if low_text is not None else None
    high = None
    if op == "<=":
        high = int(bound_text)
    elif op == ">=":
        if low is not None:
            raise UsageError(f"--dynamic {text!r}: {token_label.strip()!r} gives {label}'s minimum twice; {example}")
        low = int(bound_text)
    if low is not None and low < 1:
        raise UsageError(f"--dynamic {text!r}: {label}'s minimum must be at least 1, got {low}")
    if high is not None and high < 1:
        raise UsageError(f"--dynamic {text!r}: {label}'s maximum must be at least 1, got {high}")
    if low is not None and high is not None and low > high:
        raise UsageError(f"--dynamic {text!r}: {label}'s minimum {low} is above its maximum {high}")
    return label, Bounds(low, high)


def _merge(label: str, old: Bounds | None, new: Bounds) -> Bounds:
    """One label, one range: a bound given twice must agree."""
    if old is None:
        return new
    for name, a, b in (("minimum", old.min, new.min), ("maximum", old.max, new.max)):
        if a is not None and b is not None and a != b:
            raise UsageError(
                f"--dynamic gives {label} the {name} {a} and {b}; inputs sharing a label share one size, "
                "so write the range once"
            )
    merged = Bounds(old.min if old.min is not None else new.min, old.max if old.max is not None else new.max)
    if merged.min is not None and merged.max is not None and merged.min > merged.max:
        raise UsageError(f"--dynamic: {label}'s minimum {merged.min} is above its maximum {merged.max}")
    return merged


def parse_dynamic_spec(texts: Iterable[str]) -> DynamicSpec:
    """``ids:0=batch,1=seq<=512`` (repeatable) -> axes ``{"ids": {0: "batch", 1: "seq"}}`` and bounds per label.

    Commas separate axes of one input; a token with ``:`` starts a new input. A label may
    carry a range: ``seq<=512``, ``seq>=2`` or ``2<=seq<=512``; inputs sharing a label share it.
    """
    spec = DynamicSpec()
    example = "e.g. --dynamic ids:0=batch,1=seq or ids:1=seq<=512"
    for text in texts:
        current: str | None = None
        for token in (t.strip() for t in text.split(",")):
            if not token:
                continue
            if ":" in token:
                current, _, token = token.partition(":")
                current = current.strip()
                if not _IDENT.match(current):
                    raise UsageError(f"--dynamic {text!r}: {current!r} is not an input name; {example}")
            if current is None:
                raise UsageError(f"--dynamic {text!r} must start with an input name; {example}")
            axis_text, sep, label_text = token.partition("=")
            try:
                axis = int(axis_text)
            except ValueError:
                raise UsageError(f"--dynamic {text!r}: axis {axis_text!r} is not a whole number; {example}") from None
            if not sep or not label_text.strip() or axis < 0:
                raise UsageError(f"--dynamic {text!r}: write AXIS=label with a name such as seq; {example}")
            label, bounds = _label_and_bounds(label_text, text, example)
            spec.axes.setdefault(current, {})[axis] = label
            if bounds != Bounds():
                spec.bounds[label] = _merge(label, spec.bounds.get(label), bounds)
    return spec


def parse_dynamic(texts: Iterable[str]) -> dict[str, dict[int, str]]:
    """``ids:0=batch,1=seq`` (repeatable) -> ``{"ids": {0: "batch", 1: "seq"}}`` (ranges parsed and dropped)."""
    return parse_dynamic_spec(texts).axes


def format_dynamic(axes: dict[str, dict[int, str]], bounds: dict[str, Bounds]) -> list[str]:
    """The ``--dynamic`` values that parse back to ``axes`` and ``bounds``."""
    return [
        f"{name}:" + ",".join(f"{axis}={bounds.get(label, Bounds()).text(label)}" for axis, label in per.items())
        for name, per in axes.items()
    ]

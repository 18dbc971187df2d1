"""Parsing the flags that describe inputs: ``--input NAME=SHAPE[:DTYPE]`` and ``--dynamic NAME:AXIS=label``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from modelport.errors import UsageError

__all__ = ["DTYPES", "InputDecl", "parse_dynamic", "parse_input_decl"]

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


def parse_dynamic(texts: Iterable[str]) -> dict[str, dict[int, str]]:
    """``ids:0=batch,1=seq`` (repeatable) -> ``{"ids": {0: "batch", 1: "seq"}}``.

    Commas separate axes of one input; a token with ``:`` starts a new input.
    """
    parsed: dict[str, dict[int, str]] = {}
    example = "e.g. --dynamic ids:0=batch,1=seq"
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
            axis_text, sep, label = token.partition("=")
            label = label.strip()
            try:
                axis = int(axis_text)
            except ValueError:
                raise UsageError(f"--dynamic {text!r}: axis {axis_text!r} is not a whole number; {example}") from None
            if not sep or not _IDENT.match(label) or axis < 0:
                raise UsageError(f"--dynamic {text!r}: write AXIS=label with a name such as seq; {example}")
            parsed.setdefault(current, {})[axis] = label
    return parsed

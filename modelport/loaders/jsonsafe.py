"""Bounded, strict JSON: size and nesting depth checked before parsing, huge integers and duplicate keys refused.

``json.loads`` recurses once per nesting level (RecursionError at ~100 000 levels) and ``int()`` raises
ValueError past 4 300 digits; a hostile file must get a one-line refusal instead.
"""

from __future__ import annotations

import json
from typing import Any

from modelport.errors import LoadError

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "MAX_JSON_BYTES", "UnsafeFile", "parse_json"]

MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64
MAX_INT_DIGITS = 40


class UnsafeFile(LoadError):
    """A file was refused before any of it was used: it could run code, read outside its folder or is malformed."""


def _check_depth(text: str, max_depth: int, what: str) -> None:
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                raise UnsafeFile(f"{what} nests deeper than {max_depth} levels; refused (not a file modelport wrote)")
        elif ch in "]}":
            depth -= 1


def parse_json(data: str | bytes, what: str, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed value, or UnsafeFile naming ``what`` and the problem in one line."""
    if len(data) > max_bytes:
        raise UnsafeFile(f"{what} is {len(data)} bytes, over the {max_bytes}-byte limit; refused")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as e:
        raise UnsafeFile(f"{what} is not UTF-8 text ({e.reason})") from e
    _check_depth(text, max_depth, what)

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise UnsafeFile(f"{what} holds an integer of {len(digits)} digits; refused")
        return int(digits)

    def parse_constant(name: str) -> float:
        raise UnsafeFile(f"{what} holds {name}, which JSON does not allow; refused")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise UnsafeFile(f"{what} names {key!r} twice; refused (readers disagree on which one counts)")
            out[key] = value
        return out

    try:
        return json.loads(text, parse_int=parse_int, parse_constant=parse_constant, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as e:
        raise UnsafeFile(f"{what} is not valid JSON ({e})") from e
    except RecursionError as e:  # the depth scan should make this unreachable; never a traceback
        raise UnsafeFile(f"{what} nests too deeply; refused") from e

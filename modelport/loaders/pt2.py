"""Checks on a ``.pt2`` archive before ``torch.export.load`` sees it.

``torch.export.load`` unpickles sample inputs and ``use_pickle`` weights (falling back to
``weights_only=False``), evaluates every ``expr_str`` with ``sympy.sympify`` and resolves operator
targets by ``getattr`` on ``torch``. So only what modelport itself writes passes: raw weight and
constant files, JSON, an empty sample-inputs member, ``torch.ops.*`` and torch's symbolic Python
operators as targets, and ``expr_str`` in sympy's ``srepr`` form over integers and size symbols.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.loaders.jsonsafe import UnsafeFile, parse_json

__all__ = ["check_expr", "check_pt2", "check_target"]

_MEMBER = re.compile(
    r"(?:archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/\w+\.json|data/weights/\w+_weights_config\.json|data/weights/weight_\d+"
    r"|data/constants/\w+_constants_config\.json|data/constants/tensor_\d+|data/sample_inputs/\w+\.pt)"
)
_OP_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NOT_DUNDER = rf"(?!__){_OP_SEGMENT}"
# torch.ops.<namespace>.<op>[.<overload>]; aten's dunder ops (__and__, __or__, ...) are the one dunder allowed.
_TORCH_OP = re.compile(rf"torch\.ops\.{_NOT_DUNDER}\.(?:__[a-z]+__|{_NOT_DUNDER})(?:\.{_NOT_DUNDER})?")
# torch's symbolic-size operators (torch/_export/serde/serialize.py _SYM_OPS) and getitem.
_OPERATORS = "eq ne le ge lt gt neg pos mul add sub floordiv mod pow truediv and_ or_ lshift rshift getitem"
_SYM_FUNCTIONS = "sym_not sym_int sym_float sym_ite sym_max sym_min sym_sqrt sym_sum"
_PYTHON_TARGETS = frozenset(
    [f"_operator.{n}" for n in _OPERATORS.split()]
    + [f"torch.{n}" for n in _SYM_FUNCTIONS.split()]
    + ["math.trunc", "math.floor", "math.ceil"]
)
# sympy srepr of size expressions: constructors below, quoted symbol names, keyword assumptions, integers.
_SYMPY_NAMES = frozenset(
    [
        "Symbol",
        "Integer",
        "Rational",
        "Add",
        "Mul",
        "Pow",
        "Min",
        "Max",
        "Mod",
        "FloorDiv",
        "CleanDiv",
        "PythonMod",
        "IntTrueDiv",
        "FloatTrueDiv",
        "CeilToInt",
        "FloorToInt",
        "TruncToInt",
        "RoundToInt",
        "ToFloat",
        "Abs",
        "Eq",
        "Ne",
        "Lt",
        "Le",
        "Gt",
        "Ge",
        "Equality",
        "Unequality",
        "StrictLessThan",
        "LessThan",
        "StrictGreaterThan",
        "GreaterThan",
        "And",
        "Or",
        "Not",
        "True",
        "False",
        "oo",
        "Float",
        "positive",
        "integer",
        "nonnegative",
        "nonzero",
        "real",
        "finite",
        "negative",
        "precision",
    ]
)
_EXPR_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z][A-Za-z0-9]*)|'(?P<sym>[a-z]+[0-9]+)'"
    r"|'(?P<float>-?[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?)'|(?P<num>-?[0-9]+)|(?P<op>[(),=]))"
)
_MAX_EXPR = 10_000
_PROGRAM_DEPTH = 256  # nested graphs (cond, while_loop) add ~10 levels each


_EXPR_DEPTH = 32  # torch's size expressions nest a few levels; sympify recurses on each
_INT_DIGITS = 20  # int64 sizes and strides
_MAX_EXPONENT = 64  # Pow(s, 2) in practice; Pow(10, Pow(10, 9)) would hang sympify


@dataclass
class _Call:
    name: str
    args: list[_Call | str] = field(default_factory=list)


def _tokens(expr: str, where: str) -> list[tuple[str, str]]:
    found, pos = [], 0
    while pos < len(expr):
        m = _EXPR_TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise UnsafeFile(f"{where}: expr_str {expr[:60]!r} is not a size expression; refused (sympify runs it)")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "name" and value not in _SYMPY_NAMES:
            raise UnsafeFile(f"{where}: expr_str uses {value!r}, not a size-expression function; refused")
        if kind == "num" and len(value.lstrip("-")) > _INT_DIGITS:
            raise UnsafeFile(f"{where}: expr_str holds a {len(value)}-digit integer; refused")
        found.append((kind, value))
        pos = m.end()
    return found


def _tree(tokens: list[tuple[str, str]], where: str) -> list[_Call | str]:
    """The calls of an srepr string, nested; bounded depth, balanced parentheses."""
    top: list[_Call | str] = []
    stack: list[_Call] = []
    for i, (kind, value) in enumerate(tokens):
        args = stack[-1].args if stack else top
        if value == "(":
            if not args or not isinstance(args[-1], _Call) or args[-1].args:
                raise UnsafeFile(f"{where}: expr_str has a parenthesis that calls nothing; refused")
            stack.append(args[-1])
            if len(stack) > _EXPR_DEPTH:
                raise UnsafeFile(f"{where}: expr_str nests deeper than {_EXPR_DEPTH}; refused")
        elif value == ")":
            if not stack:
                raise UnsafeFile(f"{where}: expr_str has unbalanced parentheses; refused")
            stack.pop()
        elif kind == "name" and i + 1 < len(tokens) and tokens[i + 1][1] == "(":
            args.append(_Call(value))
        elif value not in (",", "="):
            args.append(value)
    if stack:
        raise UnsafeFile(f"{where}: expr_str has unbalanced parentheses; refused")
    return top


def _check_powers(nodes: list[_Call | str], where: str) -> None:
    """Pow only of a base without Pow, to a small literal exponent: exact integer powers cannot blow up."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if not isinstance(node, _Call):
            continue
        if node.name == "Pow":
            base, exponent = [*node.args, None, None][:2]
            literal = (
                isinstance(exponent, _Call)
                and exponent.name == "Integer"
                and len(exponent.args) == 1
                and isinstance(exponent.args[0], str)
                and exponent.args[0].lstrip("-").isdigit()
                and abs(int(exponent.args[0])) <= _MAX_EXPONENT
            )
            if len(node.args) != 2 or not literal or _has_pow(base):
                raise UnsafeFile(
                    f"{where}: expr_str raises to a power other than a literal of at most {_MAX_EXPONENT}; refused"
                )
        stack.extend(node.args)


def _has_pow(node: _Call | str | None) -> bool:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, _Call):
            if item.name == "Pow":
                return True
            stack.extend(item.args)
    return False


def check_expr(expr: str, where: str) -> None:
    """Refuse an ``expr_str`` that is anything but a small sympy ``srepr`` of integers and size symbols.

    The grammar keeps code out; the bounds (nesting, integer digits, powers) keep ``sympify`` from
    hanging or exhausting memory on an expression that is only arithmetic.
    """
    if len(expr) > _MAX_EXPR:
        raise UnsafeFile(f"{where}: a {len(expr)}-character expr_str; refused")
    _check_powers(_tree(_tokens(expr, where), where), where)


def check_target(target: str, where: str) -> None:
    """Refuse an operator target outside ``torch.ops.*`` and torch's symbolic Python operators."""
    if target in _PYTHON_TARGETS or _TORCH_OP.fullmatch(target):
        return
    raise UnsafeFile(f"{where}: operator target {target[:80]!r} is outside torch.ops; refused (it is resolved by name)")


def _walk_program(program: Any, where: str) -> None:
    stack = [program]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "target" and isinstance(value, str):
                    check_target(value, where)
                elif key == "expr_str":
                    if not isinstance(value, str):
                        raise UnsafeFile(f"{where}: expr_str is not a string; refused")
                    check_expr(value, where)
                elif key in ("as_custom_obj", "custom_obj_info", "as_operator") and value:
                    raise UnsafeFile(f"{where}: holds a custom object or operator value ({key}); refused")
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _check_payload_config(config: Any, where: str) -> None:
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise UnsafeFile(f"{where} is not a weights config; refused")
    for name, entry in entries.items():
        if not isinstance(entry, dict) or entry.get("use_pickle") is not False:
            raise UnsafeFile(f"{where}: {name!r} is stored as a pickle (use_pickle); refused")
        if not re.fullmatch(r"(weight|tensor)_\d+", str(entry.get("path_name"))):
            raise UnsafeFile(f"{where}: {name!r} is not a plain tensor file; refused")


def check_pt2(path: Path) -> None:
    """Raise UnsafeFile unless ``path`` is a .pt2 archive with nothing that torch.export.load would execute."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if not infos:
                raise UnsafeFile(f"{path.name} is an empty archive; refused")
            prefix = infos[0].filename.split("/", 1)[0] + "/"
            for info in infos:
                name = info.filename
                if not name.startswith(prefix) or not _MEMBER.fullmatch(name[len(prefix) :]):
                    raise UnsafeFile(f"{path.name}: member {name[:80]!r} is not part of a plain .pt2; refused")
                if info.flag_bits & 0x1:
                    raise UnsafeFile(f"{path.name}: member {name!r} is encrypted; refused")
                where = f"{path.name}:{name[len(prefix) :]}"
                if "/sample_inputs/" in name and info.file_size:
                    raise UnsafeFile(f"{where} holds pickled sample inputs; refused (torch unpickles them)")
                if name.endswith("_config.json"):
                    _check_payload_config(parse_json(archive.read(info), where), where)
                elif name.endswith(".json"):
                    _walk_program(parse_json(archive.read(info), where, max_depth=_PROGRAM_DEPTH), where)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise UnsafeFile(f"{path.name} is not a readable .pt2 archive ({e}); refused") from e

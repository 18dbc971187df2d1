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


def check_expr(expr: str, where: str) -> None:
    """Refuse an ``expr_str`` that is anything but a sympy ``srepr`` of integers and size symbols."""
    if len(expr) > _MAX_EXPR:
        raise UnsafeFile(f"{where}: a {len(expr)}-character expr_str; refused")
    pos = 0
    while pos < len(expr):
        m = _EXPR_TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise UnsafeFile(f"{where}: expr_str {expr[:60]!r} is not a size expression; refused (sympify runs it)")
        name = m.group("name")
        if name is not None and name not in _SYMPY_NAMES:
            raise UnsafeFile(f"{where}: expr_str uses {name!r}, not a size-expression function; refused")
        pos = m.end()


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

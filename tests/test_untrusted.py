"""The untrusted-input promise: no file modelport reads can run code, read outside its folder or crash it.

Every code-running payload would create a sentinel file; each case asserts a clear one-line refusal *and*
that the sentinel never appeared. The pickle cases run with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 set.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import load_manifest, rehash
from malicious import (
    deep_json,
    f32_entry,
    member,
    npz_with_object_array,
    onnx_with_external,
    payloads,
    pickle_bytes,
    rewrite_zip,
    safetensors_raw,
    secret_file,
    torch_zip_with_payload,
)

import modelport
from modelport.errors import ModelportError, UsageError
from modelport.loaders import (
    UnsafeFile,
    Untrusted,
    check_pt2,
    granted,
    load_exported_program,
    load_npz,
    load_onnx,
    load_safetensors,
    load_torch,
    load_torchscript,
    parse_json,
)
from modelport.loaders.pt2 import check_expr, check_target

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol", "ignore:`torch.jit.load` is deprecated")

PAYLOADS = ["os.system", "eval", "exec", "subprocess.Popen", "functools.partial", "runpy.run_path", "getattr-chain"]
PROTOCOLS = [0, 2, 4]


@pytest.fixture
def sentinel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The file a payload would create; the environment is set to weaken torch.load as far as it can."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path = tmp_path / "SENTINEL"
    yield path
    assert not path.exists(), "a payload ran"


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text.strip(), text
    return text


# --- pickles: raw and inside torch zip archives ------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", PAYLOADS)
def test_pickle_payloads_are_refused_raw_and_in_torch_archives(
    sentinel: Path, tmp_path: Path, kind: str, protocol: int
) -> None:
    data = pickle_bytes(payloads(sentinel, tmp_path)[kind], protocol)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(data)
    archive = torch_zip_with_payload(tmp_path / "zip.pt", data)
    for path in (raw, archive):
        with pytest.raises(
            UnsafeFile, match=r"weights_only=True\) refused it \(.*[Uu]nsupported (global|operand|GLOBAL)"
        ) as info:
            load_torch(path)
        _one_line(info.value)


def test_run_weights_refuses_a_payload_with_exit_2(cli, sentinel: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = torch_zip_with_payload(tmp_path / "w.pt", pickle_bytes(payloads(sentinel, tmp_path)["os.system"], 2))
    result = cli("run", "--out", str(tmp_path / "out"), "--weights", str(bad), "--formats", "onnx", "--quiet")
    assert result.code == 2, result.out + result.err
    assert "refused" in result.err and "Traceback" not in result.err


# --- .pt2 archives -----------------------------------------------------------------------------------------


def test_written_pt2_has_no_pickled_part_and_passes_the_checks(mlp_folder: Path) -> None:
    import zipfile

    path = mlp_folder / "model.pt2"
    check_pt2(path)
    with zipfile.ZipFile(path) as z:
        assert z.getinfo(member(path, "data/sample_inputs/model.pt")).file_size == 0
        config = json.loads(z.read(member(path, "model_weights_config.json")))
    assert config["config"] and all(e["use_pickle"] is False for e in config["config"].values())
    with granted(mlp_folder, "the suite wrote it"):
        assert load_exported_program(path).example_inputs is None


def _pt2(artifact_copy: Path) -> Path:
    return artifact_copy / "model.pt2"


def _edit_program(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    def replace(name: str, data: bytes) -> bytes | None:
        if name.endswith("models/model.json"):
            return json.dumps(edit(json.loads(data))).encode()
        return None

    rewrite_zip(path, replace)


def _first(program: object, key: str) -> dict:  # type: ignore[type-arg]
    stack = [program]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if key in item:
                return item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    raise AssertionError(f"no {key} in the program")


def _set(key: str, value: str):  # type: ignore[no-untyped-def]
    def edit(program: dict) -> dict:  # type: ignore[type-arg]
        _first(program, key)[key] = value
        return program

    return edit


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("sample-inputs", "pickled sample inputs"),
        ("use-pickle", "use_pickle"),
        ("expr-str", "expr_str"),
        ("target", "outside torch.ops"),
        ("custom-obj", "not part of a plain .pt2"),
    ],
)
def test_pt2_with_code_is_refused_before_torch_reads_it(
    artifact_copy: Path, sentinel: Path, tmp_path: Path, tamper: str, expected: str
) -> None:
    path = _pt2(artifact_copy)
    payload = pickle_bytes(payloads(sentinel, tmp_path)["os.system"], 2)
    if tamper == "sample-inputs":
        rewrite_zip(path, lambda name, data: payload if "sample_inputs" in name else None)
    elif tamper == "use-pickle":

        def replace(name: str, data: bytes) -> bytes | None:
            if name.endswith("model_weights_config.json"):
                config = json.loads(data)
                first = next(iter(config["config"].values()))
                first["use_pickle"] = True
                return json.dumps(config).encode()
            return payload if name.endswith("weights/weight_0") else None

        rewrite_zip(path, replace)
    elif tamper == "expr-str":
        _edit_program(path, _set("expr_str", f"__import__('os').system('touch {sentinel}')"))
    elif tamper == "target":
        _edit_program(path, _set("target", "torch.os.system"))
    else:
        prefix = member(path, "archive_format").split("/")[0]
        rewrite_zip(path, lambda n, d: None, extra={f"{prefix}/data/constants/custom_obj_0": payload})
    # Not even read outside a trusted folder; inside one, the checks still refuse it.
    with pytest.raises(Untrusted, match="not trusted"):
        load_exported_program(path)
    with (
        granted(artifact_copy, "a trusted folder can still hold a hostile file"),
        pytest.raises(UnsafeFile, match=expected) as info,
    ):
        load_exported_program(path)
    _one_line(info.value)


def test_verify_refuses_a_rehashed_pt2_payload(cli, artifact_copy: Path, sentinel: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 8's exploit: sample inputs replaced by a payload, manifest re-hashed. It must not run, nor pass."""
    payload = pickle_bytes(payloads(sentinel, tmp_path)["os.system"], 2)
    rewrite_zip(_pt2(artifact_copy), lambda name, data: payload if "sample_inputs" in name else None)
    rehash(artifact_copy, "model.pt2")
    # The rewrite broke the signature: the program is not even opened.
    result = cli("verify", str(artifact_copy), "--runtimes", "torch", "--quiet")
    assert result.code == 1, result.out + result.err
    assert "model.pt2 is a program" in result.out and "signature invalid" in result.out
    # Trusted by the user all the same: the archive checks refuse it before torch reads it.
    result = cli("verify", str(artifact_copy), "--runtimes", "torch", "--trust")
    assert result.code == 1, result.out + result.err
    assert "pickled sample inputs; refused" in result.out
    assert "Traceback" not in result.out + result.err


@pytest.mark.parametrize(
    "expr",
    [
        "Symbol('s77', positive=True, integer=True)",
        "Min(Integer(32), Mul(Integer(32), Symbol('s50', positive=True, integer=True)))",
        "Add(Mul(Integer(16), Symbol('s33', positive=True, integer=True), Add(Symbol('u0', integer=True), "
        "Integer(-1))), Integer(-1))",
        "Pow(Symbol('s50', positive=True, integer=True), Integer(2))",
        "Mul(Float('0.5', precision=53), Symbol('s1', positive=True, integer=True))",
        "FloorDiv(Mod(Symbol('s2', integer=True), Integer(3)), Max(Integer(1), Symbol('u0', integer=True)))",
    ],
)
def test_real_size_expressions_pass_the_grammar(expr: str) -> None:
    check_expr(expr, "model.json")  # taken from archives torch.export wrote for the zoo models


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('touch x')",
        "Symbol('s1').__class__",
        "Integer(1) + eval('1')",
        "Symbol('os; touch x')",
        "lambda: 0",
        "Float('0.5; import os')",
        # Arithmetic only, but sympify would hang or exhaust memory evaluating it.
        "Pow(Integer(10), Pow(Integer(10), Integer(9)))",
        "Pow(Integer(10), Integer(10000000))",
        "Pow(Pow(Integer(10), Integer(64)), Integer(64))",
        "Mul(Integer(" + "9" * 400 + "), Integer(2))",
        "Add(" * 40 + "Integer(1)" + ")" * 40,
        "Integer(1))",
        "(Integer(1))",
    ],
)
def test_size_expression_grammar_refuses_code(expr: str) -> None:
    with pytest.raises(UnsafeFile, match="expr_str"):
        check_expr(expr, "model.json")


@pytest.mark.parametrize(
    ("target", "ok"),
    [
        ("torch.ops.aten.linear.default", True),
        ("torch.ops.aten.__and__.Tensor", True),
        ("torch.ops.higher_order.cond", True),
        ("_operator.getitem", True),
        ("torch.sym_max", True),
        ("torch.os.system", False),
        ("torch.ops.aten.__class__.__init__", False),
        ("torch.ops.__builtins__.eval.x", False),
        ("builtins.eval", False),
        ("#extension", False),
    ],
)
def test_operator_targets(target: str, ok: bool) -> None:
    if ok:
        check_target(target, "model.json")
    else:
        with pytest.raises(UnsafeFile, match=r"outside torch\.ops"):
            check_target(target, "model.json")


# --- TorchScript -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pkl", ["data.pkl", "constants.pkl"])
def test_torchscript_pickle_payload_is_refused(artifact_copy: Path, sentinel: Path, tmp_path: Path, pkl: str) -> None:
    path = artifact_copy / "model.torchscript.pt"
    with granted(artifact_copy, "the suite wrote it"):
        load_torchscript(path)  # the untampered file loads
    payload = pickle_bytes(payloads(sentinel, tmp_path)["getattr-chain"], 2)
    rewrite_zip(path, lambda name, data: payload if name.endswith("/" + pkl) else None)
    with pytest.raises(Untrusted, match="not trusted"):
        load_torchscript(path)
    with (
        granted(artifact_copy, "a trusted folder can still hold a hostile file"),
        pytest.raises(UnsafeFile, match="imports") as info,
    ):
        load_torchscript(path)
    _one_line(info.value)


def test_a_grant_covers_only_files_directly_in_its_folder(artifact_copy: Path, tmp_path: Path) -> None:
    """A link inside a trusted folder to a program elsewhere, or a program in a sub-folder, is not trusted."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (artifact_copy / "model.torchscript.pt").rename(elsewhere / "model.torchscript.pt")
    (artifact_copy / "model.torchscript.pt").symlink_to(elsewhere / "model.torchscript.pt")
    (artifact_copy / "sub").mkdir()
    (artifact_copy / "model.pt2").rename(artifact_copy / "sub" / "model.pt2")
    with granted(artifact_copy, "trusted"):
        with pytest.raises(Untrusted):
            load_torchscript(artifact_copy / "model.torchscript.pt")
        with pytest.raises(Untrusted):
            load_exported_program(artifact_copy / "sub" / "model.pt2")
    with granted(elsewhere, "trusted"):
        load_torchscript(artifact_copy / "model.torchscript.pt")  # the grant is for where the file really is


# --- numpy, safetensors ------------------------------------------------------------------------------------


def test_npz_object_array_is_refused(sentinel: Path, tmp_path: Path) -> None:
    from modelport.pipeline.golden import read_npz

    path = npz_with_object_array(tmp_path / "inputs.npz", payloads(sentinel, tmp_path)["os.system"])
    with load_npz(path) as data, pytest.raises(ValueError, match="allow_pickle"):
        data["x"]
    with pytest.raises(UsageError, match="allow_pickle") as info:
        read_npz(path)
    _one_line(info.value)


_4F = np.zeros(4, dtype=np.float32).tobytes()


@pytest.mark.parametrize(
    ("header", "data", "header_len", "expected"),
    [
        ('{"a": ' + f32_entry(0, 16, 4) + ', "a": ' + f32_entry(0, 16, 4) + "}", _4F, None, "twice"),
        ('{"a": ' + f32_entry(0, 16, 4) + "}", _4F, 2**40, "oversize"),
        ('{"a": ' + f32_entry(0, 16, 4) + ', "b": ' + f32_entry(8, 24, 4) + "}", _4F + _4F[:8], None, "overlap"),
        ('{"a": ' + f32_entry(0, 16, 4) + "}", _4F[:8], None, "truncated"),
        ('{"a": ' + f32_entry(0, 16, 4) + "}", _4F + b"#!", None, "truncated or padded"),
        ('{"a": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}}', _4F, None, "do not match"),
    ],
    ids=["duplicate-names", "oversize-header", "overlapping-offsets", "truncated", "trailing-bytes", "negative"],
)
def test_hostile_safetensors_are_refused(tmp_path: Path, header: str, data: bytes, header_len, expected: str) -> None:  # type: ignore[no-untyped-def]
    path = safetensors_raw(tmp_path / "w.safetensors", header, data, header_len)
    with pytest.raises(UnsafeFile, match=expected) as info:
        load_safetensors(path)
    _one_line(info.value)


def test_run_weights_refuses_hostile_safetensors_with_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = safetensors_raw(
        tmp_path / "w.safetensors", '{"a": ' + f32_entry(0, 16, 4) + ', "a": ' + f32_entry(0, 16, 4) + "}", _4F
    )
    result = cli("run", "--out", str(tmp_path / "out"), "--weights", str(bad), "--formats", "onnx", "--quiet")
    assert result.code == 2, result.out + result.err
    assert "twice" in result.err and "Traceback" not in result.err


# --- ONNX external data ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    ["absolute", "dotdot", "nested-dotdot", "symlink", "symlinked-dir", "hardlink", "negative-offset", "past-end"],
)
def test_onnx_external_data_outside_or_out_of_bounds_is_refused(tmp_path: Path, case: str) -> None:
    from modelport.runtimes.ort_runner import OrtRunner
    from modelport.signature import Signature

    folder = tmp_path / "model"
    folder.mkdir()
    secret = secret_file(tmp_path / "secret.bin")
    kwargs: dict[str, int] = {}
    if case == "absolute":
        location = str(secret)
    elif case == "dotdot":
        location = "../secret.bin"
    elif case == "nested-dotdot":
        (folder / "sub").mkdir()
        location = "sub/../../secret.bin"
    elif case == "symlink":
        (folder / "w.bin").symlink_to(secret)
        location = "w.bin"
    elif case == "symlinked-dir":
        (folder / "d").symlink_to(tmp_path)
        location = "d/secret.bin"
    elif case == "hardlink":
        os.link(secret, folder / "w.bin")
        location = "w.bin"
    else:
        secret_file(folder / "w.bin")
        location = "w.bin"
        kwargs = {"offset": -4} if case == "negative-offset" else {"offset": 8, "length": 16}
    path = onnx_with_external(folder, location, **kwargs)
    with pytest.raises(UnsafeFile) as info:
        load_onnx(path)
    _one_line(info.value)
    with pytest.raises(UnsafeFile):  # onnxruntime itself follows a hard link out of the folder
        OrtRunner("onnx", path, Signature.model_validate({"inputs": [], "outputs": []}))


def test_onnx_external_data_inside_the_folder_loads(tmp_path: Path) -> None:
    secret_file(tmp_path / "w.bin")
    model = load_onnx(onnx_with_external(tmp_path, "w.bin"))
    assert model.graph.initializer[0].raw_data == np.arange(4, dtype=np.float32).tobytes()


# --- hostile manifests -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda m, text: deep_json(100_000), "nests deeper than"),
        (
            lambda m, text: text.replace('"schema_version": ', '"schema_version": ' + "9" * 5000 + ', "x": ', 1),
            "digits",
        ),
        (
            lambda m, text: json.dumps(
                {
                    **m,
                    "artifacts": [{**m["artifacts"][0], "bytes": str(m["artifacts"][0]["bytes"])}, *m["artifacts"][1:]],
                }
            ),
            "valid integer",
        ),
        (lambda m, text: text.replace("{", '{"kind": "run", ', 1), "twice"),
    ],
    ids=["depth-100000", "5000-digit-int", "bytes-as-string", "duplicate-key"],
)
def test_hostile_manifest_gives_one_line_not_a_traceback(cli, artifact_copy: Path, edit, expected: str) -> None:  # type: ignore[no-untyped-def]
    path = artifact_copy / "manifest.json"
    path.write_text(edit(load_manifest(artifact_copy), path.read_text()))
    result = cli("verify", str(artifact_copy))
    assert result.code in (1, 2), result.out + result.err
    assert expected in result.out + result.err
    assert "Traceback" not in result.out + result.err


def test_json_bounds() -> None:
    with pytest.raises(UnsafeFile, match="over the"):
        parse_json("[]" + " " * 100, "x.json", max_bytes=10)
    assert parse_json('{"a": [1, 2.5, "s"]}', "x.json") == {"a": [1, 2.5, "s"]}
    with pytest.raises(UnsafeFile, match="NaN"):
        parse_json("[NaN]", "x.json")


# --- one module loads everything ---------------------------------------------------------------------------

_LOADERS = {
    ("torch", "load"),
    ("jit", "load"),
    ("export", "load"),
    ("np", "load"),
    ("numpy", "load"),
    ("onnx", "load"),
    ("onnx", "load_model"),
}


def _dotted(node: ast.AST) -> list[str]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


def test_files_are_loaded_only_in_modelport_loaders() -> None:
    root = Path(modelport.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.is_relative_to(root / "loaders"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(root.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute) and tuple(_dotted(node)[-2:]) in _LOADERS:
                offenders.append(f"{where}: {'.'.join(_dotted(node))}")
            if isinstance(node, ast.ImportFrom) and node.module in (
                "torch",
                "numpy",
                "onnx",
                "torch.jit",
                "torch.export",
                "safetensors",
                "safetensors.torch",
            ):
                names = {a.name for a in node.names} & {"load", "load_model", "load_file", "safe_open"}
                if names:
                    offenders.append(f"{where}: from {node.module} import {', '.join(sorted(names))}")
    assert not offenders, "load files through modelport.loaders: " + "; ".join(offenders)


def test_loader_errors_are_modelport_errors() -> None:
    assert issubclass(UnsafeFile, ModelportError)

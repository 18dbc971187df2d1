"""``opencv``: the ONNX artifact run by OpenCV DNN from C++, an importer and kernels independent of onnxruntime.

The program (``cpp/opencv_runner.cpp``) links Debian's OpenCV (``libopencv-dnn-dev``, 4.6 on
bookworm) and runs the graph on OpenCV's own backend on the CPU, every input set in one process.
OpenCV DNN is partial: it computes in float32, lacks operators (``Where``...), and some graphs
it imports it cannot run (dynamic shapes, broadcasting its layers do not handle). Such an artifact
is :class:`Unsupported`, naming the ONNX operator and node, so modelport skips it with that reason:
- before anything runs, when an input or output is not float32 (:meth:`OpencvRuntime.unsupported`);
- from :meth:`OpencvRuntime.open`, when OpenCV cannot import the graph (the program's ``--check``);
- from ``infer_all``, when one of OpenCV's layers throws on an input set (the program names the first
  failing layer; its ONNX node and operator are looked up in the graph).
A wrong number is never a skip: outputs OpenCV computes are compared like any other runtime's.
OpenCV's Mats have no 0-d or 1-d form, so an output whose element count matches the signature's
shape (sizes resolved from the set's inputs) gets that shape back; its values are untouched.

Building: as for ``libtorch`` (``make runtimes``, or on first use when g++ and the headers are here;
~6 s). ``MODELPORT_OPENCV_PROGRAM`` names a program to use instead of the build.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.errors import LoadError, one_line
from modelport.runtimes import _cpp_build as build
from modelport.runtimes._cpp_runtime import CppRuntime
from modelport.runtimes._cpp_session import ProgramSession
from modelport.runtimes.base import Artifact, Session, SetResult, Unsupported
from modelport.runtimes.exchange import ProgramOutputs
from modelport.runtimes.process import Finished, run_program, stderr_tail

if TYPE_CHECKING:
    import numpy as np

    from modelport.signature import TensorSpec

__all__ = ["ENV_PROGRAM", "OpencvRuntime"]

ENV_PROGRAM = "MODELPORT_OPENCV_PROGRAM"
INCLUDE = Path("/usr/include/opencv4")  # Debian's libopencv-*-dev (no opencv4.pc without libopencv-dev)
UNSUPPORTED_EXIT = 3  # the program could not import the graph; its stderr names the node
# OpenCV's importer wraps a node's failure as: Node [Where@ai.onnx]:(onnx_node!name) parse error: MESSAGE
_NODE = re.compile(r"Node \[([^@\]]+)@([^\]]*)\]:\(([^)]*)\) parse error: (.*)")
_LAYER_TYPE = re.compile(r"Can't create layer \"[^\"]*\" of type \"([^\"]+)\"")
# The program's per-set error when a layer throws: OpenCV layer NAME of type TYPE failed: MESSAGE
_LAYER_FAILED = re.compile(r"OpenCV layer (\S+) of type (\S+) failed: (.*)")
_OPENCV_PREFIX = re.compile(r"OpenCV\([^)]*\) \S+: error: \(-?\d+:[^)]*\) ")


def _opencv_version() -> str | None:
    try:
        text = (INCLUDE / "opencv2/core/version.hpp").read_text()
    except OSError:
        return None
    parts = [re.search(rf"#define CV_VERSION_{p}\s+(\d+)", text) for p in ("MAJOR", "MINOR", "REVISION")]
    return ".".join(m.group(1) for m in parts if m) if all(parts) else None


@functools.cache
def _linked(cxx: str, library: str) -> str:
    """The path of the library the linker picks (g++ -print-file-name), resolved: part of the build key."""
    done = run_program([cxx, f"-print-file-name={library}"], what="g++", timeout=60)
    return str(Path(done.stdout.strip()).resolve())


def _recipe(cxx: str, version: str) -> build.Recipe:
    return build.Recipe(
        name="opencv_runner",
        source="opencv_runner.cpp",
        flags=("-isystem", str(INCLUDE)),
        link=("-lopencv_dnn", "-lopencv_core"),
        versions=(f"opencv {version}", _linked(cxx, "libopencv_dnn.so"), _linked(cxx, "libopencv_core.so")),
    )


def _short(message: str) -> str:
    """OpenCV's message without its source-file prefix: ``axis != outShape.size() in function 'parseMul'``."""
    return one_line(_OPENCV_PREFIX.sub("", message).replace(" | > ", " ").strip(" |>"), limit=240)


def _import_problem(stderr: str, version: str, file: str) -> LoadError:
    """What the program's failed import means: the operator OpenCV cannot import, or a plain load failure."""
    node = _NODE.search(stderr)
    if node:
        op, domain, name, message = node.groups()
        op_name = op if domain in ("", "ai.onnx") else f"{domain}::{op}"
        where = f"the ONNX operator {op_name} (node {name.removeprefix('onnx_node!')})"
        if _LAYER_TYPE.search(message):
            return Unsupported(f"OpenCV DNN {version} has no layer for {where}")
        return Unsupported(f"OpenCV DNN {version} cannot import {where}: {_short(message)}")
    layer = _LAYER_TYPE.search(stderr)
    if layer:
        return Unsupported(f"OpenCV DNN {version} has no layer for the ONNX operator {layer.group(1)}")
    return LoadError(f"OpenCV DNN {version} could not import {file}: {stderr_tail(stderr)}")


def _restore_shapes(outputs: dict[str, np.ndarray], specs: Sequence[TensorSpec], sizes: dict[str, int]) -> None:
    """Give each output the signature's shape where OpenCV's Mat changed only the layout of the same elements."""
    for spec in specs:
        array = outputs[spec.name]
        shape = [d if isinstance(d, int) else sizes.get(d) for d in spec.shape]
        if None in shape or list(array.shape) == shape:
            continue
        if math.prod(s for s in shape if s is not None) == array.size:
            outputs[spec.name] = array.reshape([s for s in shape if s is not None])


def _float16_weights(artifact: Artifact) -> str | None:
    """OpenCV 4.6's importer cannot read float16 tensors (an fp16 graph's weights): say so before trying."""
    from modelport.loaders import load_onnx

    try:
        graph = load_onnx(artifact.path, load_external_data=False).graph
    except Exception:
        return None  # open() reports a file it cannot read
    if any(t.data_type == 10 for t in graph.initializer):  # TensorProto.FLOAT16
        return "OpenCV DNN cannot import float16 weights (an fp16 graph)"
    return None


class _OpencvSession(ProgramSession):
    def __init__(self, name: str, program: Path, artifact: Artifact, *, timeout: float, version: str) -> None:
        super().__init__(name, program, artifact, timeout=timeout)
        self.version = version

    def environment(self) -> dict[str, str]:
        return {"OPENCV_LOG_LEVEL": "ERROR"}

    def failed(self, finished: Finished) -> LoadError:
        if finished.returncode == UNSUPPORTED_EXIT:
            return _import_problem(finished.stderr, self.version, self.artifact.files[0])
        return super().failed(finished)

    def answered(self, answer: ProgramOutputs, sets: Sequence[Mapping[str, np.ndarray]]) -> list[SetResult]:
        signature = self.artifact.signature
        results = super().answered(answer, sets)
        for k, (result, feeds) in enumerate(zip(results, sets, strict=True)):
            layer = _LAYER_FAILED.match(result.error or "")
            if layer:
                result.error = (
                    f"OpenCV DNN {self.version} cannot run {self._operator(*layer.group(1, 2))} "
                    f"on input set {k + 1} of {len(sets)}: {_short(layer.group(3))}"
                )
                self.unsupported = self.unsupported or Unsupported(result.error)
                continue
            if result.outputs is not None:
                sizes = {
                    d: size
                    for spec in signature.inputs
                    for d, size in zip(spec.shape, feeds[spec.name].shape, strict=False)
                    if isinstance(d, str)
                }
                _restore_shapes(result.outputs, signature.outputs, sizes)
        return results

    def _operator(self, layer: str, layer_type: str) -> str:
        """The ONNX operator and node behind an OpenCV layer (its importer names layers ``onnx_node!NODE``)."""
        from modelport.loaders import load_onnx

        node_name = layer.removeprefix("onnx_node!")
        try:
            graph = load_onnx(self.artifact.path, load_external_data=False).graph
            op = next((n.op_type for n in graph.node if n.name == node_name or layer in n.output), None)
        except Exception:
            op = None
        what = f"the ONNX operator {op} (node {node_name}" if op else f"the node {node_name} ("
        return f"{what}{', ' if op else ''}OpenCV layer {layer_type})"


class OpencvRuntime(CppRuntime):
    name = "opencv"
    accepts = frozenset({"onnx"})
    env_program = ENV_PROGRAM
    build_time = "~6 s"
    partial = True
    description = "OpenCV DNN's own ONNX importer and CPU kernels, from C++ (Debian's OpenCV)"
    apt_packages = ("g++", "libopencv-dnn-dev", "nlohmann-json3-dev")

    def label(self, recipe: build.Recipe) -> str:
        return f"OpenCV {recipe.versions[0].removeprefix('opencv ')}"

    def prepared(self) -> tuple[build.Recipe, str] | str:
        version = _opencv_version()
        if version is None or not (INCLUDE / "opencv2/dnn.hpp").is_file():
            return f"OpenCV DNN headers are missing ({INCLUDE}/opencv2/dnn.hpp; Debian package libopencv-dnn-dev)"
        cxx = build.compiler()
        if cxx is None:
            return f"no C++ compiler ({build.CXX}) to build the opencv program"
        missing = build.json_header()
        if missing:
            return missing
        return _recipe(cxx, version), cxx

    def unsupported(self, artifact: Artifact) -> str | None:
        # OpenCV's Mats hold what its layers compute: float32 (an int64 index input cannot even be set).
        for role, specs in (("input", artifact.signature.inputs), ("output", artifact.signature.outputs)):
            for spec in specs:
                if spec.dtype != "float32":
                    return f"OpenCV DNN runs float32 tensors only; {role} {spec.name!r} is {spec.dtype}"
        return _float16_weights(artifact)

    def open(self, artifact: Artifact, *, timeout: float) -> Session:
        reason = self.unsupported(artifact)
        if reason:
            raise Unsupported(reason)
        if not artifact.path.is_file():
            raise LoadError(f"{artifact.files[0]} is missing from {artifact.folder}")
        program, seconds = self.program(build_it=True)
        version = _opencv_version() or "?"
        name = f"{artifact.format}@{self.name}"
        check = [str(program), "--check", str(artifact.path)]
        finished = run_program(check, what=name, timeout=timeout, env={"OPENCV_LOG_LEVEL": "ERROR"}, check=False)
        session = _OpencvSession(name, program, artifact, timeout=timeout, version=version)
        if finished.returncode != 0:
            raise session.failed(finished)
        if seconds is not None:
            session.facts = {**session.facts, "build_seconds": f"{seconds:.1f}"}
        return session

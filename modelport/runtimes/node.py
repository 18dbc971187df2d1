"""``node``: the ONNX artifact in Node.js with onnxruntime-node (npm), CPU execution provider.

Every input set runs in one ``node js/run_node.js MODEL INPUT_DIR OUTPUT_DIR``: the inputs go in and
the outputs come back as modelport's tensor files (``modelport/runtimes/exchange.py``), and Python
compares them. The program reports its load and per-set inference times and its versions.
"""

from __future__ import annotations

from pathlib import Path

from modelport.runtimes import _js
from modelport.runtimes.base import Artifact, Availability, Runtime, Session
from modelport.runtimes.process import run_program

__all__ = ["NodeRuntime"]


class NodeRuntime(Runtime):
    apt_packages = ("nodejs",)  # node and npm (Debian's nodejs, or NodeSource's, which ships npm too)
    name = "node"
    accepts = frozenset({"onnx"})
    language = "javascript"
    description = "onnxruntime-node (npm) in Node.js, CPU"

    def available(self) -> Availability:
        try:
            if _js.node_executable() is None:
                return Availability(reason=_js.node_missing(), enable=_js.ENABLE)
            version = _js.package_version("onnxruntime-node")
            if version is None:
                return Availability(
                    reason=f"onnxruntime-node is not installed in {_js.packages_dir()}", enable=_js.ENABLE
                )
            return Availability(version=f"onnxruntime-node {version}")
        except Exception as e:  # available() never raises: an odd cache folder is a reason, not a crash
            return Availability(reason=f"cannot tell ({type(e).__name__}: {e})", enable=_js.ENABLE)

    def install(self) -> str | None:
        return _js.install_packages()

    def open(self, artifact: Artifact, *, timeout: float) -> Session:
        name, _ = _js.ready(self, artifact)
        node = str(_js.node_executable())
        env = {"NODE_PATH": str(_js.packages_dir() / "node_modules")}

        def run(inputs: Path, outputs: Path, scratch: Path, limit: float) -> None:
            cmd = [node, str(_js.JS_DIR / "run_node.js"), str(artifact.path.resolve()), str(inputs), str(outputs)]
            run_program(cmd, what=name, timeout=limit, env=env)

        return _js.ProgramSession(name, artifact, run, timeout)

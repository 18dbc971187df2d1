"""``libtorch``: the TorchScript artifact loaded by C++ (``torch::jit::load``), outside Python.

The program (``cpp/libtorch_runner.cpp``) is compiled with g++ against the libtorch that ships
inside the installed torch wheel (its ``include/`` and ``lib/``; the binary's rpath points there),
so the C++ side loads the file with the same torch version that saved it. It runs every input set
in one process: inputs by position in signature order, outputs flattened in order.

Building: ``make runtimes`` (:meth:`LibtorchRuntime.install`) compiles it once into the user's
cache (~30 s, ~1 GB of memory). When it has not been built yet but g++ and the headers are here,
:meth:`open` builds it on first use instead (the same cached build): nothing is downloaded, and
:meth:`available` says so. ``MODELPORT_LIBTORCH_PROGRAM`` names a program to use instead of the
build (the test suite's doubles).

TorchScript is code: :meth:`open` refuses a file outside a trusted folder before anything runs.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from modelport.errors import LoadError
from modelport.loaders.trust import require_trust
from modelport.runtimes import _cpp_build as build
from modelport.runtimes._cpp_runtime import CppRuntime
from modelport.runtimes._cpp_session import ProgramSession
from modelport.runtimes.base import Artifact, Session

__all__ = ["ENV_PROGRAM", "LibtorchRuntime"]

ENV_PROGRAM = "MODELPORT_LIBTORCH_PROGRAM"


def _torch_dir() -> Path | None:
    """The installed torch package's folder, found without importing torch."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def _torch_version(torch_dir: Path) -> str | None:
    """TORCH_VERSION from the C++ headers: the version the program is compiled and linked against."""
    for header in ("include/torch/headeronly/version.h", "include/torch/csrc/api/include/torch/version.h"):
        try:
            match = re.search(r'#define TORCH_VERSION\s+\\?\s*"([^"]+)"', (torch_dir / header).read_text())
        except OSError:
            continue
        if match:
            return match.group(1)
    return None


def _recipe(torch_dir: Path, version: str) -> build.Recipe:
    include, lib = torch_dir / "include", (torch_dir / "lib").resolve()
    libtorch = lib / "libtorch_cpu.so"
    size = str(libtorch.stat().st_size) if libtorch.is_file() else "missing"
    return build.Recipe(
        name="libtorch_runner",
        source="libtorch_runner.cpp",
        # -isystem: torch's own headers warn under C++17 (bit-field initialisers); not ours to fix.
        flags=("-isystem", str(include), "-isystem", str(include / "torch/csrc/api/include")),
        link=(f"-L{lib}", f"-Wl,-rpath,{lib}", "-Wl,--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10"),
        versions=(f"torch {version}", f"{libtorch} {size}"),
    )


class _LibtorchSession(ProgramSession):
    def arguments(self) -> list[str]:
        # The program casts each input to its declared dtype (bfloat16 is exchanged widened to float32).
        signature = self.artifact.signature
        dtypes = ",".join(spec.dtype for spec in signature.inputs)
        # A scripted module is the user's own: called by keyword when the model takes its inputs by name
        # (their order need not be forward's); a traced one takes the flat positional form.
        keyword = signature.call == "keyword" and self.artifact.details.get("method") == "script"
        return ["--dtypes", dtypes, *(["--keyword"] if keyword else []), *signature.output_names]


class LibtorchRuntime(CppRuntime):
    name = "libtorch"
    accepts = frozenset({"torchscript"})
    env_program = ENV_PROGRAM
    build_time = "~30 s"
    description = "C++ torch::jit::load, built against the libtorch inside the installed torch wheel"
    apt_packages = ("g++", "nlohmann-json3-dev")

    def label(self, recipe: build.Recipe) -> str:
        return f"libtorch {recipe.versions[0].removeprefix('torch ')}"

    def prepared(self) -> tuple[build.Recipe, str] | str:
        torch_dir = _torch_dir()
        if torch_dir is None:
            return "torch is not installed in this Python"
        version = _torch_version(torch_dir)
        if version is None or not (torch_dir / "include/torch/script.h").is_file():
            return f"the torch wheel at {torch_dir} ships no libtorch C++ headers (include/torch/script.h)"
        cxx = build.compiler()
        if cxx is None:
            return f"no C++ compiler ({build.CXX}) to build the libtorch program"
        missing = build.json_header()
        if missing:
            return missing
        return _recipe(torch_dir, version), cxx

    def open(self, artifact: Artifact, *, timeout: float) -> Session:
        # Before anything runs: torch::jit::load executes the code the file carries.
        require_trust(artifact.path, "a TorchScript program")
        if not artifact.path.is_file():
            raise LoadError(f"{artifact.files[0]} is missing from {artifact.folder}")
        program, seconds = self.program(build_it=True)
        session = _LibtorchSession(f"{artifact.format}@{self.name}", program, artifact, timeout=timeout)
        if seconds is not None:
            session.facts = {**session.facts, "build_seconds": f"{seconds:.1f}"}
        return session

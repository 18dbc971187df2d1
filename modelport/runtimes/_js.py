"""What the JavaScript runtimes (``node``, ``browser``) share: Node.js, the npm packages in the user's cache,
and a session that runs every input set through one program run.

The programs and their ``package.json`` / ``package-lock.json`` ship inside the Python package
(``modelport/runtimes/js``). ``make runtimes`` installs the locked packages once with ``npm ci`` into
``<cache>/node/<key of the lock files>``: built under a temporary name and renamed into place, so a
half install is never used; running needs no network afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.errors import LoadError, UsageError
from modelport.runtimes import exchange
from modelport.runtimes.base import Artifact, Availability, Runtime, Session, SetResult
from modelport.runtimes.cache import cache_dir, key
from modelport.runtimes.exchange import program_timing
from modelport.runtimes.process import run_program

if TYPE_CHECKING:
    import numpy as np

    from modelport.profiling.loop import Timing
    from modelport.profiling.records import ProfileSettings

__all__ = ["JS_DIR", "ProgramSession", "install_packages", "node_executable", "package_version", "packages_dir"]

JS_DIR = Path(__file__).parent / "js"
ENABLE = "modelport doctor --install (make runtimes in a clone)"
NPM_TIMEOUT = 900.0  # seconds: a cold npm ci fetches about 150 MB
# onnxruntime-node's postinstall downloads CUDA providers from outside npm; its CPU build ships in the package.
_NPM_ENV = {"ONNXRUNTIME_NODE_INSTALL": "skip", "npm_config_update_notifier": "false"}


def ready(runtime: Runtime, artifact: Artifact) -> tuple[str, Availability]:
    """The candidate's name and the runtime's state, once it is available and the artifact's main file is there."""
    name = f"{artifact.format}@{runtime.name}"
    state = runtime.available()
    if not state.ok:
        raise LoadError(f"{name}: {state.describe()}")
    if not artifact.path.is_file():
        raise LoadError(f"{name}: {artifact.files[0]} is missing from {artifact.folder}")
    return name, state


def node_executable() -> str | None:
    """``$MODELPORT_NODE`` if set (tests substitute a program there), else ``node`` on PATH."""
    explicit = os.environ.get("MODELPORT_NODE")
    if explicit:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    return shutil.which("node")


def node_missing() -> str:
    explicit = os.environ.get("MODELPORT_NODE")
    if explicit:
        return f"MODELPORT_NODE={explicit} is not an executable file"
    return "Node.js is not on PATH (node; Debian package nodejs)"


def packages_dir() -> Path:
    """Where the locked npm packages live: keyed by the lock files, so a new lock installs afresh."""
    parts = [(JS_DIR / name).read_bytes() for name in ("package.json", "package-lock.json")]
    return cache_dir() / "node" / key(parts)


def package_version(name: str) -> str | None:
    """The installed version of npm package ``name`` in the cache, or None (never raises)."""
    import json

    try:
        data = json.loads((packages_dir() / "node_modules" / name / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) else None


def _remove_stale(parent: Path, prefix: str) -> None:
    """Temporary install folders whose installer is gone (killed mid-install) take space and nothing else."""
    for stale in parent.glob(f"{prefix}*"):
        pid = stale.name.rsplit("-", 1)[-1]
        alive = True
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            alive = False
        except PermissionError:
            pass
        if not alive:
            shutil.rmtree(stale, ignore_errors=True)


def install_packages() -> str | None:
    """``npm ci`` of the shipped lock file into the cache, once; what was done, or None when already there."""
    target = packages_dir()
    if (target / "node_modules").is_dir():
        return None
    npm = shutil.which("npm")
    if npm is None:
        raise UsageError("npm is not on PATH; install Node.js with npm (Debian: apt-get install nodejs npm)")
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.tmp-"
    _remove_stale(target.parent, prefix)
    work = target.parent / f"{prefix}{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(JS_DIR / name, work / name)
        cmd = [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"]
        try:
            done = run_program(cmd, what="npm ci", timeout=NPM_TIMEOUT, cwd=work, env=_NPM_ENV)
        except LoadError as e:
            raise UsageError(f"{' '.join(cmd)} in {work} failed: {e}; check that the npm registry is reachable") from e
        try:
            work.rename(target)
        except OSError:
            if not (target / "node_modules").is_dir():  # another installer finished first: theirs is as good
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return f"npm ci into {target} ({done.seconds:.0f} s)"


# Runs one program over an input folder, writing the output folder: (inputs, outputs, scratch, timeout) -> None.
Runner = Callable[[Path, Path, Path, float], None]


class ProgramSession(Session):
    """An artifact opened in a runtime that lives in another program: every ``infer_all`` is one program run.

    A run that fails as a whole (the model does not load, the program crashes, hangs past the timeout or
    writes something that is not a valid answer) raises ``LoadError`` with the reason; a single set the
    program could not run is that set's ``SetResult.error``.
    """

    def __init__(
        self, name: str, artifact: Artifact, runner: Runner, timeout: float, facts: Mapping[str, str] | None = None
    ) -> None:
        self.name, self._artifact, self._runner, self._timeout = name, artifact, runner, timeout
        self._known = dict(facts or {})  # what modelport knows before running (installed package versions)
        self.facts = {}

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        (result,) = self.infer_all([inputs])
        if result.outputs is None:
            raise LoadError(f"{self.name}: {result.error}")
        return result.outputs

    def infer_all(self, sets: Sequence[Mapping[str, np.ndarray]]) -> list[SetResult]:
        if not sets:
            return []
        answer = self._exchange(sets)
        return [SetResult(outputs=o, error=e, seconds=s) for _, o, e, s in answer.sets]

    def profile(self, inputs: Mapping[str, np.ndarray], settings: ProfileSettings) -> Timing:
        """The calls timed inside the program (performance.now()), never across the pipe."""
        answer = self._exchange([inputs], settings.model_dump())
        return program_timing(self.name, answer, settings, self.facts)

    def _exchange(
        self, sets: Sequence[Mapping[str, np.ndarray]], profile: Mapping[str, float] | None = None
    ) -> exchange.ProgramOutputs:
        signature = self._artifact.signature
        names = [f"set{k}" for k in range(len(sets))]
        with tempfile.TemporaryDirectory(prefix="modelport-js-") as tmp:
            inputs, outputs = Path(tmp) / "inputs", Path(tmp) / "outputs"
            exchange.write_sets(inputs, [(n, self._feeds(s)) for n, s in zip(names, sets, strict=True)], profile)
            outputs.mkdir()
            self._runner(inputs, outputs, Path(tmp), self._timeout)
            answer = exchange.read_sets(outputs, names, signature.output_names, self.name)
        self.facts = {**self._known, **answer.runtime}
        self.load_seconds = answer.load_seconds
        return answer

    def _feeds(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [spec.name for spec in self._artifact.signature.inputs if spec.name not in inputs]
        if missing:
            raise LoadError(f"{self.name}: no value for input {', '.join(missing)}")
        return {spec.name: inputs[spec.name] for spec in self._artifact.signature.inputs}

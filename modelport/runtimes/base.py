"""The contract every runtime implements: open a saved artifact, run input sets, close.

A runtime is what executes an artifact file: onnxruntime in this process, Node.js, a browser,
a C++ program. One module per runtime defines a :class:`Runtime` subclass and is named in the
registry (``modelport.runtimes``). A runtime declares the artifact kinds it accepts; the planner
pairs every artifact of a folder with every selected runtime that accepts it (``onnx@node``).

Nothing here imports torch, onnx or numpy at module level: listing runtimes and asking whether
they are available stays light. The heavy imports live inside ``open`` and the sessions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from modelport.errors import LoadError

if TYPE_CHECKING:
    import numpy as np

    from modelport.profiling.loop import Timing
    from modelport.profiling.records import ProfileSettings
    from modelport.signature import Signature

__all__ = ["Artifact", "ArtifactKind", "Availability", "Runtime", "Session", "SetResult"]

# What a file is, as runtimes see it: an ONNX graph, a TorchScript program, a torch.export
# program (.pt2), or weights that need the architecture in code.
ArtifactKind = Literal["onnx", "torchscript", "pt2", "weights"]
# Kinds whose loading runs code the file carries: loaded only from trusted folders (modelport.loaders.trust).
CODE_KINDS: frozenset[str] = frozenset({"torchscript", "pt2"})


class Unsupported(LoadError):
    """The runtime cannot run this artifact by design (an operator it lacks, a size it cannot hold).

    The message names what is missing. For a ``partial`` runtime it is a skip, unless the user named
    that runtime in --runtimes; for any other it is a failure.
    """


@dataclass(frozen=True)
class Availability:
    """Whether a runtime can run here: its version, or the exact reason and the command that enables it."""

    version: str | None = None
    reason: str | None = None  # why not, when version is None
    enable: str | None = None  # the command that makes it available (e.g. "make runtimes")
    details: Mapping[str, str] = field(default_factory=dict)  # e.g. {"chromium": "156.0...", "user_agent": ...}

    @property
    def ok(self) -> bool:
        return self.version is not None

    def describe(self) -> str:
        if self.ok:
            return f"available, {self.version}"
        return f"not available: {self.reason}" + (f"; enable it with: {self.enable}" if self.enable else "")


def python_module(module: str, package: str) -> Availability:
    """A runtime in this process: available when ``module`` imports; its version is ``package``'s."""
    import importlib

    try:
        importlib.import_module(module)
        top = importlib.import_module(package)
    except ImportError as e:
        return Availability(reason=f"{module} does not import ({e})", enable=f"pip install {package}")
    return Availability(version=f"{package} {getattr(top, '__version__', '?')}")


@dataclass(frozen=True)
class Artifact:
    """One saved artifact as a runtime opens it; everything comes from the folder and its manifest."""

    format: str  # "onnx", "onnx_fp16", "torchscript", ...
    kind: ArtifactKind
    folder: Path
    files: tuple[str, ...]  # relative to ``folder``; files[0] is the file a runtime opens
    signature: Signature  # input and output names, dtypes and shapes, in order
    factory: Callable[[], Any] | None = None  # the architecture in code, for kind "weights" only
    details: Mapping[str, Any] = field(default_factory=dict)  # the format's recorded details (e.g. "method")

    @property
    def path(self) -> Path:
        return self.folder / self.files[0]


@dataclass
class SetResult:
    """One input set's outputs from a session, or why the runtime failed on it (one line, stderr tail)."""

    outputs: dict[str, np.ndarray] | None = None
    error: str | None = None
    seconds: float | None = None  # the runtime's own inference time for this set, when it measured one


class Session(ABC):
    """An opened artifact. ``infer_all`` runs several sets at once: a runtime in another process runs
    them in one go (one Node.js, one browser launch per candidate, not one per set)."""

    name: str  # the candidate, e.g. "onnx@node"
    load_seconds: float | None = None  # the runtime's own load time, when it measured one
    # What the runtime reported about itself while running (versions, a browser's user agent), recorded per candidate.
    facts: dict[str, str] = {}  # noqa: RUF012 - replaced per instance, never mutated in place
    # Why some input set could not run at all, by design (an operator, a kernel's limit): that set fails, and
    # this lets the candidate be skipped when nothing it did compute was wrong.
    unsupported: Unsupported | None = None

    @abstractmethod
    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by signature name for one input set; raises the project's errors on failure."""

    def infer_all(self, sets: Sequence[Mapping[str, np.ndarray]]) -> list[SetResult]:
        import time

        from modelport.errors import one_line, raise_if_interrupted

        results = []
        for inputs in sets:
            start = time.perf_counter()
            try:
                outputs = self.infer(inputs)
            except Exception as e:
                raise_if_interrupted(e)
                if isinstance(e, Unsupported):
                    self.unsupported = self.unsupported or e
                results.append(SetResult(error=f"{type(e).__name__}: {one_line(e)}"))
                continue
            results.append(SetResult(outputs=outputs, seconds=time.perf_counter() - start))
        return results

    def profile(self, inputs: Mapping[str, np.ndarray], settings: ProfileSettings) -> Timing:
        """Time ``infer`` on one input set (``modelport profile``): in this process, by default.

        A runtime in another program overrides this to time the calls inside that program.
        """
        from modelport.profiling.loop import Timing, time_calls

        return Timing(times=time_calls(lambda: self.infer(inputs), settings), warmup=settings.warmup)

    def close(self) -> None:  # noqa: B027 - most sessions hold nothing to release
        """Release what ``open`` acquired (processes, sessions); safe to call twice."""


class Runtime(ABC):
    """One runtime. Class attributes are its declarative contract."""

    name: ClassVar[str]  # the name --runtimes uses
    accepts: ClassVar[frozenset[ArtifactKind]]
    default: ClassVar[bool] = False  # in the default selection (torch, torchscript, onnxruntime)
    language: ClassVar[str] = "python"  # "python", "javascript", "c++": where the artifact runs
    # May lack operators (OpenCV DNN, the ONNX reference): an artifact it cannot run is skipped with the
    # operator named, unless the user named this runtime explicitly in --runtimes.
    partial: ClassVar[bool] = False
    description: ClassVar[str] = ""
    apt_packages: ClassVar[tuple[str, ...]] = ()  # Debian packages it needs (installed by `make runtimes`)

    @property
    def loads_code(self) -> bool:
        """Whether opening an artifact runs code the file carries (TorchScript, .pt2): the trust rule applies."""
        return bool(self.accepts & CODE_KINDS)

    @abstractmethod
    def available(self) -> Availability:
        """Its version here, or why it cannot run and the command that enables it. Cheap; never raises."""

    def unsupported(self, artifact: Artifact) -> str | None:
        """Why this runtime cannot run this artifact (an operator it lacks, a size it cannot hold), or None."""
        return None

    def install(self) -> str | None:
        """Install what it needs into the user's cache (npm packages, a C++ build); what was done, or None.

        Called by ``make runtimes`` / ``modelport doctor --install``; raises ``UsageError`` naming the command
        that failed and its stderr tail. Never called implicitly by ``run`` or ``verify``.
        """
        return None

    @abstractmethod
    def open(self, artifact: Artifact, *, timeout: float) -> Session:
        """Open the saved file; raises ``LoadError`` (one line, with the runtime's own message) on failure.

        ``timeout`` bounds every step that runs another process (seconds).
        """

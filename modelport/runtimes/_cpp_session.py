"""A session whose artifact runs in a compiled program: every input set in one process, through files.

The session writes the input sets with :func:`exchange.write_sets` into a temporary folder, runs
``PROGRAM MODEL INPUT_DIR OUTPUT_DIR ARGS...`` under :func:`process.run_program` (timeout, reaped
process group, stderr tail) and reads the answer back with :func:`exchange.read_sets`, which checks
every name, dtype, shape and size. A program that crashes, hangs or writes garbage fails every set
with one line saying why; only Ctrl-C and :class:`Unsupported` propagate.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.errors import LoadError, one_line, raise_if_interrupted
from modelport.runtimes.base import Artifact, Session, SetResult, Unsupported
from modelport.runtimes.exchange import ProgramOutputs, program_timing, read_sets, write_sets
from modelport.runtimes.process import Finished, run_program, stderr_tail

if TYPE_CHECKING:
    import numpy as np

    from modelport.profiling.loop import Timing
    from modelport.profiling.records import ProfileSettings

__all__ = ["ProgramSession"]


class ProgramSession(Session):
    """Runs ``program`` on ``artifact``; subclasses adjust the arguments, a failed exit and each answer."""

    def __init__(self, name: str, program: Path, artifact: Artifact, *, timeout: float) -> None:
        self.name, self.program, self.artifact, self.timeout = name, program, artifact, timeout
        self.facts = {"program": str(program)}

    def arguments(self) -> list[str]:
        """What follows ``MODEL INPUT_DIR OUTPUT_DIR`` on the command line."""
        return list(self.artifact.signature.output_names)

    def environment(self) -> dict[str, str]:
        return {}

    def failed(self, finished: Finished) -> LoadError:
        """The error for a program that exited non-zero (a crash, a model it could not load)."""
        how = f"was killed by signal {-finished.returncode}" if finished.returncode < 0 else "exited"
        code = "" if finished.returncode < 0 else f" {finished.returncode}"
        return LoadError(f"{self.name}: {self.program.name} {how}{code}; stderr: {stderr_tail(finished.stderr)}")

    def answered(self, answer: ProgramOutputs, sets: Sequence[Mapping[str, np.ndarray]]) -> list[SetResult]:
        """Turn the program's answer into results; may raise :class:`Unsupported` for the whole artifact."""
        results = []
        for _, outputs, error, seconds in answer.sets:
            wrong = self._wrong_dtype(outputs or {})
            results.append(SetResult(error=wrong, seconds=seconds) if wrong else SetResult(outputs, error, seconds))
        return results

    def _wrong_dtype(self, outputs: Mapping[str, np.ndarray]) -> str | None:
        """An output whose dtype is not the declared one (bfloat16 is exchanged as float32, as golden data is)."""
        for spec in self.artifact.signature.outputs:
            if spec.name in outputs:
                declared = "float32" if spec.dtype == "bfloat16" else spec.dtype
                if str(outputs[spec.name].dtype) != declared:
                    got = outputs[spec.name].dtype
                    return f"{self.name}: output {spec.name!r} came back as {got}, the signature declares {declared}"
        return None

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.infer_all([inputs])[0]
        if result.outputs is None:
            raise LoadError(result.error or f"{self.name} returned nothing")
        return result.outputs

    def infer_all(self, sets: Sequence[Mapping[str, np.ndarray]]) -> list[SetResult]:
        try:
            return self._run(sets)
        except Unsupported:
            raise
        except Exception as e:  # one line per set: the run failed as a whole
            raise_if_interrupted(e)
            message = one_line(e, limit=800) if isinstance(e, LoadError) else f"{type(e).__name__}: {one_line(e)}"
            return [SetResult(error=message) for _ in sets]

    def profile(self, inputs: Mapping[str, np.ndarray], settings: ProfileSettings) -> Timing:
        """The calls timed inside the program (std::chrono::steady_clock), never across the pipe."""
        answer = self._exchange([inputs], settings.model_dump())
        return program_timing(self.name, answer, settings, self.facts)

    def _run(self, sets: Sequence[Mapping[str, np.ndarray]]) -> list[SetResult]:
        return self.answered(self._exchange(sets), sets)

    def _exchange(
        self, sets: Sequence[Mapping[str, np.ndarray]], profile: Mapping[str, float] | None = None
    ) -> ProgramOutputs:
        signature = self.artifact.signature
        names = [str(k) for k in range(len(sets))]
        with tempfile.TemporaryDirectory(prefix="modelport-cpp-") as tmp:
            inputs, outputs = Path(tmp) / "inputs", Path(tmp) / "outputs"
            # Inputs in signature order: the programs pass them to the model by position.
            write_sets(
                inputs,
                [(n, {s.name: feeds[s.name] for s in signature.inputs}) for n, feeds in zip(names, sets, strict=True)],
                profile,
            )
            command = [str(self.program), str(self.artifact.path), str(inputs), str(outputs), *self.arguments()]
            finished = run_program(command, what=self.name, timeout=self.timeout, env=self.environment(), check=False)
            if finished.returncode != 0:
                raise self.failed(finished)
            answer = read_sets(outputs, names, signature.output_names, self.name)
        self.load_seconds = answer.load_seconds
        self.facts = {**self.facts, **answer.runtime}
        return answer

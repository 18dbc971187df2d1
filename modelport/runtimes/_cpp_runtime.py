"""What the C++ runtimes (``libtorch``, ``opencv``) share: a program built once into the user's cache.

``available`` reports the toolchain (or the program named by the runtime's environment variable, the
test suite's doubles); ``program`` finds or builds it; ``install`` (``make runtimes``) builds it.
Each runtime says how to prepare its build (``prepared``) and how to name its version (``label``).
"""

from __future__ import annotations

import os
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

from modelport.errors import LoadError, UsageError, one_line
from modelport.runtimes import _cpp_build as build
from modelport.runtimes.base import Availability, Runtime

__all__ = ["ENABLE", "CppRuntime"]

ENABLE = "modelport doctor --install (make runtimes in a clone)"


class CppRuntime(Runtime):
    language = "c++"
    env_program: ClassVar[str]  # names a program to use instead of the build
    build_time: ClassVar[str]  # roughly how long a cold build takes here, for the availability note

    @abstractmethod
    def prepared(self) -> tuple[build.Recipe, str] | str:
        """The recipe and the compiler, or why the program cannot be built here."""

    @abstractmethod
    def label(self, recipe: build.Recipe) -> str:
        """The version this runtime reports, from the library versions in the recipe."""

    def available(self) -> Availability:
        try:
            return self._availability()
        except Exception as e:  # never raises: a surprise is a reason, not a traceback
            return Availability(reason=f"cannot inspect the {self.name} toolchain: {one_line(e)}", enable=ENABLE)

    def _availability(self) -> Availability:
        explicit = os.environ.get(self.env_program)
        if explicit:
            if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
                return Availability(version=f"{self.name} program {explicit} ({self.env_program})")
            return Availability(
                reason=f"{self.env_program}={explicit} is not an executable file", enable=f"unset {self.env_program}"
            )
        prepared = self.prepared()
        if isinstance(prepared, str):
            return Availability(reason=prepared, enable=ENABLE)
        recipe, cxx = prepared
        program = recipe.program(cxx)
        state = (
            str(program)
            if program.is_file()
            else f"not built yet: built on first use ({self.build_time}), or by make runtimes"
        )
        return Availability(
            version=self.label(recipe), details={"program": state, "compiler": build.compiler_version(cxx)}
        )

    def program(self, *, build_it: bool) -> tuple[Path, float | None]:
        """The program to run and the seconds it took to build now (None: nothing was built)."""
        explicit = os.environ.get(self.env_program)
        if explicit:
            return Path(explicit), None
        prepared = self.prepared()
        if isinstance(prepared, str):
            raise LoadError(f"the {self.name} runtime is not available: {prepared}; enable it with: {ENABLE}")
        recipe, cxx = prepared
        return recipe.build(cxx, what=self.name) if build_it else (recipe.program(cxx), None)

    def install(self) -> str | None:
        try:
            program, seconds = self.program(build_it=True)
        except LoadError as e:
            raise UsageError(str(e)) from e
        return f"built {program} in {seconds:.0f} s" if seconds is not None else f"already built: {program}"

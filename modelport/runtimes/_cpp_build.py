"""Building modelport's C++ runtime programs once per toolchain, into the user's cache.

A :class:`Recipe` names the sources (package data under ``modelport/runtimes/cpp/``), the compiler
flags and the libraries a program links to. Its cache entry, ``cache_dir()/build/NAME-KEY/``, is
keyed by everything the binary is made from: the sources' bytes, the compiler's version, the
command line, the library versions and the paths of the libraries linked to. A program is
compiled under a temporary name and renamed into place when complete, so a half build is never
used and a second run does not recompile. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from modelport.errors import LoadError
from modelport.runtimes.cache import cache_dir
from modelport.runtimes.cache import key as cache_key
from modelport.runtimes.process import run_program

__all__ = ["BUILD_TIMEOUT", "SOURCE_DIR", "Recipe", "compiler", "compiler_version", "json_header"]

SOURCE_DIR = Path(__file__).parent / "cpp"
BUILD_TIMEOUT = 900.0  # seconds: a libtorch program takes ~30 s and ~1 GB on 2 cores; far more on a busy machine
CXX = "g++"
JSON_HEADER = Path("/usr/include/nlohmann/json.hpp")  # Debian's nlohmann-json3-dev


def compiler() -> str | None:
    return shutil.which(CXX)


@functools.cache
def compiler_version(path: str) -> str:
    """The compiler's first ``--version`` line ("g++ (Debian 12.2.0-14) 12.2.0"); part of every key."""
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    return (done.stdout.splitlines() or ["unknown"])[0].strip()


def json_header() -> str | None:
    """Why the JSON library the programs include is missing, or None."""
    if JSON_HEADER.is_file():
        return None
    return f"{JSON_HEADER} is missing (Debian package nlohmann-json3-dev)"


@dataclass(frozen=True)
class Recipe:
    """How one program is built: ``g++ FLAGS SOURCE -o PROGRAM LINK``."""

    name: str  # the program's file name, e.g. "libtorch_runner"
    source: str  # the .cpp file under SOURCE_DIR; it includes exchange.hpp
    flags: tuple[str, ...]  # compile flags (include dirs)
    link: tuple[str, ...]  # link flags (library dirs, rpath, libraries)
    versions: tuple[str, ...]  # library versions and the paths of the libraries linked to

    def sources(self) -> list[Path]:
        return [SOURCE_DIR / self.source, SOURCE_DIR / "exchange.hpp"]

    def command(self, cxx: str, output: Path, source: str | None = None) -> list[str]:
        source = source or str(SOURCE_DIR / self.source)
        return [cxx, "-std=c++17", "-O2", *self.flags, source, "-o", str(output), *self.link]

    def key(self, cxx: str) -> str:
        # The sources count by content, not by where the package is installed.
        command = self.command("CXX", Path("OUT"), source=self.source)
        parts: list[str | bytes] = [self.name, compiler_version(cxx), *command, *self.versions]
        return cache_key(parts + [p.read_bytes() for p in self.sources()])

    def entry(self, cxx: str) -> Path:
        return cache_dir() / "build" / f"{self.name}-{self.key(cxx)}"

    def program(self, cxx: str) -> Path:
        return self.entry(cxx) / self.name

    def build(self, cxx: str, *, what: str) -> tuple[Path, float | None]:
        """The built program and the seconds its build took (None: it was already built)."""
        entry = self.entry(cxx)
        if (entry / self.name).is_file():
            return entry / self.name, None
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
        command = self.command(cxx, staging / self.name)
        try:
            start = time.perf_counter()
            try:
                run_program(command, what=f"{what} build", timeout=BUILD_TIMEOUT, cwd=staging)
            except LoadError as e:
                raise LoadError(f"{e} (command: {' '.join(command)})") from e
            seconds = time.perf_counter() - start
            record = {"command": command, "compiler": compiler_version(cxx), "versions": list(self.versions)}
            (staging / "build.json").write_text(json.dumps({**record, "seconds": round(seconds, 1)}, indent=1))
            if entry.is_dir() and not (entry / self.name).is_file():
                # A damaged entry (its program deleted): set it aside so that the new build can take its place.
                damaged = Path(tempfile.mkdtemp(prefix=f".{entry.name}.damaged.", dir=entry.parent))
                os.rename(entry, damaged / "entry")
                shutil.rmtree(damaged, ignore_errors=True)
            try:
                os.rename(staging, entry)  # atomic: the entry is complete or absent
            except OSError as e:
                if not (entry / self.name).is_file():  # else a concurrent build finished first: use it
                    raise LoadError(f"{what}: cannot move its build into {entry}: {e.strerror or e}") from e
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return entry / self.name, seconds

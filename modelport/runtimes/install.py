"""``make runtimes``: install every runtime's toolchain once (Debian packages, npm packages, C++ builds).

``python -m modelport.runtimes.install [NAME ...]`` installs the system packages the selected runtimes
declare (one ``apt-get install``, as root, only for what is missing), then calls each runtime's own
``install`` (into the user's cache), then prints each runtime's availability. Exit 1 if any is
still unavailable, naming why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

from modelport import runtimes
from modelport.errors import ModelportError

__all__ = ["install", "main"]


def _missing_debs(packages: Sequence[str]) -> list[str]:
    if not packages or shutil.which("dpkg-query") is None:
        return []
    missing = []
    for package in packages:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
        )
        if "install ok installed" not in done.stdout:
            missing.append(package)
    return missing


def install(names: Sequence[str] | None = None) -> int:
    selected = [runtimes.get(n) for n in (names or runtimes.names())]
    debs = _missing_debs(sorted({p for r in selected for p in r.apt_packages}))
    if debs:
        print(f"apt-get install {' '.join(debs)}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        steps = [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *debs]]
        for cmd in steps:
            if subprocess.run(cmd, env=env, check=False).returncode != 0:
                print(f"modelport: {' '.join(cmd)} failed (it needs root)", file=sys.stderr)
                return 1
    failed = 0
    for runtime in selected:
        try:
            done = runtime.install()
        except ModelportError as e:
            print(f"{runtime.name}: install failed: {e}", file=sys.stderr)
            failed += 1
            continue
        if done:
            print(f"{runtime.name}: {done}", flush=True)
    for runtime in selected:
        state = runtime.available()
        print(f"{runtime.name}: {state.describe()}")
        failed += not state.ok
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    return install(list(argv if argv is not None else sys.argv[1:]) or None)


if __name__ == "__main__":
    sys.exit(main())

"""``modelport doctor``: every runtime, available or not, its version, and the exact command that enables it.

``--json`` prints the same for machines; ``--install`` installs what is missing first (``make runtimes``).
Exit 0 when every registered runtime is available, 1 otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from modelport import runtimes

__all__ = ["doctor", "rows"]


def rows() -> list[dict[str, Any]]:
    """One record per registered runtime (nothing heavy is imported to list them; ``available`` is cheap)."""
    found = []
    for name in runtimes.names():
        runtime = runtimes.get(name)
        state = runtime.available()
        found.append(
            {
                "runtime": name,
                "available": state.ok,
                "version": state.version,
                "reason": state.reason,
                "enable": state.enable,
                "accepts": sorted(runtime.accepts),
                "language": runtime.language,
                "default": name in runtimes.DEFAULT,
                "details": dict(state.details),
            }
        )
    return found


def doctor(*, as_json: bool = False, install: bool = False) -> int:
    if install:
        from modelport.runtimes.install import install as install_all

        install_all()
    found = rows()
    if as_json:
        print(json.dumps({"runtimes": found}, indent=2))
    else:
        width = max(len(r["runtime"]) for r in found)
        for r in found:
            runs = ", ".join(r["accepts"])
            if r["available"]:
                print(f"{r['runtime']:<{width}}  ok       {r['version']}  (runs {runs}; {r['language']})")
            else:
                print(f"{r['runtime']:<{width}}  missing  {r['reason']}; enable it with: {r['enable'] or '-'}")
    return 0 if all(r["available"] for r in found) else 1

"""``browser``: the ONNX artifact in headless Chromium with onnxruntime-web (wasm execution provider).

modelport serves a page from 127.0.0.1 (only the files this run lists: the page, onnxruntime-web's
wasm build, the model's files, the input tensors) and ``js/run_browser.js`` drives the system Chromium
(Debian ``chromium``) through playwright-core with a fresh profile: one launch per candidate, every
input set in one page. Chromium's version and the page's user agent are recorded with the outputs.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

from modelport.errors import LoadError
from modelport.runtimes import _js
from modelport.runtimes._page_server import PageServer
from modelport.runtimes.base import Artifact, Availability, Runtime, Session, Unsupported
from modelport.runtimes.process import run_program

__all__ = ["BrowserRuntime"]

WASM_LIMIT = 4 * 2**30  # bytes: a wasm32 memory cannot hold a model beyond this
# onnxruntime-web's wasm-only build: the script, its loader and the wasm binary it fetches.
_ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
_PAGE_FILES = ("page.html", "page.js", "exchange.js")


def chromium_executable() -> str | None:
    """``$MODELPORT_CHROMIUM`` if set, else Debian's ``chromium`` on PATH."""
    explicit = os.environ.get("MODELPORT_CHROMIUM")
    if explicit:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserRuntime(Runtime):
    name = "browser"
    accepts = frozenset({"onnx"})
    language = "javascript"
    description = "onnxruntime-web (wasm) in headless Chromium, driven by playwright-core"
    apt_packages = ("chromium", "nodejs")  # the page is driven by playwright-core in Node.js

    def available(self) -> Availability:
        try:
            return self._availability()
        except Exception as e:  # available() never raises: an odd cache folder is a reason, not a crash
            return Availability(reason=f"cannot tell ({type(e).__name__}: {e})", enable=_js.ENABLE)

    def _availability(self) -> Availability:
        if _js.node_executable() is None:
            return Availability(reason=_js.node_missing(), enable=_js.ENABLE)
        chromium = chromium_executable()
        if chromium is None:
            explicit = os.environ.get("MODELPORT_CHROMIUM")
            why = f"MODELPORT_CHROMIUM={explicit} is not an executable file" if explicit else "chromium is not on PATH"
            return Availability(reason=f"{why} (Debian package chromium)", enable=_js.ENABLE)
        versions = {name: _js.package_version(name) for name in ("onnxruntime-web", "playwright-core")}
        missing = [name for name, version in versions.items() if version is None]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            where = _js.packages_dir()
            return Availability(reason=f"{' and '.join(missing)} {verb} not installed in {where}", enable=_js.ENABLE)
        return Availability(
            version=f"onnxruntime-web {versions['onnxruntime-web']} in Chromium",
            details={"chromium": chromium, "playwright-core": str(versions["playwright-core"])},
        )

    def install(self) -> str | None:
        return _js.install_packages()

    def unsupported(self, artifact: Artifact) -> str | None:
        size = sum((artifact.folder / f).stat().st_size for f in artifact.files if (artifact.folder / f).is_file())
        if size > WASM_LIMIT:
            return f"the model's files hold {size / 2**30:.1f} GiB, more than the 4 GiB a wasm memory can hold"
        return None

    def open(self, artifact: Artifact, *, timeout: float) -> Session:
        name, state = _js.ready(self, artifact)
        why = self.unsupported(artifact)
        if why:
            raise Unsupported(f"{name}: {why}")
        node, chromium = str(_js.node_executable()), str(chromium_executable())
        model_dir = artifact.path.parent
        model_files = [(artifact.folder / f).relative_to(model_dir).as_posix() for f in artifact.files]
        dist = _js.packages_dir() / "node_modules" / "onnxruntime-web" / "dist"
        files = {f"/{f}": _js.JS_DIR / f for f in _PAGE_FILES}
        files |= {f"/ort/{f}": dist / f for f in _ORT_FILES}
        files |= {f"/model/{quote(f)}": model_dir / f for f in model_files}
        env = {"NODE_PATH": str(_js.packages_dir() / "node_modules")}

        def run(inputs: Path, outputs: Path, scratch: Path, limit: float) -> None:
            listed = files | {f"/inputs/{quote(p.relative_to(inputs).as_posix())}": p for p in _files_under(inputs)}
            with PageServer(listed) as server:
                cmd = driver_command(node, chromium, server.origin, model_files, outputs, scratch)
                try:
                    run_program(cmd, what=name, timeout=limit, env=env)
                except LoadError as e:
                    if server.refused:
                        raise LoadError(f"{e}; the page asked for unlisted {', '.join(server.refused[:3])}") from e
                    raise

        known = {"playwright-core": str(state.details.get("playwright-core"))}
        return _js.ProgramSession(name, artifact, run, timeout, facts=known)


def driver_command(
    node: str, chromium: str, origin: str, model_files: list[str], outputs: Path, scratch: Path
) -> list[str]:
    """The command that drives one browser run against the page at ``origin`` (its config written to ``scratch``)."""
    config = {
        "chromium": chromium,
        "profile": str(scratch / "profile"),  # a fresh profile per launch, removed with the scratch folder
        "origin": origin,
        "model": model_files[0],
        "external_data": model_files[1:],
        "output_dir": str(outputs),
    }
    (scratch / "config.json").write_text(json.dumps(config))
    return [node, str(_js.JS_DIR / "run_browser.js"), str(scratch / "config.json")]


def _files_under(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*")) if p.is_file()]

"""The browser runtime's page server: exactly the files one run lists, from 127.0.0.1, on a free port.

Nothing is served from a folder: a URL path maps to one file or it is a 404 (recorded, so a failed run
can say what the page asked for). It runs in a thread for the length of one browser run.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["PageServer"]

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".wasm": "application/wasm",  # needed for streaming compilation
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a page that closed mid-download (the run is over): not worth a traceback on the terminal


class PageServer:
    """``with PageServer({"/page.html": path, ...}) as server:`` serves those files at ``server.origin``."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self.files = dict(files)
        self.refused: list[str] = []
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="modelport-page-server", daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve(body=True)

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def _serve(self, *, body: bool) -> None:
                path = server.files.get(self.path.split("?", 1)[0])
                if path is None:
                    server.refused.append(self.path)
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", _TYPES.get(path.suffix, "application/octet-stream"))
                self.send_header("Content-Length", str(path.stat().st_size))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if body:
                    with path.open("rb") as f:
                        shutil.copyfileobj(f, self.wfile, 2**20)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: failures are reported through the run, not the terminal

        return Handler

"""`rig view --serve`: the written site on 127.0.0.1 through Python's own HTTP server."""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rig_core.errors import RigError


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (the signature http.server calls)
        pass


def server(folder: Path, port: int = 0) -> ThreadingHTTPServer:
    """A server of ``folder`` bound to 127.0.0.1 only (``port`` 0: a free port); call ``serve_forever``."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise RigError(f"cannot serve on 127.0.0.1:{port} ({exc.strerror or exc})",
                       "pass another --port, or 0 for any free port") from exc


def url(srv: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/index.html"

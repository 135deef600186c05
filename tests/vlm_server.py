"""A tiny OpenAI-compatible server for the VLM annotator tests (127.0.0.1, a free port, never the internet)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class FakeVLM:
    """Serves GET /v1/models and POST /v1/chat/completions.

    ``reply(request_json) -> str | int``: the answer text, or an HTTP status to fail with.
    ``script``: statuses/texts served first, in order, before ``reply`` is used.
    """

    def __init__(self, reply: Callable[[dict], str | int] | None = None, models=("fake-vlm",), key="sk-test"):
        self.reply = reply or (lambda req: "So I wait.")
        self.script: list[str | int] = []
        self.models, self.key = list(models), key
        self.requests: list[dict] = []  # chat requests received (every HTTP attempt)
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeVLM":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status >= 500 or status == 429:
                    self.send_header("retry-after-ms", "10")  # the client's backoff, made fast
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {fake.key}":
                    return True
                self._send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                           "code": "invalid_api_key"}})
                return False

            def do_GET(self):
                if self.path.rstrip("/") != "/v1/models":
                    return self._send(404, {"error": {"message": "not found"}})
                if self._authorised():
                    self._send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in fake.models]})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                req = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                if not self._authorised():
                    return
                with fake._lock:
                    fake.requests.append(req)
                    fake.headers.append(dict(self.headers))
                    answer = fake.script.pop(0) if fake.script else None
                if answer is None:
                    answer = fake.reply(req)
                if isinstance(answer, int):
                    return self._send(answer, {"error": {"message": f"scripted failure {answer}",
                                                         "type": "server_error"}})
                self._send(200, {
                    "id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion", "created": int(time.time()),
                    "model": req.get("model", ""),
                    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                 "message": {"role": "assistant", "content": answer}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})

        return Handler


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def prompt_text(req: dict) -> str:
    """The user message's text part of a chat request."""
    parts = req["messages"][-1]["content"]
    return next(p["text"] for p in parts if p.get("type") == "text")

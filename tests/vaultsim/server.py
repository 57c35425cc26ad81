"""The HTTP front (``/v1/...``, JSON in and out) and :class:`VaultSim`, which runs it."""

from __future__ import annotations

import json
import re
import sys
import threading
import traceback
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

from .common import JSON, Clock, VaultError
from .core import Core, Request

ROOT_TOKEN = "root"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], core: Core) -> None:
        super().__init__(address, _Handler)
        self.core = core


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "VaultSim"
    # Headers and body go out in two writes; without this, Nagle's algorithm and delayed
    # ACKs cost ~40 ms a request on a kept-alive connection.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_LIST(self) -> None:
        self._handle("LIST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read replies, not access logs."""

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not url.path.startswith("/v1/"):
            self._send(404, {"errors": []})
            return
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            self._send(400, {"errors": [f"failed to parse JSON input: {exc}"]})
            return
        if not isinstance(body, dict):
            self._send(400, {"errors": ["failed to parse JSON input: expected an object"]})
            return
        token = self.headers.get("X-Vault-Token")
        bearer = self.headers.get("Authorization", "")
        if not token and bearer.lower().startswith("bearer "):
            token = bearer[len("bearer ") :].strip()
        request = Request(
            method=method,
            path=re.sub(r"/+", "/", unquote(url.path[len("/v1/") :])).strip("/"),
            query={k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()},
            body=body,
            token=token or None,
            wrap_ttl=self.headers.get("X-Vault-Wrap-TTL"),
        )
        try:
            reply = self.server.core.handle(request)
        except VaultError as exc:
            self._send(exc.status, exc.body)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self._send(500, {"errors": ["internal error"]})
        else:
            self._send(reply.status, reply.body)

    def _send(self, status: int, body: JSON | None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Cache-Control", "no-store")
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class VaultSim:
    """A running simulator. ``VaultSim.start()`` binds a free port on ``host``."""

    def __init__(self, server: _Server, core: Core, root_token: str) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.core = core
        self.clock = core.clock
        self.root_token = root_token
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    @classmethod
    def start(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        root_token: str = ROOT_TOKEN,
        kv_mounts: Sequence[str] = ("secret",),
        approle_mounts: Sequence[str] = (),
        role_delete_revokes_tokens: bool = True,
    ) -> VaultSim:
        """Serve in a background thread.

        ``kv_mounts``: KV v2 engines (``secret`` as in ``vault server -dev``).
        ``approle_mounts``: AppRole mounts enabled from the start (else enable through
        ``sys/auth/<path>``). ``role_delete_revokes_tokens``: deleting an AppRole role
        also revokes the tokens its logins issued; real Vault does not (those tokens
        live out their TTL and only renewal fails), so pass False to test against that.
        """
        core = Core(
            Clock(),
            root_token=root_token,
            kv_mounts=kv_mounts,
            approle_mounts=approle_mounts,
            role_delete_revokes_tokens=role_delete_revokes_tokens,
        )
        sim = cls(_Server((host, port), core), core, root_token)
        sim._thread.start()
        return sim

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward: TTLs of tokens, secret-ids and wrapping
        tokens run out as if that time had passed."""
        self.clock.advance(seconds)

    def now(self) -> float:
        return self.clock.now()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> VaultSim:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

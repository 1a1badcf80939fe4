"""The HTTP skin: ``http.server`` on loopback, HTTP/1.1 keep-alive, every
response with Content-Length so urllib3 can reuse connections."""

from __future__ import annotations

import io
import logging
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from .api import ApiRequest, ApiResponse, SandboxApi
from .backend import SandboxBackend

log = logging.getLogger("xero_sandbox.http")
_CHUNK = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: with an unbuffered writer and
    # Nagle on, every keep-alive answer would wait ~40 ms for a delayed ACK.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass  # the client has gone; nothing left to flush to
        finally:
            self.server.track(self.connection, open_=False)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        target = urlsplit(self.path)
        body, size = self._read_body(self.server.api.backend.limits.body_limit_bytes)
        request = ApiRequest(
            method=self.command, path=unquote(target.path), query_string=target.query,
            headers={k.lower(): v for k, v in self.headers.items()}, body=body, body_size=size,
        )
        response = self.server.api.handle(request)
        if response.drop:
            # The action is committed; vanish without a byte so the client sees
            # a dropped connection, exactly the "lost response" case.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            self._write(response)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            # The client gave up before the answer (a read timeout while a
            # commit_late request was held): what was done stays done.
            self.close_connection = True
            unsent, self.wfile = self.wfile, io.BytesIO()  # nothing more may reach the dead socket
            try:
                unsent.close()
            except OSError:
                pass
            log.debug("client hung up before the answer to %s %s", self.command, target.path)

    def _read_body(self, limit: int) -> tuple[bytes, int]:
        """Read the whole body even when it is too big: answering 413 before
        the client finished sending would make it see a reset, not a 413."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length = int(self.headers.get("Content-Length") or 0)
        if length <= limit:
            return self.rfile.read(length), length
        remaining = length
        while remaining > 0:
            got = self.rfile.read(min(_CHUNK, remaining))
            if not got:
                break
            remaining -= len(got)
        return b"", length

    def _read_chunked(self, limit: int) -> tuple[bytes, int]:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(65537)
            chunk_len = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if chunk_len == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            data = self.rfile.read(chunk_len)
            self.rfile.readline()
            size += len(data)
            if size <= limit:
                parts.append(data)
        return (b"".join(parts) if size <= limit else b""), size

    def _write(self, response: ApiResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        # Only method, path and status reach the log: never headers, tokens or bodies.
        log.debug("%s %s", self.command, urlsplit(self.path).path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: SandboxApi) -> None:
        self.api = api
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """Idle keep-alive connections would otherwise pin handler threads
        (blocked reading) for the life of the process."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that time out or drop (which tests do on purpose) are not
        # sandbox failures; keep stderr clean and leave a debug trace.
        log.debug("connection from %s ended abruptly", client_address, exc_info=True)


class XeroSandbox:
    """A running sandbox: ``url`` serves both the accounting API
    (``url + "/api.xro/2.0"``) and the identity endpoints (``url + "/connect/token"``)."""

    def __init__(self, server: _Server, thread: threading.Thread, backend: SandboxBackend) -> None:
        self._server = server
        self._thread = thread
        self.backend = backend
        host, port = server.server_address[:2]
        self.host, self.port = str(host), int(port)
        self.url = f"http://{self.host}:{self.port}"

    @classmethod
    def start(cls, host: str = "127.0.0.1", port: int = 0, backend: SandboxBackend | None = None) -> "XeroSandbox":
        backend = backend or SandboxBackend()
        server = _Server((host, port), SandboxApi(backend))
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"xero-sandbox-{server.server_address[1]}", daemon=True)
        thread.start()
        return cls(server, thread, backend)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    def serve_until_stopped(self) -> None:
        """Serve in the foreground (a process of its own) until SIGTERM or Ctrl-C, then stop."""
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> "XeroSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

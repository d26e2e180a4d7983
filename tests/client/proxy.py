"""A real, misbehaving TCP proxy for HTTP/1.1 on 127.0.0.1, for the SDK's loss tests.

Modes (switch any time with :meth:`FlakyProxy.set_mode`):

- ``pass``: forward each request and its answer.
- ``down``: nothing listens: connections are refused.
- ``drop_request``: read the request, then hang up without forwarding it.
- ``drop_response``: forward the request, read the server's whole answer (the server has
  committed!), then hang up without passing it on.
- ``fail``: answer 503 with ``Retry-After: 0`` without forwarding.
- ``flaky``: per request, one of the above but ``down``, drawn from a seeded
  ``random.Random`` with the given weights; deterministic for a given request order.

One request per connection (``Connection: close`` both ways) keeps the framing trivial.
Counters record what was done to each request.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections import Counter

_BODY_503 = b'{"error":{"code":"overloaded","message":"the proxy says 503","field":null}}'
_ANSWER_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 0\r\nConnection: close\r\n"
    + f"Content-Length: {len(_BODY_503)}\r\n\r\n".encode()
    + _BODY_503
)


def _read_request(conn: socket.socket) -> bytes | None:
    """One whole request (head and Content-Length body), or None if the peer left."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    lines = [
        line
        for line in head.split(b"\r\n")
        if not line.lower().startswith((b"connection:", b"keep-alive:"))
    ]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


class FlakyProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        seed: int = 0,
        weights: dict[str, float] | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.weights = weights or {
            "pass": 0.4,
            "drop_request": 0.2,
            "drop_response": 0.2,
            "fail": 0.2,
        }
        self._random = random.Random(seed)
        self.mode = "pass"
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stopped = False
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def set_mode(self, mode: str) -> None:
        with self._lock:
            if mode == "down" and self._listener is not None:
                self._unlisten()
            elif mode != "down" and self._listener is None and not self._stopped:
                self._listen()
            self.mode = mode

    def close(self) -> None:
        with self._lock:
            self._stopped = True
            self._unlisten()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: "down" or stopped
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _choose(self) -> str:
        with self._lock:
            mode = self.mode
            if mode == "flaky":
                names = sorted(self.weights)
                mode = self._random.choices(names, [self.weights[n] for n in names])[0]
            self.counts[mode] += 1
            return mode

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            request = _read_request(conn)
            if request is None:
                return
            action = self._choose()
            if action in ("drop_request", "down"):
                return
            if action == "fail":
                conn.sendall(_ANSWER_503)
                return
            with socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
                upstream.sendall(request)
                answer = b""
                while chunk := upstream.recv(65536):
                    answer += chunk
            if action == "drop_response":
                return  # the server committed; the client never hears of it
            conn.sendall(answer)

"""A real TCP proxy on 127.0.0.1 that streams both ways (so Server-Sent Events pass through
as they are sent) and can cut every open connection at once, as a flaky network or a
restarting load balancer would. It keeps the head of every request it forwarded, so a
test can see what a reconnecting client asked for (``Last-Event-ID``)."""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[bytes] = []  # the head of each request, in arrival order
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def header_values(self, name: str) -> list[str | None]:
        """The value of header ``name`` in each request (None where absent)."""
        wanted = name.lower().encode() + b":"
        values: list[str | None] = []
        with self._lock:
            heads = list(self.requests)
        for head in heads:
            found = [
                line.split(b":", 1)[1].strip().decode()
                for line in head.split(b"\r\n")[1:]
                if line.lower().startswith(wanted)
            ]
            values.append(found[0] if found else None)
        return values

    def cut(self) -> int:
        """Close every open connection, both sides; how many were cut."""
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:  # the pumps see the end and close them
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return len(sockets) // 2

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.cut()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, requests: bool) -> None:
        head = b""
        try:
            while chunk := source.recv(65536):
                if requests and b"\r\n\r\n" not in head:
                    head += chunk
                    if b"\r\n\r\n" in head:
                        with self._lock:
                            self.requests.append(head.split(b"\r\n\r\n", 1)[0])
                        head = b""
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.discard(source)
            source.close()  # each socket is the source of exactly one pump

"""A TCP proxy for tests that can stop forwarding: a frozen path to the database.

Frozen, it still accepts bytes from both sides (the kernel acknowledges them, as a peer
whose process hangs or whose path beyond the first hop is cut), but passes nothing on.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class FreezableProxy:
    """Forwards 127.0.0.1:<port> to ``target`` until :meth:`freeze`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self._flowing.clear()

    def close(self) -> None:
        """Stop for good: every connection through the proxy is closed."""
        self._closed = True
        self._flowing.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._flowing.wait()  # frozen: new connections are not taken on either
            if self._closed:
                client.close()
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            self._flowing.wait()  # frozen: neither bytes nor a close get through
            if not data or self._closed:
                for sock in (src, dst):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return
            try:
                dst.sendall(data)
            except OSError:
                return

"""Fixtures of the fault tests: an S3 endpoint that can die (the trained registry is the root conftest's ``trained_registry``)."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest


class KillableMotoServer:
    """moto's ThreadedMotoServer on a fixed port of 127.0.0.1 that can go away as a dead process would.

    ``kill()`` is ``ThreadedMotoServer.stop()`` (werkzeug ends the accept loop and closes the listening
    socket: new connections are refused at once, and the port can be bound again) plus closing every
    connection the server accepted, so no handler thread of the old server can still answer on a
    keep-alive connection, as when a process dies. moto's buckets live in this process, not in the
    server, so ``start()`` after ``kill()`` on the same port serves the same buckets again.
    """

    def __init__(self, port: int = 0):
        self.port = port
        self.connections: list[socket.socket] = []
        self._server = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> KillableMotoServer:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        wsgi = self._server._server
        accept = wsgi.get_request

        def tracked_accept():
            connection, address = accept()
            with self._lock:
                self.connections.append(connection)
            return connection, address

        wsgi.get_request = tracked_accept
        return self

    def wrap(self, middleware) -> None:
        """Put a WSGI middleware in front of moto (``middleware(app)`` returns the new app) while the server runs."""
        wsgi = self._server._server
        wsgi.app = middleware(wsgi.app)

    def kill(self) -> None:
        if self._server is None:
            return
        wsgi = self._server._server
        self._server.stop()
        wsgi.server_close()
        with self._lock:
            connections, self.connections = self.connections, []
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._server = None

    @property
    def alive(self) -> bool:
        return self._server is not None


@pytest.fixture
def killable_s3():
    """A KillableMotoServer on a free port of 127.0.0.1, killed at the end of the test whatever happened."""
    server = KillableMotoServer().start()
    try:
        yield server
    finally:
        server.kill()

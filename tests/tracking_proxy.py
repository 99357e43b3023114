"""A loopback TCP proxy in front of a tracking server, to stand for the network path to it:
`mode` "forward" passes bytes both ways; "silent" accepts and reads connections (new and
open ones) and forwards nothing, as a dead path does; "refuse" closes every connection at
once, as a server that is down does."""

from __future__ import annotations

import socket
import threading


class TrackingProxy:
    def __init__(self, target_port: int):
        self.target_port, self.mode = target_port, "forward"
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: set[socket.socket] = set()
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str) -> None:
        self.mode = mode
        if mode == "refuse":  # open connections break too
            for end in list(self.open):
                end.close()

    def accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if self.mode == "refuse":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                client.close()  # a reset, as from a port nobody listens on
                continue
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def serve(self, client: socket.socket) -> None:
        if self.mode == "silent":
            self.pump(client, None)
            return
        server = socket.create_connection(("127.0.0.1", self.target_port))
        self.open |= {client, server}
        threading.Thread(target=self.pump, args=(server, client), daemon=True).start()
        self.pump(client, server)

    def pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        try:
            while data := source.recv(65536):
                if sink is not None and self.mode == "forward":
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                if end is not None:
                    self.open.discard(end)
                    end.close()

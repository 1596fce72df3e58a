"""A small VNC client (RFB 3.8, no authentication, raw pixels) on a desktop viewer's WebSocket, for
the viewer's tests and bench."""

from __future__ import annotations

import struct

from websockets.sync.client import connect
from websockets.typing import Subprotocol

RAW = 0
BYTES_PER_PIXEL = 4
"""The server's own pixel format, which a client that sends no SetPixelFormat gets: 32 bits."""


class RfbClient:
    """A VNC client on a viewer URL's WebSocket, speaking RFB 3.8 with no authentication."""

    def __init__(self, page_url: str) -> None:
        url = page_url.replace("http://", "ws://", 1) + "websockify"
        self.connection = connect(url, subprotocols=[Subprotocol("binary")], open_timeout=20)
        self.received = b""

    def read(self, size: int) -> bytes:
        while len(self.received) < size:
            data = self.connection.recv(timeout=20)
            self.received += data if isinstance(data, bytes) else data.encode()
        wanted, self.received = self.received[:size], self.received[size:]
        return wanted

    def handshake(self) -> tuple[int, int]:
        """Through the server's init; answers the screen's size."""
        assert self.read(12) == b"RFB 003.008\n"
        self.connection.send(b"RFB 003.008\n")
        assert 1 in self.read(self.read(1)[0])  # security type "None" is offered
        self.connection.send(b"\x01")
        assert self.read(4) == b"\0\0\0\0"
        self.connection.send(b"\x01")  # shared
        width, height = struct.unpack(">HH", self.read(4))
        self.read(16)  # the pixel format
        self.read(struct.unpack(">I", self.read(4))[0])  # the desktop's name
        return width, height

    def request_update(self, width: int, height: int, incremental: bool = False) -> None:
        self.connection.send(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, width, height))

    def read_update(self) -> int:
        """One FramebufferUpdate in raw pixels (the only encoding this client asks for); answers
        the number of pixels it carried."""
        message_type, _, rectangles = struct.unpack(">BBH", self.read(4))
        assert message_type == 0, f"expected a FramebufferUpdate, got message type {message_type}"
        pixels = 0
        for _ in range(rectangles):
            _, _, width, height, encoding = struct.unpack(">HHHHi", self.read(12))
            assert encoding == RAW, f"unexpected encoding {encoding}"
            self.read(width * height * BYTES_PER_PIXEL)
            pixels += width * height
        return pixels

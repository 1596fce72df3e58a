"""A local HTTP proxy in front of an upstream proxy that wants a username and password.

Chromium takes no proxy credentials on its command line, so when the browser's proxy has them it is
pointed here instead (../browser_proxy.py starts this as a process of its own, outliving the agent).
Each connection's request head goes on to the upstream with `Proxy-Authorization` put in: a CONNECT
then tunnels as it is; a plain HTTP request is sent with `Connection: close`, so the next one comes
on a new connection and carries the credentials too. Standard library only, run as a script.

Environment: COVE_PROXY_UPSTREAM (host:port), COVE_PROXY_AUTH (base64 of user:password),
COVE_PROXY_PORT (the local port, on 127.0.0.1).
"""

import contextlib
import os
import socket
import threading

MAX_HEAD_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 30.0
CHUNK_BYTES = 64 * 1024
DROPPED = (b"proxy-authorization:", b"proxy-connection:", b"connection:")


def main() -> None:
    host, port = os.environ["COVE_PROXY_UPSTREAM"].rsplit(":", 1)
    upstream = (host.strip("[]"), int(port))
    credentials = b"Proxy-Authorization: Basic " + os.environ["COVE_PROXY_AUTH"].encode()
    listener = socket.create_server(("127.0.0.1", int(os.environ["COVE_PROXY_PORT"])))
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, upstream, credentials), daemon=True).start()


def serve(client: socket.socket, upstream: tuple[str, int], credentials: bytes) -> None:
    with client:
        head, rest = read_head(client)
        if not head:
            return
        lines = head.split(b"\r\n")
        kept = [line for line in lines[1:] if line and not line.lower().startswith(DROPPED)]
        extra = [] if lines[0].upper().startswith(b"CONNECT ") else [b"Connection: close"]
        sent = b"\r\n".join([lines[0], credentials, *extra, *kept]) + b"\r\n\r\n" + rest
        try:
            server = socket.create_connection(upstream, timeout=CONNECT_TIMEOUT_S)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with server:
            server.settimeout(None)
            server.sendall(sent)
            relay(client, server)


def read_head(client: socket.socket) -> tuple[bytes, bytes]:
    """The request head (without its blank line) and what came after it; empty if it never ended."""
    received = b""
    while b"\r\n\r\n" not in received:
        data = client.recv(CHUNK_BYTES)
        if not data or len(received) + len(data) > MAX_HEAD_BYTES:
            return b"", b""
        received += data
    head, rest = received.split(b"\r\n\r\n", 1)
    return head, rest


def relay(client: socket.socket, server: socket.socket) -> None:
    """Bytes both ways until both directions have ended."""
    back = threading.Thread(target=copy, args=(server, client), daemon=True)
    back.start()
    copy(client, server)
    back.join()


def copy(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(CHUNK_BYTES):
            target.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


if __name__ == "__main__":
    main()

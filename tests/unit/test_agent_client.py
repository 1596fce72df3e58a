"""The host's agent client against a fake agent on a real Unix socket: whatever a compromised agent
answers becomes a Cove error, never an unhandled exception."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.agent import protocol
from cove.errors import CoveError, InvalidArgument, SandboxError, UpstreamError
from cove.sandbox.agent_client import SOCKET_NAME, AgentClient


@pytest.fixture
def fake_agent(tmp_path: Path) -> Iterator[tuple[AgentClient, list[bytes]]]:
    """A client, and the answers its agent sends: each connection reads one line and gets the next."""
    answers: list[bytes] = []
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / SOCKET_NAME))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection, connection.makefile("rb") as requests:
                requests.readline()
                connection.sendall(answers.pop(0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield AgentClient(tmp_path, "session-test"), answers
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(5)


MALFORMED = [
    b"not json\n",
    b"[1, 2]\n",
    b'{"result": "text"}\n',
    b'{"result": [1]}\n',
    b'{"error": "text"}\n',
    b'{"error": null}\n',
    b"{}\n",
    b'{"result": {}',  # cut short
    b"",  # closed without a word
    b"[" * 100_000 + b"\n",
    b"\xff\xfe\n",
]


@pytest.mark.parametrize("answer", MALFORMED)
def test_a_malformed_answer_to_a_call_is_a_sandbox_error(
    fake_agent: tuple[AgentClient, list[bytes]], answer: bytes
) -> None:
    client, answers = fake_agent
    answers.append(answer)
    with pytest.raises(SandboxError):
        client.call("tools/call", {"name": "shell", "arguments": {}}, timeout_s=1)


@pytest.mark.parametrize(
    "answer", [*MALFORMED, b'{"result": {"size": "12"}}\n', b'{"result": {"size": -1}}\n']
)
def test_a_malformed_answer_to_a_download_is_a_sandbox_error(
    fake_agent: tuple[AgentClient, list[bytes]], answer: bytes
) -> None:
    client, answers = fake_agent
    answers.append(answer)
    with pytest.raises(SandboxError):
        asyncio.run(client.download("/tmp/file"))


@pytest.mark.parametrize("answer", [*MALFORMED, b'{"error": {"code": -32005, "message": "closed"}}\n'])
def test_a_malformed_answer_to_a_port_is_a_cove_error(
    fake_agent: tuple[AgentClient, list[bytes]], answer: bytes
) -> None:
    client, answers = fake_agent
    answers.append(answer)
    with pytest.raises((SandboxError, UpstreamError)):
        asyncio.run(client.open_port(30100))


def test_an_agent_error_message_is_cut(fake_agent: tuple[AgentClient, list[bytes]]) -> None:
    client, answers = fake_agent
    answers.append(protocol.encode(protocol.error(1, protocol.INVALID_PARAMS, "x" * 1_000_000)))
    with pytest.raises(InvalidArgument) as raised:
        client.call("ping", {}, timeout_s=1)
    assert len(raised.value.message) <= 4096


@pytest.mark.parametrize("path", ["", "/tmp/a\0b"])
def test_bad_transfer_paths_never_reach_the_agent(tmp_path: Path, path: str) -> None:
    client = AgentClient(tmp_path, "session-test")  # no agent at all: a connection would fail
    with pytest.raises(InvalidArgument, match="path"):
        asyncio.run(client.download(path))

    async def nothing() -> object:
        yield b"data"

    with pytest.raises(CoveError, match="path"):
        asyncio.run(client.upload(path, 4, nothing()))  # type: ignore[arg-type]

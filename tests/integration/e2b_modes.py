"""The two ways E2B's SDK reaches Cove (docs/e2b-compatibility.md): by header, with E2B_API_URL and
E2B_SANDBOX_URL naming the server, and by host over HTTPS, with E2B_DOMAIN and SSL_CERT_FILE. The
HTTPS server (conftest.py's `tls_server`) has the certificate `cove e2b-cert` makes.
`new_sandbox` and `new_async_sandbox` make the E2B tests' sandboxes, with either SDK (`e2b` or
`e2b_code_interpreter`), and kill them after the test whether it passed or not."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from e2b import AsyncSandbox, Sandbox
from e2b.api import client_async, client_sync

from cove.server.certificates import certificate_files
from tests.integration.server import KEY_A, CoveServer

SandboxType = TypeVar("SandboxType", bound=Sandbox)
AsyncSandboxType = TypeVar("AsyncSandboxType", bound=AsyncSandbox)
DOMAIN = "cove.localhost"
UNSET = (
    "E2B_API_URL",
    "E2B_SANDBOX_URL",
    "E2B_DOMAIN",
    "E2B_DEBUG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
)


def start_tls_server(root: Path, **settings: Any) -> CoveServer:
    """A server on HTTPS with the certificate `cove e2b-cert` made in its data directory."""
    data_dir = root / "data"
    environment = {name: value for name, value in os.environ.items() if not name.startswith("COVE_")}
    made = subprocess.run(
        [sys.executable, "-m", "cove", "e2b-cert", "--domain", DOMAIN, "--data-dir", str(data_dir)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    files = certificate_files(data_dir)
    assert f"SSL_CERT_FILE={files.bundle}" in made.stdout
    server = CoveServer(data_dir, tls_cert_file=files.certificate, tls_key_file=files.key, **settings)
    server.verify = str(files.bundle)
    server.start()
    return server


def point_the_sdk_at(server: CoveServer, by_host: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client settings for `server`: its URL for both planes, or its domain and CA bundle."""
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("E2B_API_KEY", KEY_A)
    if by_host:
        monkeypatch.setenv("E2B_DOMAIN", f"{DOMAIN}:{server.port}")
        monkeypatch.setenv("SSL_CERT_FILE", str(server.verify))
    else:
        monkeypatch.setenv("E2B_API_URL", server.url)
        monkeypatch.setenv("E2B_SANDBOX_URL", server.url)
    forget_transports()


def forget_transports() -> None:
    """The SDK keeps its HTTP transports for the life of the process, each with the trust store read
    when it was made: an earlier test's would not trust the HTTPS server's CA, as a program that sets
    SSL_CERT_FILE before its first call does not meet."""
    for cached in (
        client_sync._transports,
        client_sync._httpx_transports,
        client_async._transports,
        client_async._httpx_transports,
    ):
        cached.clear()


def new_sandbox(sandbox_type: type[SandboxType], **options: Any) -> Iterator[SandboxType]:
    """For a fixture to `yield from`: a sandbox made with `options`, killed after the test."""
    created = sandbox_type.create(**options)
    try:
        yield created
    finally:
        created.kill()


@asynccontextmanager
async def new_async_sandbox(
    sandbox_type: type[AsyncSandboxType], **options: Any
) -> AsyncIterator[AsyncSandboxType]:
    """`new_sandbox` with the SDK's async sandbox, for an async fixture's `async with`."""
    created = await sandbox_type.create(**options)
    try:
        yield created
    finally:
        await created.kill()

"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from tests.postgres import PostgresServer
from tests.s3 import S3Server

# The official AgentBay SDK writes agentbay.log into the working directory (the checkout) by default.
os.environ.setdefault("AGENTBAY_LOG_FILE", os.path.join(tempfile.gettempdir(), "agentbay-tests.log"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL database for the whole run.

    Never skipped: a missing PostgreSQL is an error with the command that installs it, so a
    machine without it cannot pass the suite by silently not testing PostgreSQL.
    """
    with PostgresServer() as server:
        yield server.url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-compatible server (moto's) for the whole run, taking any credentials."""
    with S3Server() as server:
        yield server

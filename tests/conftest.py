"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from tests.network.testnet import TestNetwork
from tests.postgres import PostgresServer
from tests.s3 import S3Server

# The official AgentBay SDK writes agentbay.log into the working directory (the checkout) by default.
os.environ.setdefault("AGENTBAY_LOG_FILE", os.path.join(tempfile.gettempdir(), "agentbay-tests.log"))


@pytest.fixture(scope="session", autouse=True)
def test_network() -> Iterator[TestNetwork]:
    """The test hosts (tests/network/testnet.py), up for the whole run before any server starts.

    Every test server lets sessions reach only them (CoveServer's settings); with the hosts'
    namespace up, their addresses route into it, never out of the machine.
    """
    with TestNetwork() as world:
        yield world


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

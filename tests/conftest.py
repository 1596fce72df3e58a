"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL database for the whole run.

    Never skipped: a missing PostgreSQL is an error with the command that installs it, so a
    machine without it cannot pass the suite by silently not testing PostgreSQL.
    """
    with PostgresServer() as server:
        yield server.url

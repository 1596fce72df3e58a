"""Network tests run sessions against the test hosts (testnet.py), with the integration fixtures."""

from __future__ import annotations

import pytest

from tests.integration.conftest import api, code_server, data_root, new_session, runtime, server  # noqa: F401
from tests.integration.server import CoveServer


@pytest.fixture
def network_server(server: CoveServer) -> CoveServer:  # noqa: F811
    """Every test server gives sessions egress, to the test hosts only."""
    return server

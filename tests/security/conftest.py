"""The security battery runs attacks from inside real sessions, with the integration fixtures."""

from tests.integration.conftest import api, async_session, data_root, new_session, runtime, server, session  # noqa: F401

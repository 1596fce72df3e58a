"""The native API fuzzed from its own /openapi.json: whatever a client sends, no answer is a 5xx.

Operations that run commands or move files (tool calls, transfers, context syncs, links) are left
out: each example would start real work in a sandbox, which bounds nothing and tests the tools, not
the API's parsing. So is the event stream, whose answer never ends (tests/integration/test_console.py
tries its key and filters). Session and context creation stay in, under a small quota; `running_server`
removes whatever the examples created.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation

from tests.integration.server import KEY_A, running_server

EXAMPLES_PER_OPERATION = 40
SLOW_OR_HEAVY = r"/tools/\{name\}$|/files$|/context-files/|/contexts/sync$|/link$|^/v1/events$"
PUBLIC = {"/v1/health", "/metrics", "/openapi.json"}
KEYED_BY_TOKEN = ("/v1/screenshots/",)
"""Paths whose key is a signed token in the URL, not an API key: anonymous is their normal case."""


def examples(operation: APIOperation) -> st.SearchStrategy[Case]:
    """Valid requests and, where the schema allows them, invalid ones (what a parser must refuse)."""
    return st.one_of(
        *(operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE))
    )


def fuzz(operation: APIOperation, base_url: str) -> None:
    """Send each example with a valid key and without one: neither may answer 5xx, and without a
    key every /v1 call but health is refused before its input is looked at."""

    @given(case=examples(operation))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def send(case: Case) -> None:
        case.call_and_validate(
            base_url, headers={"Authorization": f"Bearer {KEY_A}"}, checks=[not_a_server_error]
        )
        anonymous = case.call_and_validate(base_url, checks=[not_a_server_error])
        if case.path not in PUBLIC and not case.path.startswith(KEYED_BY_TOKEN):
            assert anonymous.status_code == 401, (case.method, case.formatted_path, anonymous.text)

    send()


@pytest.mark.timeout(150)
def test_no_server_error(data_root: Path) -> None:
    with running_server(data_root / "data", session_quota=3, warm_pool=0) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json").exclude(path_regex=SLOW_OR_HEAVY)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 20  # the whole API less the few left out
        for operation in operations:
            fuzz(operation, server.url)

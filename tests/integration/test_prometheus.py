"""/metrics in Prometheus' text format, parsed with the Prometheus client's own parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.server import CoveServer


def scrape(server: CoveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{server.url}/metrics", timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_sessions_creates_tool_calls_and_errors(
    server: CoveServer, api: Any, new_session: Callable[..., dict[str, Any]]
) -> None:
    before = scrape(server)
    session_id = new_session()["session_id"]
    tools = f"/v1/sessions/{session_id}/tools"
    assert api.post(f"{tools}/shell", json={"arguments": {"command": "true"}}).status_code == 200
    assert api.post(f"{tools}/shell", json={"arguments": {"command": "exit 1"}}).json()["result"]["isError"]
    assert api.post(f"{tools}/no-such-tool-{session_id}", json={"arguments": {}}).status_code == 400
    assert api.get("/v1/sessions/session-nope").status_code == 404
    after = scrape(server)

    assert value(after, "cove_sessions", status="RUNNING") >= 1
    assert (
        value(after, "cove_session_create_seconds_count")
        == value(before, "cove_session_create_seconds_count") + 1
    )
    for outcome in ("ok", "error"):
        grown = value(after, "cove_tool_calls_total", tool="shell", outcome=outcome)
        assert grown == value(before, "cove_tool_calls_total", tool="shell", outcome=outcome) + 1
    assert value(after, "cove_tool_calls_total", tool="other", outcome="invalid") >= 1, "unknown names pooled"
    assert not any(session_id in name + str(labels) for name, labels in after), "no label from client input"
    assert (
        value(after, "cove_http_errors_total", status="404")
        >= value(before, "cove_http_errors_total", status="404") + 1
    )
    assert value(after, "cove_tool_call_seconds_count", tool="shell") >= 2

"""The SDK core without a server: resolving where to connect, and turning answers into results."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cove import AgentBay, Config, CreateSessionParams, Screen, SessionData
from cove.sdk import core
from cove.sdk import session_context_calls as calls
from cove.sdk.models import SessionResult


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COVE_API_KEY", "AGENTBAY_API_KEY", "COVE_ENDPOINT", "AGENTBAY_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVE_API_KEY", "from-env")
    monkeypatch.setenv("COVE_ENDPOINT", "http://env:1")
    connection = core.resolve_connection("given", Config(endpoint="http://given:2/", timeout_ms=1500))
    assert (connection.api_key, connection.endpoint, connection.timeout_seconds) == (
        "given",
        "http://given:2",
        1.5,
    )


def test_cove_variables_come_before_agentbay_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTBAY_API_KEY", "agentbay-key")
    monkeypatch.setenv("AGENTBAY_ENDPOINT", "http://agentbay:1")
    connection = core.resolve_connection("", None)
    assert (connection.api_key, connection.endpoint) == ("agentbay-key", "http://agentbay:1")
    monkeypatch.setenv("COVE_API_KEY", "cove-key")
    monkeypatch.setenv("COVE_ENDPOINT", "http://cove:1")
    connection = core.resolve_connection("", None)
    assert (connection.api_key, connection.endpoint) == ("cove-key", "http://cove:1")


def test_defaults_and_scheme_less_endpoints() -> None:
    connection = core.resolve_connection("k", None)
    assert (connection.endpoint, connection.timeout_seconds) == ("http://127.0.0.1:9000", 60.0)
    assert core.resolve_connection("k", Config(endpoint="cove.example:443")).endpoint == (
        "https://cove.example:443"
    )


def test_no_key_anywhere_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="COVE_API_KEY"):
        AgentBay()


def test_a_server_error_becomes_a_failed_result_with_its_code_and_request_id() -> None:
    call = core.delete_session("session-x")
    body = json.dumps({"request_id": "r1", "error": {"code": "SessionNotFound", "message": "no such"}})
    result = call.finish(404, {}, body.encode())
    assert not result.success
    assert (result.code, result.error_message, result.request_id, result.http_status_code) == (
        "SessionNotFound",
        "no such",
        "r1",
        404,
    )


def test_an_answer_that_is_not_json_still_becomes_a_result() -> None:
    result = core.get_labels("s").finish(502, {"x-request-id": "r2"}, b"<html>bad gateway</html>")
    assert (result.success, result.code, result.request_id) == (False, "HTTP502", "r2")
    assert "bad gateway" in result.error_message


@given(status=st.integers(400, 599), content=st.binary(max_size=200))
def test_any_failed_answer_gives_a_failed_result(status: int, content: bytes) -> None:
    result = core.get_status("s").finish(status, {}, content)
    assert not result.success and result.http_status_code == status and result.error_message is not None


def test_a_successful_create_binds_the_session() -> None:
    call = core.create_session(CreateSessionParams(labels={"a": "b"}, memory_mb=256), lambda data: data)
    assert call.body == {"labels": {"a": "b"}, "resources": {"memory_mb": 256}}
    answer = {"request_id": "r3", "session": {"session_id": "session-1", "status": "RUNNING", "new": 1}}
    result: SessionResult[SessionData] = call.finish(201, {}, json.dumps(answer).encode())
    assert result.success and result.request_id == "r3" and result.http_status_code == 201
    assert result.session == SessionData(session_id="session-1", status="RUNNING")


def test_a_screen_is_sent_only_when_asked_for() -> None:
    call = core.create_session(CreateSessionParams(screen=Screen(1024, 768)), lambda data: data)
    assert call.body == {"screen": {"width": 1024, "height": 768}}
    answer = {"session": {"session_id": "s1", "screen": {"width": 1024, "height": 768}}}
    result: SessionResult[SessionData] = call.finish(201, {}, json.dumps(answer).encode())
    assert result.session is not None and result.session.screen == {"width": 1024, "height": 768}
    assert "screen" not in core.create_session(CreateSessionParams(), lambda data: data).body


def test_session_ids_are_quoted_into_the_path_and_empty_ones_refused() -> None:
    assert core.get_labels("a/../b").path == "/v1/sessions/a%2F..%2Fb/labels"
    refused = core.get_session(" ", lambda data: data)
    assert refused.refusal == "session_id is required"
    assert refused.refused().code == "InvalidArgument"


def test_list_sends_labels_as_json_and_reads_the_next_page() -> None:
    call = core.list_sessions({"team": "a"}, page=2, limit=5, status="RUNNING")
    assert call.params == {"labels": '{"team": "a"}', "status": "RUNNING", "page": 2, "limit": 5}
    answer = {"sessions": [{"session_id": "s1"}], "total_count": 6, "page": 2, "limit": 5, "next_page": None}
    result = call.finish(200, {}, json.dumps(answer).encode())
    assert (result.session_ids, result.next_token, result.max_results, result.total_count) == (
        ["s1"],
        "",
        5,
        6,
    )


def test_session_context_calls_wait_as_long_as_agentbays_polling() -> None:
    """sync is one request, allowed AgentBay's polling time: growing waits, then 5 s each."""
    assert 670 < calls.polling_budget_s(150, 500) < 680
    assert calls.polling_budget_s(2, 1000) == pytest.approx(2.1)
    assert calls.polling_budget_s(0, 500) == 1.0
    call = calls.sync("session-x", None, None, "download", 10, 500)
    assert (call.path, call.body, call.timeout_s) == (
        "/v1/sessions/session-x/contexts/sync",
        {"mode": "download"},
        calls.polling_budget_s(10, 500),
    )
    answer = {"tasks": [{"path": "/a", "status": "Failed", "error_message": "disk full"}]}
    failed = call.finish(200, {}, json.dumps(answer).encode())
    assert not failed.success and failed.error_message == "/a: disk full"
    assert calls.bind("session-x", ()).refusal == "No contexts provided"

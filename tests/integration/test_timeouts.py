"""Idle timeouts and maximum lifetimes: expired sessions are deleted, and say why."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cove import AgentBay, Config, CreateSessionParams, LifecyclePolicy
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, CoveServer, running_server


@pytest.fixture(scope="module")
def quick_server() -> Iterator[CoveServer]:
    """A server that looks for expired sessions every 0.5 s."""
    root = Path(tempfile.mkdtemp(prefix="cove-timeouts-", dir="/var/tmp"))
    root.chmod(0o711)
    try:
        with running_server(root / "data", reconcile_interval_s=0.5) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


def wait_for_status(http: Any, session_id: str, status: str, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        session: dict[str, Any] = http.get(f"/v1/sessions/{session_id}").json()["session"]
        if session["status"] == status or time.monotonic() > deadline:
            return session
        time.sleep(0.2)


@BOTH_RUNTIMES
def test_an_idle_session_is_deleted_and_says_why(quick_server: CoveServer, runtime: str) -> None:
    with quick_server.client(KEY_A) as http:
        session = http.post("/v1/sessions", json={"idle_timeout_s": 2, "runtime": runtime}).json()["session"]
        assert session["idle_timeout_s"] == 2 and session["max_lifetime_s"] == 0
        session_id = session["session_id"]
        for _ in range(5):  # used every second: not idle
            time.sleep(1)
            assert http.post(
                f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": "true"}}
            )
        assert http.get(f"/v1/sessions/{session_id}").json()["session"]["status"] == "RUNNING"
        ended = wait_for_status(http, session_id, "DELETED")
        assert ended["status"] == "DELETED" and "idle timeout of 2 s" in ended["status_reason"]
        assert session_id not in quick_server.containers()


@BOTH_RUNTIMES
def test_keep_alive_and_pause_hold_the_idle_timeout(quick_server: CoveServer, runtime: str) -> None:
    body = {"idle_timeout_s": 2, "runtime": runtime}
    with quick_server.client(KEY_A) as http:
        kept = http.post("/v1/sessions", json=body).json()["session"]["session_id"]
        paused = http.post("/v1/sessions", json=body).json()["session"]["session_id"]
        http.post(f"/v1/sessions/{paused}/pause")
        for _ in range(4):
            time.sleep(1)
            assert http.post(f"/v1/sessions/{kept}/keep_alive").status_code == 200
        assert http.get(f"/v1/sessions/{kept}").json()["session"]["status"] == "RUNNING"
        assert http.get(f"/v1/sessions/{paused}").json()["session"]["status"] == "PAUSED", "paused: not idle"
        http.post(f"/v1/sessions/{paused}/resume")
        assert wait_for_status(http, paused, "DELETED")["status"] == "DELETED", "idle again once resumed"
        http.delete(f"/v1/sessions/{kept}")


@BOTH_RUNTIMES
def test_the_maximum_lifetime_ends_even_a_busy_session(quick_server: CoveServer, runtime: str) -> None:
    body = {"max_lifetime_s": 3, "runtime": runtime}
    with quick_server.client(KEY_A) as http:
        session_id = http.post("/v1/sessions", json=body).json()["session"]["session_id"]
        time.sleep(1)
        http.post(f"/v1/sessions/{session_id}/keep_alive")
        ended = wait_for_status(http, session_id, "DELETED")
        assert "maximum lifetime of 3 s" in ended["status_reason"]
        listed = http.get("/v1/sessions", params={"status": "DELETED"}).json()["sessions"]
        assert "maximum lifetime" in next(s for s in listed if s["session_id"] == session_id)["status_reason"]


def test_bad_timeouts_are_refused(quick_server: CoveServer) -> None:
    with quick_server.client(KEY_A) as http:
        for body in ({"idle_timeout_s": -1}, {"max_lifetime_s": 1.5}, {"idle_timeout_s": "soon"}):
            answer = http.post("/v1/sessions", json=body)
            assert answer.status_code == 400 and next(iter(body)) in answer.json()["error"]["message"]


def test_sdk_timeouts(quick_server: CoveServer) -> None:
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=quick_server.url)) as agent_bay:
        policy = agent_bay.create(
            CreateSessionParams(lifecycle_policy=LifecyclePolicy(idle_release_timeout=1))
        )
        assert policy.session is not None
        assert (policy.session.data.idle_timeout_s, policy.session.data.max_lifetime_s) == (60, 1800)
        manual = agent_bay.create(CreateSessionParams(lifecycle_policy=LifecyclePolicy(manual_release=True)))
        assert manual.session is not None and manual.session.data.idle_timeout_s == 0
        legacy = agent_bay.create(CreateSessionParams(idle_release_timeout=1))
        assert legacy.session is not None and legacy.session.keep_alive().success
        with quick_server.client(KEY_A) as http:
            ended = wait_for_status(http, legacy.session.session_id, "DELETED")
        assert "idle timeout of 1 s" in ended["status_reason"]
        assert agent_bay.get(legacy.session.session_id).session.get_status().status == "DELETED"
        for created in (policy, manual):
            assert created.session is not None
            created.session.delete()

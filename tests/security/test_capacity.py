"""Many sessions on one host: past the kernel's old key budget, and a full host answers 503, not 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.integration.server import KEY_A, NOTHING_LEFT, running_server

SESSIONS = 250
"""More than kernel.keys.maxkeys (200), which capped a host while each sandbox had a keyring."""


def test_more_sandboxes_than_the_kernel_key_budget(data_root: Path) -> None:
    assert int(Path("/proc/sys/kernel/keys/maxkeys").read_text()) < SESSIONS
    with running_server(data_root / "data", session_quota=SESSIONS, warm_pool=0) as server:

        def create(_: int) -> str:
            with server.client(KEY_A) as client:
                answer = client.post("/v1/sessions", json={"labels": {"crowd": "yes"}})
                assert answer.status_code == 201, answer.text
                session_id: str = answer.json()["session"]["session_id"]
                return session_id

        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(create, range(SESSIONS)))
        try:
            with server.client(KEY_A) as client:
                listed = client.get("/v1/sessions", params={"labels": '{"crowd": "yes"}', "limit": 1}).json()
                assert listed["total_count"] == SESSIONS
                for session_id in (ids[0], ids[-1]):
                    call = {"arguments": {"command": "echo alive"}}
                    answer = client.post(f"/v1/sessions/{session_id}/tools/shell", json=call)
                    assert "alive" in answer.json()["result"]["content"][0]["text"], answer.text
        finally:
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda i: server.client(KEY_A).delete(f"/v1/sessions/{i}"), ids))
        assert server.leftovers() == NOTHING_LEFT


def test_a_full_host_answers_503_with_the_reason(data_root: Path) -> None:
    with (
        running_server(data_root / "data", max_sandboxes=2, warm_pool=0) as server,
        server.client() as client,
    ):
        first = client.post("/v1/sessions", json={})
        second = client.post("/v1/sessions", json={})
        assert first.status_code == second.status_code == 201
        refused = client.post("/v1/sessions", json={})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "CapacityExceeded"
        assert "COVE_MAX_SANDBOXES" in refused.json()["error"]["message"]
        client.delete(f"/v1/sessions/{first.json()['session']['session_id']}")
        assert client.post("/v1/sessions", json={}).status_code == 201  # room again
        assert client.get("/v1/sessions").json()["total_count"] == 2

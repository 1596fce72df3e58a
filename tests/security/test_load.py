"""Many clients at once: every create, command and delete answers right, and nothing is left over."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.integration.server import KEY_A, NOTHING_LEFT, CoveServer, running_server

SESSIONS = 100
CLIENTS = 8


def shell(server: CoveServer, session_id: str, command: str) -> dict[str, object]:
    """Run `command` in a session through the API; the tool's JSON answer (exit code and output)."""
    with server.client(KEY_A) as client:
        answer = client.post(
            f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": command}}
        )
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert not result["isError"], result
    output: dict[str, object] = json.loads(result["content"][0]["text"])
    return output


def create_and_run(server: CoveServer, number: int) -> str:
    """One client's work: a session, then a command whose output proves it ran in that session."""
    with server.client(KEY_A) as client:
        answer = client.post("/v1/sessions", json={"labels": {"load": str(number)}})
    assert answer.status_code == 201, answer.text
    session_id: str = answer.json()["session"]["session_id"]
    output = shell(server, session_id, f"echo {number} $(hostname)")
    assert output["exit_code"] == 0 and output["stdout"] == f"{number} {session_id}\n", output
    return session_id


def delete(server: CoveServer, session_id: str) -> None:
    with server.client(KEY_A) as client:
        answer = client.delete(f"/v1/sessions/{session_id}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["session"]["status"] == "DELETED"


def test_parallel_creates_commands_and_deletes(data_root: Path) -> None:
    with running_server(data_root / "data", session_quota=SESSIONS + 10) as server:
        with ThreadPoolExecutor(CLIENTS) as pool:
            created = list(pool.map(lambda number: create_and_run(server, number), range(SESSIONS)))
        assert len(set(created)) == SESSIONS
        with server.client(KEY_A) as client:
            assert client.get("/v1/sessions", params={"limit": 1}).json()["total_count"] == SESSIONS
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(lambda session_id: delete(server, session_id), created))
        with server.client(KEY_A) as client:
            assert client.get("/v1/sessions").json()["total_count"] == 0
        assert server.leftovers() == NOTHING_LEFT

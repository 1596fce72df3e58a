"""A server killed in the middle of parallel creates and deletes: the restarted server settles every
session (running and usable, or deleted with a reason) and the host holds nothing no session owns."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.integration.server import KEY_A, NOTHING_LEFT, CoveServer, running_server

CREATES = 30
DELETES = 15
CLIENTS = 8
STATUSES = ("RUNNING", "PAUSED", "DELETING", "DELETED")


def create(server: CoveServer, number: int) -> str | None:
    """A create that may be cut off: the new session's id if it was answered (its label finds it
    after the restart either way)."""
    try:
        with server.client(KEY_A) as client:
            answer = client.post("/v1/sessions", json={"labels": {"fault": "yes", "create": str(number)}})
    except httpx.TransportError:
        return None
    assert answer.status_code == 201, answer.text
    session_id: str = answer.json()["session"]["session_id"]
    return session_id


def delete(server: CoveServer, session_id: str) -> str | None:
    """A delete that may be cut off: the session's id if it was answered."""
    try:
        with server.client(KEY_A) as client:
            answer = client.delete(f"/v1/sessions/{session_id}")
    except httpx.TransportError:
        return None
    assert answer.status_code == 200, answer.text
    return session_id


def sessions_by_status(client: httpx.Client) -> dict[str, list[dict[str, object]]]:
    """Every session of the test, by status, through the API's status filter."""
    found: dict[str, list[dict[str, object]]] = {}
    for status in STATUSES:
        params = {"labels": json.dumps({"fault": "yes"}), "status": status, "limit": 100}
        answer = client.get("/v1/sessions", params=params)
        assert answer.status_code == 200, answer.text
        found[status] = answer.json()["sessions"]
    return found


def test_sigkill_during_parallel_creates_and_deletes(data_root: Path) -> None:
    with running_server(data_root / "data", session_quota=CREATES + DELETES + 10, warm_pool=0) as server:
        with ThreadPoolExecutor(CLIENTS) as pool:
            existing_ids = [str(i) for i in pool.map(lambda n: create(server, -1 - n), range(DELETES))]

        with ThreadPoolExecutor(CLIENTS) as pool:
            creates = [pool.submit(create, server, n) for n in range(CREATES)]
            deletes = [pool.submit(delete, server, session_id) for session_id in existing_ids]
            time.sleep(0.3)  # some calls answered, some under way, some not sent yet
            server.stop(signal.SIGKILL)
            created = {call.result() for call in creates} - {None}
            deleted = {call.result() for call in deletes} - {None}
        assert len(created) + len(deleted) < CREATES + DELETES, "the server was killed after all calls"

        server.start()
        with server.client(KEY_A) as client:
            settled = sessions_by_status(client)
            assert not settled["DELETING"] and not settled["PAUSED"], settled
            for session in settled["DELETED"]:
                assert session["status_reason"], session
            assert deleted <= {s["session_id"] for s in settled["DELETED"]} <= set(existing_ids)
            running = [str(s["session_id"]) for s in settled["RUNNING"]]
            assert created <= set(running)  # an answered create is never lost
            for session_id in running:
                call = {"arguments": {"command": "echo alive"}}
                answer = client.post(f"/v1/sessions/{session_id}/tools/shell", json=call)
                assert answer.status_code == 200, answer.text
                assert json.loads(answer.json()["result"]["content"][0]["text"])["stdout"] == "alive\n"
            leftovers = server.leftovers()
            assert sorted(leftovers["containers"]) == sorted(running)
            assert sorted(leftovers["folders"]) == sorted(running)
            assert {Path(point).parent.name for point in leftovers["mounts"]} <= set(running)
            assert {Path(group).name for group in leftovers["cgroups"]} == set(running)
            for session_id in running:
                assert client.delete(f"/v1/sessions/{session_id}").status_code == 200
        assert server.leftovers() == NOTHING_LEFT

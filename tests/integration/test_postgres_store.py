"""The same server on a real PostgreSQL database: lifecycle, label filters and a SIGKILL restart."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.integration.server import running_server


def test_server_on_postgresql(data_root: Path, postgres_url: str) -> None:
    with running_server(data_root / "data", database_url=postgres_url, warm_pool=0) as server:
        with server.client() as client:
            created = client.post("/v1/sessions", json={"labels": {"db": "postgres"}})
            assert created.status_code == 201, created.text
            session_id = created.json()["session"]["session_id"]
            listed = client.get("/v1/sessions", params={"labels": json.dumps({"db": "postgres"})}).json()
            assert [s["session_id"] for s in listed["sessions"]] == [session_id]
        assert not (server.data_dir / "cove.db").exists()  # nothing went to SQLite

        server.stop(signal.SIGKILL)
        server.start()
        with server.client() as client:
            assert client.get(f"/v1/sessions/{session_id}").json()["session"]["status"] == "RUNNING"
            assert server.sandbox(session_id, "echo ok").stdout.strip() == "ok"
            assert client.delete(f"/v1/sessions/{session_id}").json()["session"]["status"] == "DELETED"

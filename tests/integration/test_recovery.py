"""Restart safety, clean failure, and quotas: each with its own real server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

from cove.sandbox.egress_rules import chain_key
from tests.integration.server import KEY_A, KEY_B, CoveServer, running_server


def _create(server: CoveServer, key: str = KEY_A, **body: object) -> str:
    with server.client(key) as client:
        answer = client.post("/v1/sessions", json=body)
    assert answer.status_code == 201, answer.text
    session_id: str = answer.json()["session"]["session_id"]
    return session_id


def _leaves_nothing(server: CoveServer, session_id: str) -> None:
    assert session_id not in server.containers()
    assert not [m for m in server.mounts() if session_id in m]
    assert not [p for p in server.cgroup_dirs() if p.name == session_id]
    assert not (server.data_dir / "sessions" / session_id).exists()
    assert "cv" + session_id[-13:] not in server.interfaces()
    assert not [chain for chain in server.session_chains() if chain[2:] == chain_key(session_id)]


def test_sigkill_restart_keeps_running_sessions_and_cleans_up(data_root: Path) -> None:
    with running_server(data_root / "data") as server:
        survivor = _create(server, labels={"role": "survivor"}, screen={"width": 1024, "height": 768})
        victim = _create(server)
        orphan = _create(server)
        server.sandbox(survivor, "echo before > ~/state")

        server.stop(signal.SIGKILL)
        assert {survivor, victim, orphan} <= server.containers()  # sandboxes outlive the server
        os.kill(server.sandbox_pid(victim), signal.SIGKILL)
        with sqlite3.connect(server.data_dir / "cove.db") as db:  # a sandbox no row owns
            db.execute("DELETE FROM session_labels WHERE session_id = ?", (orphan,))
            db.execute("DELETE FROM sessions WHERE session_id = ?", (orphan,))

        server.start()
        with server.client() as client:
            kept = client.get(f"/v1/sessions/{survivor}").json()["session"]
            assert kept["status"] == "RUNNING" and kept["labels"] == {"role": "survivor"}
            assert kept["screen"] == {"width": 1024, "height": 768}
            size = client.post(f"/v1/sessions/{survivor}/tools/get_screen_size", json={"arguments": {}})
            assert json.loads(size.json()["result"]["content"][0]["text"])["width"] == 1024, size.text
            assert server.sandbox(survivor, "cat ~/state").stdout.strip() == "before"
            ended = client.get(f"/v1/sessions/{victim}").json()["session"]
            assert ended["status"] == "DELETED"
            assert ended["status_reason"] == "the sandbox process exited while the server was down"
            assert client.get(f"/v1/sessions/{orphan}").status_code == 404
            _leaves_nothing(server, victim)
            _leaves_nothing(server, orphan)
            assert client.delete(f"/v1/sessions/{survivor}").json()["session"]["status"] == "DELETED"
        _leaves_nothing(server, survivor)


def test_sandbox_that_dies_while_serving_is_reported_deleted(data_root: Path) -> None:
    with running_server(data_root / "data") as server:
        session_id = _create(server)
        os.kill(server.sandbox_pid(session_id), signal.SIGKILL)
        with server.client() as client:
            for _ in range(300):
                session = client.get(f"/v1/sessions/{session_id}").json()["session"]
                if session["status"] == "DELETED":
                    break
                time.sleep(0.1)
            assert session["status"] == "DELETED"
            assert session["status_reason"] == "the sandbox process exited"
        _leaves_nothing(server, session_id)


def test_failed_create_leaves_nothing_behind(data_root: Path) -> None:
    with running_server(data_root / "data", warm_pool=0) as server:
        # An image with a file where the sandbox's /.cove folder goes: runc gets as far as
        # namespaces and cgroups, then fails to mount the agent there.
        broken = server.data_dir / "images" / "broken"
        (broken / "rootfs" / "home" / "user").mkdir(parents=True)
        (broken / "rootfs" / "usr" / "bin").mkdir(parents=True)
        (broken / "rootfs" / "usr" / "bin" / "python3").touch(mode=0o755)
        (broken / "rootfs" / ".cove").touch(mode=0o644)
        (broken / "image.json").write_text(json.dumps({"source": "test", "size_bytes": 0, "created_at": 0}))
        for path in (broken / "rootfs", broken / "rootfs" / "home", broken / "rootfs" / "home" / "user"):
            os.chown(path, 100000, 100000)
        before = set(os.listdir(server.data_dir / "sessions"))
        with server.client() as client:
            answer = client.post("/v1/sessions", json={"image_id": "broken", "labels": {"case": "broken"}})
            assert answer.status_code == 500, answer.text
            assert answer.json()["error"]["code"] == "SandboxError"
            assert "could not start the sandbox" in answer.json()["error"]["message"]
            listed = client.get("/v1/sessions", params={"labels": json.dumps({"case": "broken"})}).json()
            assert listed["total_count"] == 0
        with sqlite3.connect(server.data_dir / "cove.db") as db:
            assert db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
            assert db.execute("SELECT count(*) FROM session_labels").fetchone() == (0,)
        assert server.containers() == set()
        assert server.mounts() == []
        assert server.cgroup_dirs() == []
        assert set(os.listdir(server.data_dir / "sessions")) == before


def test_quota_per_key(data_root: Path) -> None:
    with running_server(data_root / "data", session_quota=2) as server:
        first = _create(server, KEY_A)
        _create(server, KEY_A)
        with server.client(KEY_A) as client:
            refused = client.post("/v1/sessions", json={})
            assert refused.status_code == 429
            error = refused.json()["error"]
            assert error["code"] == "QuotaExceeded" and "quota is 2" in error["message"]
            _create(server, KEY_B)  # another tenant has its own quota
            client.delete(f"/v1/sessions/{first}")
            assert client.post("/v1/sessions", json={}).status_code == 201


def _prepared(server: CoveServer, count: int) -> set[str]:
    """Wait for the warm pool to hold `count` prepared sandboxes; return their ids."""
    for _ in range(600):
        prepared = server.prepared(ready_only=True)
        if len(prepared) == count:
            return prepared
        time.sleep(0.1)
    raise AssertionError(f"the warm pool did not reach {count}: {prepared}")


def test_warm_pool_serves_default_creates_and_is_swept_after_a_crash(data_root: Path) -> None:
    with running_server(data_root / "data", warm_pool=2) as server:
        prepared = _prepared(server, 2)
        taken = _create(server)
        assert taken in prepared
        assert server.sandbox(taken, "hostname").stdout.strip() == taken
        custom = _create(server, resources={"memory_mb": 128})
        assert custom in prepared  # other limits are set on a prepared sandbox before it starts
        memory = next(p for p in server.cgroup_dirs() if p.name == custom and "memory" in str(p))
        limit_file = memory / "memory.limit_in_bytes"
        limit = limit_file if limit_file.exists() else memory / "memory.max"
        assert int(limit.read_text()) == 128 * 2**20
        refilled = _prepared(server, 2)

        server.stop(signal.SIGKILL)
        server.start()
        fresh = _prepared(server, 2)
        assert not fresh & refilled  # the old prepared sandboxes were swept, new ones made
        for session_id in refilled:
            _leaves_nothing(server, session_id)
        with server.client() as client:
            assert client.get(f"/v1/sessions/{taken}").json()["session"]["status"] == "RUNNING"
        server.stop()
        assert server.containers() == {taken, custom}  # a clean stop removes the pool

"""No acknowledged write is lost: a sandbox that dies is uploaded from its writable layer on the host,
and a server killed in the middle of an upload finishes it when it starts again. Each test runs its
own server, since it kills things."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from cove.sandbox.images import SANDBOX_HOME
from tests.integration.server import CoveServer, running_server

SYNCED = f"{SANDBOX_HOME}/work"


def _context(server: CoveServer) -> str:
    with server.client() as api:
        created = api.post("/v1/contexts", json={"name": "precious"})
    assert created.status_code == 201, created.text
    context_id: str = created.json()["context"]["id"]
    return context_id


def _session(server: CoveServer, context_id: str) -> str:
    with server.client() as api:
        created = api.post(
            "/v1/sessions", json={"context_syncs": [{"context_id": context_id, "path": SYNCED}]}
        )
    assert created.status_code == 201, created.text
    session_id: str = created.json()["session"]["session_id"]
    return session_id


def _inside(server: CoveServer, session_id: str, script: str) -> str:
    ran = server.sandbox(session_id, script)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def _session_row(server: CoveServer, session_id: str) -> dict[str, Any]:
    with server.client() as api:
        found: dict[str, Any] = api.get(f"/v1/sessions/{session_id}").json()["session"]
    return found


def _wait_deleted(server: CoveServer, session_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (session := _session_row(server, session_id))["status"] != "DELETED":
        assert time.monotonic() < deadline, f"{session_id} is still {session['status']}"
        time.sleep(0.2)
    return session


def _context_files(server: CoveServer, context_id: str) -> dict[str, bytes]:
    folder = server.data_dir / "contexts" / context_id
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith(".cove-upload-")
    }


def _layer_gone(server: CoveServer, session_id: str) -> None:
    assert session_id not in server.containers()
    assert not (server.data_dir / "sessions" / session_id).exists()


def test_a_dead_sandbox_is_uploaded_from_its_layer(data_root: Path) -> None:
    with running_server(data_root / "data", reconcile_interval_s=0.5) as server:
        context_id = _context(server)
        served = _session(server, context_id)
        _inside(
            server,
            served,
            f"mkdir -p {SYNCED}/sub && cd {SYNCED} && echo served > sub/a.txt && "
            # links that, read on the host, would point at the host's files; a file the user may not read
            f"ln -s /etc/passwd passwd && ln -s / root && ln -s {server.data_dir} host && "
            "echo secret > secret && chmod 000 secret",
        )
        assert server.runc("kill", served, "KILL").returncode == 0  # its init dies, and with it the agent
        ended = _wait_deleted(server, served)
        assert ended["status_reason"] == "the sandbox process exited"
        assert _context_files(server, context_id) == {"sub/a.txt": b"served\n"}
        _layer_gone(server, served)

        while_down = _session(server, context_id)
        _inside(server, while_down, f"echo down > {SYNCED}/down.txt")
        server.stop(signal.SIGKILL)
        assert server.runc("kill", while_down, "KILL").returncode == 0
        server.start()
        ended = _session_row(server, while_down)
        assert ended["status"] == "DELETED", ended
        assert ended["status_reason"] == "the sandbox process exited while the server was down"
        # the second session downloaded sub/a.txt and kept it; down.txt is new
        assert _context_files(server, context_id) == {"sub/a.txt": b"served\n", "down.txt": b"down\n"}
        _layer_gone(server, while_down)


def test_a_server_killed_during_the_upload_finishes_it_when_it_comes_back(data_root: Path) -> None:
    with running_server(data_root / "data") as server:
        context_id = _context(server)
        session_id = _session(server, context_id)
        digest = _inside(
            server,
            session_id,
            f"mkdir -p {SYNCED} && cd {SYNCED} && head -c 256M /dev/urandom > big.bin && "
            "echo small > small.txt && sha256sum big.bin",
        ).split()[0]

        def delete() -> None:
            with server.client() as api, _suppress_transport_errors():
                api.delete(f"/v1/sessions/{session_id}")

        deleting = threading.Thread(target=delete)
        deleting.start()
        folder = server.data_dir / "contexts" / context_id
        deadline = time.monotonic() + 120
        while not (folder.is_dir() and any(p.name.startswith(".cove-upload-") for p in folder.iterdir())):
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.002)
        server.stop(signal.SIGKILL)  # in the middle of writing big.bin into the context
        deleting.join()

        assert not (folder / "big.bin").exists()  # half an object is never visible as complete
        with sqlite3.connect(server.data_dir / "cove.db") as db:
            status = db.execute("SELECT status FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
        assert status == ("DELETING",)
        assert session_id in server.containers()  # its layer is kept for the pending upload

        server.start()
        ended = _session_row(server, session_id)
        assert ended["status"] == "DELETED" and ended["status_reason"] == "deleted by its owner", ended
        assert hashlib.sha256((folder / "big.bin").read_bytes()).hexdigest() == digest
        assert (folder / "small.txt").read_bytes() == b"small\n"
        assert not list(folder.rglob(".cove-upload-*")), "the cut-off temporary file is swept at startup"
        _layer_gone(server, session_id)


class _suppress_transport_errors:
    """The client of a server that is killed sees its connection cut."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: object, trace: object) -> bool:
        return isinstance(error, httpx.TransportError)

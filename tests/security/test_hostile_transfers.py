"""Transfers from a hostile sandbox: sparse and oversized files in a synced folder, and an agent that
the session's own code stops, so that no upload can finish. Each is done from inside a real session
against a server with small transfer limits."""

from __future__ import annotations

import io
import os
import signal
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cove import AgentBay, Config
from cove.contexts.transfer_limits import LEFT_OUT_HEADER, TransferLimits
from cove.sandbox.images import SANDBOX_HOME
from cove.sandbox.layer_pack import pack_from_host
from tests.integration.server import KEY_A, NOTHING_LEFT, CoveServer, running_server, scratch_server
from tests.s3 import S3Server

SYNCED = f"{SANDBOX_HOME}/work"
FILE_CAP = 1024 * 1024
DEADLINE_S = 3
FREEZE_AGENT = (
    "python3 -c 'import os, signal\n"
    'lines = {p: open(f"/proc/{p}/cmdline", "rb").read() for p in os.listdir("/proc") if p.isdigit()}\n'
    'mine = [p for p, line in lines.items() if b"agent.server" in line and b"SIGSTOP" not in line]\n'
    "for p in mine: os.kill(int(p), signal.SIGSTOP)\n"
    "print(len(mine))'"
)
"""Stop the session's tool agent (it is the session user's own process): its socket stays in place, so
init does not replace it, and every call, an upload included, waits for an answer that never comes."""


@pytest.fixture(scope="module")
def limited() -> Iterator[CoveServer]:
    """A server with a 1 MiB per-file cap, a 3 s transfer deadline and a reconcile every second."""
    settings = {
        "max_sync_file_bytes": FILE_CAP,
        "sync_timeout_s": DEADLINE_S,
        "reconcile_interval_s": 1,
        "oss_private_networks": True,  # the loopback S3 server of the OSS test
    }
    with scratch_server(**settings) as started:
        yield started


@pytest.fixture
def client(limited: CoveServer) -> Iterator[httpx.Client]:
    with limited.client(KEY_A) as made:
        yield made


@pytest.fixture
def synced(client: httpx.Client) -> Iterator[tuple[str, Any]]:
    """A context, and a maker of sessions syncing it, each force-deleted at the end."""
    context_id = client.post("/v1/contexts", json={"name": f"hostile-{uuid.uuid4().hex[:8]}"}).json()[
        "context"
    ]["id"]
    made: list[str] = []

    def create(**body: Any) -> str:
        answer = client.post(
            "/v1/sessions", json={"context_syncs": [{"context_id": context_id, "path": SYNCED}], **body}
        )
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["session"]["session_id"])
        return made[-1]

    yield context_id, create
    for session_id in made:
        client.delete(f"/v1/sessions/{session_id}", params={"force": "true"})
    client.delete(f"/v1/contexts/{context_id}")


def inside(server: CoveServer, session_id: str, script: str) -> None:
    ran = server.sandbox(session_id, script)
    assert ran.returncode == 0, ran.stderr


def disk_bytes(folder: Path) -> int:
    """Bytes really allocated below `folder` (blocks, not apparent sizes)."""
    return sum(
        os.lstat(Path(top) / name).st_blocks * 512 for top, _, names in os.walk(folder) for name in names
    )


def upload_task(client: httpx.Client, session_id: str) -> dict[str, Any]:
    answer = client.post(f"/v1/sessions/{session_id}/contexts/sync", json={})
    tasks = client.get(f"/v1/sessions/{session_id}/contexts/tasks").json()["tasks"]
    found: dict[str, Any] = next(task for task in tasks if task["task_type"] == "upload")
    return {"answer": answer, **found}


def test_sparse_and_oversized_files_are_left_out_and_reported(
    limited: CoveServer, client: httpx.Client, synced: tuple[str, Any]
) -> None:
    context_id, create = synced
    session_id = create()
    inside(
        limited,
        session_id,
        f"mkdir -p {SYNCED} && truncate -s 128M {SYNCED}/sparse.bin && head -c 2097152 /dev/urandom > "
        f"{SYNCED}/big.bin && echo kept > {SYNCED}/small.txt",
    )
    task = upload_task(client, session_id)
    assert task["status"] == "Success", task
    assert "sparse.bin (sparse file of 134217728 bytes" in task["error_message"], task
    assert "big.bin (2097152 bytes, over COVE_MAX_SYNC_FILE_BYTES (1048576))" in task["error_message"], task
    stored = limited.data_dir / "contexts" / context_id
    assert (stored / "small.txt").read_bytes() == b"kept\n"
    assert not (stored / "sparse.bin").exists() and not (stored / "big.bin").exists()
    assert disk_bytes(limited.data_dir / "contexts") < FILE_CAP  # not 128 MiB, not even the 2 MiB file
    assert disk_bytes(limited.data_dir / "tmp") == 0  # spools are gone, and were never in /tmp
    assert client.delete(f"/v1/sessions/{session_id}").status_code == 200


def test_an_upload_from_a_silent_agent_stops_at_the_deadline(
    limited: CoveServer, client: httpx.Client, synced: tuple[str, Any]
) -> None:
    _, create = synced
    session_id = create()
    inside(limited, session_id, f"mkdir -p {SYNCED}")
    freeze_agent(limited, session_id)
    started = time.monotonic()
    task = upload_task(client, session_id)
    assert time.monotonic() - started < DEADLINE_S + 5
    assert task["answer"].status_code == 502, task["answer"].text
    assert task["answer"].json()["error"]["code"] == "ContextUploadFailed"
    assert task["status"] == "Failed" and "COVE_SYNC_TIMEOUT_S (3 s)" in task["error_message"], task


def test_an_oss_upload_over_the_file_cap_is_refused(limited: CoveServer, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=limited.url)) as agent_bay:
        session = agent_bay.create().session
        assert session is not None
        try:
            inside(limited, session.session_id, "head -c 2097152 /dev/urandom > /home/user/big.bin")
            assert session.oss.env_init("any", "any", endpoint=s3_server.endpoint).success
            refused = session.oss.upload(bucket, "big.bin", "/home/user/big.bin")
            assert not refused.success
            assert "over COVE_MAX_SYNC_FILE_BYTES (1048576)" in refused.error_message, refused.error_message
            assert "Contents" not in s3_server.client().list_objects_v2(Bucket=bucket)
        finally:
            session.delete()


def freeze_agent(server: CoveServer, session_id: str) -> None:
    """Leave a file to sync, then stop the session's agent: no upload can be done any more."""
    inside(server, session_id, f"echo synced > {SYNCED}/a.txt")
    with server.client(KEY_A) as client:  # the agent runs (it starts on a session's first call)
        client.post(f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": "true"}})
    stopped = server.sandbox(session_id, FREEZE_AGENT)
    assert stopped.stdout.strip() == "1", (stopped.stdout, stopped.stderr)


def test_an_unreachable_agent_gives_a_clear_error_and_a_force_delete_ends_it(
    limited: CoveServer, client: httpx.Client, synced: tuple[str, Any]
) -> None:
    context_id, create = synced
    session_id = create()
    inside(limited, session_id, f"mkdir -p {SYNCED} && echo early > {SYNCED}/early.txt")
    assert client.post(f"/v1/sessions/{session_id}/contexts/sync", json={}).status_code == 200
    freeze_agent(limited, session_id)

    refused = client.delete(f"/v1/sessions/{session_id}")
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"]["code"] == "ContextUploadFailed"
    assert "COVE_SYNC_TIMEOUT_S" in refused.text and "force=true" in refused.text
    assert client.get(f"/v1/sessions/{session_id}").json()["session"]["status"] == "RUNNING"

    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=limited.url)) as agent_bay:
        assert agent_bay.delete(session_id, force=True).success
    ended = client.get(f"/v1/sessions/{session_id}").json()["session"]
    assert ended["status"] == "DELETED" and "context upload was lost" in ended["status_reason"], ended
    assert session_id not in limited.containers()
    assert (limited.data_dir / "contexts" / context_id / "early.txt").read_bytes() == b"early\n"  # kept
    assert not (limited.data_dir / "contexts" / context_id / "a.txt").exists()  # lost, and reported


def test_an_unreachable_agent_still_ends_at_the_maximum_lifetime(
    limited: CoveServer, client: httpx.Client, synced: tuple[str, Any]
) -> None:
    _, create = synced
    session_id = create(max_lifetime_s=4)
    inside(limited, session_id, f"mkdir -p {SYNCED}")
    freeze_agent(limited, session_id)
    deadline = time.monotonic() + 30
    while (found := client.get(f"/v1/sessions/{session_id}").json()["session"])["status"] != "DELETED":
        assert time.monotonic() < deadline, found
        time.sleep(0.5)
    assert (
        "maximum lifetime" in found["status_reason"] and "context upload was lost" in found["status_reason"]
    )


def test_a_delete_cut_off_by_a_crash_ends_at_the_maximum_lifetime(data_root: Path) -> None:
    """The server dies while a delete waits on an upload that can never finish: after a restart the
    session stays DELETING while the upload is retried, and ends at its maximum lifetime."""
    settings = {"sync_timeout_s": DEADLINE_S, "reconcile_interval_s": 1, "warm_pool": 0}
    with running_server(data_root / "data", **settings) as server, server.client(KEY_A) as client:
        context_id = client.post("/v1/contexts", json={"name": "cut-off"}).json()["context"]["id"]
        body = {"context_syncs": [{"context_id": context_id, "path": SYNCED}], "max_lifetime_s": 8}
        session_id = client.post("/v1/sessions", json=body).json()["session"]["session_id"]
        inside(server, session_id, f"mkdir -p {SYNCED}")
        freeze_agent(server, session_id)

        def delete() -> None:
            with server.client(KEY_A) as own, pytest.raises(httpx.TransportError):
                own.delete(f"/v1/sessions/{session_id}")  # the server dies under it

        deleting = threading.Thread(target=delete)
        deleting.start()
        deadline = time.monotonic() + 10
        while client.get(f"/v1/sessions/{session_id}").json()["session"]["status"] != "DELETING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        server.stop(signal.SIGKILL)
        deleting.join()
        server.start()
        deadline = time.monotonic() + 60
        while (found := client.get(f"/v1/sessions/{session_id}").json()["session"])["status"] != "DELETED":
            assert found["status"] == "DELETING" and time.monotonic() < deadline, found
            time.sleep(0.5)
        assert "context upload was lost" in found["status_reason"], found
        assert server.leftovers() == NOTHING_LEFT


def test_a_dead_sandboxs_folder_is_packed_without_sparse_or_oversized_files(tmp_path: Path) -> None:
    """The host's packer of a dead sandbox's layer leaves out what the agent would, and says why."""
    folder = tmp_path / "work"
    folder.mkdir()
    with (folder / "sparse.bin").open("wb") as sparse:
        sparse.truncate(128 * 1024 * 1024)
    (folder / "big.bin").write_bytes(os.urandom(2 * FILE_CAP))
    (folder / "small.txt").write_bytes(b"kept\n")
    packed = io.BytesIO()
    limits = TransferLimits(FILE_CAP, 64 * FILE_CAP, DEADLINE_S, tmp_path / "tmp")
    pack_from_host(tmp_path, "/work", (os.getuid(), os.getgid()), packed, limits)
    assert packed.tell() < FILE_CAP
    packed.seek(0)
    with tarfile.open(fileobj=packed) as archive:
        members = {member.name: member for member in archive.getmembers()}
    assert members["small.txt"].size == 5 and LEFT_OUT_HEADER not in members["small.txt"].pax_headers
    assert members["sparse.bin"].pax_headers[LEFT_OUT_HEADER].startswith("sparse file of 134217728 bytes")
    assert "over COVE_MAX_SYNC_FILE_BYTES" in members["big.bin"].pax_headers[LEFT_OUT_HEADER]

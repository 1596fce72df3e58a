"""A Cove server whose contexts live in a real S3 server (moto's): a context synced into a session goes
up to S3 on delete (a large file as a multipart upload) and comes back into the next session; file URLs
stream through Cove; deleting the context empties its prefix; a missing bucket stops the server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cove.sandbox.images import SANDBOX_HOME
from tests.integration.server import CoveServer, running_server
from tests.s3 import S3Server

SYNCED = f"{SANDBOX_HOME}/work"


def test_a_context_round_trips_through_s3(data_root: Path, s3_server: S3Server) -> None:
    bucket, client = s3_server.new_bucket(), s3_server.client()
    with (
        running_server(data_root / "data", **s3_server.cove_settings(bucket)) as server,
        server.client() as api,
    ):
        context = api.post("/v1/contexts", json={"name": "s3-round-trip"}).json()["context"]
        syncs = [{"context_id": context["id"], "path": SYNCED}]
        first = api.post("/v1/sessions", json={"context_syncs": syncs}).json()["session"]
        script = f"mkdir -p {SYNCED}/sub && echo hello > {SYNCED}/sub/note.txt"
        script += f" && head -c 9437189 /dev/urandom > {SYNCED}/big.bin && sha256sum < {SYNCED}/big.bin"
        made = server.sandbox(first["session_id"], script)
        assert made.returncode == 0, made.stderr
        assert api.delete(f"/v1/sessions/{first['session_id']}").status_code == 200

        prefix = f"contexts/{context['id']}/"
        stored = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        assert sorted(item["Key"][len(prefix) :] for item in stored["Contents"]) == [
            "big.bin",
            "sub/note.txt",
        ]
        assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
        url = api.post(f"/v1/contexts/{context['id']}/download_url", params={"path": "sub/note.txt"})
        assert httpx.get(url.json()["url"]).content == b"hello\n"
        url = api.post(f"/v1/contexts/{context['id']}/upload_url", params={"path": "put.txt"})
        assert httpx.put(url.json()["url"], content=b"put through Cove").status_code == 200
        files = api.get(f"/v1/contexts/{context['id']}/files").json()["files"]
        assert [(f["name"], f["type"]) for f in files] == [
            ("big.bin", "file"),
            ("put.txt", "file"),
            ("sub", "folder"),
        ]

        second = api.post("/v1/sessions", json={"context_syncs": syncs}).json()["session"]
        back = server.sandbox(
            second["session_id"], f"cat {SYNCED}/sub/note.txt {SYNCED}/put.txt; sha256sum < {SYNCED}/big.bin"
        )
        assert back.stdout == "hello\nput through Cove" + made.stdout, back.stderr
        assert api.delete(f"/v1/sessions/{second['session_id']}").status_code == 200
        assert api.delete(f"/v1/contexts/{context['id']}").status_code == 200
        assert "Contents" not in client.list_objects_v2(Bucket=bucket, Prefix=prefix)


def test_a_missing_bucket_stops_the_server(data_root: Path, s3_server: S3Server) -> None:
    server = CoveServer(data_root / "data", **s3_server.cove_settings("no-such-bucket-for-cove"))
    with pytest.raises(RuntimeError, match="bucket does not exist"):
        server.start()
    server.stop()
    assert not (server.data_dir / "instance_id").exists(), "it stopped before making any sandbox state"

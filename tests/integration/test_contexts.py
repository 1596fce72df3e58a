"""Contexts on a real server: the REST API, the key-less file URLs (httpx and curl), path safety,
tenants, and Cove's own SDK (sync and async)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from cove import AgentBay, AsyncAgentBay, Config, ContextListParams
from cove.cli import main
from tests.integration.server import KEY_A, KEY_B, CoveServer


def unique(prefix: str = "ctx") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def context(api: httpx.Client) -> Iterator[dict[str, Any]]:
    """A fresh context of tenant A, deleted after the test."""
    created = api.post("/v1/contexts", json={"name": unique()})
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()["context"]
    yield found
    api.delete(f"/v1/contexts/{found['id']}")


def upload(api: httpx.Client, context_id: str, path: str, content: bytes) -> None:
    url = api.post(f"/v1/contexts/{context_id}/upload_url", params={"path": path}).json()["url"]
    put = httpx.put(url, content=content)
    assert put.status_code == 200, put.text


def download(api: httpx.Client, context_id: str, path: str) -> httpx.Response:
    answer = api.post(f"/v1/contexts/{context_id}/download_url", params={"path": path})
    assert answer.status_code == 200, answer.text
    return httpx.get(answer.json()["url"])


def test_create_get_rename_list_delete(api: httpx.Client) -> None:
    name = unique()
    created = api.post("/v1/contexts", json={"name": name})
    assert created.status_code == 201, created.text
    context = created.json()["context"]
    assert context["id"].startswith("ctx-") and context["name"] == name and context["state"] == "available"
    context_id = context["id"]
    assert api.get(f"/v1/contexts/{context_id}").json()["context"] == context
    assert api.get(f"/v1/contexts/by-name/{name}").json()["context"]["id"] == context_id

    duplicate = api.post("/v1/contexts", json={"name": name})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "ContextExists"

    renamed = api.patch(f"/v1/contexts/{context_id}", json={"name": name + "-new"})
    assert renamed.status_code == 200 and renamed.json()["context"]["name"] == name + "-new"
    assert api.get(f"/v1/contexts/by-name/{name}").status_code == 404
    other = api.post("/v1/contexts", json={"name": name}).json()["context"]
    taken = api.patch(f"/v1/contexts/{other['id']}", json={"name": name + "-new"})
    assert taken.status_code == 409

    listed = api.get("/v1/contexts", params={"limit": 1000}).json()
    assert {context_id, other["id"]} <= {found["id"] for found in listed["contexts"]}
    first = api.get("/v1/contexts", params={"limit": 1}).json()
    assert len(first["contexts"]) == 1 and first["next_page"] == 2 and first["total_count"] >= 2

    for found in (context_id, other["id"]):
        assert api.delete(f"/v1/contexts/{found}").status_code == 200
        gone = api.get(f"/v1/contexts/{found}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "ContextNotFound"
    assert api.delete(f"/v1/contexts/{context_id}").status_code == 404


def test_get_by_name_creates_when_asked(api: httpx.Client) -> None:
    name = unique()
    assert api.get(f"/v1/contexts/by-name/{name}").status_code == 404
    made = api.get(f"/v1/contexts/by-name/{name}", params={"create": "true"})
    assert made.status_code == 200, made.text
    again = api.get(f"/v1/contexts/by-name/{name}", params={"create": "true"})
    assert again.json()["context"]["id"] == made.json()["context"]["id"]
    api.delete(f"/v1/contexts/{made.json()['context']['id']}")


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": ""}, "name"), ({"name": "a/b"}, "name"), ({"name": "x" * 300}, "name"), ({}, "name")],
)
def test_bad_names_are_refused(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    answer = api.post("/v1/contexts", json=body)
    assert answer.status_code == 400 and field in answer.json()["error"]["message"]


def test_other_tenants_contexts_are_not_found(server: CoveServer, context: dict[str, Any]) -> None:
    with server.client(KEY_B) as other:
        context_id = context["id"]
        assert other.get(f"/v1/contexts/{context_id}").status_code == 404
        assert other.get(f"/v1/contexts/by-name/{context['name']}").status_code == 404
        assert other.patch(f"/v1/contexts/{context_id}", json={"name": "mine"}).status_code == 404
        assert other.delete(f"/v1/contexts/{context_id}").status_code == 404
        assert other.post(f"/v1/contexts/{context_id}/clear").status_code == 404
        assert other.get(f"/v1/contexts/{context_id}/files").status_code == 404
        assert other.post(f"/v1/contexts/{context_id}/upload_url", params={"path": "a"}).status_code == 404
        assert context_id not in [
            c["id"] for c in other.get("/v1/contexts", params={"limit": 1000}).json()["contexts"]
        ]
        # the same name is free for another tenant
        same = other.post("/v1/contexts", json={"name": context["name"]})
        assert same.status_code == 201
        other.delete(f"/v1/contexts/{same.json()['context']['id']}")
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/v1/contexts").status_code == 401


def test_files_upload_list_download_delete_clear(api: httpx.Client, context: dict[str, Any]) -> None:
    context_id = context["id"]
    content = os.urandom(3 * 2**20 + 5)
    upload(api, context_id, "data/big.bin", content)
    upload(api, context_id, "/notes.txt", b"hello")
    fetched = download(api, context_id, "data/big.bin")
    assert fetched.status_code == 200 and fetched.content == content

    top = api.get(f"/v1/contexts/{context_id}/files").json()
    assert [(f["path"], f["type"]) for f in top["files"]] == [("/data", "folder"), ("/notes.txt", "file")]
    inner = api.get(f"/v1/contexts/{context_id}/files", params={"path": "/data"}).json()["files"]
    assert [(f["name"], f["size"]) for f in inner] == [("big.bin", len(content))]
    paged = api.get(f"/v1/contexts/{context_id}/files", params={"limit": 1, "page": 2}).json()
    assert [f["name"] for f in paged["files"]] == ["notes.txt"] and paged["total_count"] == 2
    missing = api.get(f"/v1/contexts/{context_id}/files", params={"path": "nowhere"})
    assert missing.status_code == 404

    assert api.delete(f"/v1/contexts/{context_id}/files", params={"path": "notes.txt"}).status_code == 200
    assert download(api, context_id, "notes.txt").status_code == 404
    assert api.delete(f"/v1/contexts/{context_id}/files", params={"path": "notes.txt"}).status_code == 404

    cleared = api.post(f"/v1/contexts/{context_id}/clear")
    assert cleared.status_code == 200 and cleared.json()["context"]["state"] == "available"
    assert api.get(f"/v1/contexts/{context_id}/files").json()["files"] == []
    assert api.get(f"/v1/contexts/{context_id}").status_code == 200


def test_urls_work_with_curl(api: httpx.Client, context: dict[str, Any], tmp_path: Path) -> None:
    context_id = context["id"]
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(100_000))
    put = api.post(f"/v1/contexts/{context_id}/upload_url", params={"path": "curl/file.bin"}).json()
    assert put["expire_time"] > time.time() + 3000
    subprocess.run(["curl", "-sSf", "-T", str(source), put["url"]], check=True, capture_output=True)
    get = api.post(f"/v1/contexts/{context_id}/download_url", params={"path": "curl/file.bin"}).json()
    target = tmp_path / "target.bin"
    subprocess.run(["curl", "-sSf", "-o", str(target), get["url"]], check=True, capture_output=True)
    assert target.read_bytes() == source.read_bytes()


def test_forged_expired_and_misused_urls_are_refused(
    server: CoveServer, api: httpx.Client, context: dict[str, Any]
) -> None:
    context_id = context["id"]
    upload(api, context_id, "secret.txt", b"secret")
    put_url = api.post(f"/v1/contexts/{context_id}/upload_url", params={"path": "secret.txt"}).json()["url"]
    get_url = api.post(f"/v1/contexts/{context_id}/download_url", params={"path": "secret.txt"}).json()["url"]
    assert httpx.get(put_url).status_code == 403  # an upload URL does not download
    assert httpx.put(get_url, content=b"x").status_code == 403  # and a download URL does not upload

    prefix, token = get_url.rsplit("/", 1)
    payload, signature = token.split(".")
    method, found_id, path, expires = json.loads(base64.urlsafe_b64decode(payload + "=="))
    for forged in (
        [method, found_id, "other.txt", expires],  # another path under the same signature
        [method, found_id, path, expires - 7200],  # expired
        [method, found_id, path, expires + 86400],  # stretched
    ):
        encoded = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        answer = httpx.get(f"{prefix}/{encoded}.{signature}")
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "FileUrlNotValid"
    assert httpx.get(f"{prefix}/garbage").status_code == 403
    assert httpx.get(f"{prefix}/{payload}.{signature[:-2]}AA").status_code == 403

    api.delete(f"/v1/contexts/{context_id}")
    assert httpx.get(get_url).status_code == 404  # the context is gone


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/../etc/passwd", "..", "", "a\0b"])
def test_path_traversal_is_refused(api: httpx.Client, context: dict[str, Any], path: str) -> None:
    context_id = context["id"]
    for url in ("upload_url", "download_url"):
        answer = api.post(f"/v1/contexts/{context_id}/{url}", params={"path": path})
        assert answer.status_code == 400 and "path" in answer.json()["error"]["message"], answer.text
    deleted = api.delete(f"/v1/contexts/{context_id}/files", params={"path": path})
    assert deleted.status_code == 400


def test_absolute_paths_stay_inside_the_context(
    server: CoveServer, api: httpx.Client, context: dict[str, Any]
) -> None:
    upload(api, context["id"], "/etc/passwd", b"not the host's")
    stored = server.data_dir / "contexts" / context["id"] / "etc" / "passwd"
    assert stored.read_bytes() == b"not the host's"
    assert Path("/etc/passwd").read_bytes() != b"not the host's"


def test_planted_symlinks_are_not_followed(
    server: CoveServer, api: httpx.Client, context: dict[str, Any], tmp_path: Path
) -> None:
    context_id = context["id"]
    upload(api, context_id, "seed.txt", b"seed")
    folder = server.data_dir / "contexts" / context_id
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside")
    (folder / "link-dir").symlink_to(outside)
    (folder / "link-file").symlink_to(outside / "secret.txt")

    assert download(api, context_id, "link-file").status_code == 404
    assert download(api, context_id, "link-dir/secret.txt").status_code == 400
    url = api.post(f"/v1/contexts/{context_id}/upload_url", params={"path": "link-dir/new.txt"}).json()["url"]
    assert httpx.put(url, content=b"escape").status_code == 400
    assert not (outside / "new.txt").exists()
    upload(api, context_id, "link-file", b"replaced")  # replaces the link itself, not its target
    assert (outside / "secret.txt").read_text() == "outside"
    listed = api.get(f"/v1/contexts/{context_id}/files").json()["files"]
    assert "link-dir" not in [f["name"] for f in listed]
    assert api.get(f"/v1/contexts/{context_id}/files", params={"path": "link-dir"}).status_code == 400
    assert api.delete(f"/v1/contexts/{context_id}/files", params={"path": "link-dir"}).status_code == 200
    assert (outside / "secret.txt").exists()


def test_cove_sdk_contexts(server: CoveServer, tmp_path: Path) -> None:
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        name = unique("sdk")
        assert not agent_bay.context.get(name).success
        made = agent_bay.context.get(name, create=True)
        assert made.success and made.context is not None and made.context_id.startswith("ctx-")
        context = made.context
        assert agent_bay.context.get(context_id=context.id).context == context
        duplicate = agent_bay.context.create(name)
        assert not duplicate.success and duplicate.http_status_code == 409

        context.name = name + "-renamed"
        assert agent_bay.context.update(context).success
        assert agent_bay.context.get(name + "-renamed").context_id == context.id
        listed = agent_bay.context.list(ContextListParams(max_results=1000))
        assert listed.success and context.id in [c.id for c in listed.contexts]

        upload_url = agent_bay.context.get_file_upload_url(context.id, "/dir/a.txt")
        assert upload_url.success and upload_url.expire_time and upload_url.expire_time > time.time()
        assert httpx.put(upload_url.url, content=b"from the sdk").status_code == 200
        files = agent_bay.context.list_files(context.id, "/dir")
        assert files.success and [(e.file_path, e.size, e.file_type) for e in files.entries] == [
            ("/dir/a.txt", 12, "file")
        ]
        download_url = agent_bay.context.get_file_download_url(context.id, "/dir/a.txt")
        assert httpx.get(download_url.url).content == b"from the sdk"
        assert agent_bay.context.delete_file(context.id, "/dir/a.txt").success
        assert agent_bay.context.list_files(context.id, "/dir").entries == []
        refused = agent_bay.context.get_file_upload_url(context.id, "../escape")
        assert not refused.success and refused.http_status_code == 400

        cleared = agent_bay.context.clear(context.id)
        assert cleared.success and cleared.status == "available"
        assert agent_bay.context.delete(context).success
        assert not agent_bay.context.get(context_id=context.id).success
    with AgentBay(api_key=KEY_B, cfg=Config(endpoint=server.url)) as other:
        assert not other.context.list_files(context.id, "/").success


async def test_async_cove_sdk_contexts(server: CoveServer) -> None:
    async with AsyncAgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        made = await agent_bay.context.create(unique("async"))
        assert made.success and made.context is not None
        context = made.context
        try:
            url = await agent_bay.context.get_file_upload_url(context.id, "x.bin")
            async with httpx.AsyncClient() as plain:
                assert (await plain.put(url.url, content=b"\0\1\2")).status_code == 200
                download_url = await agent_bay.context.get_file_download_url(context.id, "x.bin")
                assert (await plain.get(download_url.url)).content == b"\0\1\2"
            files = await agent_bay.context.list_files(context.id, "/")
            assert [e.file_name for e in files.entries] == ["x.bin"] and files.count == 1
            assert (await agent_bay.context.delete_file(context.id, "x.bin")).success
            assert (await agent_bay.context.clear(context.id)).status == "available"
            context.name += "-renamed"
            assert (await agent_bay.context.update(context)).success
            assert (await agent_bay.context.get(context.name)).context_id == context.id
            listed = await agent_bay.context.list(ContextListParams(max_results=1000))
            assert context.id in [c.id for c in listed.contexts]
        finally:
            assert (await agent_bay.context.delete(context)).success


def test_cli_context_commands(server: CoveServer, api: httpx.Client) -> None:
    def cove(*args: str) -> Result:
        common = ["--endpoint", server.url, "--api-key", KEY_A]
        return CliRunner().invoke(main, ["context", *args[:1], *common, *args[1:]], catch_exceptions=False)

    name = unique("cli")
    created = cove("create", name)
    assert created.exit_code == 0, created.output
    context_id = created.output.strip()
    assert context_id.startswith("ctx-")
    listed = cove("ls")
    assert listed.exit_code == 0 and context_id in listed.output and name in listed.output
    upload(api, context_id, "folder/file.txt", b"12345")
    files = cove("files", context_id)
    assert files.exit_code == 0 and "/folder" in files.output and "folder" in files.output
    inner = cove("files", context_id, "--path", "folder")
    assert "/folder/file.txt" in inner.output and "5" in inner.output

    put_url = cove("url", context_id, "new.txt", "--upload")
    assert put_url.exit_code == 0 and httpx.put(put_url.output.strip(), content=b"by curl").status_code == 200
    get_url = cove("url", context_id, "new.txt")
    assert httpx.get(get_url.output.strip()).content == b"by curl"
    assert cove("rm-file", context_id, "new.txt").exit_code == 0
    assert httpx.get(get_url.output.strip()).status_code == 404
    renamed = cove("rename", context_id, name + "-renamed")
    assert renamed.exit_code == 0 and name + "-renamed" in cove("ls").output
    assert cove("clear", context_id).exit_code == 0
    assert "0 of 0 shown" in cove("files", context_id).output
    removed = cove("rm", context_id)
    assert removed.exit_code == 0 and f"deleted {context_id}" in removed.output
    assert cove("rm", context_id).exit_code != 0

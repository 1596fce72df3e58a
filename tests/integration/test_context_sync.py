"""Contexts synced into sessions: download on create, upload on delete and on expiry, SyncContext,
unsafe trees packed in the sandbox, bad input, and Cove's SDK. The official AgentBay SDK's create
with context_syncs, info, sync and delete(sync_context=True): test_agentbay_sdk.py::test_context_sync."""

from __future__ import annotations

import io
import os
import tarfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cove.contexts.policy import ContextSync
from cove.contexts.storage import LocalFolderStorage
from cove.contexts.sync import import_tar
from cove.sandbox.images import SANDBOX_HOME
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, KEY_B, CoveServer

os.environ.setdefault("AGENTBAY_LOG_LEVEL", "CRITICAL")

from agentbay import AgentBay, Config

pytestmark = pytest.mark.filterwarnings(r"ignore:Config\(endpoint=:DeprecationWarning")
SYNCED = f"{SANDBOX_HOME}/work"


@pytest.fixture
def context(api: httpx.Client) -> Iterator[dict[str, Any]]:
    created = api.post("/v1/contexts", json={"name": f"sync-{uuid.uuid4().hex[:8]}"})
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()["context"]
    yield found
    api.delete(f"/v1/contexts/{found['id']}")


def context_file(api: httpx.Client, context_id: str, path: str) -> httpx.Response:
    answer = api.post(f"/v1/contexts/{context_id}/download_url", params={"path": path})
    assert answer.status_code == 200, answer.text
    return httpx.get(answer.json()["url"])


def inside(server: CoveServer, session_id: str, script: str) -> str:
    ran = server.sandbox(session_id, script)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


@BOTH_RUNTIMES
def test_written_in_one_session_read_in_the_next(
    api: httpx.Client, server: CoveServer, new_session: Any, context: dict[str, Any]
) -> None:
    syncs = [{"context_id": context["id"], "path": SYNCED}]
    first = new_session(context_syncs=syncs)
    inside(server, first["session_id"], f"mkdir -p {SYNCED}/sub && echo hello > {SYNCED}/sub/note.txt")
    deleted = api.delete(f"/v1/sessions/{first['session_id']}")
    assert deleted.status_code == 200, deleted.text
    assert context_file(api, context["id"], "sub/note.txt").content == b"hello\n"

    second = new_session(context_syncs=syncs)
    assert inside(server, second["session_id"], f"cat {SYNCED}/sub/note.txt") == "hello\n"
    # deletions propagate (deletePolicy.syncLocalFile, the default), SyncContext uploads now
    inside(server, second["session_id"], f"rm {SYNCED}/sub/note.txt && echo two > {SYNCED}/two.txt")
    official = AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url, timeout_ms=60_000))
    session = official.get(second["session_id"]).session
    assert session.context.sync().success
    assert context_file(api, context["id"], "two.txt").content == b"two\n"
    assert context_file(api, context["id"], "sub/note.txt").status_code == 404


@BOTH_RUNTIMES
def test_no_auto_upload_keeps_the_context(
    api: httpx.Client, server: CoveServer, new_session: Any, context: dict[str, Any]
) -> None:
    policy = {"uploadPolicy": {"autoUpload": False}}
    made = new_session(context_syncs=[{"context_id": context["id"], "path": SYNCED, "policy": policy}])
    inside(server, made["session_id"], f"echo x > {SYNCED}/x.txt")
    assert api.delete(f"/v1/sessions/{made['session_id']}").status_code == 200
    assert api.get(f"/v1/contexts/{context['id']}/files").json()["files"] == []


@BOTH_RUNTIMES
def test_upload_when_the_session_expires(
    api: httpx.Client, server: CoveServer, context: dict[str, Any], runtime: str
) -> None:
    syncs = [{"context_id": context["id"], "path": SYNCED}]
    created = api.post("/v1/sessions", json={"max_lifetime_s": 2, "context_syncs": syncs, "runtime": runtime})
    assert created.status_code == 201, created.text
    session_id = created.json()["session"]["session_id"]
    try:
        inside(server, session_id, f"echo late > {SYNCED}/late.txt")
        deadline = time.monotonic() + 60
        while api.get(f"/v1/sessions/{session_id}").json()["session"]["status"] != "DELETED":
            assert time.monotonic() < deadline, "the session did not expire"
            time.sleep(0.5)
        assert context_file(api, context["id"], "late.txt").content == b"late\n"
    finally:
        api.delete(f"/v1/sessions/{session_id}")


@BOTH_RUNTIMES
def test_links_and_special_names_from_the_sandbox_stay_out(
    api: httpx.Client, server: CoveServer, new_session: Any, context: dict[str, Any]
) -> None:
    made = new_session(context_syncs=[{"context_id": context["id"], "path": SYNCED}])
    inside(
        server,
        made["session_id"],
        f"mkdir -p {SYNCED} && cd {SYNCED} && ln -s /etc etc && ln -s /etc/passwd passwd && "
        f"ln -s {server.data_dir} host && echo ok > ok.txt",
    )
    assert api.delete(f"/v1/sessions/{made['session_id']}").status_code == 200
    names = {item["name"] for item in api.get(f"/v1/contexts/{context['id']}/files").json()["files"]}
    assert names == {"ok.txt"}
    folder = server.data_dir / "contexts" / context["id"]
    assert not any(path.is_symlink() for path in folder.rglob("*"))


def test_an_unsafe_tar_does_not_escape_the_context_folder(data_root: Any) -> None:
    """What a hostile agent could send instead of a packed folder."""
    storage = LocalFolderStorage(data_root / "contexts")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, kind, target in [
            ("../escaped.txt", tarfile.REGTYPE, ""),
            ("/abs.txt", tarfile.REGTYPE, ""),
            ("link", tarfile.SYMTYPE, str(data_root)),
            ("link/through.txt", tarfile.REGTYPE, ""),
            ("hard", tarfile.LNKTYPE, "/etc/passwd"),
            ("good/file.txt", tarfile.REGTYPE, ""),
        ]:
            member = tarfile.TarInfo(name)
            member.type, member.linkname = kind, target
            content = b"data" if kind == tarfile.REGTYPE else b""
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    buffer.seek(0)
    report = import_tar(storage, ContextSync("ctx-unsafe", "/d"), buffer)
    assert set(report.skipped) == {"../escaped.txt", "/abs.txt", "link", "hard"}
    assert not (data_root / "escaped.txt").exists() and not (data_root / "contexts" / "escaped.txt").exists()
    assert not (data_root / "through.txt").exists()
    files = sorted(p.relative_to(data_root) for p in (data_root / "contexts").rglob("*") if p.is_file())
    assert [str(p) for p in files] == [
        "contexts/ctx-unsafe/good/file.txt",
        "contexts/ctx-unsafe/link/through.txt",
    ]


def test_bad_syncs_are_refused(api: httpx.Client, server: CoveServer, context: dict[str, Any]) -> None:
    def create(syncs: Any, key: str = KEY_A) -> httpx.Response:
        with server.client(key) as client:
            return client.post("/v1/sessions", json={"context_syncs": syncs})

    for path in ("relative/dir", "/", "/proc/x", f"{SANDBOX_HOME}/../etc"):
        refused = create([{"context_id": context["id"], "path": path}])
        assert refused.status_code == 400 and "context_syncs[0].path" in refused.text, refused.text
    unknown = create([{"context_id": "ctx-nope", "path": SYNCED}])
    assert unknown.status_code == 404, unknown.text
    other_tenant = create([{"context_id": context["id"], "path": SYNCED}], KEY_B)
    assert other_tenant.status_code == 404, other_tenant.text

    def with_policy(policy: Any) -> httpx.Response:
        return create([{"context_id": context["id"], "path": SYNCED, "policy": policy}])

    on_close = with_policy({"uploadPolicy": {"uploadStrategy": "UploadAfterFileClose"}})
    assert on_close.status_code == 501 and "uploadStrategy" in on_close.text, on_close.text
    for policy, field in [
        ({"uploadPolicy": {"uploadStrategy": "Periodic"}}, "uploadPolicy.uploadStrategy"),
        ({"uploadPolicy": {"uploadStrategy": "PeriodicUpload", "period": -1}}, "uploadPolicy.period"),
        ({"bwList": {"whiteLists": [{"path": "../../etc"}]}}, "bwList.whiteLists[0].path"),
        ({"recyclePolicy": {"lifecycle": "Lifecycle_7Days"}}, "recyclePolicy.lifecycle"),
        ("{not json", "context_syncs[0].policy"),
    ]:
        refused = with_policy(policy)
        assert refused.status_code == 400 and field in refused.text, refused.text
    assert api.get("/v1/sessions", params={"status": "RUNNING"}).status_code == 200


@BOTH_RUNTIMES
def test_coves_sdk_create_with_context_sync(
    api: httpx.Client, server: CoveServer, context: dict[str, Any], runtime: str
) -> None:
    from cove import AgentBay as CoveAgentBay
    from cove import BWList, Lifecycle, RecyclePolicy, UploadPolicy, WhiteList
    from cove import Config as CoveConfig
    from cove import ContextSync as CoveContextSync
    from cove import CreateSessionParams as CoveParams
    from cove import SyncPolicy as CoveSyncPolicy

    put_file(api, context["id"], "seed.txt", b"seeded")
    put_file(api, context["id"], "other.txt", b"left out")
    with CoveAgentBay(api_key=KEY_A, cfg=CoveConfig(endpoint=server.url)) as agent_bay:
        policy = CoveSyncPolicy(
            upload_policy=UploadPolicy(auto_upload=False),
            bw_list=BWList([WhiteList(path="/seed.txt")]),
            recycle_policy=RecyclePolicy(Lifecycle.LIFECYCLE_30DAYS),
        )
        created = agent_bay.create(
            CoveParams(context_syncs=[CoveContextSync.new(context["id"], SYNCED, policy)], runtime=runtime)
        )
        assert created.success, created.error_message
        assert inside(server, created.session.session_id, f"ls {SYNCED}") == "seed.txt\n"
        assert created.session.delete().success
        refused = agent_bay.create(CoveParams(context_syncs=[CoveContextSync.new(context["id"], "relative")]))
        assert not refused.success and "path" in refused.error_message


@BOTH_RUNTIMES
def test_a_paused_session_uploads_on_delete(
    api: httpx.Client, server: CoveServer, new_session: Any, context: dict[str, Any]
) -> None:
    made = new_session(context_syncs=[{"context_id": context["id"], "path": SYNCED}])
    inside(server, made["session_id"], f"echo paused > {SYNCED}/paused.txt")
    assert api.post(f"/v1/sessions/{made['session_id']}/pause").status_code == 200
    deleted = api.delete(f"/v1/sessions/{made['session_id']}")
    assert deleted.status_code == 200 and deleted.json()["session"]["status"] == "DELETED", deleted.text
    assert context_file(api, context["id"], "paused.txt").content == b"paused\n"


@BOTH_RUNTIMES
def test_a_failed_upload_keeps_the_session(
    api: httpx.Client, server: CoveServer, new_session: Any, context: dict[str, Any]
) -> None:
    made = new_session(context_syncs=[{"context_id": context["id"], "path": SYNCED}])
    inside(server, made["session_id"], f"rm -rf {SYNCED} && echo not-a-folder > {SYNCED}")
    refused = api.delete(f"/v1/sessions/{made['session_id']}")
    assert refused.status_code == 502 and "the session is kept" in refused.text, refused.text
    assert refused.json()["error"]["code"] == "ContextUploadFailed"
    assert api.get(f"/v1/sessions/{made['session_id']}").json()["session"]["status"] == "RUNNING"
    inside(server, made["session_id"], f"rm {SYNCED} && mkdir {SYNCED} && echo fixed > {SYNCED}/fixed.txt")
    assert api.delete(f"/v1/sessions/{made['session_id']}").status_code == 200
    assert context_file(api, context["id"], "fixed.txt").content == b"fixed\n"


@BOTH_RUNTIMES
def test_a_file_replacing_a_folder_replaces_it_in_the_context(
    api: httpx.Client, server: CoveServer, new_session: Any, context: dict[str, Any]
) -> None:
    upload = api.post(f"/v1/contexts/{context['id']}/upload_url", params={"path": "f/inner.txt"}).json()[
        "url"
    ]
    assert httpx.put(upload, content=b"inner").status_code == 200
    made = new_session(context_syncs=[{"context_id": context["id"], "path": SYNCED}])
    inside(server, made["session_id"], f"rm -r {SYNCED}/f && echo file > {SYNCED}/f")
    assert api.delete(f"/v1/sessions/{made['session_id']}").status_code == 200
    assert context_file(api, context["id"], "f").content == b"file\n"


def put_file(api: httpx.Client, context_id: str, path: str, content: bytes) -> None:
    url = api.post(f"/v1/contexts/{context_id}/upload_url", params={"path": path}).json()["url"]
    assert httpx.put(url, content=content).status_code == 200


@BOTH_RUNTIMES
def test_white_lists_and_the_delete_policy(
    api: httpx.Client, server: CoveServer, new_session: Any, context: dict[str, Any]
) -> None:
    put_file(api, context["id"], "Default/kept.txt", b"kept")
    put_file(api, context["id"], "Other/never.txt", b"never downloaded")
    policy = {
        "bwList": {"whiteLists": [{"path": "/Default", "excludePaths": ["/Default/Cache", "*.log"]}]},
        "deletePolicy": {"syncLocalFile": False},
    }
    made = new_session(context_syncs=[{"context_id": context["id"], "path": SYNCED, "policy": policy}])
    session_id = made["session_id"]
    assert inside(server, session_id, f"ls -R {SYNCED}").split() == [
        f"{SYNCED}:",
        "Default",
        f"{SYNCED}/Default:",
        "kept.txt",
    ]
    inside(
        server,
        session_id,
        f"cd {SYNCED} && rm Default/kept.txt && mkdir -p Default/Cache Other && echo c > Default/Cookies && "
        "echo x > Default/Cache/blob && echo l > Default/debug.log && echo o > Other/new.txt",
    )
    assert api.delete(f"/v1/sessions/{session_id}").status_code == 200
    assert context_file(api, context["id"], "Default/Cookies").content == b"c\n"
    assert context_file(api, context["id"], "Default/kept.txt").content == b"kept"  # not synced deletions
    assert context_file(api, context["id"], "Other/never.txt").content == b"never downloaded"
    for absent in ("Default/Cache/blob", "Default/debug.log", "Other/new.txt"):
        assert context_file(api, context["id"], absent).status_code == 404, absent


@BOTH_RUNTIMES
def test_archives_in_the_context_are_unpacked_on_download(
    api: httpx.Client, server: CoveServer, new_session: Any, context: dict[str, Any]
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = tarfile.TarInfo("inner/data.csv")
        member.size = 3
        archive.addfile(member, io.BytesIO(b"1,2"))
    put_file(api, context["id"], "dataset.tar.gz", buffer.getvalue())
    made = new_session(context_syncs=[{"context_id": context["id"], "path": SYNCED}])
    assert inside(server, made["session_id"], f"cat {SYNCED}/dataset/inner/data.csv") == "1,2"
    assert "dataset.tar.gz" not in inside(server, made["session_id"], f"ls {SYNCED}")  # deleteSrcFile


@BOTH_RUNTIMES
def test_periodic_upload(
    api: httpx.Client, server: CoveServer, new_session: Any, context: dict[str, Any]
) -> None:
    policy = {"uploadPolicy": {"uploadStrategy": "PeriodicUpload", "period": 1 / 30}}  # two seconds
    made = new_session(context_syncs=[{"context_id": context["id"], "path": SYNCED, "policy": policy}])
    inside(server, made["session_id"], f"echo tick > {SYNCED}/tick.txt")
    deadline = time.monotonic() + 30
    while context_file(api, context["id"], "tick.txt").status_code != 200:
        assert time.monotonic() < deadline, "no periodic upload within 30 s"
        time.sleep(0.5)
    assert api.get(f"/v1/sessions/{made['session_id']}").json()["session"]["status"] == "RUNNING"


@BOTH_RUNTIMES
def test_sync_and_info_report_each_task(
    api: httpx.Client, server: CoveServer, new_session: Any, context: dict[str, Any]
) -> None:
    made = new_session(context_syncs=[{"context_id": context["id"], "path": SYNCED}])
    official = AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url, timeout_ms=60_000))
    session = official.get(made["session_id"]).session
    inside(server, made["session_id"], f"rm -rf {SYNCED} && echo not-a-folder > {SYNCED}")
    with pytest.raises(Exception, match="is not a folder"):  # the SDK raises what the server answers
        session.context.sync()
    statuses = {item.task_type: item for item in session.context.info().context_status_data}
    assert statuses["download"].status == "Success" and statuses["upload"].status == "Failed"
    assert "not a folder" in statuses["upload"].error_message
    inside(server, made["session_id"], f"rm {SYNCED} && mkdir {SYNCED}")
    assert session.context.sync().success
    statuses = {item.task_type: item for item in session.context.info().context_status_data}
    assert statuses["upload"].status == "Success" and statuses["upload"].error_message == ""

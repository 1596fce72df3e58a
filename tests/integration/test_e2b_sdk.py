"""The unmodified E2B SDK (`e2b`, pinned in pyproject.toml) against Cove, pointed at it by its
environment variables alone, in both routing modes (e2b_modes.py): by `E2b-Sandbox-Id` on the
server's own address, and by host (`{port}-{id}.{domain}`) over HTTPS. The SDK names no runtime:
its sandboxes run on the server's default, runc, and on gvisor on servers whose default is gvisor,
reached by header (test_e2b_hosts.py drives gvisor sandboxes by host).

Effects are checked in the real sandbox (with `runc exec`, past the API) where the SDK's own answer
could hide a fake.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from e2b import (
    AsyncSandbox,
    AuthenticationException,
    CommandExitException,
    FileNotFoundException,
    FilesystemEvent,
    FilesystemEventType,
    NotFoundException,
    PtySize,
    Sandbox,
    SandboxException,
    SandboxNotRunningException,
    SandboxQuery,
)

from cove.server.api.e2b.ids import SESSION_PREFIX, TAG_CHARS
from tests.integration.e2b_modes import new_async_sandbox, new_sandbox, point_the_sdk_at
from tests.integration.runtimes import on_default_runtime
from tests.integration.server import KEY_A, KEY_B, CoveServer

server = on_default_runtime("server")
tls_server = on_default_runtime("tls_server")


def session_of(sandbox: Sandbox) -> str:
    """The Cove session id of a sandbox: its id without the tag, after the prefix (ids.py)."""
    return SESSION_PREFIX + sandbox.sandbox_id[:-TAG_CHARS]


@pytest.fixture
def e2b_server(request: pytest.FixtureRequest, server: CoveServer) -> CoveServer:
    """The server the SDK drives, in the way its test's parameter names (ROUTES): by header on the
    plain server, by host on the HTTPS one."""
    return request.getfixturevalue("tls_server") if request.param == "hosts" else server


@pytest.fixture
def e2b_env(e2b_server: CoveServer, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client settings docs/e2b-compatibility.md gives for the routing mode."""
    point_the_sdk_at(e2b_server, request.node.callspec.params["e2b_server"] == "hosts", monkeypatch)


def routes(*routes: tuple[str, str]) -> pytest.MarkDecorator:
    """Runs a test once for each routing mode and runtime given ("headers" or "hosts", "runc" or
    "gvisor"); each runtime's cases share a module-scoped server (`server`)."""
    return pytest.mark.parametrize(("e2b_server", "runtime"), routes, indirect=True, scope="module")


ROUTES = routes(("headers", "runc"), ("hosts", "runc"), ("headers", "gvisor"))
HEADERS_ONLY = routes(("headers", "runc"), ("headers", "gvisor"))
"""For what only header routing shows: a test that reaches envd by its address with plain httpx
(glibc here does not resolve `*.localhost`, which the SDK's own HTTP stack does)."""


@pytest.fixture
def sandbox(e2b_env: None) -> Iterator[Sandbox]:
    yield from new_sandbox(Sandbox, metadata={"suite": "e2b"})


@pytest.fixture
async def async_sandbox(e2b_env: None) -> AsyncIterator[AsyncSandbox]:
    async with new_async_sandbox(AsyncSandbox) as created:
        yield created


@ROUTES
def test_create_is_a_cove_session(e2b_server: CoveServer, sandbox: Sandbox) -> None:
    answer = e2b_server.client().get(f"/v1/sessions/{session_of(sandbox)}")
    assert answer.status_code == 200
    session = answer.json()["session"]
    assert session["status"] == "RUNNING"
    assert session["labels"] == {"suite": "e2b"}
    assert session["image_id"] == "linux_latest"
    assert e2b_server.client(KEY_B).get(f"/v1/sessions/{session_of(sandbox)}").status_code == 404
    assert "-" not in sandbox.sandbox_id  # E2B's hosts are {port}-{id}.{domain}
    assert sandbox.get_host(3000) == f"3000-{sandbox.sandbox_id}.cove.localhost:{e2b_server.port}"
    again = Sandbox.connect(session_of(sandbox))  # Cove's own id names it too
    assert again.sandbox_id == sandbox.sandbox_id


@ROUTES
def test_commands_run(e2b_server: CoveServer, sandbox: Sandbox) -> None:
    result = sandbox.commands.run("echo hi")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "hi\n", "")

    with pytest.raises(CommandExitException) as failed:
        sandbox.commands.run("echo oops >&2; exit 3")
    assert failed.value.exit_code == 3
    assert failed.value.stderr == "oops\n"

    result = sandbox.commands.run("pwd; echo $GREETING", cwd="/tmp", envs={"GREETING": "hello"})
    assert result.stdout == "/tmp\nhello\n"


@ROUTES
def test_streaming_callbacks(sandbox: Sandbox) -> None:
    seen: list[str] = []
    errors: list[str] = []
    result = sandbox.commands.run(
        "for i in 1 2 3; do echo line $i; sleep 0.2; done; echo bad >&2",
        on_stdout=seen.append,
        on_stderr=errors.append,
    )
    assert "".join(seen) == "line 1\nline 2\nline 3\n"
    assert "".join(errors) == "bad\n"
    assert result.stdout == "line 1\nline 2\nline 3\n"


@ROUTES
def test_background_command_and_kill(e2b_server: CoveServer, sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("echo started; : > /tmp/started; sleep 600", background=True)
    deadline = time.monotonic() + 30
    while not sandbox.files.exists("/tmp/started"):  # its output is written: the kill comes after
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.05)
    assert handle.pid in [process.pid for process in sandbox.commands.list()]
    again = sandbox.commands.connect(handle.pid)
    assert handle.kill()
    for attached in (handle, again):
        with pytest.raises(CommandExitException) as killed:
            attached.wait()
        assert killed.value.exit_code == 137
        assert "started\n" in killed.value.stdout
    assert handle.pid not in [process.pid for process in sandbox.commands.list()]
    assert not sandbox.commands.kill(handle.pid)


@ROUTES
def test_stdin(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("read line; echo got $line", background=True, stdin=True)
    sandbox.commands.send_stdin(handle.pid, "hello\n")
    assert handle.wait().stdout == "got hello\n"
    assert sandbox.commands.run("cat").stdout == ""  # without stdin, input is at its end at once

    # One input stream: its chunks are written in order, a character split between two whole.
    counted = sandbox.commands.run("head -c 12 | od -c | head -1", background=True, stdin=True)
    sandbox.commands.stream_input(counted.pid, ["ab", b"c\xc3", b"\xa9d", "\n", "efghij"])
    assert counted.wait().stdout.split()[1:] == [
        "a",
        "b",
        "c",
        "303",
        "251",
        "d",
        "\\n",
        "e",
        "f",
        "g",
        "h",
        "i",
    ]
    with pytest.raises(NotFoundException):
        sandbox.commands.stream_input(999_999, ["x"])


@ROUTES
def test_pty(sandbox: Sandbox) -> None:
    terminal = sandbox.pty.create(PtySize(rows=24, cols=80))
    sandbox.pty.resize(terminal.pid, PtySize(rows=30, cols=100))
    sandbox.pty.send_stdin(terminal.pid, b"tty; stty size; echo $TERM; exit 3\n")
    seen: list[bytes] = []
    with pytest.raises(CommandExitException) as ended:
        terminal.wait(on_pty=seen.append)
    assert ended.value.exit_code == 3
    output = b"".join(seen).decode()
    assert "/dev/pts/" in output and "30 100" in output and "xterm-256color" in output

    other = sandbox.pty.create(PtySize(rows=24, cols=80))
    again = sandbox.pty.connect(other.pid)
    assert sandbox.pty.kill(other.pid)
    for attached in (other, again):
        with pytest.raises(CommandExitException):
            attached.wait()
    assert not sandbox.pty.kill(other.pid)
    with pytest.raises(SandboxException, match="terminal"):
        sandbox.pty.resize(sandbox.commands.run("sleep 30", background=True).pid, PtySize(rows=2, cols=2))


@ROUTES
def test_files(e2b_server: CoveServer, sandbox: Sandbox) -> None:
    info = sandbox.files.write("notes/a.txt", "hello e2b")
    assert (info.path, info.name) == ("/home/user/notes/a.txt", "a.txt")
    assert sandbox.files.read("/home/user/notes/a.txt") == "hello e2b"
    assert sandbox.files.read("notes/a.txt", format="bytes") == b"hello e2b"
    assert e2b_server.sandbox(session_of(sandbox), "cat /home/user/notes/a.txt").stdout == "hello e2b"

    assert sandbox.files.make_dir("/home/user/notes/sub")
    assert not sandbox.files.make_dir("/home/user/notes/sub")
    entries = {entry.name: entry for entry in sandbox.files.list("/home/user/notes")}
    assert set(entries) == {"a.txt", "sub"}
    assert entries["a.txt"].size == 9 and entries["a.txt"].type is not None
    assert entries["a.txt"].type.value == "file" and entries["sub"].type.value == "dir"
    deep = [entry.path for entry in sandbox.files.list("/home/user/notes", depth=2)]
    assert "/home/user/notes/sub" in deep

    assert sandbox.files.exists("notes/a.txt")
    assert sandbox.files.get_info("notes/a.txt").owner == "user"
    moved = sandbox.files.rename("notes/a.txt", "notes/b.txt")
    assert moved.path == "/home/user/notes/b.txt"
    sandbox.files.remove("notes/b.txt")
    sandbox.files.remove("notes/b.txt")  # gone already: not an error, as in E2B
    assert not sandbox.files.exists("notes/b.txt")
    written = sandbox.files.write_files(
        [{"path": "/tmp/one.txt", "data": "1"}, {"path": "/tmp/two.bin", "data": b"\x00\x01"}]
    )
    assert [item.path for item in written] == ["/tmp/one.txt", "/tmp/two.bin"]
    assert sandbox.files.read("/tmp/two.bin", format="bytes") == b"\x00\x01"
    with pytest.raises(FileNotFoundException):
        sandbox.files.read("/tmp/none.txt")
    with pytest.raises(NotFoundException):
        sandbox.files.list("/tmp/none")


@ROUTES
def test_large_uploads_stream(e2b_server: CoveServer, sandbox: Sandbox) -> None:
    """Multipart (bytes), octet-stream of unknown length (a file object) and gzip: each streams into
    the sandbox and comes back whole."""
    data = os.urandom(6 * 1024 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    sandbox.files.write("/tmp/multipart.bin", data)
    sandbox.files.write("/tmp/octet.bin", io.BytesIO(data))
    sandbox.files.write("/tmp/gzip.bin", data, gzip=True)
    names = ("multipart", "octet", "gzip")
    listed = e2b_server.sandbox(
        session_of(sandbox), "cd /tmp && sha256sum multipart.bin octet.bin gzip.bin"
    ).stdout
    assert listed.split()[::2] == [digest] * 3, listed
    for name in names:
        assert sandbox.files.read(f"/tmp/{name}.bin", format="bytes") == data


@ROUTES
def test_watch_dir(sandbox: Sandbox) -> None:
    sandbox.files.make_dir("/tmp/watched/sub")
    shallow = sandbox.files.watch_dir("/tmp/watched")
    deep = sandbox.files.watch_dir("/tmp/watched", recursive=True)
    sandbox.files.write("/tmp/watched/a.txt", "1")
    sandbox.files.write("/tmp/watched/sub/b.txt", "2")
    sandbox.files.remove("/tmp/watched/a.txt")
    created, removed = FilesystemEventType.CREATE, FilesystemEventType.REMOVE
    seen = [(event.name, event.type) for event in shallow.get_new_events()]
    assert seen == [("a.txt", created), ("a.txt", removed)]
    seen = [(event.name, event.type) for event in deep.get_new_events()]
    assert seen == [("a.txt", created), ("sub/b.txt", created), ("a.txt", removed)]
    assert shallow.get_new_events() == []
    shallow.stop()
    with pytest.raises(SandboxException):
        shallow.get_new_events()
    deep.stop()
    with pytest.raises(SandboxException, match="not a directory"):
        sandbox.files.watch_dir("/etc/hostname")


@HEADERS_ONLY
def test_signed_file_urls(e2b_server: CoveServer, sandbox: Sandbox) -> None:
    """download_url and upload_url work with no header at all, as a browser would use them."""
    sandbox.files.write("/tmp/signed.txt", "signed")
    with httpx.Client(trust_env=False) as browser:
        download = sandbox.download_url("/tmp/signed.txt", use_signature_expiration=60)
        assert browser.get(download).content == b"signed"
        assert browser.get(sandbox.download_url("/tmp/signed.txt")).content == b"signed"  # no expiry
        upload = sandbox.upload_url("/tmp/uploaded.txt", use_signature_expiration=60)
        answer = browser.post(upload, files={"file": ("any-name", b"uploaded")})
        assert answer.status_code == 200 and answer.json()[0]["path"] == "/tmp/uploaded.txt"
        assert sandbox.files.read("/tmp/uploaded.txt") == "uploaded"

        assert browser.post(download, files={"file": ("x", b"x")}).status_code == 401  # read-only
        assert browser.get(download.replace("signed.txt", "other.txt")).status_code == 401
        expired = sandbox.download_url("/tmp/signed.txt", use_signature_expiration=-1)
        refused = browser.get(expired)
        assert refused.status_code == 401 and "expired" in refused.json()["message"]
        sandbox.kill()
        assert browser.get(download).status_code == 401


@ROUTES
def test_metadata_list_timeout_and_kill(e2b_server: CoveServer, e2b_env: None) -> None:
    tag = uuid.uuid4().hex
    first = Sandbox.create(metadata={"list-test": str(tag)})
    try:
        other = Sandbox.create(metadata={"list-test": "other"})
        other.kill()
        paginator = Sandbox.list(query=SandboxQuery(metadata={"list-test": str(tag)}))
        listed = paginator.next_items()
        assert [item.sandbox_id for item in listed] == [first.sandbox_id]
        assert listed[0].metadata == {"list-test": str(tag)}

        first.set_timeout(1000)
        info = first.get_info()
        assert 990 <= (info.end_at - info.started_at).total_seconds() <= 1100
        assert first.is_running()
        metrics = first.get_metrics()
        assert metrics and metrics[-1].mem_total > 0
        with pytest.raises(SandboxException, match="not supported"):
            first.create_snapshot()
    finally:
        assert first.kill()
    assert not first.is_running()
    assert not Sandbox.kill(first.sandbox_id)
    with pytest.raises(SandboxNotRunningException):
        first.commands.run("true")
    with pytest.raises(NotFoundException):
        Sandbox.connect(first.sandbox_id)
    answer = e2b_server.client().get(f"/v1/sessions/{session_of(first)}").json()
    assert answer["session"]["status"] == "DELETED"


@ROUTES
async def test_async_sdk(async_sandbox: AsyncSandbox) -> None:
    result = await async_sandbox.commands.run("echo async")
    assert result.stdout == "async\n"
    seen: list[bytes] = []
    terminal = await async_sandbox.pty.create(PtySize(rows=24, cols=80), on_data=seen.append)
    await async_sandbox.pty.send_stdin(terminal.pid, b"echo from-pty; exit\n")
    assert (await terminal.wait()).exit_code == 0
    assert b"from-pty" in b"".join(seen)
    terminal = await async_sandbox.pty.create(PtySize(rows=24, cols=80), on_data=seen.append)
    async with async_sandbox.pty.stream_input(terminal.pid) as typed:
        await typed.send(b"echo from-")
        await typed.send("stream; exit\n")
    assert (await terminal.wait()).exit_code == 0
    assert b"from-stream" in b"".join(seen)

    events: list[FilesystemEvent] = []
    await async_sandbox.files.make_dir("/tmp/async-watched")
    watch = await async_sandbox.files.watch_dir("/tmp/async-watched", on_event=events.append)
    await async_sandbox.files.write("/tmp/async-watched/new.txt", "x")
    for _ in range(200):  # the change arrives by the watch's next poll
        if events:
            break
        await asyncio.sleep(0.1)
    await watch.stop()
    assert [(event.name, event.type) for event in events] == [("new.txt", FilesystemEventType.CREATE)]
    await async_sandbox.files.write("/tmp/async.txt", "written")
    assert await async_sandbox.files.read("/tmp/async.txt") == "written"
    assert [entry.name for entry in await async_sandbox.files.list("/tmp") if entry.name == "async.txt"]


@ROUTES
def test_pause_and_connect(e2b_server: CoveServer, sandbox: Sandbox) -> None:
    sandbox.commands.run("echo kept > /tmp/state")
    assert sandbox.pause()
    assert not sandbox.pause()  # already paused
    assert sandbox.get_info().state.value == "paused"
    assert (
        e2b_server.client().get(f"/v1/sessions/{session_of(sandbox)}").json()["session"]["status"] == "PAUSED"
    )
    resumed = Sandbox.connect(sandbox.sandbox_id)
    assert resumed.get_info().state.value == "running"
    assert resumed.commands.run("cat /tmp/state").stdout == "kept\n"


@ROUTES
def test_errors(e2b_env: None) -> None:
    with pytest.raises(AuthenticationException):
        Sandbox.create(api_key="not-a-key")
    with pytest.raises(NotFoundException):
        Sandbox.connect("session-doesnotexist")
    with pytest.raises(SandboxException, match="not-a-template"):
        Sandbox.create("not-a-template")
    with pytest.raises(SandboxException, match="COVE_"):
        Sandbox.create(envs={"COVE_A": "b"})


@ROUTES
def test_create_time_envs_reach_every_process(e2b_env: None) -> None:
    sandbox = Sandbox.create(envs={"FROM_CREATE": "made at create", "SHADOWED": "create"})
    try:
        assert sandbox.commands.run("echo $FROM_CREATE").stdout == "made at create\n"
        assert sandbox.commands.run("echo $SHADOWED", envs={"SHADOWED": "call"}).stdout == "call\n"
        background = sandbox.commands.run("sleep 0.2; echo $FROM_CREATE", background=True)
        assert background.wait().stdout == "made at create\n"
    finally:
        sandbox.kill()


@HEADERS_ONLY
def test_envd_wire(e2b_server: CoveServer, sandbox: Sandbox) -> None:
    """What the SDK does not show: tokens, ports and errors of the envd facade, on the wire."""
    sandbox_id = sandbox.sandbox_id
    detail = httpx.get(f"{e2b_server.url}/sandboxes/{sandbox_id}", headers={"X-API-KEY": KEY_A}).json()
    envd = {"E2b-Sandbox-Id": sandbox_id, "E2b-Sandbox-Port": "49983"}
    with httpx.Client(base_url=e2b_server.url, headers=envd) as client:
        gone = client.get("/health", headers={"X-Access-Token": "wrong"})
        assert (gone.status_code, gone.json()) == (502, {"code": 502, "message": "The sandbox was not found"})
        client.headers["X-Access-Token"] = detail["envdAccessToken"]
        assert client.get("/health").status_code == 204
        assert client.get("/files").json()["code"] == 400
        closed = client.get("/health", headers={"E2b-Sandbox-Port": "8080"})
        assert closed.status_code == 502 and "port is not open" in closed.json()["message"]
        unknown = client.post("/process.Process/Nothing", json={})
        assert (unknown.status_code, unknown.json()["code"]) == (501, "unimplemented")
        torn = client.post(  # an input stream cut inside its first envelope
            "/process.Process/StreamInput",
            content=b"\x00\x00\x00\x00\x10{}",
            headers={"Content-Type": "application/connect+json"},
        )
        assert torn.status_code == 200 and b'"invalid_argument"' in torn.content
        root = client.get("/files", params={"path": "/etc/hostname", "username": "root"})
        assert root.status_code == 403


@HEADERS_ONLY
def test_get_host(e2b_server: CoveServer, sandbox: Sandbox) -> None:
    """`get_host(port)` names this server without TLS too, and it routes by that Host; the SDK's
    headers reach the same port."""
    sandbox.files.write("/tmp/site/hello.txt", "hi from a port")
    sandbox.commands.run("python3 -m http.server 8000", cwd="/tmp/site", background=True)
    host = sandbox.get_host(8000)
    with httpx.Client(base_url=e2b_server.url, timeout=60) as client:
        for _ in range(150):  # until the server in the sandbox listens
            answer = client.get("/hello.txt", headers={"Host": host})
            if answer.status_code != 502:
                break
            time.sleep(0.2)
        assert (answer.status_code, answer.text) == (200, "hi from a port")
        by_header = {"E2b-Sandbox-Id": sandbox.sandbox_id, "E2b-Sandbox-Port": "8000"}
        assert client.get("/hello.txt", headers=by_header).text == "hi from a port"

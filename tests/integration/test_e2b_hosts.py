"""The unmodified E2B SDK over host routing and HTTPS: a server with the certificate `cove e2b-cert`
makes, and a client with only E2B_DOMAIN, E2B_API_KEY and SSL_CERT_FILE set, so the SDK finds the
API at `api.{domain}` and each sandbox at `{port}-{id}.{domain}` (its HTTP stack resolves
`*.localhost` to loopback itself). `get_host(port)` is fetched with httpx, connecting to loopback and
naming the host in SNI and Host, since glibc here does not resolve `*.localhost`.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest
from e2b import Sandbox
from e2b_code_interpreter import Sandbox as CodeSandbox
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from cove.server.api.e2b.ids import SESSION_PREFIX, TAG_CHARS
from tests.integration.e2b_modes import DOMAIN, new_sandbox, point_the_sdk_at
from tests.integration.runtimes import both_runtimes, on_default_runtime
from tests.integration.server import KEY_A, KEY_B, CoveServer
from tests.integration.test_links import SOCKET_APP

# The SDK names no runtime: on gvisor, its sandboxes are made on a server whose default is gvisor.
pytestmark = both_runtimes(scope="module")
tls_server = on_default_runtime("tls_server")
WEB_PORT, SOCKET_PORT = 8000, 8001


@pytest.fixture
def sandbox(tls_server: CoveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    point_the_sdk_at(tls_server, True, monkeypatch)
    yield from new_sandbox(Sandbox, metadata={"suite": "e2b-hosts"})


def fetch(server: CoveServer, host: str, path: str = "/", **headers: str) -> httpx.Response:
    """GET `https://{host}{path}`, connecting to the server on loopback (`host` names it in SNI,
    which the certificate is checked against, and in Host, which the server routes by)."""
    with httpx.Client(verify=server.trust(), timeout=60) as client:
        return client.get(
            f"https://127.0.0.1:{server.port}{path}",
            headers={"Host": host, **headers},
            extensions={"sni_hostname": host.split(":")[0]},
        )


def test_the_sdk_over_hosts(tls_server: CoveServer, sandbox: Sandbox) -> None:
    domain = f"{DOMAIN}:{tls_server.port}"
    assert sandbox.sandbox_domain == domain
    assert sandbox.envd_api_url == f"https://49983-{sandbox.sandbox_id}.{domain}"
    assert "-" not in sandbox.sandbox_id

    result = sandbox.commands.run("echo hi; hostname")
    session_id = SESSION_PREFIX + sandbox.sandbox_id[:-TAG_CHARS]
    assert (result.exit_code, result.stdout) == (0, f"hi\n{session_id}\n")

    sandbox.files.write("/home/user/notes.txt", "over TLS")
    assert sandbox.files.read("/home/user/notes.txt") == "over TLS"
    assert tls_server.sandbox(session_id, "cat /home/user/notes.txt").stdout == "over TLS"

    with tls_server.client() as client:  # the same session through Cove's own API
        session = client.get(f"/v1/sessions/{session_id}").json()["session"]
    assert (session["status"], session["labels"]) == ("RUNNING", {"suite": "e2b-hosts"})
    assert sandbox.get_info().metadata == {"suite": "e2b-hosts"}


def test_get_host(tls_server: CoveServer, sandbox: Sandbox) -> None:
    sandbox.files.write("/tmp/site/hello.txt", "hello from the sandbox")
    sandbox.commands.run(f"python3 -m http.server {WEB_PORT}", cwd="/tmp/site", background=True)
    host = sandbox.get_host(WEB_PORT)
    assert host == f"{WEB_PORT}-{sandbox.sandbox_id}.{DOMAIN}:{tls_server.port}"
    deadline = time.monotonic() + 30
    while (
        answer := fetch(tls_server, host, "/hello.txt")
    ).status_code == 502 and time.monotonic() < deadline:
        assert "port is not open" in answer.json()["message"]
        time.sleep(0.2)
    assert (answer.status_code, answer.text) == (200, "hello from the sandbox")
    assert answer.headers["content-type"].startswith("text/plain")
    assert "hello.txt" in fetch(tls_server, host, "/?list=1").text  # the query goes on as sent

    closed = fetch(tls_server, sandbox.get_host(WEB_PORT + 1))
    assert closed.status_code == 502 and "port is not open" in closed.json()["message"]
    # A sandbox id's tag is the credential: the session's id alone, or a wrong tag, opens nothing.
    untagged = sandbox.sandbox_id[:-TAG_CHARS]
    for wrong in (untagged, untagged + "0" * TAG_CHARS):
        refused = fetch(tls_server, f"{WEB_PORT}-{wrong}.{DOMAIN}:{tls_server.port}", "/hello.txt")
        assert (refused.status_code, refused.json()["message"]) == (502, "The sandbox was not found")


def test_api_host(tls_server: CoveServer, sandbox: Sandbox) -> None:
    """`api.{domain}` is Cove's own app, E2B's control plane and the native API alike; envd's host
    still wants the sandbox's access token."""
    api = f"api.{DOMAIN}:{tls_server.port}"
    listed = fetch(tls_server, api, "/v2/sandboxes", **{"X-API-KEY": KEY_A})
    assert sandbox.sandbox_id in [item["sandboxID"] for item in listed.json()]
    assert fetch(tls_server, api, "/v2/sandboxes", **{"X-API-KEY": KEY_B}).json() == []
    assert fetch(tls_server, api, "/v1/health").status_code == 200

    envd = f"49983-{sandbox.sandbox_id}.{DOMAIN}:{tls_server.port}"
    assert fetch(tls_server, envd, "/health").status_code == 502
    detail = fetch(tls_server, api, f"/sandboxes/{sandbox.sandbox_id}", **{"X-API-KEY": KEY_A}).json()
    assert detail["domain"] == f"{DOMAIN}:{tls_server.port}"
    assert (
        fetch(tls_server, envd, "/health", **{"X-Access-Token": detail["envdAccessToken"]}).status_code == 204
    )


def test_websocket_over_host(tls_server: CoveServer, sandbox: Sandbox) -> None:
    sandbox.files.write("/tmp/sockets.py", SOCKET_APP)
    sandbox.commands.run(f"python3 /tmp/sockets.py {SOCKET_PORT}", background=True)
    host = sandbox.get_host(SOCKET_PORT)
    trust = ssl.create_default_context(cafile=str(tls_server.verify))
    deadline = time.monotonic() + 30
    while True:
        try:
            ws = connect(
                f"wss://{host}/chat?room=1",
                sock=socket.create_connection(("127.0.0.1", tls_server.port)),
                ssl=trust,
                additional_headers={"X-Token": "t1"},
            )
            break
        except InvalidStatus as refused:  # 502 until the server in the sandbox listens
            if refused.response.status_code != 502 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with ws:
        assert ws.recv(timeout=10) == "hello /chat?room=1 t1"
        ws.send("both ways")
        assert ws.recv(timeout=10) == "both ways"


def test_the_code_interpreter_over_hosts(sandbox: Sandbox) -> None:
    """E2B's code interpreter SDK reaches the interpreter at `49999-{id}.{domain}` (on linux_latest,
    its Python kernel is the standard library's)."""
    code = CodeSandbox.connect(sandbox.sandbox_id)
    code.run_code("x = 41")
    execution = code.run_code("print('over TLS'); x + 1")
    assert (execution.text, execution.logs.stdout) == ("42", ["over TLS\n"])
    context = code.create_code_context()
    assert code.run_code("'x' in globals()", context=context).text == "False"
    assert context.id in [listed.id for listed in code.list_code_contexts()]
    code.remove_code_context(context)

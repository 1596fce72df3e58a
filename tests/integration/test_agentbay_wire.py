"""The AgentBay surface at the HTTP level: what any client of the RPC style may send, and the envelope."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.integration.runtimes import both_runtimes, on_default_runtime
from tests.integration.server import KEY_A, CoveServer

server = on_default_runtime("server")
"""A raw RPC client names no runtime: on gvisor, its sessions are made on a server whose default is gvisor."""


def rpc(server: CoveServer, action: str | None, key: str | None = KEY_A, **fields: str) -> httpx.Response:
    query = {"Format": "json", "Version": "2025-05-06"} | ({"Action": action} if action else {})
    form = fields | ({"Authorization": f"Bearer {key}"} if key else {})
    # The SDK sends the configured endpoint, scheme included, as the Host header.
    headers = {"host": server.url}
    return httpx.post(f"{server.url}/", params=query, data=form, headers=headers, timeout=60)


def envelope(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["RequestId"] and body["HttpStatusCode"] == response.status_code
    return body


@both_runtimes(scope="module")
def test_a_session_through_raw_rpc(server: CoveServer) -> None:
    created = envelope(rpc(server, "CreateMcpSession", Labels=json.dumps({"wire": "raw"})))
    assert created["Success"] is True and created["Code"] == "ok"
    session_id = created["Data"]["SessionId"]
    try:
        tools = json.loads(created["Data"]["ToolList"])
        assert {"name": "shell", "server": "wuying_shell"}.items() <= tools[0].items()
        called = envelope(
            rpc(
                server,
                "CallMcpTool",
                SessionId=session_id,
                Name="shell",
                Args='{"command": "echo hi"}',
                Server="",
            )
        )
        assert called["Data"]["isError"] is False
        assert json.loads(called["Data"]["content"][0]["text"])["stdout"] == "hi\n"
        detail = envelope(rpc(server, "GetSessionDetail", SessionId=session_id))
        assert detail["Data"]["Status"] == "RUNNING"
        listed = envelope(rpc(server, "ListSession", Labels=json.dumps({"wire": "raw"}), MaxResults="5"))
        assert [s["SessionId"] for s in listed["Data"]] == [session_id] and listed["NextToken"] == ""
        assert listed["TotalCount"] == 1 and listed["MaxResults"] == 5
    finally:
        assert envelope(rpc(server, "DeleteSessionAsync", SessionId=session_id))["Success"] is True
    finished = envelope(rpc(server, "GetSessionDetail", SessionId=session_id))
    assert finished["Data"]["Status"] == "FINISH", "the SDK's delete waits for FINISH"
    gone = rpc(server, "GetSession", SessionId=session_id)
    assert gone.status_code == 400 and envelope(gone)["Code"] == "InvalidMcpSession.NotFound"


def test_the_key_may_come_in_the_query(server: CoveServer) -> None:
    """SyncContext puts Authorization in the query string; every action accepts it there."""
    response = httpx.post(
        f"{server.url}/",
        params={"Action": "ListSession", "Authorization": f"Bearer {KEY_A}"},
        data={},
        timeout=60,
    )
    assert response.status_code == 200 and envelope(response)["Success"] is True


def test_the_action_may_come_in_a_header(server: CoveServer) -> None:
    response = httpx.post(
        f"{server.url}/",
        data={"Authorization": f"Bearer {KEY_A}"},
        headers={"x-acs-action": "ListMcpTools"},
        timeout=60,
    )
    assert response.status_code == 200 and "read_file" in response.json()["Data"], "Data is a JSON string"


def test_errors_have_agentbay_shape(server: CoveServer) -> None:
    no_key = rpc(server, "ListSession", key=None)
    assert no_key.status_code == 401 and envelope(no_key)["Code"] == "InvalidApiKey"
    wrong_key = rpc(server, "ListSession", key="nope")
    assert wrong_key.status_code == 401 and envelope(wrong_key)["Success"] is False
    unknown = rpc(server, "Teleport")
    assert unknown.status_code == 400 and "Teleport" in envelope(unknown)["Message"]
    missing = rpc(server, None)
    assert missing.status_code == 400 and envelope(missing)["Code"] == "InvalidParameter"
    bad_labels = rpc(server, "CreateMcpSession", Labels="[1, 2]")
    assert bad_labels.status_code == 400 and "Labels" in envelope(bad_labels)["Message"]
    bad_json = rpc(server, "CallMcpTool", SessionId="session-x", Name="shell", Args="{not json")
    assert bad_json.status_code == 400 and "Args" in envelope(bad_json)["Message"]
    no_session = rpc(server, "GetLabel", SessionId="session-nope")
    assert envelope(no_session)["Code"] == "InvalidMcpSession.NotFound"
    later = rpc(server, "GetAdbLink", SessionId="session-x")
    assert later.status_code == 501 and envelope(later)["Code"] == "NotSupported"
    for action in ("InitBrowser", "GetCdpLink"):
        unknown_browser = rpc(server, action, SessionId="session-nope")
        assert envelope(unknown_browser)["Code"] == "InvalidMcpSession.NotFound", action
    for action in ("BindContexts", "DescribeSessionContexts", "GetAndLoadInternalContext"):
        unknown_session = rpc(server, action, SessionId="session-nope", PersistenceDataList="[]")
        assert envelope(unknown_session)["Code"] == "InvalidMcpSession.NotFound", action
    no_context = rpc(server, "GetContext", Name="no-such-context")
    assert no_context.status_code == 404 and envelope(no_context)["Code"] == "ContextNotFound"
    refused = rpc(server, "CreateMcpSession", McpPolicyId="policy-1")
    assert refused.status_code == 501 and "McpPolicyId" in envelope(refused)["Message"]
    mobile = rpc(server, "CreateMcpSession", **{"ExtraConfigs.Mobile.LockResolution": "True"})
    assert mobile.status_code == 501 and "ExtraConfigs.Mobile.LockResolution" in envelope(mobile)["Message"]
    huge = rpc(server, "CallMcpTool", SessionId="session-x", Name="write_file", Args="x" * (65 * 2**20))
    assert huge.status_code == 413 and envelope(huge)["Code"] == "PayloadTooLarge"
    page = rpc(server, "ListSession", NextToken="abc")
    assert page.status_code == 400 and "NextToken" in envelope(page)["Message"]

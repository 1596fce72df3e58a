"""Bad input from a client answers a 4xx that names the field, and leaves nothing behind.

Each request here once reached a 500; the create cases also once leaked a prepared (warm pool)
sandbox, so they check the prepared sandboxes and the tenant's live sessions around the request.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from cove import Session
from tests.integration.server import KEY_A, CoveServer

WARM_POOL = 2
"""The shared server's default warm pool size (config.py)."""


def prepared(server: CoveServer) -> set[str]:
    """The server's prepared sandboxes: containers that are not sessions yet."""
    return server.containers() - set(server.leftovers()["containers"])


def full_pool(server: CoveServer) -> set[str]:
    deadline = time.monotonic() + 60
    while len(found := prepared(server)) < WARM_POOL:
        assert time.monotonic() < deadline, f"the warm pool did not fill: {found}"
        time.sleep(0.2)
    return found


def live_sessions(api: httpx.Client) -> int:
    total: int = api.get("/v1/sessions").json()["total_count"]
    return total


def refused(response: httpx.Response, field: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "InvalidArgument"
    assert field in error["message"], error["message"]


def post_raw(api: httpx.Client, url: str, body: str) -> httpx.Response:
    """JSON as Python writes it (NaN, lone surrogates as \\ud800), which httpx's own encoder refuses."""
    return api.post(url, content=body.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resources": {"cpus": float("nan")}}, "cpus"),
        ({"resources": {"cpus": float("inf")}}, "cpus"),
        ({"resources": {"cpus": float("-inf")}}, "cpus"),
        ({"resources": {"memory_mb": float("inf")}}, "memory_mb"),
        ({"labels": {"\ud800": "x"}}, "labels"),
        ({"labels": {"team": "\udfff"}}, "labels"),
        ({"labels": {"team": "a\0b"}}, "labels"),
        ({"idle_timeout_s": 10**30}, "idle_timeout_s"),
    ],
)
def test_a_bad_create_leaves_the_warm_pool_and_quota_as_they_were(
    server: CoveServer, api: httpx.Client, body: dict[str, Any], field: str
) -> None:
    before, live = full_pool(server), live_sessions(api)
    refused(post_raw(api, "/v1/sessions", json.dumps(body)), field)
    time.sleep(0.5)  # a leaked sandbox would be replaced by a new prepared one by now
    assert prepared(server) == before
    assert live_sessions(api) == live


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "1e20"}, "page"),
        ({"page": str(10**20)}, "page"),
        ({"page": "0"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"limit": str(10**20)}, "limit"),
        ({"labels": "[" * 5000}, "labels"),
    ],
)
def test_bad_paging_on_native_lists(api: httpx.Client, params: dict[str, str], field: str) -> None:
    refused(api.get("/v1/sessions", params=params), field)


def agentbay(api: httpx.Client, action: str, **fields: str) -> httpx.Response:
    return api.post(f"/?Action={action}", data={"Authorization": f"Bearer {KEY_A}", **fields})


def agentbay_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["Code"] == "InvalidParameter" and not answer["Success"]
    assert field.lower() in answer["Message"].lower(), answer["Message"]  # AgentBay's Labels is labels


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"NextToken": str(10**20)}, "NextToken"),
        ({"NextToken": "²"}, "NextToken"),
        ({"NextToken": "٣"}, "NextToken"),
        ({"NextToken": "-1"}, "NextToken"),
        ({"NextToken": "x" * 10_000}, "NextToken"),
        ({"MaxResults": str(10**20)}, "MaxResults"),
        ({"MaxResults": "1_0"}, "MaxResults"),
        ({"Labels": "[" * 5000}, "Labels"),
    ],
)
def test_bad_paging_on_agentbay_list_session(api: httpx.Client, fields: dict[str, str], field: str) -> None:
    agentbay_refused(agentbay(api, "ListSession", **fields), field)


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        ("not json", "Labels"),
        ('["a"]', "Labels"),
        ('{"team": 1}', "Labels"),
        ('{"team": {"a": "b"}}', "Labels"),
        ('{"team": "' + "x" * 100_000 + '"}', "Labels"),
        ('{"\\ud800": "x"}', "Labels"),
        ("[" * 5000, "Labels"),
    ],
)
def test_bad_labels_on_agentbay_set_label(
    api: httpx.Client, new_session: Any, labels: str, field: str
) -> None:
    session_id = new_session()["session_id"]
    agentbay_refused(agentbay(api, "SetLabel", SessionId=session_id, Labels=labels), field)
    assert api.get(f"/v1/sessions/{session_id}/labels").json()["labels"] == {}


def test_bad_timeout_on_agentbay_create(server: CoveServer, api: httpx.Client) -> None:
    before, live = full_pool(server), live_sessions(api)
    agentbay_refused(agentbay(api, "CreateMcpSession", Timeout=str(10**17)), "idle_timeout_s")
    agentbay_refused(agentbay(api, "CreateMcpSession", Labels='{"a": "\\udfff"}'), "labels")
    assert prepared(server) == before
    assert live_sessions(api) == live


@pytest.mark.parametrize("tool", ["read_file", "write_file", "list_directory"])
def test_a_nul_in_a_tool_path_is_refused(api: httpx.Client, session: Session, tool: str) -> None:
    arguments = {"path": "/tmp/a\0b", **({"content": "x"} if tool == "write_file" else {})}
    response = api.post(f"/v1/sessions/{session.session_id}/tools/{tool}", json={"arguments": arguments})
    refused(response, "path")
    assert api.post(  # the agent is still there
        f"/v1/sessions/{session.session_id}/tools/write_file",
        json={"arguments": {"path": "/tmp/ok", "content": "ok"}},
    ).json()["result"] == {
        "content": [{"type": "text", "text": "wrote 2 bytes to /tmp/ok"}],
        "isError": False,
    }


def test_a_nul_in_a_transfer_path_is_refused(api: httpx.Client, session: Session) -> None:
    files = f"/v1/sessions/{session.session_id}/files"
    refused(api.get(files, params={"path": "/tmp/a\0b"}), "path")
    refused(api.put(files, params={"path": "/tmp/a\0b"}, content=b"data"), "path")
    refused(api.put(files, params={"path": ""}, content=b"data"), "path")
    assert api.put(files, params={"path": "/tmp/ok"}, content=b"data").status_code == 200


def test_ten_mib_of_nul_output_is_cut_to_fit_the_wire(api: httpx.Client, session: Session) -> None:
    response = api.post(
        f"/v1/sessions/{session.session_id}/tools/shell",
        json={"arguments": {"command": "head -c 10485760 /dev/zero"}},
    )
    assert response.status_code == 200, response.text[:500]
    answer = json.loads(response.json()["result"]["content"][0]["text"])
    assert answer["exit_code"] == 0
    assert answer["stdout_truncated_bytes"] > 0
    assert len(answer["stdout"]) + answer["stdout_truncated_bytes"] == 10 * 1024 * 1024


@pytest.mark.parametrize("port", ["٣٠١٠٠", "\uff13\uff10\uff11\uff10\uff10", "30100²", "²"])
def test_link_ports_are_ascii_digits_only(api: httpx.Client, session: Session, port: str) -> None:
    refused(api.get(f"/v1/sessions/{session.session_id}/link", params={"port": port}), "port")

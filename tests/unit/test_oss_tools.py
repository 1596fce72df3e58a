"""The OSS tools' own checks, before any byte moves: where the server may send requests for a session,
the arguments, credentials kept out of sight, and a call before `oss_env_init`."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.errors import InvalidArgument
from cove.sandbox.agent_client import AgentClient
from cove.sessions.oss import ObjectStorageTools, OssCredentials, OssFailed, check_destination

NO_AGENT = AgentClient(Path("/nonexistent"), "s-unit")
"""The checks answer before the sandbox is asked anything."""


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/bucket/key",
        "http://localhost/x",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://10.1.2.3/x",
        "http://[::1]:8080/x",
        "https://192.168.0.10/x",
    ],
)
def test_private_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(OssFailed, match="COVE_OSS_PRIVATE_NETWORKS"):
        check_destination(url, private_networks=False)
    check_destination(url, private_networks=True)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "http:///nohost", "gopher://x"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(OssFailed, match="not an http"):
        check_destination(url, private_networks=True)


def test_a_public_address_is_allowed() -> None:
    check_destination("https://8.8.8.8/bucket/key?X-Amz-Signature=x", private_networks=False)


def test_arguments_and_a_call_before_env_init() -> None:
    tools = ObjectStorageTools(private_networks=False)
    with pytest.raises(InvalidArgument, match="bucket is required"):
        tools.call("s-1", NO_AGENT, "oss_upload", {"object": "o", "path": "/p"})
    with pytest.raises(InvalidArgument, match="unknown argument 'size'"):
        tools.call("s-1", NO_AGENT, "oss_download", {"bucket": "b", "object": "o", "path": "/p", "size": "1"})
    early = tools.call("s-1", NO_AGENT, "oss_upload", {"bucket": "b", "object": "o", "path": "/p"})
    assert early["isError"] and "call oss_env_init first" in early["content"][0]["text"]
    refused = tools.call(
        "s-1",
        NO_AGENT,
        "oss_env_init",
        {"access_key_id": "k", "access_key_secret": "s", "endpoint": "127.0.0.1:9000"},
    )
    assert refused["isError"] and "127.0.0.1" in refused["content"][0]["text"]


def test_credentials_stay_out_of_answers_and_reprs() -> None:
    tools = ObjectStorageTools(private_networks=True)
    arguments = {
        "access_key_id": "AK",
        "access_key_secret": "very-secret",
        "security_token": "tok",
        "endpoint": "s3.example.com",
    }
    answer = tools.call("s-1", NO_AGENT, "oss_env_init", arguments)
    assert not answer["isError"] and "very-secret" not in str(answer) and "tok" not in str(answer)
    assert "https://s3.example.com" in answer["content"][0]["text"]  # host names mean https, as on AgentBay
    assert "very-secret" not in repr(OssCredentials("AK", "very-secret", "tok", "", "us-east-1"))
    tools.forget("s-1")
    again = tools.call("s-1", NO_AGENT, "oss_download", {"bucket": "b", "object": "o", "path": "/p"})
    assert again["isError"] and "oss_env_init first" in again["content"][0]["text"]

"""The OSS tools through Cove's SDK (sync and async) against a real S3 server (moto's), and their errors:
no env_init, bad credentials (a moto that checks signatures), a missing bucket, file or argument.
The official SDK's `session.oss`: test_agentbay_sdk.py::test_oss."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cove import AsyncSession, Session
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import CoveServer
from tests.s3 import REGION, S3Server

OSS_TOOLS = {"oss_env_init", "oss_upload", "oss_download", "oss_upload_annon", "oss_download_annon"}


@pytest.fixture(scope="module")
def checking_s3() -> Iterator[S3Server]:
    """A moto server that accepts only the key it made."""
    with S3Server(authenticate=True) as started:
        yield started


@BOTH_RUNTIMES
def test_upload_and_download_both_ways(session: Session, server: CoveServer, s3_server: S3Server) -> None:
    bucket, client = s3_server.new_bucket(), s3_server.client()
    assert {tool.name for tool in session.list_mcp_tools().tools} >= OSS_TOOLS
    init = session.oss.env_init(
        s3_server.access_key_id, s3_server.secret_access_key, endpoint=s3_server.endpoint, region=REGION
    )
    assert init.success and init.client_config == {"endpoint": s3_server.endpoint, "region": REGION}
    assert session.file_system.write_file("/home/user/note.txt", "hello oss").success
    uploaded = session.oss.upload(bucket, "notes/note.txt", "/home/user/note.txt")
    assert uploaded.success, uploaded.error_message
    assert client.get_object(Bucket=bucket, Key="notes/note.txt")["Body"].read() == b"hello oss"

    client.put_object(Bucket=bucket, Key="from/store.txt", Body=b"from the store")
    downloaded = session.oss.download(bucket, "from/store.txt", "/home/user/in/store.txt")
    assert downloaded.success, downloaded.error_message
    assert session.file_system.read_file("/home/user/in/store.txt").content == "from the store"

    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "from/store.txt"})
    assert session.oss.download_anonymous(url, "/home/user/anon/").success
    assert session.file_system.read_file("/home/user/anon/store.txt").content == "from the store"


@BOTH_RUNTIMES
async def test_async_sdk(async_session: AsyncSession, s3_server: S3Server) -> None:
    bucket, client = s3_server.new_bucket(), s3_server.client()
    init = await async_session.oss.env_init("any", "any", endpoint=s3_server.endpoint)
    assert init.success, init.error_message
    assert (await async_session.file_system.write_file("/home/user/a.txt", "async")).success
    assert (await async_session.oss.upload(bucket, "a.txt", "/home/user/a.txt")).success
    url = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "b.txt"})
    assert (await async_session.oss.upload_anonymous(url, "/home/user/a.txt")).success
    assert client.get_object(Bucket=bucket, Key="b.txt")["Body"].read() == b"async"
    back = await async_session.oss.download(bucket, "b.txt", "/home/user/b.txt")
    assert back.success and (await async_session.file_system.read_file("/home/user/b.txt")).content == "async"


@BOTH_RUNTIMES
def test_errors_are_clear(session: Session, s3_server: S3Server, checking_s3: S3Server) -> None:
    bucket = checking_s3.new_bucket()
    assert session.file_system.write_file("/home/user/f.txt", "x").success
    wrong_secret = checking_s3.secret_access_key + "x"
    assert session.oss.env_init(
        checking_s3.access_key_id, wrong_secret, endpoint=checking_s3.endpoint
    ).success
    refused = session.oss.upload(bucket, "f.txt", "/home/user/f.txt")
    assert not refused.success and "SignatureDoesNotMatch" in refused.error_message, refused.error_message
    assert session.oss.env_init("AKIAUNKNOWN", "secret", endpoint=checking_s3.endpoint).success
    unknown = session.oss.upload(bucket, "f.txt", "/home/user/f.txt")
    assert not unknown.success and "InvalidAccessKeyId" in unknown.error_message

    good = session.oss.env_init(
        checking_s3.access_key_id, checking_s3.secret_access_key, endpoint=checking_s3.endpoint
    )
    assert good.success
    assert session.oss.upload(bucket, "f.txt", "/home/user/f.txt").success
    no_file = session.oss.upload(bucket, "g.txt", "/home/user/missing.txt")
    assert not no_file.success and "missing.txt" in no_file.error_message
    no_key = session.oss.download(bucket, "missing", "/home/user/m.txt")
    assert not no_key.success and "NoSuchKey" in no_key.error_message
    bad_url = session.oss.download_anonymous(f"{s3_server.endpoint}/{bucket}/none", "/home/user/n")
    assert not bad_url.success and "HTTP 404" in bad_url.error_message
    not_http = session.oss.download_anonymous("file:///etc/passwd", "/home/user/p")
    assert not not_http.success and "not an http" in not_http.error_message
    wrong = session.call_mcp_tool("oss_upload", {"bucket": 1, "object": "o", "path": "/p"})
    assert not wrong.success and "bucket must be a string" in wrong.error_message

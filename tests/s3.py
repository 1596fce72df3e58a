"""A real S3-compatible server for the tests: moto's server (`moto[server]`, a dev dependency) in a child
process on a free loopback port.

With `authenticate`, moto checks every request's signature against the IAM key it made at the start,
so bad credentials fail as they would on a real store; moto cannot check presigned URLs then, so the
tests that use them run against a server without it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import boto3
import httpx

from cove.contexts.s3_storage import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

START_TIMEOUT_S = 60
REGION = "us-east-1"
_UNSIGNED_ACTIONS = 3
"""Requests moto takes without a signature: making the IAM user, its key and its policy."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class S3Server:
    """`moto_server` on 127.0.0.1; `access_key_id` and `secret_access_key` are accepted by it."""

    def __init__(self, authenticate: bool = False) -> None:
        self.port = _free_port()
        self.authenticate = authenticate
        self.access_key_id, self.secret_access_key = "cove-test", "cove-test-secret"
        self.process: subprocess.Popen[bytes] | None = None
        self._client: S3Client | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> S3Server:
        env = dict(os.environ)
        if self.authenticate:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(_UNSIGNED_ACTIONS)
        moto = Path(sys.executable).with_name("moto_server")
        self.process = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_until_up()
            if self.authenticate:
                self._make_key()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}")
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"moto_server did not start in {START_TIMEOUT_S} s")

    def _make_key(self) -> None:
        iam = boto3.session.Session().client(
            "iam",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        iam.create_user(UserName="cove")
        key = iam.create_access_key(UserName="cove")["AccessKey"]
        allow_all = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="cove", PolicyName="all", PolicyDocument=json.dumps(allow_all))
        self.access_key_id, self.secret_access_key = key["AccessKeyId"], key["SecretAccessKey"]

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def client(self) -> S3Client:
        """One client for the server's key, made once (making one takes boto3 a good half second)."""
        if self._client is None:
            self._client = s3_client(
                self.endpoint, REGION, self.access_key_id, self.secret_access_key, path_style=True
            )
        return self._client

    def new_bucket(self) -> str:
        name = f"cove-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def cove_settings(self, bucket: str) -> dict[str, object]:
        """Settings of a Cove server whose contexts live in `bucket` here."""
        return {
            "storage_backend": "s3",
            "s3_endpoint_url": self.endpoint,
            "s3_bucket": bucket,
            "s3_region": REGION,
            "s3_access_key_id": self.access_key_id,
            "s3_secret_access_key": self.secret_access_key,
            "s3_path_style": "true",
        }

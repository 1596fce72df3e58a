"""The S3-compatible context storage: context `ctx-...` is the objects under `PREFIX/ctx-.../`.

S3 shows an object only once its PUT, or its multipart upload, completes: a file is never visible
half-written, and uploads in progress are not listed. Bytes go up a part at a time (`PART_BYTES`),
so no file is held whole in memory. S3 has no folders: a folder is the common prefix of its files,
there from its first file to its last, with no times of its own (the epoch is shown).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cove.contexts.storage import (
    CHUNK_BYTES,
    PendingFile,
    StoredFile,
    check_context_id,
    clean_path,
    write_all,
)
from cove.errors import (
    CoveError,
    FileNotFound,
    InvalidArgument,
    InvalidState,
    PayloadTooLarge,
    UpstreamError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

PART_BYTES = 8 * 1024 * 1024
"""A multipart upload's part size: S3 wants at least 5 MiB and at most 10,000 parts (so 80 GiB)."""
MAX_PARTS = 10_000
MAX_KEY_BYTES = 1024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MISSING = ("NoSuchKey", "404", "NotFound")


def s3_client(
    endpoint_url: str,
    region: str,
    access_key_id: str = "",
    secret_access_key: str = "",
    session_token: str = "",
    path_style: bool = False,
) -> S3Client:
    """A client of an S3-compatible store; empty keys mean boto3's own lookup (AWS_* variables, roles).

    Checksums are sent and checked only where S3 requires them: many S3-compatible servers refuse
    the newer default ones.
    """
    config = Config(
        s3={"addressing_style": "path" if path_style else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or "us-east-1",
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        aws_session_token=session_token or None,
        config=config,
    )


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def store_failed(error: Exception, where: str) -> CoveError:
    """A clear error for a failed S3 call: what the store said, and where."""
    if isinstance(error, ClientError):
        code = error_code(error)
        said = error.response.get("Error", {}).get("Message", "") or code
        hint = {
            "NoSuchBucket": "the bucket does not exist",
            "InvalidAccessKeyId": "the access key is not known there",
            "SignatureDoesNotMatch": "the secret does not match the access key",
            "AccessDenied": "the credentials may not do this",
            "InvalidBucketName": "the bucket's name is not valid",
        }.get(code, said)
        return UpstreamError(f"{where} refused: {code}: {hint}")
    return UpstreamError(f"{where} could not be reached: {error}")


class ObjectWriter:
    """An object being written: one PUT if it fits in a part, else a multipart upload; it appears on
    `commit` (after `check`, if given, approves the place) and never if `abort`ed."""

    def __init__(
        self, client: S3Client, bucket: str, key: str, check: Callable[[], None] | None = None
    ) -> None:
        self._client, self._bucket, self._key, self._check = client, bucket, key, check
        self._buffer = bytearray()
        self._upload_id = ""
        self._parts: list[CompletedPartTypeDef] = []
        self._size = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        self._size += len(chunk)
        while len(self._buffer) >= PART_BYTES:
            self._send_part(bytes(self._buffer[:PART_BYTES]))
            del self._buffer[:PART_BYTES]

    def _send_part(self, body: bytes) -> None:
        if not self._upload_id:
            started = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
            self._upload_id = started["UploadId"]
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise PayloadTooLarge(f"a file in S3 is at most {MAX_PARTS * PART_BYTES // 2**30} GiB")
        sent = self._client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def commit(self) -> int:
        try:
            if self._check is not None:
                self._check()
            if not self._upload_id:
                self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
            else:
                if self._buffer:
                    self._send_part(bytes(self._buffer))
                self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
            self._done = True
            return self._size
        finally:
            self.abort()

    def abort(self) -> None:
        self._buffer.clear()
        if not self._done and self._upload_id:
            with contextlib.suppress(ClientError, BotoCoreError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )
        self._done = True


class S3Storage:
    """Contexts as objects under `prefix` in `bucket`. Every call's S3 failure is a 502 UpstreamError."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "contexts") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._where = f"the context storage (bucket {bucket!r})"

    def check(self) -> None:
        """Fail now, clearly, if the bucket cannot be reached with these settings."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError) and error_code(error) in _MISSING:
                raise UpstreamError(f"{self._where} refused: the bucket does not exist; create it") from None
            raise store_failed(error, self._where) from None

    def _top(self, context_id: str) -> str:
        check_context_id(context_id)
        return f"{self.prefix}{context_id}/"

    def _key(self, context_id: str, names: tuple[str, ...]) -> str:
        key = self._top(context_id) + "/".join(names)
        try:
            size = len(key.encode())
        except UnicodeEncodeError:
            raise InvalidArgument("path must be valid UTF-8 to be kept in S3") from None
        if size > MAX_KEY_BYTES:
            raise InvalidArgument(f"path is too long for S3 (keys are at most {MAX_KEY_BYTES} bytes)")
        return key

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error_code(error) in _MISSING:
                return False
            raise
        return True

    def _has_below(self, key: str) -> bool:
        found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key + "/", MaxKeys=1)
        return bool(found.get("KeyCount") or found.get("Contents"))

    def _check_place(self, context_id: str, names: tuple[str, ...]) -> None:
        """As in a folder: no file where a folder of the path is, no file over a folder."""
        for depth in range(1, len(names)):
            if self._exists(self._key(context_id, names[:depth])):
                raise InvalidArgument(f"{names[depth - 1]!r} in the path is not a folder of the context")
        if self._has_below(self._key(context_id, names)):
            raise InvalidState(f"{names[-1]!r} is a folder in the context; delete it first")

    def open_upload(self, context_id: str, path: str) -> PendingFile:
        names = clean_path(path)
        key = self._key(context_id, names)
        return _Translated(
            ObjectWriter(self.client, self.bucket, key, lambda: self._check_place(context_id, names)),
            self._where,
        )

    def put(self, context_id: str, path: str, chunks: Iterable[bytes]) -> int:
        return write_all(self.open_upload(context_id, path), chunks)

    def open_download(self, context_id: str, path: str) -> tuple[int, Iterator[bytes]]:
        key = self._key(context_id, clean_path(path))
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error_code(error) in _MISSING:
                raise FileNotFound(f"no file {path!r} in the context") from None
            raise store_failed(error, self._where) from None
        except BotoCoreError as error:
            raise store_failed(error, self._where) from None
        body = found["Body"]
        return found["ContentLength"], self._chunks(body.iter_chunks(CHUNK_BYTES), body.close)

    def _chunks(self, chunks: Iterator[bytes], close: Callable[[], None]) -> Iterator[bytes]:
        try:
            yield from chunks
        except (ClientError, BotoCoreError) as error:
            raise store_failed(error, self._where) from None
        finally:
            close()

    def list(self, context_id: str, parent: str) -> list[StoredFile]:
        names = clean_path(parent, "parent folder path", allow_top=True)
        prefix = self._key(context_id, names) + "/" if names else self._top(context_id)
        shown = "/" + "".join(f"{name}/" for name in names)
        found: list[StoredFile] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                for folder in page.get("CommonPrefixes", []):
                    name = folder["Prefix"][len(prefix) :].rstrip("/")
                    if name:
                        found.append(StoredFile(shown + name, name, True, 0, EPOCH, EPOCH))
                for item in page.get("Contents", []):
                    name = item["Key"][len(prefix) :]
                    if name:  # not a folder marker other tools may leave
                        moment = item["LastModified"].astimezone(UTC)
                        found.append(StoredFile(shown + name, name, False, item["Size"], moment, moment))
            if not found and names and self._exists(prefix[:-1]):
                raise InvalidArgument(f"{names[-1]!r} in the path is not a folder of the context")
        except (ClientError, BotoCoreError) as error:
            raise store_failed(error, self._where) from None
        if not found and names:
            raise FileNotFound(f"no folder {names[-1]!r} in the context")
        return sorted(found, key=lambda item: item.name)

    def delete(self, context_id: str, path: str) -> None:
        key = self._key(context_id, clean_path(path))
        try:
            if self._exists(key):
                self.client.delete_object(Bucket=self.bucket, Key=key)
                return
            deleted = self._delete_below(key + "/")
        except (ClientError, BotoCoreError) as error:
            raise store_failed(error, self._where) from None
        if not deleted:
            raise FileNotFound(f"no file {path!r} in the context")

    def delete_all(self, context_id: str) -> None:
        """Every object of the context, and any multipart upload to it a crash left behind."""
        top = self._top(context_id)
        try:
            self._delete_below(top)
            uploads = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=top
            )
            for page in uploads:
                for upload in page.get("Uploads", []):
                    if upload["Key"].startswith(top):
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
        except (ClientError, BotoCoreError) as error:
            raise store_failed(error, self._where) from None

    def _delete_below(self, prefix: str) -> int:
        count = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys: list[ObjectIdentifierTypeDef] = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": keys, "Quiet": True},
                )
                if answer.get("Errors"):
                    first = answer["Errors"][0]
                    raise UpstreamError(
                        f"{self._where} did not delete {first.get('Key')}: {first.get('Message')}"
                    )
                count += len(keys)
        return count


class _Translated:
    """A PendingFile whose S3 failures are clear UpstreamErrors."""

    def __init__(self, writer: ObjectWriter, where: str) -> None:
        self._writer, self._where = writer, where

    def write(self, chunk: bytes) -> None:
        try:
            self._writer.write(chunk)
        except (ClientError, BotoCoreError) as error:
            raise store_failed(error, self._where) from None

    def commit(self) -> int:
        try:
            return self._writer.commit()
        except (ClientError, BotoCoreError) as error:
            raise store_failed(error, self._where) from None

    def abort(self) -> None:
        self._writer.abort()

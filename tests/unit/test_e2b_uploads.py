"""envd upload bodies parsed as streams (server/api/e2b/uploads.py), however the body is cut."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cove.errors import InvalidArgument
from cove.server.api.e2b.uploads import INFLATED_CHUNK_BYTES, multipart_files, octet_stream_file

PATHS = st.text(st.characters(min_codepoint=0x20, exclude_characters='"\\'), min_size=1, max_size=20)
"""Paths as the SDK's multipart encoder sends them unchanged (it escapes quotes and control bytes)."""


async def pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A body as the E2B SDK makes it (httpx's multipart encoder)."""
    request = httpx.Request("POST", "http://x/files", files=[("file", file) for file in files])
    return request.read(), request.headers["content-type"]


async def collected(body: bytes, content_type: str, size: int) -> list[tuple[str | None, bytes]]:
    found = []
    async for file in multipart_files(pieces(body, size), content_type):
        found.append((file.filename, b"".join([chunk async for chunk in file.chunks])))
    return found


@settings(max_examples=40, deadline=None)
@given(
    files=st.lists(st.tuples(PATHS, st.binary(max_size=3000)), min_size=1, max_size=3),
    size=st.integers(min_value=1, max_value=4096),
)
async def test_multipart_files_whatever_the_chunks(files: list[tuple[str, bytes]], size: int) -> None:
    body, content_type = multipart(files)
    assert await collected(body, content_type, size) == files


async def test_multipart_other_fields_are_skipped() -> None:
    request = httpx.Request("POST", "http://x/", data={"note": "x"}, files=[("file", ("/a", b"A"))])
    assert await collected(request.read(), request.headers["content-type"], 7) == [("/a", b"A")]


async def test_multipart_cut_short() -> None:
    body, content_type = multipart([("/a", b"x" * 1000)])
    with pytest.raises(InvalidArgument, match="ended inside a part"):
        await collected(body[:500], content_type, 100)
    with pytest.raises(InvalidArgument, match="boundary"):
        await collected(body, "multipart/form-data", 100)


async def test_octet_stream() -> None:
    plain = octet_stream_file(pieces(b"abc", 1), "3", None)
    assert plain.size == 3 and b"".join([chunk async for chunk in plain.chunks]) == b"abc"
    data = bytes(range(256)) * 1000
    packed = octet_stream_file(pieces(gzip.compress(data), 1000), "99", "gzip")
    assert packed.size is None and b"".join([chunk async for chunk in packed.chunks]) == data
    zeros = octet_stream_file(pieces(gzip.compress(bytes(20 * 1024 * 1024)), 64 * 1024), None, "gzip")
    sizes = [len(chunk) async for chunk in zeros.chunks]
    assert sum(sizes) == 20 * 1024 * 1024 and max(sizes) <= INFLATED_CHUNK_BYTES
    cut = octet_stream_file(pieces(gzip.compress(data)[:-20], 1000), None, "gzip")
    with pytest.raises(InvalidArgument, match="gzip"):
        [chunk async for chunk in cut.chunks]
    with pytest.raises(InvalidArgument, match="br"):
        octet_stream_file(pieces(b"", 1), None, "br")

"""envd's `POST /files` bodies as streams of files: each file's bytes go on to the sandbox as they
arrive, so a large upload holds no more than a request chunk in the server's memory.

Two shapes come: multipart/form-data (every SDK; one part named `file` per file, its filename the
target path), parsed incrementally with python-multipart's push parser; and, from envd 0.5.7 on, a
raw application/octet-stream body for one file, gzip-compressed when the SDK is asked to.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header

from cove.errors import InvalidArgument

INFLATED_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class IncomingFile:
    """One file of an upload: where the client says it goes, its size if known before its end, and
    its bytes (read once, in order, before the next file)."""

    filename: str | None
    size: int | None
    chunks: AsyncIterator[bytes]


def octet_stream_file(
    body: AsyncIterator[bytes], content_length: str | None, content_encoding: str | None
) -> IncomingFile:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        return IncomingFile(None, None, _gunzipped(body))
    if encoding != "identity":
        raise InvalidArgument(f"Content-Encoding {encoding!r} is not supported; send gzip or none")
    size = int(content_length) if content_length and content_length.isdigit() else None
    return IncomingFile(None, size, body)


async def _gunzipped(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The body inflated, at most INFLATED_CHUNK_BYTES at a time, however well a chunk compresses."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        async for chunk in body:
            pending = chunk
            while pending:
                data = inflater.decompress(pending, INFLATED_CHUNK_BYTES)
                pending = inflater.unconsumed_tail
                if data:
                    yield data
        if tail := inflater.flush():
            yield tail
    except zlib.error as error:
        raise InvalidArgument(f"the gzip body is not valid: {error}") from None
    if not inflater.eof:
        raise InvalidArgument("the gzip body ended before its end")


async def multipart_files(body: AsyncIterator[bytes], content_type: str) -> AsyncIterator[IncomingFile]:
    """The body's parts named `file`, in order; other parts are read past."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidArgument("a multipart upload needs a boundary in its Content-Type")
    parts = _MultipartEvents(body, boundary)
    while (headers := await parts.next_part()) is not None:
        disposition, fields = parse_options_header(headers.get("content-disposition"))
        if disposition != b"form-data" or fields.get(b"name") != b"file":
            async for _ in parts.part_data():
                pass
            continue
        filename = fields.get(b"filename")
        yield IncomingFile(filename.decode() if filename else None, None, parts.part_data())


class _MultipartEvents:
    """The push parser's callbacks turned into pulls: each request chunk is fed only when the events
    of the one before are taken."""

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes) -> None:
        self.body = aiter(body)
        self.events: deque[tuple[str, bytes]] = deque()
        self.header = [b"", b""]
        self.headers: dict[str, str] = {}
        self.parts: deque[dict[str, str]] = deque()
        """Headers of the parts parsed and not yet taken (one chunk may hold several)."""
        self.ended = False
        self.parser = MultipartParser(
            boundary,
            {
                "on_header_field": lambda data, start, end: self._add_header(0, data[start:end]),
                "on_header_value": lambda data, start, end: self._add_header(1, data[start:end]),
                "on_header_end": self._end_header,
                "on_headers_finished": self._end_headers,
                "on_part_data": lambda data, start, end: self.events.append(("data", data[start:end])),
                "on_part_end": lambda: self.events.append(("end", b"")),
            },
        )

    def _add_header(self, index: int, data: bytes) -> None:
        self.header[index] += data

    def _end_header(self) -> None:
        self.headers[self.header[0].decode("latin-1").lower()] = self.header[1].decode("latin-1")
        self.header = [b"", b""]

    def _end_headers(self) -> None:
        self.parts.append(self.headers)
        self.headers = {}
        self.events.append(("part", b""))

    async def _next(self) -> tuple[str, bytes] | None:
        while not self.events:
            if self.ended:
                return None
            try:
                chunk = await anext(self.body)
            except StopAsyncIteration:
                self.ended = True
                self.parser.finalize()
                continue
            try:
                self.parser.write(chunk)
            except ValueError as error:  # python-multipart's parse errors are ValueErrors
                raise InvalidArgument(f"the multipart body is not valid: {error}") from None
        return self.events.popleft()

    async def next_part(self) -> dict[str, str] | None:
        """The next part's headers, or None at the end of the body."""
        while (event := await self._next()) is not None:
            if event[0] == "part":
                return self.parts.popleft()
        return None

    async def part_data(self) -> AsyncIterator[bytes]:
        while (event := await self._next()) is not None:
            if event[0] == "end":
                return
            if event[1]:
                yield event[1]
        raise InvalidArgument("the multipart body ended inside a part")

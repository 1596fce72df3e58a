"""Streamed file transfers that stop moving are ended, so a stalled client cannot hold a transfer
(a connection to the sandbox's agent, a buffer, a task) for ever: `transfer_stall_timeout_s`.

Back-pressure keeps a transfer's memory small (the agent client reads only as fast as the body is
drained), which is what lets a client stall; these time limits bound how long it may.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.responses import StreamingResponse
from starlette.types import Message, Send

from cove.errors import CoveError


class TransferStalled(CoveError):
    code = "TransferStalled"
    http_status = 408


async def within_stalls(chunks: AsyncIterator[bytes], stall_timeout_s: float) -> AsyncGenerator[bytes]:
    """The client's upload body, failing with 408 if no chunk comes for `stall_timeout_s`."""
    iterator = aiter(chunks)
    while True:
        try:
            async with asyncio.timeout(stall_timeout_s):  # no task per chunk, as wait_for makes
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise TransferStalled(
                f"the upload sent nothing for {stall_timeout_s:g} s; send it again"
            ) from None
        yield chunk


class StallGuardedResponse(StreamingResponse):
    """A download whose client must take each chunk within `stall_timeout_s`; one that stops reading
    has its connection cut, and the transfer from the sandbox ends with it."""

    def __init__(self, body: AsyncGenerator[bytes], size: int, stall_timeout_s: float) -> None:
        super().__init__(body, media_type="application/octet-stream", headers={"Content-Length": str(size)})
        self.chunks = body
        self.stall_timeout_s = stall_timeout_s

    async def stream_response(self, send: Send) -> None:
        async def send_in_time(message: Message) -> None:
            try:
                async with asyncio.timeout(self.stall_timeout_s):
                    await send(message)
            except TimeoutError:
                raise TransferStalled(
                    f"the client took nothing of the download for {self.stall_timeout_s:g} s"
                ) from None

        try:
            await super().stream_response(send_in_time)
        finally:
            await self.chunks.aclose()  # hangs up on the agent now, not when the generator is collected

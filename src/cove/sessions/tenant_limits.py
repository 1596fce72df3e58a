"""How many tool calls each tenant may have running at once, so that one tenant cannot take them all.

A tool call holds a server thread and a connection to a sandbox for as long as its command runs (up
to the longest command timeout). Without a bound per API key, one tenant's parallel `sleep`s would
take every thread the server runs tool calls on and the other tenants' calls would queue behind them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cove.errors import QuotaExceeded


class TenantToolCalls:
    """Counts the tool calls in flight per tenant; past `limit` a new one is refused at once (429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, tenant_id: str) -> Iterator[None]:
        """Hold one of the tenant's slots for the duration of a call; refused rather than queued, so
        that a caller learns at once and a waiting call holds no thread."""
        with self._lock:
            running = self._running.get(tenant_id, 0)
            if running >= self.limit:
                raise QuotaExceeded(
                    f"this API key already has {running} tool calls running, the limit is {self.limit} "
                    "(COVE_TENANT_TOOL_CALLS); wait for one to finish and try again, or start long "
                    "commands with process_start, which answers at once"
                )
            self._running[tenant_id] = running + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._running[tenant_id] - 1
                if left:
                    self._running[tenant_id] = left
                else:
                    del self._running[tenant_id]

"""Sandboxes prepared ahead of time, so that creating a session only has to start one.

A prepared sandbox is created and started, its tool agent running with the shell tool loaded
(RuncRuntime.prepare): a create with the default image takes one and only sets what it asks for
(network policy, and limits, screen and environment if not the defaults), so its first call is
answered at once. Other images prepare their own. Prepared sandboxes have no
row, so a crash leaves them to the start-up sweep.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cove.sandbox.images import Image
from cove.sandbox.oci_spec import Limits
from cove.sandbox.runtime import RuncRuntime

log = logging.getLogger(__name__)
RETRY_AFTER_FAILURE_S = 30.0


class WarmPool:
    def __init__(
        self, runtime: RuncRuntime, image: Image, limits: Limits, size: int, new_id: Callable[[], str]
    ) -> None:
        self.runtime = runtime
        self.image = image
        self.limits = limits
        self.size = size
        self.new_id = new_id
        self._ready: list[str] = []
        self._changed = threading.Condition()
        self._closed = False
        self._filler = threading.Thread(target=self._fill_forever, name="warm-pool", daemon=True)

    def start(self) -> None:
        if self.size > 0:
            self._filler.start()

    def take(self, image: Image) -> str | None:
        """A prepared sandbox's id if one of this image is ready, else None."""
        if image.image_id != self.image.image_id:
            return None
        with self._changed:
            if not self._ready:
                return None
            session_id = self._ready.pop(0)
            self._changed.notify_all()
            return session_id

    def give_back(self, session_id: str) -> None:
        """Return a sandbox taken by a create that was then refused (quota)."""
        with self._changed:
            if not self._closed:
                self._ready.append(session_id)
                return
        self.runtime.destroy(session_id)

    def close(self) -> None:
        """Stop filling and remove every prepared sandbox."""
        with self._changed:
            self._closed = True
            leftovers, self._ready = self._ready, []
            self._changed.notify_all()
        if self._filler.is_alive():
            self._filler.join(timeout=60)
        for session_id in leftovers:
            self.runtime.destroy(session_id)

    def _fill_forever(self) -> None:
        while True:
            with self._changed:
                while not self._closed and len(self._ready) >= self.size:
                    self._changed.wait()
                if self._closed:
                    return
            session_id = self.new_id()
            try:
                self.runtime.prepare(session_id, self.image, self.limits)
            except Exception:
                log.exception("could not prepare a warm sandbox; retrying in %ss", RETRY_AFTER_FAILURE_S)
                with self._changed:
                    self._changed.wait(timeout=RETRY_AFTER_FAILURE_S)
                continue
            with self._changed:
                if self._closed:
                    break
                self._ready.append(session_id)
        self.runtime.destroy(session_id)

"""Sandboxes prepared ahead of time, so that creating a session only has to start one.

A prepared sandbox is created and started, its tool agent running with the shell tool loaded
(RuncRuntime.prepare): a create with the default image takes one and only sets what it asks for
(network policy, and limits, screen and environment if not the defaults), so its first call is
answered at once. Other images prepare their own.

The pool holds `size` sandboxes, or more while creates come faster than it refills: each create
that finds it empty raises its target by one, up to `max_size`, and a minute without such a miss
lowers it by one again (an extra prepared sandbox is removed). Filling is one thread, one sandbox
at a time, so it never holds up a create beyond sharing the machine. Prepared sandboxes have no
row, so a crash leaves them to the start-up sweep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cove.sandbox.images import Image
from cove.sandbox.oci_spec import Limits
from cove.sandbox.runtime import RuncRuntime

log = logging.getLogger(__name__)
RETRY_AFTER_FAILURE_S = 30.0
SHRINK_AFTER_S = 60.0
"""A pool above its size goes down by one sandbox after this long without a create finding it empty."""


class WarmPool:
    def __init__(
        self,
        runtime: RuncRuntime,
        image: Image,
        limits: Limits,
        size: int,
        new_id: Callable[[], str],
        max_size: int | None = None,
    ) -> None:
        self.runtime = runtime
        self.image = image
        self.limits = limits
        self.size = size
        self.max_size = max(size, max_size or 0)
        self.target = size
        """How many sandboxes the pool fills up to now: from `size` to `max_size`."""
        self.new_id = new_id
        self._last_miss = time.monotonic()
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
                self._last_miss = time.monotonic()
                if self.size > 0 and self.target < self.max_size:
                    self.target += 1
                    self._changed.notify_all()
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

    def _shrink(self) -> str | None:
        """Lower the target by one if no create found the pool empty for a while; answers a ready
        sandbox over the new target, for the caller to remove. Called with the lock held."""
        if self.target > self.size and time.monotonic() - self._last_miss >= SHRINK_AFTER_S:
            self.target -= 1
            self._last_miss = time.monotonic()
            if len(self._ready) > self.target:
                return self._ready.pop()
        return None

    def _fill_forever(self) -> None:
        while True:
            extra = None
            with self._changed:
                while not self._closed and len(self._ready) >= self.target:
                    if (extra := self._shrink()) is not None:
                        break
                    self._changed.wait(timeout=SHRINK_AFTER_S if self.target > self.size else None)
                if self._closed:
                    return
            if extra is not None:
                self.runtime.destroy(extra)
                continue
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

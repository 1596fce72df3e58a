"""The warm pool's size: it grows while creates find it empty, and shrinks back when they stop."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest

from cove.sandbox.images import Image
from cove.sandbox.oci_spec import Limits
from cove.sandbox.runtime import RuncRuntime
from cove.sessions import warm_pool
from cove.sessions.warm_pool import WarmPool


class FakeRuntime:
    def __init__(self) -> None:
        self.prepared: list[str] = []
        self.destroyed: list[str] = []
        self.lock = threading.Lock()

    def prepare(self, session_id: str, image: Any, limits: Any) -> None:
        with self.lock:
            self.prepared.append(session_id)

    def destroy(self, session_id: str) -> None:
        with self.lock:
            self.destroyed.append(session_id)


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def make_pool(runtime: FakeRuntime, size: int, max_size: int) -> WarmPool:
    image = cast(Image, type("FakeImage", (), {"image_id": "default"})())
    counter = itertools.count()
    return WarmPool(
        cast(RuncRuntime, runtime),
        image,
        cast(Limits, None),
        size,
        lambda: f"s{next(counter)}",
        max_size,
    )


def test_the_pool_grows_on_misses_up_to_its_maximum_and_shrinks_back(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = FakeRuntime()
    pool = make_pool(runtime, size=1, max_size=3)
    image = pool.image
    monkeypatch.setattr(warm_pool, "SHRINK_AFTER_S", 3600.0)
    pool.start()
    try:
        wait_for(lambda: len(pool._ready) == 1)
        with pool._changed:  # hold the filler back: the next takes find the pool empty
            taken = pool.take(image)
            assert taken is not None
            for _ in range(4):
                assert pool.take(image) is None
            assert pool.target == 3, "one more per miss, up to the maximum"
        wait_for(lambda: len(pool._ready) == 3)

        monkeypatch.setattr(warm_pool, "SHRINK_AFTER_S", 0.05)
        with pool._changed:
            pool._changed.notify_all()
        wait_for(lambda: pool.target == 1 and len(pool._ready) == 1)
        assert len(runtime.destroyed) == 2, "the extra prepared sandboxes are removed"
    finally:
        pool.close()
    assert sorted(runtime.destroyed) == sorted(set(runtime.prepared) - {taken}), "close removes the rest"


def test_without_a_maximum_the_pool_keeps_its_size() -> None:
    runtime = FakeRuntime()
    pool = make_pool(runtime, size=2, max_size=0)
    pool.start()
    try:
        wait_for(lambda: len(pool._ready) == 2)
        with pool._changed:
            assert pool.take(pool.image) and pool.take(pool.image)
            assert pool.take(pool.image) is None
            assert pool.target == 2
    finally:
        pool.close()

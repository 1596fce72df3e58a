"""Images built by recipe for the integration tests, kept across test runs.

A fresh `code_latest` downloads a few hundred MB of Debian packages and takes minutes, so the
images and the downloaded packages live outside the checkout, in COVE_TEST_IMAGE_CACHE
(/var/cache/cove-test): built on a clean machine, reused after, rebuilt when the recipe changes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from cove.config import Settings
from cove.errors import InvalidState
from cove.sandbox.debian_build import DebianSource
from cove.sandbox.images import ImageStore
from cove.sandbox.recipes import RECIPES

TEST_IMAGE_CACHE = Path(os.environ.get("COVE_TEST_IMAGE_CACHE", "/var/cache/cove-test"))
IMAGES_DIR = TEST_IMAGE_CACHE / "images"
PACKAGE_CACHE = TEST_IMAGE_CACHE / "image-cache"


def ensure_built(image_id: str, progress: Callable[[str], None]) -> None:
    """Build `image_id` into IMAGES_DIR with ImageStore.build, unless it is there and current."""
    store = ImageStore(IMAGES_DIR, Settings().subordinate_id_start, DebianSource.for_host(PACKAGE_CACHE))
    exists = store.exists(image_id)
    if exists and store.record(image_id).get("recipe") == list(RECIPES[image_id].packages):
        return
    # InvalidState: another test run built it meanwhile, or runs sessions on the old one: use that.
    with contextlib.suppress(InvalidState):
        store.build(image_id, on_progress=progress, force=exists)

"""The blocking SDK client is generated from the asyncio one (scripts/unasync.py): never edited apart."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def unasync() -> ModuleType:
    """scripts/unasync.py, which is a script, not a package module."""
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sync_client_is_generated_from_the_async_one(unasync: ModuleType) -> None:
    committed = (ROOT / "src" / "cove" / "sdk" / "sync_client.py").read_text()
    assert unasync.generated() == committed, "run scripts/unasync.py after editing sdk/async_client.py"


def test_the_generator_drops_async_only_lines_and_functions(unasync: ModuleType) -> None:
    source = '''"""doc"""
import x  # async only


async def kept(self) -> AsyncThing:
    async with self.lock:
        return await self._http.aclose()


async def dropped() -> None:  # async only
    """gone"""
    await nothing()
'''
    text = unasync.unasync(source)
    assert "import x" not in text and "dropped" not in text and "nothing" not in text
    assert "def kept(self) -> Thing:\n    with self.lock:\n        return self._http.close()" in text

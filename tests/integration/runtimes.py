"""Tests on both runtimes: runc and gVisor's runsc (docs/runtimes.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

import pytest

REPO = Path(__file__).resolve().parents[2]


def both_runtimes(
    gvisor: pytest.MarkDecorator | None = None, scope: Literal["function", "module"] = "function"
) -> pytest.MarkDecorator:
    """Runs a test once on runc and once on gvisor: the `runtime` fixture (conftest.py) takes each
    in turn, and so do the sessions the fixtures built on it make (`session`, `async_session`,
    `new_session`). `gvisor` marks the gvisor case: an xfail naming a gap of gVisor itself.
    `scope="module"` is for a module-scoped fixture that makes one session per runtime."""
    gvisor_case = "gvisor" if gvisor is None else pytest.param("gvisor", marks=gvisor)
    return pytest.mark.parametrize("runtime", ["runc", gvisor_case], indirect=True, scope=scope)


BOTH_RUNTIMES = both_runtimes()


def on_default_runtime(name: str) -> Any:
    """For a module whose clients cannot name a runtime (AgentBay's and E2B's SDKs): a module fixture
    that stands in for conftest's server fixture `name` and is that server on runc, or its twin
    `gvisor_{name}`, whose creates run on gvisor unless they name a runtime, on gvisor. Its tests
    take the runtime from `both_runtimes(scope="module")`; the module keeps it as `name`:
    `server = on_default_runtime("server")`."""

    @pytest.fixture(scope="module", name=name)
    def chosen(request: pytest.FixtureRequest, runtime: str | None) -> Any:
        return request.getfixturevalue(f"gvisor_{name}" if runtime == "gvisor" else name)

    return chosen


def ensure_runsc() -> None:
    """runsc comes from the install script, as on a real host; a host where that fails fails here."""
    if shutil.which("runsc") is None:
        subprocess.run(
            ["bash", str(REPO / "scripts" / "install.sh"), "--runsc-only"], check=True, timeout=600
        )
    assert shutil.which("runsc") is not None, "scripts/install.sh --runsc-only did not install runsc"

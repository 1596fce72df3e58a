"""What every benchmark starts from: a real server in a scratch data directory and an SDK client."""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.server import KEY_A, CoveServer, remove_data, running_server

from cove import AgentBay, Config


@dataclass(frozen=True)
class Bench:
    server: CoveServer
    agent_bay: AgentBay
    scratch: Path
    """A folder sandboxes can reach, removed afterwards."""


@contextmanager
def bench_server(**settings: object) -> Iterator[Bench]:
    scratch = Path(tempfile.mkdtemp(prefix="cove-bench-", dir="/var/tmp"))
    scratch.chmod(0o711)
    try:
        with (
            running_server(scratch / "data", **settings) as server,
            AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay,
        ):
            yield Bench(server, agent_bay, scratch)
    finally:
        remove_data(scratch)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(seconds: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds."""
    milliseconds = [s * 1000 for s in seconds]
    return {"p50": statistics.median(milliseconds), "p95": percentile(milliseconds, 0.95)}


def milliseconds(seconds: list[float]) -> dict[str, float]:
    """p50, p90, max and count, in milliseconds."""
    values = [s * 1000 for s in seconds]
    return {
        "p50": statistics.median(values),
        "p90": percentile(values, 0.9),
        "max": max(values),
        "count": len(values),
    }


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def pytest_process_count() -> int:
    """How many pytest processes run on the machine beside the bench."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                count += b"pytest" in (entry / "cmdline").read_bytes()
            except OSError:
                continue
    return count


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"

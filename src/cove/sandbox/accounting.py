"""A session's resource use, read on the host from the kernel's own accounting.

CPU time, memory and process counts come from the session's cgroups (v1 or v2), network bytes from
the procfs of its init process (its network namespace; a gvisor sandbox's from its Sentry, which
carries its loopback), disk use from its writable layer. Nothing is asked of the sandbox's
processes, so nothing they do can make the figures wrong.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cove.sandbox.cgroups import hierarchy_roots

UNLIMITED = 2**62
"""cgroup v1 reports "no limit" as a huge number, v2 as "max"."""


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    """CPU time used by all of the session's processes since it started."""
    memory_bytes: int
    memory_limit_bytes: int
    processes: int
    disk_bytes: int
    """Bytes written to the session's own layer (what it added or changed on top of its image)."""
    rx_bytes: int
    tx_bytes: int
    sampled_at: float
    """time.monotonic() of the sample, to turn two samples into rates."""


def read_usage(
    cgroup_path: str, writable_layer: Path, init_pid: int, network: tuple[int, int] | None = None
) -> Usage:
    """One sample; `cgroup_path` is the session's path inside each hierarchy (e.g. /cove/i/id);
    `network`: the bytes received and sent, when the init's namespace does not see them all."""
    directories = [root / cgroup_path.lstrip("/") for root in hierarchy_roots()]
    rx_bytes, tx_bytes = network if network is not None else _network_bytes(init_pid)
    return Usage(
        cpu_seconds=_cpu_seconds(directories),
        memory_bytes=_number(directories, "memory.usage_in_bytes", "memory.current"),
        memory_limit_bytes=_number(directories, "memory.limit_in_bytes", "memory.max"),
        processes=_number(directories, "pids.current"),
        disk_bytes=_tree_bytes(writable_layer),
        rx_bytes=rx_bytes,
        tx_bytes=tx_bytes,
        sampled_at=time.monotonic(),
    )


def stopped_usage(writable_layer: Path, memory_limit_bytes: int) -> Usage:
    """The use of a sandbox that is stopped with its state on disk (a checkpointed gvisor session):
    its writable layer, and nothing running."""
    return Usage(
        cpu_seconds=0.0,
        memory_bytes=0,
        memory_limit_bytes=memory_limit_bytes,
        processes=0,
        disk_bytes=_tree_bytes(writable_layer),
        rx_bytes=0,
        tx_bytes=0,
        sampled_at=time.monotonic(),
    )


def _first_file(directories: list[Path], *names: str) -> str | None:
    for directory in directories:
        for name in names:
            try:
                return (directory / name).read_text()
            except FileNotFoundError:
                continue
    return None


def _number(directories: list[Path], *names: str) -> int:
    text = (_first_file(directories, *names) or "0").strip()
    return UNLIMITED if text == "max" else int(text)


def _cpu_seconds(directories: list[Path]) -> float:
    nanoseconds = _first_file(directories, "cpuacct.usage")
    if nanoseconds is not None:
        return int(nanoseconds) / 1e9
    for line in (_first_file(directories, "cpu.stat") or "").splitlines():
        name, _, value = line.partition(" ")
        if name == "usage_usec":
            return int(value) / 1e6
    return 0.0


def _network_bytes(pid: int) -> tuple[int, int]:
    """Bytes received and sent on every interface of the process's network namespace."""
    received = sent = 0
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        fields = line.partition(":")[2].split()
        received += int(fields[0])
        sent += int(fields[8])
    return received, sent


def _tree_bytes(root: Path) -> int:
    """Apparent size of every file under `root`, symlinks not followed, hard links counted once."""
    total, seen = 0, set()
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


@dataclass(frozen=True)
class SessionMetrics:
    """What `get_metrics` answers, with AgentBay's names (and Cove's `processes`, `cpu_seconds`).

    Rates and `cpu_used_pct` are measured between two samples; `cpu_used_pct` is a share of the
    session's CPU limit; `disk_total` is the session's disk limit (session_volumes.py).
    """

    cpu_count: float
    cpu_used_pct: float
    cpu_seconds: float
    mem_total: int
    mem_used: int
    disk_total: int
    disk_used: int
    processes: int
    rx_rate_kbyte_per_s: float
    tx_rate_kbyte_per_s: float
    rx_used_kbyte: float
    tx_used_kbyte: float
    timestamp: str

    @classmethod
    def between(cls, first: Usage, second: Usage, cpus: float, disk_total: int) -> SessionMetrics:
        seconds = max(second.sampled_at - first.sampled_at, 1e-6)
        return cls(
            cpu_count=cpus,
            cpu_used_pct=round(100 * (second.cpu_seconds - first.cpu_seconds) / seconds / cpus, 2),
            cpu_seconds=round(second.cpu_seconds, 3),
            mem_total=second.memory_limit_bytes,
            mem_used=second.memory_bytes,
            disk_total=disk_total,
            disk_used=second.disk_bytes,
            processes=second.processes,
            rx_rate_kbyte_per_s=round((second.rx_bytes - first.rx_bytes) / 1024 / seconds, 3),
            tx_rate_kbyte_per_s=round((second.tx_bytes - first.tx_bytes) / 1024 / seconds, 3),
            rx_used_kbyte=round(second.rx_bytes / 1024, 3),
            tx_used_kbyte=round(second.tx_bytes / 1024, 3),
            timestamp=datetime.now(UTC).isoformat(),
        )

"""Build the OCI runtime spec (config.json) that runc runs each session from.

Everything a session is isolated by is decided here, in one readable function: namespaces,
the user-namespace ID mapping, capabilities, the seccomp profile, masked paths and cgroup limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cove.sandbox.seccomp import default_profile

# runc's defaults for `runc spec`: paths a sandbox must not read or write.
MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]
CPU_PERIOD_US = 100_000
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class IdMapping:
    """Container IDs 0..size-1 appear on the host as host_start..host_start+size-1, except the
    sandbox user's, which is the session's own host ID (see identities.py)."""

    host_start: int
    size: int
    user: int
    user_host_id: int

    def to_host(self, container_id: int) -> int:
        return self.user_host_id if container_id == self.user else self.host_start + container_id

    def as_spec(self) -> list[dict[str, int]]:
        above = self.user + 1
        return [
            {"containerID": 0, "hostID": self.host_start, "size": self.user},
            {"containerID": self.user, "hostID": self.user_host_id, "size": 1},
            {"containerID": above, "hostID": self.host_start + above, "size": self.size - above},
        ]

    @classmethod
    def from_spec(cls, mappings: list[dict[str, int]]) -> IdMapping:
        """The mapping a config.json was written with."""
        low, user, high = mappings
        return cls(low["hostID"], high["containerID"] + high["size"], user["containerID"], user["hostID"])


@dataclass(frozen=True)
class Limits:
    """Per-session limits: cgroups for memory, CPU and processes, a btrfs qgroup for disk
    (session_volumes.py)."""

    memory_mb: int
    cpus: float
    pids: int
    disk_mb: int
    """Bytes and files the session may write, in MiB (files count by their metadata)."""


@dataclass(frozen=True)
class Mount:
    """A bind mount from the host into the sandbox."""

    source: str
    destination: str
    read_only: bool = True
    executable: bool = True
    """False mounts it noexec: for folders that hold no programs, such as a cgroup."""


def build_spec(
    *,
    hostname: str,
    rootfs: str,
    args: list[str],
    user_uid: int,
    home: str,
    id_mapping: IdMapping,
    limits: Limits,
    cgroups_path: str,
    binds: list[Mount],
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The config.json of one session sandbox."""
    memory_bytes = limits.memory_mb * 1024 * 1024
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        # A fresh, read-only sysfs: the sandbox owns its network namespace, so it may mount one,
        # and it shows only the sandbox's own network devices.
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
    ]
    for bind in binds:
        options = ["rbind", "nosuid", "nodev"] + (["ro"] if bind.read_only else ["rw"])
        options += [] if bind.executable else ["noexec"]
        mounts.append(
            {"destination": bind.destination, "type": "bind", "source": bind.source, "options": options}
        )
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": user_uid, "gid": user_uid},
            "args": args,
            "env": [
                f"PATH={SANDBOX_PATH}",
                f"HOME={home}",
                "TERM=xterm",
                "LANG=C.UTF-8",
                *(f"{name}={value}" for name, value in (env or {}).items()),
            ],
            "cwd": home,
            "capabilities": {
                "bounding": [],
                "effective": [],
                "inheritable": [],
                "permitted": [],
                "ambient": [],
            },
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "uidMappings": id_mapping.as_spec(),
            "gidMappings": id_mapping.as_spec(),
            "cgroupsPath": cgroups_path,
            "resources": {
                "devices": [{"allow": False, "access": "rwm"}],
                "memory": {"limit": memory_bytes, "swap": memory_bytes},
                "cpu": {"quota": int(limits.cpus * CPU_PERIOD_US), "period": CPU_PERIOD_US},
                "pids": {"limit": limits.pids},
            },
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {"type": "user"},
                {"type": "cgroup"},
            ],
            "seccomp": default_profile(),
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    }

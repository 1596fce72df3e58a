"""What differs when gVisor's runsc, not runc, runs a session's sandbox (docs/runtimes.md).

The OCI bundle is the same. runsc runs it under its own kernel (the Sentry) on the systrap platform,
which needs no KVM. The differences, all kept here:

- Options: `--overlay2=none`, so what the session writes lands in its writable layer on the host as
  with runc (the disk limit, layer packing and context syncs read it there); `--host-uds=create`,
  so the agent's socket in /.cove/run is a real socket the host can connect to.
- Network: runsc's own network stack reads the sandbox's interfaces once, when it starts. So the
  session's network namespace is made first, bound to `netns` in its folder, and given its
  interface before runsc runs; the spec names that namespace instead of asking for a new one.
  For the same reason a session shut to network `none` keeps its interface, all it sends refused.
- No delegated cgroup: the Sentry has its own cgroups, so the agent keeps process trees as
  process groups; the host's cgroups still cap the whole sandbox.
- Pause is a checkpoint: the sandbox is frozen, its every process, open file and page of memory is
  written to `checkpoint/` in DATA_DIR/paused/<session>/ (outside the session's disk limit: the
  image is as large as the memory it held), and the sandbox is stopped, which gives its memory
  back to the host. Resume restores it from there. Before the checkpoint the agent lets go
  of the host's sockets, which gVisor cannot save, and listens again after it (agent/init.c). The
  order keeps a server killed midway from losing the session (`_checkpoint` in runtime.py):
    checkpoint.partial/   an image being written; never trusted, removed before the next try
    checkpoint/           a complete image: the session is paused, whatever else is left
    checkpoint.restoring/ an image a resume is restoring from: paused unless its sandbox runs
- Network bytes: the Sentry's own network stack carries the sandbox's loopback, which never reaches
  the host's interfaces; its counters of every interface come from `runsc events --stats`.
- The runsc build this was made for (20240729) decides that it runs in the host's own network
  namespace when /proc/sys/net/core/rmem_default exists, which newer kernels show in every
  namespace; it then refuses to start its network stack. `runsc run` is therefore started in a
  mount namespace of its own whose /proc/sys has only vm/, kernel/ and fs/ (`HIDE_NET_SYSCTLS`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from cove.errors import SandboxError
from cove.sandbox.process_runner import run_bounded

RUNSC_OPTIONS = ("--platform=systrap", "--overlay2=none", "--host-uds=create", "--network=sandbox")
NETNS_FILE = "netns"
CHECKPOINT_OPTIONS = ("--compression=none", "--exclude-committed-zero-pages", "--direct")
RESUME_OPTIONS = ("--direct",)
"""Images are written and read with O_DIRECT, past the page cache. Written through the cache, an
image's pages are charged to the session's memory cgroup, whose limit it may exceed (its memory is
already there): the checkpoint then waits on reclaim, and the image must still be flushed. A 1 GiB
pause took 4.2 to 4.8 s that way, 0.8 to 0.9 s direct; a resume of 1 GiB to its first command about
1.1 s direct, against 1.2 to 1.8 s through the cache, and a fork's, read right after it is written,
is steadier too (256 MiB: 0.93 to 1.09 s direct, 0.8 to 2.4 s through the cache)."""
CHECKPOINT = "checkpoint"
CHECKPOINT_PARTIAL = "checkpoint.partial"
CHECKPOINT_RESTORING = "checkpoint.restoring"
FORK_IMAGE = "fork-image"
"""Where a fork's image is written, in the images folder of the fork's first new session, and
removed once restored."""
SUSPEND_SIGNAL = "USR1"
"""Sent to the sandbox's init before a checkpoint: the agent lets go of the host's sockets."""
RESUME_SIGNAL = "USR2"
"""Sent after a restore (or a failed checkpoint): the agent listens again."""
HOST_SOCKET_REFUSAL = "bound host socket"
"""How runsc says a checkpoint failed on a Unix socket bound in the session's files (the host's)."""
RELEASE_WAIT_S = 15.0
"""How long the host waits for the agent's socket to go before a checkpoint."""
HIDE_NET_SYSCTLS = """set -e
staging=$(mktemp -d /run/cove-sysctl.XXXXXX)
mount -t tmpfs -o mode=555,size=4k cove-sysctl "$staging"
for folder in vm kernel fs; do
    mkdir "$staging/$folder"
    mount --rbind "/proc/sys/$folder" "$staging/$folder"
done
mount --move "$staging" /proc/sys
rmdir "$staging"
exec "$@"
"""
"""Runs the command after it in the current mount namespace with /proc/sys/net hidden."""
INSTALL_ADVICE = (
    "install gVisor's runsc (scripts/install.sh does: on Debian bookworm, "
    "'apt-get install -t bookworm-backports runsc') or point COVE_RUNSC at it"
)
UNSHARE_TIMEOUT_S = 20


def missing_message(runsc: str) -> str:
    return f"the gvisor runtime is not available on this server: {runsc!r} was not found; {INSTALL_ADVICE}"


def starting(argv: list[str]) -> list[str]:
    """`argv` (a `runsc run`) in a mount namespace of its own where /proc/sys/net is hidden."""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        HIDE_NET_SYSCTLS,
        "cove-runsc",
        *argv,
    ]


def make_network_namespace(directory: Path) -> str:
    """A new network namespace bound to `netns` in the session's folder (unmounted with the folder),
    its loopback up."""
    path = directory / NETNS_FILE
    path.touch(mode=0o600)
    for argv in (
        ["unshare", f"--net={path}", "true"],
        ["nsenter", f"--net={path}", "ip", "link", "set", "lo", "up"],
    ):
        result = run_bounded(argv, UNSHARE_TIMEOUT_S)
        if result.returncode != 0:
            raise SandboxError(f"could not make the network namespace of a sandbox: {result.stderr.strip()}")
    return str(path)


def image(directory: Path) -> Path | None:
    """The complete checkpoint of a paused sandbox, if there is one."""
    for name in (CHECKPOINT, CHECKPOINT_RESTORING):
        if (directory / name).is_dir():
            return directory / name
    return None


def checkpointed_state(directory: Path, container: str | None) -> str | None:
    """A session with a complete image is paused, unless its sandbox runs again from that image
    (a resume the server did not live to finish); None without an image."""
    found = image(directory)
    if found is None:
        return None
    if found.name == CHECKPOINT_RESTORING and container == "running":
        return "running"
    return "paused"


def move_old_images(session_dir: Path, images_dir: Path) -> None:
    """Move the image of a session paused by a server that kept it in the session's folder to
    `images_dir`, where images are kept now: copied and flushed under another name, renamed, and
    only then removed from the old place, so a server stopped midway finds it whole in one of them."""
    remove(session_dir / CHECKPOINT_PARTIAL)
    for name in (CHECKPOINT, CHECKPOINT_RESTORING):
        old, new, moving = session_dir / name, images_dir / name, images_dir / f"{name}.moving"
        if not old.is_dir():
            continue
        if not new.exists():
            images_dir.mkdir(mode=0o700, exist_ok=True)
            remove(moving)
            shutil.copytree(old, moving, symlinks=True)
            sync_tree(moving)
            os.rename(moving, new)
            sync_folder(images_dir)
        remove(old)


def network_bytes(stats: str) -> tuple[int, int]:
    """Bytes received and sent on every interface of the sandbox's network stack, loopback
    included, from the JSON that `runsc events --stats` prints."""
    interfaces = json.loads(stats)["data"].get("network_interfaces") or []
    return sum(found["RxBytes"] for found in interfaces), sum(found["TxBytes"] for found in interfaces)


def sync_tree(root: Path) -> None:
    """Flush a written image to disk, files first and then their folders, before it is renamed."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            descriptor = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        sync_folder(Path(folder))


def sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def change_owner(root: Path, old_uid: int, new_uid: int) -> None:
    """Give what `old_uid` owns under `root` (uid and gid) to `new_uid`, no link followed."""
    for folder, folders, files in os.walk(root):
        for path in [folder, *(os.path.join(folder, name) for name in folders + files)]:
            found = os.lstat(path)
            if old_uid in (found.st_uid, found.st_gid):
                os.lchown(
                    path,
                    new_uid if found.st_uid == old_uid else -1,
                    new_uid if found.st_gid == old_uid else -1,
                )


def size_of(root: Path) -> int:
    """The bytes of the files under `root` (links not followed)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(folder, name)).st_size
    return total

"""Build a Debian root filesystem from the Debian mirror: debootstrap, then apt inside it.

`cove image build` uses this for the recipes in recipes.py. Every .deb downloaded is kept in one
cache folder: debootstrap reads it through --cache-dir and apt through its archives folder, so a
rebuild downloads only the mirror's package indexes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cove.errors import CoveError
from cove.sandbox.host_image import SKIPPED_PREFIXES
from cove.sandbox.sandbox_files import write_sandbox_files

Progress = Callable[[str], None]
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"
"""The suite for hosts that are not Debian themselves (Ubuntu's codenames are not on Debian's mirror)."""
CHROOT_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
    "LC_ALL": "C",
    "HOME": "/root",
}
APT_LISTS = "var/lib/apt/lists"
APT_ARCHIVES = "var/cache/apt/archives"
# Left behind by debootstrap and apt, useless in a read-only image; translations (LANG is C); and
# debootstrap's device nodes (a sandbox gets its own /dev).
CLEANED = (APT_LISTS, "var/cache/apt", "var/log/apt", "usr/share/locale", "dev")
OUTPUT_KEPT_LINES = 20


class ImageBuildError(CoveError):
    """debootstrap or apt failed; the message ends with their last lines of output."""

    code = "ImageBuildError"
    http_status = 500


@dataclass(frozen=True)
class DebianSource:
    """Where packages come from, and where the downloaded ones are kept."""

    mirror: str
    suite: str
    cache_dir: Path

    @classmethod
    def for_host(cls, cache_dir: Path, mirror: str = "", suite: str = "") -> DebianSource:
        """Empty `mirror` or `suite` means the host's own (on a Debian host), else Debian's."""
        release = _os_release()
        on_debian = release.get("ID") == "debian" and bool(release.get("VERSION_CODENAME"))
        host_suite = release["VERSION_CODENAME"] if on_debian else DEFAULT_SUITE
        chosen_suite = suite or host_suite
        host_mirror = _apt_mirror(chosen_suite) if on_debian else None
        return cls(mirror or host_mirror or DEFAULT_MIRROR, chosen_suite, cache_dir)


def _os_release() -> dict[str, str]:
    try:
        lines = Path("/etc/os-release").read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.partition("=") for line in lines)
    return {key: value.strip('"') for key, sep, value in pairs if sep}


def _apt_mirror(suite: str) -> str | None:
    """The first `deb` source of the host that serves `suite` (deb822 .sources or one-line lists)."""
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                (key.strip(), value.split())
                for key, sep, value in (line.partition(":") for line in stanza.splitlines())
                if sep and not key.startswith("#")
            )
            if "deb" in fields.get("Types", []) and suite in fields.get("Suites", []):
                return fields.get("URIs", [None])[0]
    for path in [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]:
        for line in path.read_text().splitlines() if path.is_file() else []:
            words = [w for w in line.split("#")[0].split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    return None


def build_debian_rootfs(
    rootfs: Path, packages: tuple[str, ...], source: DebianSource, user: str, uid: int, progress: Progress
) -> None:
    """Fill the missing directory `rootfs` with Debian minbase plus `packages` and the sandbox user."""
    if shutil.which("debootstrap") is None:
        raise ImageBuildError(
            "debootstrap is not installed: apt-get install debootstrap (scripts/install.sh does)"
        )
    cache = source.cache_dir / "debs"
    cache.mkdir(parents=True, exist_ok=True)
    progress(f"[1/4] debootstrap {source.suite} (minbase) from {source.mirror}")
    debootstrap = ["debootstrap", "--variant=minbase", f"--cache-dir={cache.resolve()}"]
    _run([*debootstrap, source.suite, str(rootfs), source.mirror], progress)
    progress(f"[2/4] apt-get install --no-install-recommends {' '.join(packages)}")
    _link_all(cache, rootfs / APT_ARCHIVES, "*.deb")
    _link_all(source.cache_dir / "lists", rootfs / APT_LISTS, "*_*")
    _chroot(rootfs, ["apt-get", "-o", "Acquire::Languages=none", "update"], progress)
    with proc_mounted(rootfs):  # the JDK's setup runs `java`, which needs /proc
        _chroot(rootfs, ["apt-get", "install", "--yes", "--no-install-recommends", *packages], progress)
    _link_all(rootfs / APT_ARCHIVES, cache, "*.deb")
    (source.cache_dir / "lists").mkdir(exist_ok=True)
    _link_all(rootfs / APT_LISTS, source.cache_dir / "lists", "*_*", replace=True)
    progress("[3/4] removing apt's caches, logs, documentation, translations and device nodes")
    for relative in (*CLEANED, *(prefix.strip("/") for prefix in SKIPPED_PREFIXES)):
        _empty(rootfs / relative)
    progress(f"[4/4] adding the user {user} (uid {uid}) and the sandbox's /etc files")
    account = ["--uid", str(uid), "--user-group", "--home-dir", f"/home/{user}", "--shell", "/bin/bash"]
    _chroot(rootfs, ["useradd", *account, "--no-create-home", user], progress)
    write_sandbox_files(rootfs, user, uid)
    # No byte-compiling here, unlike host_image: dpkg ran each package's own py3compile inside.


@contextmanager
def cache_lock(source: DebianSource) -> Iterator[None]:
    """One build at a time per cache: debootstrap and apt do not share a download folder safely."""
    source.cache_dir.mkdir(parents=True, exist_ok=True)
    with open(source.cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextmanager
def proc_mounted(rootfs: Path) -> Iterator[None]:
    """A proc file system on the chroot's /proc while the block runs, unmounted even if it fails."""
    proc = rootfs / "proc"
    proc.mkdir(exist_ok=True)
    _run(["mount", "-t", "proc", "proc", str(proc)], lambda _line: None)
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(proc)], check=False, capture_output=True)


def _chroot(rootfs: Path, command: list[str], progress: Progress) -> None:
    _run(["chroot", str(rootfs), *command], progress, env=CHROOT_ENV)


def _run(command: list[str], progress: Progress, env: dict[str, str] | None = None) -> None:
    """Run a build step, passing each line of its output on; fail with its last lines."""
    last: deque[str] = deque(maxlen=OUTPUT_KEPT_LINES)
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env or {**os.environ, "LC_ALL": "C"},
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            last.append(line.rstrip())
            progress(f"    {line.rstrip()}")
    if process.returncode != 0:
        output = "\n".join(last)
        raise ImageBuildError(f"{' '.join(command[:3])} ... failed ({process.returncode}):\n{output}")


def _link_all(source: Path, target: Path, pattern: str, replace: bool = False) -> None:
    """Hard-link (or copy, across file systems) the files matching `pattern` from source to target."""
    for path in sorted(source.glob(pattern)) if source.is_dir() else []:
        destination = target / path.name
        if not path.is_file() or path.is_symlink():
            continue
        if destination.exists() and (not replace or os.path.samefile(path, destination)):
            continue
        partial = target / f".{path.name}.partial"
        partial.unlink(missing_ok=True)
        try:
            os.link(path, partial)
        except OSError:
            shutil.copy2(path, partial)
        partial.replace(destination)


def _empty(directory: Path) -> None:
    """Remove what is inside `directory`, keeping the folder itself (apt expects its folders)."""
    if directory.is_symlink() or not directory.is_dir():
        return
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()

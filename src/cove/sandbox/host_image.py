"""Assemble the default image from the host's own installed Debian packages.

`linux_latest` must work offline, so instead of downloading anything we copy the files that dpkg
says belong to a small set of installed packages (and everything they depend on) into a fresh
root filesystem. The result is an ordinary directory tree; `ImageStore` then shifts its ownership
into the sandboxes' user-namespace range.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path

from cove.sandbox.sandbox_files import write_sandbox_files

# What a shell-and-python sandbox with a desktop needs; their dependencies are added automatically.
# The desktop (agent/display.py, agent/tools/computer.py): an X server, an EWMH window manager, xdotool
# and wmctrl to drive them, cjpeg (libjpeg-turbo-progs) for JPEG screenshots, xterm as a first app, and
# libc-bin for its C.UTF-8 locale (xdotool types Unicode only under a UTF-8 locale).
LINUX_LATEST_PACKAGES = (
    "base-files",
    "bash",
    "ca-certificates",
    "coreutils",
    "curl",
    "dash",
    "diffutils",
    "findutils",
    "grep",
    "gzip",
    "hostname",
    "libc-bin",
    "libjpeg-turbo-progs",
    "mawk",
    "ncurses-base",
    "netbase",
    "openbox",
    "procps",
    "python3",
    "python3-pip",
    "sed",
    "tar",
    "wmctrl",
    "x11-xserver-utils",
    "x11vnc",
    "xdotool",
    "xterm",
    "xvfb",
    "xz-utils",
)

# Dependencies not copied, with what they cost and why nothing misses them: Xvfb links libGL, whose
# Mesa drivers (libgl1-mesa-dri: LLVM and z3, 160 MB) only serve GLX clients; X itself draws without.
# x11vnc depends on Tk (with Tcl and fonts, about 10 MB) only for its -gui window, which the viewer
# never opens. x11-xserver-utils (for xmodmap) depends on the C preprocessor (cpp-12 with its
# libraries, about 30 MB) only for xrdb.
LEFT_OUT_PACKAGES = frozenset({"libgl1-mesa-dri", "tk", "cpp"})

# Top-level paths that are symlinks into /usr on a merged-/usr host (Debian 12 and later).
_MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Paths dpkg lists that make no sense inside a sandbox.
SKIPPED_PREFIXES = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/lintian/")


class HostImageError(RuntimeError):
    """The host lacks a package the image needs, or dpkg is not available."""


def _dpkg_query(fmt: str, packages: Iterable[str]) -> list[str]:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", fmt, *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.splitlines()


def _installed_packages() -> dict[str, list[str]]:
    """Map each installed package name (arch qualifier dropped) to what it provides."""
    lines = _dpkg_query("${db:Status-Abbrev}\t${Package}\t${Provides}\n", [])
    installed: dict[str, list[str]] = {}
    for line in lines:
        status, name, provides = [*line.split("\t"), "", "", ""][:3]
        if status.startswith("ii"):
            installed[name] = [p.split()[0].split(":")[0] for p in provides.split(",") if p.strip()]
    return installed


def _dependency_names(field: str) -> list[list[str]]:
    """Parse a Depends field into alternatives groups: 'a (>= 1) | b, c' -> [[a, b], [c]]."""
    groups = []
    for group in field.split(","):
        names = [alt.strip().split()[0].split(":")[0] for alt in group.split("|") if alt.strip()]
        if names:
            groups.append(names)
    return groups


def resolve_packages(roots: Iterable[str]) -> list[str]:
    """The installed packages `roots` need: the closure over Depends and Pre-Depends, less
    LEFT_OUT_PACKAGES."""
    installed = _installed_packages()
    providers: dict[str, str] = {}
    for name, provided in installed.items():
        for virtual in provided:
            providers.setdefault(virtual, name)

    def pick(alternatives: list[str]) -> str | None:
        for name in alternatives:
            if name in installed:
                return name
            if name in providers:
                return providers[name]
        return None

    wanted: list[str] = []
    queue = list(roots)
    while queue:
        name = queue.pop()
        if name in wanted or name in LEFT_OUT_PACKAGES:
            continue
        if name not in installed:
            raise HostImageError(
                f"package {name!r} is not installed on this host; install it with "
                f"'apt-get install {name}' (scripts/install.sh does this)"
            )
        wanted.append(name)
        for line in _dpkg_query("${Pre-Depends},${Depends}\n", [name]):
            for group in _dependency_names(line):
                chosen = pick(group)
                if chosen is not None:
                    queue.append(chosen)
    return sorted(wanted)


def _package_files(packages: list[str]) -> list[str]:
    result = subprocess.run(["dpkg", "-L", *packages], capture_output=True, text=True, check=True)
    paths = {line for line in result.stdout.splitlines() if line.startswith("/")}
    return sorted(p for p in paths if not p.startswith(SKIPPED_PREFIXES) and p != "/.")


def _copy_entry(source: Path, target: Path, rootfs: Path) -> None:
    """Copy one file, symlink or directory node (not its contents) from the host.

    The target's parent is resolved first: a symlink in the image must never make us write
    outside the image.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(rootfs.resolve()):
        return
    try:
        info = source.lstat()
    except FileNotFoundError:
        return  # listed by dpkg but removed by the admin (e.g. excluded docs)
    if target.is_symlink() or target.exists():
        if stat.S_ISDIR(info.st_mode):
            return
        target.unlink()
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISDIR(info.st_mode):
        target.mkdir(mode=stat.S_IMODE(info.st_mode), exist_ok=True)
    elif stat.S_ISREG(info.st_mode):
        shutil.copy2(source, target, follow_symlinks=False)


def _copy_alternatives(rootfs: Path) -> None:
    """Copy /etc/alternatives links (awk, pager, ...) whose targets made it into the image."""
    alternatives = Path("/etc/alternatives")
    if not alternatives.is_dir():
        return
    kept: set[str] = set()
    for link in alternatives.iterdir():
        target = os.readlink(link) if link.is_symlink() else ""
        if target and (rootfs / target.lstrip("/")).exists():
            _copy_entry(link, rootfs / "etc/alternatives" / link.name, rootfs)
            kept.add(str(link))
    for directory in ("usr/bin", "usr/sbin"):
        for entry in Path("/", directory).iterdir():
            if entry.is_symlink() and os.readlink(entry) in kept:
                _copy_entry(entry, rootfs / directory / entry.name, rootfs)


def _write_accounts(rootfs: Path, user: str, uid: int) -> None:
    """root, the sandbox user and nobody: the host's packages bring no /etc/passwd of their own."""
    etc = rootfs / "etc"
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        f"{user}:x:{uid}:{uid}:{user}:/home/{user}:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\n{user}:x:{uid}:\nnogroup:x:65534:\n")
    (etc / "shadow").write_text(f"root:*:19000:0:99999:7:::\n{user}:*:19000:0:99999:7:::\n")
    (etc / "shadow").chmod(0o640)


def build_host_rootfs(rootfs: Path, packages: Iterable[str], user: str, uid: int) -> list[str]:
    """Fill the empty directory `rootfs` from the host's packages; returns the packages used."""
    resolved = resolve_packages(packages)
    for name in _MERGED_USR:
        host = Path("/", name)
        if host.is_symlink():
            (rootfs / "usr" / os.readlink(host).removeprefix("usr/")).mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(host), rootfs / name)
    for path in _package_files(resolved):
        _copy_entry(Path(path), rootfs / path.lstrip("/"), rootfs)
    _copy_alternatives(rootfs)
    _copy_certificate_bundle(rootfs)
    _write_accounts(rootfs, user, uid)
    write_sandbox_files(rootfs, user, uid)
    _compile_python(rootfs)
    return resolved


def _copy_certificate_bundle(rootfs: Path) -> None:
    """The CA bundle that curl, pip and Python's ssl read: ca-certificates makes it when it is
    installed, so dpkg does not list it among the package's files."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if (rootfs / "usr/share/ca-certificates").is_dir() and bundle.is_file():
        (rootfs / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle, rootfs / "etc/ssl/certs/ca-certificates.crt")


def _compile_python(rootfs: Path) -> None:
    """Byte-compile the image's Python libraries, as Debian does when it installs them.

    dpkg does not list the bytecode caches, and a sandbox cannot write them into the read-only
    image, so without this every python3 in every session would compile the standard library
    again (a quarter of a second for the tool agent's first start).
    """
    python = shutil.which("python3", path="/usr/bin")
    libraries = sorted(str(p) for p in (rootfs / "usr" / "lib").glob("python3*") if p.is_dir())
    if python is None or not libraries:
        return
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "-s", str(rootfs), "-p", "/", *libraries],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        check=False,
    )

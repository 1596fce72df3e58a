"""PID 1 of every sandbox (agent/init.c), compiled once per machine and source.

A static program needs nothing from the sandbox's image and costs an idle session a few hundred
kilobytes, where an interpreter would cost megabytes. It is built with the host's C compiler
(scripts/install.sh installs it and builds the program) into the folder beside the Python
environment, under a name that carries the source's hash: a changed source is built anew.

`python -m cove.sandbox.init_binary` builds it and prints its path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from cove.install_paths import SHARE_DIR

SOURCE = Path(__file__).resolve().parent.parent / "agent" / "init.c"
COMPILE_TIMEOUT_S = 120.0


def init_binary() -> Path:
    """The compiled init for the current source, built first if missing."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    target = SHARE_DIR / f"cove-init-{digest}"
    if target.is_file():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError(
            "cannot build the sandboxes' init: no C compiler on this host. "
            "Install one (sudo apt-get install gcc libc6-dev, or run scripts/install.sh)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    command = [compiler, "-static", "-Os", "-s", "-Wall", "-o", str(partial), str(SOURCE)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"cannot build the sandboxes' init with {compiler}: {result.stderr.strip()}")
    os.replace(partial, target)  # concurrent builds each write their own file; the last one stays
    return target


if __name__ == "__main__":
    print(init_binary())

"""`run_code` in Java, in sessions of an image with a JDK assembled from the host's own packages.

`code_latest` has no JDK (its build would grow by minutes), so the test server gets an image of its
own: linux_latest's packages and the host's OpenJDK, copied by ImageStore.build_from_host in seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cove import EnhancedCodeExecutionResult, Session
from cove.config import Settings
from cove.sandbox.debian_build import DebianSource
from cove.sandbox.host_image import LINUX_LATEST_PACKAGES
from cove.sandbox.images import ImageStore
from tests.integration.server import CoveServer, running_server, sdk_session

JAVA_IMAGE = "java_test"


def host_jdk_package() -> str | None:
    """The installed Debian package that holds the host's `jshell`, if any."""
    jshell = shutil.which("jshell")
    if jshell is None:
        return None
    found = subprocess.run(["dpkg", "-S", str(Path(jshell).resolve())], capture_output=True, text=True)
    return found.stdout.split(":")[0] if found.returncode == 0 else None


@pytest.fixture(scope="module")
def java_server() -> Iterator[CoveServer]:
    """A server with the image JAVA_IMAGE: linux_latest's packages and the host's JDK."""
    jdk = host_jdk_package()
    if jdk is None:
        pytest.fail("no Debian JDK package on this machine: sudo bash scripts/install.sh --with-test-deps")
    root = Path(tempfile.mkdtemp(prefix="cove-test-", dir="/var/tmp"))
    root.chmod(0o711)
    store = ImageStore(
        root / "images", Settings().subordinate_id_start, DebianSource.for_host(root / "cache")
    )
    store.build_from_host(JAVA_IMAGE, (*LINUX_LATEST_PACKAGES, jdk))
    with running_server(root / "data", images_dir=root / "images", session_quota=5) as started:
        yield started
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def java_session(java_server: CoveServer) -> Iterator[Session]:
    with sdk_session(java_server, JAVA_IMAGE) as session:
        yield session


def java(session: Session, code: str, **arguments: Any) -> EnhancedCodeExecutionResult:
    return session.code.run_code(code, "java", **arguments)


def test_java_state_output_and_errors(java_session: Session) -> None:
    first = java(
        java_session,
        "import java.nio.file.*;\nint base = 40;\nint add(int n) { return base + n; }\n"
        'record Point(int x, int y) {}\nSystem.out.println("to stdout"); System.err.println("to stderr");',
    )
    assert first.success and first.results == [] and first.execution_count == 1, first.error_message
    assert (first.logs.stdout, first.logs.stderr) == (["to stdout\n"], ["to stderr\n"])
    second = java(
        java_session, 'Files.writeString(Path.of("note.txt"), "kept");\nadd(2) + new Point(0, 0).x()'
    )
    assert second.success and second.result == "42", second.error_message
    assert java(java_session, 'Files.readString(Path.of("note.txt"))').result == '"kept"'
    thrown = java(java_session, 'System.out.println("before");\nint[] none = new int[0];\nnone[1]')
    assert not thrown.success and thrown.error is not None
    assert thrown.error.name == "java.lang.ArrayIndexOutOfBoundsException" and "1" in thrown.error.value
    assert (
        thrown.logs.stdout == ["before\n"]
        and "java.lang.ArrayIndexOutOfBoundsException" in thrown.error_message
    )
    wrong = java(java_session, "String s = 42;")
    assert wrong.error is not None and wrong.error.name == "CompilationError"
    assert "incompatible types" in wrong.error.value and "<cell 5>:1: error" in wrong.error.traceback
    assert java(java_session, "add(0)").result == "40", "the kernel goes on"


def test_java_timeout_keeps_the_state_and_a_killed_kernel_restarts(java_session: Session) -> None:
    assert java(java_session, 'var kept = "still here";').success
    looping = java(java_session, 'System.out.println("looping");\nwhile (true) {}', timeout_s=2)
    assert not looping.success and looping.timed_out and not looping.kernel_died
    assert looping.error is not None and looping.error.name == "TimeoutError"
    assert looping.logs.stdout == ["looping\n"]
    assert java(java_session, "kept").result == '"still here"'
    pid = java(java_session, "ProcessHandle.current().pid()").result
    assert java_session.command.execute_command(f"kill -9 {pid}").success
    died = java(java_session, "kept")
    assert died.kernel_restarted and died.error is not None and died.error.name == "CompilationError"
    assert java(java_session, "1 + 1").result == "2"

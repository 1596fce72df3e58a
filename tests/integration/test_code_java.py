"""`run_code` in Java, in sessions of code_latest, whose JDK (Debian's default-jdk-headless) has JShell."""

from __future__ import annotations

from typing import Any

from cove import EnhancedCodeExecutionResult, Session
from tests.integration.runtimes import BOTH_RUNTIMES

pytestmark = BOTH_RUNTIMES


def java(session: Session, code: str, **arguments: Any) -> EnhancedCodeExecutionResult:
    return session.code.run_code(code, "java", **arguments)


def test_java_state_output_and_errors(code_session: Session) -> None:
    first = java(
        code_session,
        "import java.nio.file.*;\nint base = 40;\nint add(int n) { return base + n; }\n"
        'record Point(int x, int y) {}\nSystem.out.println("to stdout"); System.err.println("to stderr");',
    )
    assert first.success and first.results == [] and first.execution_count == 1, first.error_message
    assert (first.logs.stdout, first.logs.stderr) == (["to stdout\n"], ["to stderr\n"])
    second = java(
        code_session, 'Files.writeString(Path.of("note.txt"), "kept");\nadd(2) + new Point(0, 0).x()'
    )
    assert second.success and second.result == "42", second.error_message
    assert java(code_session, 'Files.readString(Path.of("note.txt"))').result == '"kept"'
    thrown = java(code_session, 'System.out.println("before");\nint[] none = new int[0];\nnone[1]')
    assert not thrown.success and thrown.error is not None
    assert thrown.error.name == "java.lang.ArrayIndexOutOfBoundsException" and "1" in thrown.error.value
    assert (
        thrown.logs.stdout == ["before\n"]
        and "java.lang.ArrayIndexOutOfBoundsException" in thrown.error_message
    )
    wrong = java(code_session, "String s = 42;")
    assert wrong.error is not None and wrong.error.name == "CompilationError"
    assert "incompatible types" in wrong.error.value and "<cell 5>:1: error" in wrong.error.traceback
    assert java(code_session, "add(0)").result == "40", "the kernel goes on"


def test_java_timeout_keeps_the_state_and_a_killed_kernel_restarts(code_session: Session) -> None:
    assert java(code_session, 'var kept = "still here";').success
    looping = java(code_session, 'System.out.println("looping");\nwhile (true) {}', timeout_s=2)
    assert not looping.success and looping.timed_out and not looping.kernel_died
    assert looping.error is not None and looping.error.name == "TimeoutError"
    assert looping.logs.stdout == ["looping\n"]
    assert java(code_session, "kept").result == '"still here"'
    pid = java(code_session, "ProcessHandle.current().pid()").result
    assert code_session.command.execute_command(f"kill -9 {pid}").success
    died = java(code_session, "kept")
    assert died.kernel_restarted and died.error is not None and died.error.name == "CompilationError"
    assert java(code_session, "1 + 1").result == "2"

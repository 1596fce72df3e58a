"""Background processes, streamed output and terminals through the SDK, on real sandboxes."""

from __future__ import annotations

from cove import AsyncSession, Session
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import CoveServer

PROMPT = "$ "
"""The end of bash's prompt: it waits for a line."""


@BOTH_RUNTIMES
def test_streamed_output_arrives_in_order_through_callbacks(session: Session) -> None:
    stdout: list[str] = []
    stderr: list[str] = []
    script = "for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.2; done; exit 4"
    result = session.command.execute_command(script, on_stdout=stdout.append, on_stderr=stderr.append)
    assert "".join(stdout) == "out 1\nout 2\nout 3\n" and "".join(stderr) == "err 1\nerr 2\nerr 3\n"
    assert len(stdout) >= 2, "output is handed over while the command runs, not all at the end"
    assert (result.success, result.exit_code, result.stdout) == (False, 4, "out 1\nout 2\nout 3\n")
    assert result.error_message == "err 1\nerr 2\nerr 3\n"


@BOTH_RUNTIMES
def test_a_streamed_command_times_out_and_is_killed(session: Session, server: CoveServer) -> None:
    seen: list[str] = []
    result = session.command.run("echo begun; sleep 600", timeout_ms=1000, on_stdout=seen.append)
    assert seen == ["begun\n"] and result.timed_out and result.exit_code == 124
    assert "timed out after 1000 ms" in result.error_message
    assert "sleep 600" not in server.sandbox(session.session_id, "ps -eo args").stdout


@BOTH_RUNTIMES
def test_background_process_stdin_kill_wait_and_list(session: Session) -> None:
    command = session.command
    cat = command.start("cat")
    assert cat.success and cat.process_id and cat.pid > 0
    assert command.send_stdin(cat.process_id, "hello\n").success
    polled = command.output(cat.process_id, wait_ms=10_000)
    assert polled.stdout == "hello\n" and polled.running and polled.stdout_offset == 6
    assert command.send_stdin(cat.process_id, "bye\n", eof=True).success
    finished = command.wait(cat.process_id, timeout_ms=10_000)
    assert finished.success and finished.stdout == "hello\nbye\n" and finished.exit_code == 0

    sleeper = command.start("sleep 600")
    still = command.wait(sleeper.process_id, timeout_ms=200)
    assert still.timed_out and not still.success
    listed = {p.process_id: p for p in command.list_processes().processes}
    assert listed[sleeper.process_id].running and listed[sleeper.process_id].command == "sleep 600"
    assert not listed[cat.process_id].running and listed[cat.process_id].exit_code == 0
    assert command.kill(sleeper.process_id, "TERM").success
    assert command.wait(sleeper.process_id, timeout_ms=10_000).exit_code == 128 + 15

    unknown = command.output("p-999")
    assert not unknown.success and "p-999" in unknown.error_message


@BOTH_RUNTIMES
def test_a_terminal_process(session: Session) -> None:
    """Each line is typed once the shell shows its prompt, as a person types (input typed ahead of
    the shell is not kept reliably on gvisor: docs/runtimes.md)."""
    command = session.command
    shell = command.start("bash --norc -i", pty=True, cols=100, rows=30)
    assert shell.success
    offset = 0

    def read_until(expected: str) -> str:
        """What the terminal shows until `expected` and then a prompt (the shell waits for a line)."""
        nonlocal offset
        seen = ""
        for _ in range(100):
            polled = command.output(shell.process_id, stdout_offset=offset, wait_ms=5000)
            seen += polled.stdout
            offset = polled.stdout_offset
            if (expected in seen and PROMPT in seen[seen.index(expected) :]) or not polled.running:
                break
        return seen

    def type_line(line: str, expected: str = "\n") -> str:
        command.send_stdin(shell.process_id, line)
        seen = read_until(expected)
        assert expected in seen, seen
        return seen

    read_until("")
    first = type_line("tty; stty size\n", "30 100")
    assert "/dev/pts/" in first
    assert command.resize(shell.process_id, 120, 40).success
    type_line("stty size\n", "40 120")
    command.send_stdin(shell.process_id, "sleep 600\n")
    for _ in range(100):  # until it runs in the foreground
        if command.execute_command("pgrep -x sleep").success:
            break
    type_line("\x03")  # Ctrl-C reaches the foreground sleep: the shell prompts again
    type_line("echo after $?\n", "after 130")
    command.send_stdin(shell.process_id, "exit 5\n")
    assert command.wait(shell.process_id, timeout_ms=10_000).exit_code == 5


@BOTH_RUNTIMES
async def test_async_processes(async_session: AsyncSession) -> None:
    command = async_session.command
    chunks: list[str] = []
    result = await command.execute_command("echo a; sleep 0.2; echo b", on_stdout=chunks.append)
    assert result.success and "".join(chunks) == "a\nb\n"
    started = await command.start("read line; echo got $line")
    await command.send_stdin(started.process_id, "it\n")
    assert (await command.wait(started.process_id, timeout_ms=10_000)).stdout == "got it\n"
    assert started.process_id in [p.process_id for p in (await command.list_processes()).processes]
    sleeper = await command.start("sleep 600")
    assert (await command.kill(sleeper.process_id)).success
    assert (await command.wait(sleeper.process_id, timeout_ms=10_000)).exit_code == 137

    terminal = await command.start("stty size; read; stty size", pty=True, cols=50, rows=10)
    first = await command.output(terminal.process_id, wait_ms=10_000)
    assert "10 50" in first.stdout
    assert (await command.resize(terminal.process_id, 60, 20)).success
    await command.send_stdin(terminal.process_id, "\r")
    assert "20 60" in (await command.wait(terminal.process_id, timeout_ms=10_000)).stdout

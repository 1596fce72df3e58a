"""The `run_code` tool on real sandboxes: a Python kernel per session that keeps its state."""

from __future__ import annotations

import base64
import json
import struct
import time
from pathlib import Path

from cove import AgentBay, AsyncSession, Config, Session
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, CoveServer, running_server

PNG_CELL = '''
import struct, zlib

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

class Swatch:
    """A 3x2 red image, with rich representations as IPython's display protocol has them."""
    def _repr_png_(self):
        rows = b"".join(b"\\x00" + b"\\xff\\x00\\x00" * 3 for _ in range(2))
        header = struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0)
        image = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
        return b"\\x89PNG\\r\\n\\x1a\\n" + image
    def _repr_html_(self):
        return "<b>swatch</b>"
    def __repr__(self):
        return "Swatch()"

Swatch()
'''


@BOTH_RUNTIMES
def test_state_persists_across_calls(session: Session) -> None:
    code = session.code
    first = code.run_code("x = 41")
    assert first.success and first.results == [] and first.request_id, first.error_message
    second = code.run_code("x + 1")
    assert second.success and second.result == "42"
    assert (first.execution_count, second.execution_count) == (1, 2)
    assert code.run("import json\nimport os\nos.chdir('/tmp')").success
    later = code.execute("json.dumps([os.getcwd()])")
    assert later.success and later.result == """'["/tmp"]'""", "the import and the directory persist"
    assert not later.kernel_restarted


def test_output_streams_and_the_main_result(session: Session) -> None:
    ran = session.code.run_code(
        "import subprocess, sys\n"
        "print('to stdout')\n"
        "print('to stderr', file=sys.stderr)\n"
        "subprocess.run(['echo', 'from a child'])\n"
        "6 * 7"
    )
    assert ran.success, ran.error_message
    assert "".join(ran.logs.stdout) == "to stdout\nfrom a child\n"
    assert "".join(ran.logs.stderr) == "to stderr\n"
    assert [(r.text, r.is_main_result) for r in ran.results] == [("42", True)]
    quiet = session.code.run_code("print('only printed')")
    assert quiet.success and quiet.results == [] and quiet.result == "only printed\n"
    hidden = session.code.run_code("6 * 7;")
    assert hidden.success and hidden.results == [], "a final ';' hides the value, as in Jupyter"


def test_rich_results(session: Session) -> None:
    ran = session.code.run_code(PNG_CELL)
    assert ran.success, ran.error_message
    [main] = ran.results
    assert main.is_main_result and main.text == "Swatch()" and main.html == "<b>swatch</b>"
    assert main.png is not None
    png = base64.b64decode(main.png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (3, 2)
    assert set(main.formats()) == {"text", "html", "png"}


def test_display_adds_results(session: Session) -> None:
    ran = session.code.run_code(
        "class Note:\n"
        "    def _repr_markdown_(self):\n"
        "        return '**note**'\n"
        "    def _repr_json_(self):\n"
        "        return {'a': [1, 2]}\n"
        "display(Note(), 'second')\n"
        "display({'text/plain': 'raw', 'text/latex': '$x$'}, raw=True)\n"
        "'main'"
    )
    assert ran.success, ran.error_message
    assert [(r.is_main_result, r.text) for r in ran.results][1:] == [
        (False, "'second'"),
        (False, "raw"),
        (True, "'main'"),
    ]
    note = ran.results[0]
    assert not note.is_main_result and (note.text or "").startswith("<__main__.Note object")
    assert note.markdown == "**note**" and note.json == {"a": [1, 2]}
    assert ran.results[2].latex == "$x$"
    assert ran.result == "'main'"


def test_an_exception_gives_its_name_value_and_the_cells_traceback(session: Session) -> None:
    ran = session.code.run_code("print('before')\ndef divide():\n    return 1 / 0\ndivide()")
    assert not ran.success and ran.error is not None
    assert (ran.error.name, ran.error.value) == ("ZeroDivisionError", "division by zero")
    assert "ZeroDivisionError" in ran.error_message
    trace = ran.error.traceback
    assert trace.startswith("Traceback (most recent call last):")
    assert '"<cell ' in trace and "in divide" in trace and "return 1 / 0" in trace
    assert "kernel.py" not in trace, "only the cell's frames"
    assert "".join(ran.logs.stdout) == "before\n", "what it printed before is kept"
    syntax = session.code.run_code("def broken(:")
    assert not syntax.success and syntax.error is not None and syntax.error.name == "SyntaxError"
    assert session.code.run_code("divide.__name__").result == "'divide'", "the kernel goes on"


def test_a_timeout_interrupts_the_cell_and_the_kernel_keeps_its_state(session: Session) -> None:
    assert session.code.run_code("kept = 'still here'").success
    ran = session.code.run_code("print('looping')\nwhile True:\n    pass", timeout_s=2)
    assert not ran.success and ran.timed_out and not ran.kernel_died
    assert ran.error is not None and ran.error.name == "TimeoutError"
    assert "timeout_s=2" in ran.error_message and "KeyboardInterrupt" in ran.error.traceback
    assert "".join(ran.logs.stdout) == "looping\n"
    after = session.code.run_code("kept")
    assert after.success and after.result == "'still here'" and not after.kernel_restarted


def test_a_cell_that_ignores_the_interrupt_gets_its_kernel_killed(session: Session) -> None:
    ran = session.code.run_code(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", timeout_s=1
    )
    assert not ran.success and ran.timed_out and ran.kernel_died
    assert ran.error is not None and ran.error.name == "TimeoutError" and "killed" in ran.error.value
    again = session.code.run_code("1 + 1")
    assert again.success and again.result == "2" and again.kernel_restarted


def test_a_kernel_that_died_is_restarted_and_says_so(session: Session) -> None:
    assert session.code.run_code("lost = 1").success
    died = session.code.run_code("import os\nos._exit(1)")
    assert not died.success and died.kernel_died
    assert died.error is not None and died.error.name == "KernelDied" and "exit code 1" in died.error.value
    fresh = session.code.run_code("'lost' in globals()")
    assert fresh.success and fresh.result == "False" and fresh.kernel_restarted
    assert not session.code.run_code("1").kernel_restarted, "said once"

    pid = session.code.run_code("import os\nos.getpid()").result
    assert session.command.execute_command(f"kill -9 {pid}").success
    back = session.code.run_code("'lost' in globals()")
    assert back.success and back.result == "False" and back.kernel_restarted


def test_kernels_of_two_sessions_are_apart(session: Session, server: CoveServer) -> None:
    assert session.code.run_code("secret = 'mine'").success
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        other = agent_bay.create().session
        assert other is not None
        try:
            there = other.code.run_code("secret")
            assert not there.success and there.error is not None and there.error.name == "NameError"
            assert not there.kernel_restarted, "its first kernel"
        finally:
            other.delete()
    assert session.code.run_code("secret").result == "'mine'"


def test_languages(session: Session) -> None:
    no_r = session.code.run_code("1", language="r")
    assert not no_r.success and "r needs R" in no_r.error_message, "no R here"
    no_jdk = session.code.run_code("1", language="java")
    assert not no_jdk.success and "java needs a JDK" in no_jdk.error_message, "no JDK here"
    assert "image_id='code_latest'" in no_r.error_message and "image_id='code_latest'" in no_jdk.error_message
    no_node = session.code.run_code("1", language="javascript")
    assert not no_node.success and "image_id='code_latest'" in no_node.error_message, "no node here"
    unknown = session.code.run_code("1", language="cobol")
    assert not unknown.success and "unknown language 'cobol'" in unknown.error_message
    for language in ("py", "Python3", "python"):
        assert session.code.run_code("1", language=language).result == "1"


def test_bad_arguments_name_the_problem(session: Session) -> None:
    too_long = session.code.run_code("1", timeout_s=10**9)
    assert too_long.code == "InvalidArgument" and "timeout_s" in too_long.error_message
    zero = session.call_mcp_tool("run_code", {"code": "1", "timeout_s": 0})
    assert zero.code == "InvalidArgument" and "timeout_s" in zero.error_message
    missing = session.call_mcp_tool("run_code", {})
    assert missing.code == "InvalidArgument" and "'code'" in missing.error_message


def test_the_answer_text_is_agentbays(session: Session) -> None:
    """The raw text: AgentBay's keys, each result a JSON string of a mime bundle, Cove's beside."""
    called = session.call_mcp_tool(
        "run_code", {"code": "print('hi')\n1 + 1", "language": "python", "timeout_s": 9}
    )
    assert called.success, called.error_message
    answer = json.loads(called.data)
    assert answer["executionError"] == "" and answer["stdout"] == ["hi\n"] and answer["stderr"] == []
    assert json.loads(answer["result"][0]) == {"text/plain": "2", "isMainResult": True}
    assert answer["execution_count"] == answer["executionCount"] == 1
    assert answer["execution_time"] == answer["executionTime"] >= 0
    assert answer["kernel_restarted"] is False and answer["error"] is None
    failed = session.call_mcp_tool("run_code", {"code": "raise KeyError('k')"})
    assert not failed.success
    assert json.loads(failed.error_message)["executionError"] == "KeyError: 'k'"


def test_an_agent_with_a_kernel_stays(data_root: Path) -> None:
    """The agent leaves when idle only if it holds nothing: a kernel is the session's state."""
    with (
        running_server(data_root / "data", agent_idle_exit_s=1, warm_pool=0) as server,
        AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay,
    ):
        session = agent_bay.create().session
        assert session is not None
        assert session.code.run_code("remembered = 7").success
        time.sleep(3)
        assert "agent.server" in server.sandbox(session.session_id, "ps -eo args").stdout
        after = session.code.run_code("remembered")
        assert after.result == "7" and not after.kernel_restarted


async def test_async_run_code(async_session: AsyncSession) -> None:
    code = async_session.code
    assert (await code.run_code("total = 40")).success
    ran = await code.run("total + 2")
    assert ran.success and ran.result == "42"
    failed = await code.execute("total / 0")
    assert not failed.success and failed.error is not None and failed.error.name == "ZeroDivisionError"
    seen: list[str] = []
    streamed = await code.run_code("print('chunk')", on_stdout=seen.append)
    assert streamed.success and seen == ["chunk\n"]

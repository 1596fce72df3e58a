"""The `run_code` tool's kernel run on this machine (no sandbox), and the SDK's reading of its answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cove.agent.tools import ToolError, code
from cove.config import Settings
from cove.errors import InvalidArgument
from cove.sdk.code_calls import read_code_answer
from cove.sessions.validation import check_tool_call


@pytest.fixture
def kernels(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, code.KernelSlot]]:
    """Kernels of the test's own (started on first use), ended afterwards."""
    slots = {name: code.KernelSlot(language) for name, language in code.LANGUAGES.items()}
    contexts: dict[str, code.KernelSlot] = {}
    monkeypatch.setattr(code, "KERNELS", slots)
    monkeypatch.setattr(code, "CONTEXTS", contexts)
    yield slots
    for slot in [*slots.values(), *contexts.values()]:
        slot.forget()


def run(source: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
    """(failed, the answer's JSON)."""
    try:
        return False, json.loads(code.run_code({"code": source, **arguments}))
    except ToolError as error:
        return True, json.loads(str(error))


def bundles(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(item) for item in answer["result"]]


def test_results_come_in_order_displays_then_the_main_result(kernels: dict[str, code.KernelSlot]) -> None:
    failed, answer = run("display(1)\nprint('out')\n'main'")
    assert not failed
    assert bundles(answer) == [
        {"text/plain": "1", "isMainResult": False},
        {"text/plain": "'main'", "isMainResult": True},
    ]
    assert "".join(answer["stdout"]) == "out\n" and answer["executionCount"] == 1  # in one chunk or two


def test_a_failing_repr_method_is_skipped_and_told(kernels: dict[str, code.KernelSlot]) -> None:
    failed, answer = run("class A:\n    def _repr_html_(self):\n        raise ValueError('no')\nA()")
    assert not failed
    [main] = bundles(answer)
    assert set(main) == {"text/plain", "isMainResult"}
    assert "_repr_html_() failed" in "".join(answer["stderr"])


def test_top_level_await_and_its_traceback(kernels: dict[str, code.KernelSlot]) -> None:
    assert run("import asyncio\nawait asyncio.sleep(0)\n3")[1]["result"] == [
        '{"text/plain": "3", "isMainResult": true}'
    ]
    failed, answer = run("async def f():\n    raise KeyError('k')\nawait f()")
    assert failed and answer["error"]["name"] == "KeyError"
    trace = answer["error"]["traceback"]
    assert trace.startswith("Traceback") and "asyncio" not in trace and "kernel.py" not in trace


def test_output_and_results_are_bounded(
    kernels: dict[str, code.KernelSlot], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(code, "OUTPUT_LIMIT_BYTES", 1000)
    failed, answer = run("print('x' * 1500)\n'y' * 2000")
    assert not failed
    assert len("".join(answer["stdout"])) == 1000 and answer["stdout_truncated_bytes"] == 501
    [main] = bundles(answer)
    assert main["isMainResult"] and "left out" in main["text/plain"]


def test_a_lone_surrogate_does_not_break_the_answer(kernels: dict[str, code.KernelSlot]) -> None:
    failed, answer = run("class A:\n    def __repr__(self):\n        return '\\ud800'\nA()")
    assert not failed and bundles(answer)[0]["text/plain"] == "\ud800"


def test_a_kernel_that_cannot_start_says_why(
    kernels: dict[str, code.KernelSlot], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(code, "KERNEL_FILE", Path("/nonexistent/kernel.py"))
    with pytest.raises(ToolError, match=r"(?s)could not start \(exit code 1; it said: .*No such file"):
        code.run_code({"code": "1"})


def js(source: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
    return run(source, language="javascript", **arguments)


def main_text(answer: dict[str, Any]) -> str:
    [main] = [bundle for bundle in bundles(answer) if bundle["isMainResult"]]
    return str(main["text/plain"])


def test_javascript_declarations_persist_and_can_be_declared_again(
    kernels: dict[str, code.KernelSlot],
) -> None:
    assert not js(
        "let a = 40; const b = 2; class Box { size() { return 3 } }; function twice(x) { return 2 * x }"
    )[0]
    assert main_text(js("twice(a + b) + new Box().size()")[1]) == "87"
    failed, again = js("const a = 1; class Box {}; a")
    assert not failed and main_text(again) == "1", "a cell may be run again"
    assert main_text(js("{ key: [1, 'two'] }")[1]) == "{ key: [ 1, 'two' ] }", "an object, not a block"
    assert js("let hidden = 1")[1]["result"] == [], "a declaration shows nothing"


def test_javascript_top_level_await_keeps_its_declarations(kernels: dict[str, code.KernelSlot]) -> None:
    failed, answer = js(
        "const {v} = await new Promise(r => setTimeout(() => r({v: 5}), 5));\n"
        "async function f() { return v }\n"
        "await f()"
    )
    assert not failed and main_text(answer) == "5"
    assert main_text(js("v + (await f())")[1]) == "10"
    imported = js("const {sep} = await import('node:path')\nlet load = () => import('os'); sep")[1]
    assert main_text(imported) == "'/'"
    failed, answer = js("async function g() {\n  throw new RangeError('far')\n}\nawait g()")
    assert failed and (answer["error"]["name"], answer["error"]["value"]) == ("RangeError", "far")
    frames = answer["error"]["traceback"].splitlines()
    assert frames[:2] == ["RangeError: far", "    at g (<cell 4>:2:9)"] and len(frames) == 3
    assert frames[2].startswith("    at <cell 4>:4:"), "the cell's frames, at the cell's own lines"


def test_javascript_output_results_and_errors(kernels: dict[str, code.KernelSlot]) -> None:
    failed, answer = js(
        "console.log('log'); console.error('error'); process.stdout.write('raw\\n')\n"
        "require('child_process').execSync('echo child; echo child-error >&2', {stdio: 'inherit'})\n"
        "display({a: 1}); display.html('<b>b</b>'); display.png(Buffer.from('PNG'));\n"
        "({ _repr_mimebundle_: () => ({'text/markdown': '*m*'}), toString() { return 'x' } })"
    )
    assert not failed
    assert answer["stdout"] == ["log\n", "raw\n", "child\n"] and answer["stderr"] == [
        "error\n",
        "child-error\n",
    ]
    assert [{k: v for k, v in b.items() if k != "text/plain"} for b in bundles(answer)] == [
        {"isMainResult": False},
        {"text/html": "<b>b</b>", "isMainResult": False},
        {"image/png": "UE5H", "isMainResult": False},
        {"text/markdown": "*m*", "isMainResult": True},
    ]
    failed, answer = js("function f() { return null.x }\nf()")
    assert (
        failed
        and answer["error"]["name"] == "TypeError"
        and "at f (<cell 2>:1:" in answer["error"]["traceback"]
    )
    assert "kernel.js" not in answer["error"]["traceback"] and "node:" not in answer["error"]["traceback"]
    failed, answer = js("let broken = (")
    assert failed and answer["error"]["name"] == "SyntaxError"


def test_javascript_interrupts_keep_the_state(kernels: dict[str, code.KernelSlot]) -> None:
    assert not js("var kept = 'here'")[0]
    for cell in ("while (true) {}", "await new Promise(() => {})", "await null; kept; for (;;) {}"):
        failed, answer = js(cell, timeout_s=1)
        assert failed and answer["timed_out"] and answer["error"]["name"] == "TimeoutError"
        assert answer.get("kernel_died", False) == cell.startswith("await null"), cell
    failed, answer = js("typeof kept")
    assert not failed and main_text(answer) == "'undefined'" and answer["kernel_restarted"]
    assert not js("var kept = 'again'")[0]
    failed, answer = js("kept", timeout_s=1)
    assert main_text(answer) == "'again'" and not answer["kernel_restarted"]


def test_languages_have_kernels_of_their_own(kernels: dict[str, code.KernelSlot]) -> None:
    assert not run("shared = 'python'")[0] and not js("var shared = 'javascript'")[0]
    assert main_text(run("shared", language="py")[1]) == "'python'"
    answer = run("shared", language="NodeJS")[1]
    assert main_text(answer) == "'javascript'" and answer["language"] == "javascript"
    assert answer["execution_count"] == 2 and answer["executionCount"] == 2, "counted per language"
    with pytest.raises(
        ToolError, match=r"unknown language 'cobol'.*typescript \(also ts\), java, bash.*, r$"
    ):
        code.run_code({"code": "1", "language": "cobol"})


def test_r_without_r_names_the_image_that_has_it(
    kernels: dict[str, code.KernelSlot], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolError, match=r"r needs R .*image_id='code_latest'"):
        code.run_code({"code": "1", "language": "R"})


def test_javascript_without_node_names_the_image_that_has_it(
    kernels: dict[str, code.KernelSlot], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolError, match="image_id='code_latest'"):
        code.run_code({"code": "1", "language": "js"})


def java(source: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
    return run(source, language="java", **arguments)


def test_java_keeps_variables_methods_classes_and_imports(kernels: dict[str, code.KernelSlot]) -> None:
    failed, answer = java(
        "import java.util.*;\nint base = 40;\nint twice(int x) { return 2 * x; }\n"
        'class Box { int size() { return 3; } }\nSystem.out.println("set"); System.err.println("err");'
    )
    assert (
        not failed
        and answer["result"] == []
        and (answer["stdout"], answer["stderr"]) == (["set\n"], ["err\n"])
    )
    assert main_text(java("twice(base + 2) + new Box().size()")[1]) == "87"
    assert main_text(java('new ArrayList<>(List.of("a"))')[1]) == "[a]", "the import stays"
    assert main_text(java('"text"')[1]) == '"text"', "a value as jshell shows it"
    assert java("base = 1")[1]["result"] == [] and java("int hidden = 2;")[1]["result"] == []
    failed, answer = java(
        'new ProcessBuilder("sh", "-c", "echo child; echo child-error >&2").inheritIO().start().waitFor()'
    )
    assert not failed and (answer["stdout"], answer["stderr"]) == (["child\n"], ["child-error\n"])


def test_java_exceptions_and_compile_errors(kernels: dict[str, code.KernelSlot]) -> None:
    failed, answer = java(
        'int divide(int a) { return 10 / a; }\nSystem.out.println("before");\ndivide(0);\n"after"'
    )
    assert failed and answer["stdout"] == ["before\n"] and answer["result"] == [], (
        "the cell stops at the exception"
    )
    error = answer["error"]
    assert (error["name"], error["value"]) == ("java.lang.ArithmeticException", "/ by zero")
    assert error["traceback"].startswith("java.lang.ArithmeticException: / by zero\n\tat .divide(#")
    assert answer["executionError"] == "java.lang.ArithmeticException: / by zero"
    failed, answer = java('throw new RuntimeException("outer", new IllegalStateException("inner"));')
    assert failed and "Caused by: java.lang.IllegalStateException: inner" in answer["error"]["traceback"]
    failed, answer = java('int fine = 1;\nint wrong = "s";')
    assert failed and answer["error"]["name"] == "CompilationError"
    assert "incompatible types" in answer["error"]["value"]
    assert answer["error"]["traceback"].startswith("<cell 3>:2: error: incompatible types")
    assert main_text(java("fine")[1]) == "1", "the snippets before the error ran"
    assert java("foo(")[1]["error"]["value"] == "reached end of file while parsing"


def test_java_interrupts_keep_the_state_and_a_dead_kernel_restarts(
    kernels: dict[str, code.KernelSlot],
) -> None:
    assert not java('String kept = "here";')[0]
    for cell in ("while (true) {}", "Thread.sleep(60_000);"):
        failed, answer = java(f'{cell}\nkept = "lost";', timeout_s=1)
        assert failed and answer["timed_out"] and "kernel_died" not in answer, cell
    failed, answer = java("kept")
    assert not failed and main_text(answer) == '"here"' and not answer["kernel_restarted"]
    failed, answer = java("System.exit(3);")
    assert failed and answer["error"]["name"] == "KernelDied" and "exit code 3" in answer["error"]["value"]
    failed, answer = java("1 + 1")
    assert not failed and main_text(answer) == "2" and answer["kernel_restarted"]


def test_java_without_a_jdk_says_what_the_image_needs(
    kernels: dict[str, code.KernelSlot], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolError, match="java needs a JDK 11 or newer"):
        code.run_code({"code": "1", "language": "Java"})


def test_the_sdk_reads_answers_and_plain_text() -> None:
    answer = {
        "executionError": "",
        "result": [
            json.dumps({"text/plain": "1", "text/html": "<b>1</b>", "isMainResult": True}),
            {"application/vnd.vegalite.v5+json": {"mark": "bar"}, "application/x-other": "o"},
            {"chart": {"type": "pie"}, "application/pdf": "JVBE", "application/javascript": "f()"},
        ],
        "stdout": ["a\n", "b\n"],
        "stderr": [],
        "executionCount": 3,
        "executionTime": 0.5,
    }
    result = read_code_answer(json.dumps(answer), False)
    assert result.success and result.result == "1" and result.execution_count == 3
    assert result.results[0].html == "<b>1</b>" and result.results[1].chart == {"mark": "bar"}
    assert result.results[1].extra == {"application/x-other": "o"} and result.logs.stdout == ["a\n", "b\n"]
    rich = result.results[2]
    assert (rich.chart, rich.pdf, rich.javascript, rich.extra) == ({"type": "pie"}, "JVBE", "f()", {})
    assert rich.formats() == ["chart", "pdf", "javascript"]
    plain = read_code_answer("just text", False)
    assert plain.success and plain.result == "just text"
    refused = read_code_answer("only python is available", True)
    assert not refused.success and refused.error_message == "only python is available"
    failed = read_code_answer(json.dumps({**answer, "executionError": "Boom: x"}), True)
    assert not failed.success and failed.error is not None and failed.error.value == "Boom: x"
    assert failed.error_message == "Boom: x"


def test_the_server_bounds_a_cell_by_timeout_s() -> None:
    settings = Settings()
    assert check_tool_call(settings, "run_code", {"code": "1", "timeout_s": 600}) == 600
    assert check_tool_call(settings, "run_code", {"code": "1"}) == 60
    with pytest.raises(InvalidArgument, match="timeout_s is 3601; this server's maximum is 3600"):
        check_tool_call(settings, "run_code", {"code": "1", "timeout_s": 3601})


def test_pdf_comes_as_base64(kernels: dict[str, code.KernelSlot]) -> None:
    failed, answer = run("class Paper:\n    def _repr_pdf_(self):\n        return b'%PDF-1.4'\nPaper()")
    assert not failed and bundles(answer)[0]["application/pdf"] == "JVBERi0xLjQ="


def bash(source: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
    return run(source, language="bash", **arguments)


def test_bash_keeps_its_folder_variables_and_functions(kernels: dict[str, code.KernelSlot]) -> None:
    assert not bash('cd /tmp && kept=5\ngreet() { echo "hi $1"; }')[0]
    failed, answer = bash("pwd; echo $kept; greet there; echo oops >&2")
    assert not failed and answer["language"] == "bash" and answer["result"] == []
    assert "".join(answer["stdout"]) == "/tmp\n5\nhi there\n" and "".join(answer["stderr"]) == "oops\n"
    failed, answer = bash("ls /nonexistent-folder")
    assert failed and answer["error"]["name"] == "ExitStatus" and "status 2" in answer["executionError"]


def test_bash_interrupts_keep_the_shell_and_exit_ends_it(kernels: dict[str, code.KernelSlot]) -> None:
    assert not bash("kept=here")[0]
    for cell in ("sleep 30; echo after", "while :; do :; done"):
        failed, answer = bash(cell, timeout_s=1)
        assert failed and answer["timed_out"] and not answer.get("kernel_died"), cell
        assert answer["stdout"] == [], "the cell stopped at the interrupt"
    failed, answer = bash("echo $kept")
    assert not failed and answer["stdout"] == ["here\n"] and not answer["kernel_restarted"]
    failed, answer = bash("exit 3")
    assert failed and answer["kernel_died"] and "exit code 3" in answer["error"]["value"]
    failed, answer = bash('echo "[$kept]"')
    assert not failed and answer["stdout"] == ["[]\n"] and answer["kernel_restarted"]


def test_typescript_strips_types_and_keeps_its_own_state(kernels: dict[str, code.KernelSlot]) -> None:
    failed, answer = run("const n: number = 41\ninterface P { x: number }\nn + 1", language="ts")
    assert not failed and main_text(answer) == "42" and answer["language"] == "typescript"
    failed, answer = run("const p: P = { x: n }; p.x", language="typescript")
    assert not failed and main_text(answer) == "41"
    failed, answer = js("typeof n")
    assert not failed and main_text(answer) == "'undefined'", "javascript's kernel is another"


def test_typescript_without_a_compiler_says_what_to_install(
    kernels: dict[str, code.KernelSlot], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolError, match=r"typescript needs the TypeScript compiler .*code_latest"):
        code.run_code({"code": "1", "language": "ts"})


def test_contexts_are_kernels_of_their_own(kernels: dict[str, code.KernelSlot], tmp_path: Path) -> None:
    made = json.loads(code.code_context({"action": "create", "cwd": str(tmp_path)}))
    assert (made["language"], made["cwd"]) == ("python", str(tmp_path))
    ran = run("import os\ny = 1\nos.getcwd()", context_id=made["id"])[1]
    assert bundles(ran)[0]["text/plain"] == repr(str(tmp_path)) and ran["executionCount"] == 1
    assert run("y")[1]["error"]["name"] == "NameError"  # the default context is apart
    assert run("y", context_id=made["id"])[1]["executionCount"] == 2
    with pytest.raises(ToolError, match="runs python, not javascript"):
        code.run_code({"code": "1", "context_id": made["id"], "language": "js"})
    listed = {item["id"] for item in json.loads(code.code_context({"action": "list"}))}
    assert listed == {"python", "javascript", made["id"]}
    code.code_context({"action": "restart", "context_id": made["id"]})
    assert run("y", context_id=made["id"])[1]["error"]["name"] == "NameError"
    with pytest.raises(ToolError, match="default context"):
        code.code_context({"action": "remove", "context_id": "python"})
    code.code_context({"action": "remove", "context_id": made["id"]})
    with pytest.raises(ToolError, match=r"^no code context"):
        code.run_code({"code": "1", "context_id": made["id"]})
    with pytest.raises(ToolError, match="no such directory"):
        code.code_context({"action": "create", "cwd": str(tmp_path / "missing")})


def test_env_is_for_one_cell(kernels: dict[str, code.KernelSlot]) -> None:
    shown = run("import os\nos.environ['COVE_GREETING']", env={"COVE_GREETING": "hi"})[1]
    assert bundles(shown)[0]["text/plain"] == "'hi'"
    assert run("'COVE_GREETING' in os.environ")[1]["result"] == [
        '{"text/plain": "False", "isMainResult": true}'
    ]
    with pytest.raises(ToolError, match="env is supported for python"):
        code.run_code({"code": "echo", "language": "bash", "env": {"A": "b"}})

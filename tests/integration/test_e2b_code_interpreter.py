"""The unmodified E2B code interpreter SDK (`e2b-code-interpreter`, pinned in pyproject.toml) against
Cove on the code_latest image, pointed at it by its environment variables alone: its requests carry
`E2b-Sandbox-Port: 49999` and reach the interpreter facade (server/api/e2b/interpreter.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from e2b_code_interpreter import (
    AsyncSandbox,
    Context,
    ExecutionError,
    NotFoundException,
    OutputMessage,
    Sandbox,
)
from e2b_code_interpreter.charts import ChartType

from tests.integration.e2b_modes import new_async_sandbox, new_sandbox, point_the_sdk_at
from tests.integration.runtimes import both_runtimes, on_default_runtime
from tests.integration.server import CoveServer

# The SDK names no runtime: on gvisor, its sandboxes are made on a server whose default is gvisor.
pytestmark = both_runtimes(scope="module")
code_server = on_default_runtime("code_server")


@pytest.fixture
def e2b_env(code_server: CoveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """By header, on a server whose images include code_latest (by host: test_e2b_hosts.py)."""
    point_the_sdk_at(code_server, False, monkeypatch)


@pytest.fixture
def sandbox(e2b_env: None) -> Iterator[Sandbox]:
    yield from new_sandbox(Sandbox)


@pytest.fixture
async def async_sandbox(e2b_env: None) -> AsyncIterator[AsyncSandbox]:
    async with new_async_sandbox(AsyncSandbox) as created:
        yield created


def test_state_output_and_env_across_cells(sandbox: Sandbox) -> None:
    assert sandbox.run_code("x = 41").results == []
    printed: list[OutputMessage] = []
    execution = sandbox.run_code("print('p')\nx + 1", on_stdout=printed.append)
    assert execution.text == "42"
    assert execution.logs.stdout == ["p\n"] and execution.logs.stderr == []
    assert [message.line for message in printed] == ["p\n"]
    assert execution.execution_count == 2
    assert execution.results[0].is_main_result
    assert sandbox.run_code("'a string'").text == "a string"  # its repr's quotes stripped, as E2B's

    assert sandbox.run_code("import sys; print('w', file=sys.stderr)").logs.stderr == ["w\n"]
    code = (
        "import os, subprocess\n"
        "shell = subprocess.run(['sh', '-c', 'echo $GREETING'], capture_output=True, text=True)\n"
        "(os.environ['GREETING'], shell.stdout)"
    )
    assert sandbox.run_code(code, envs={"GREETING": "hi"}).text == "('hi', 'hi\\n')"
    assert sandbox.run_code("os.environ.get('GREETING')").results == []  # only for that cell


def test_an_exception_is_the_execution_error(sandbox: Sandbox) -> None:
    errors: list[ExecutionError] = []
    execution = sandbox.run_code("def f():\n    return missing\nf()", on_error=errors.append)
    assert execution.error is not None
    assert execution.error.name == "NameError"
    assert execution.error.value == "name 'missing' is not defined"
    assert "line 2, in f" in execution.error.traceback
    assert execution.error.traceback.rstrip().endswith("NameError: name 'missing' is not defined")
    assert errors and errors[0].name == "NameError"
    assert sandbox.run_code("1 / 0").error.name == "ZeroDivisionError"  # type: ignore[union-attr]
    assert sandbox.run_code("1 + 1").error is None


def test_a_matplotlib_chart(sandbox: Sandbox) -> None:
    execution = sandbox.run_code(
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3], [1, 4, 9], label='squares')\n"
        "plt.title('Growth')\nplt.xlabel('n')\nplt.show()"
    )
    assert execution.error is None
    [result] = execution.results
    assert result.chart is not None
    assert (result.chart.type, result.chart.title) == (ChartType.LINE, "Growth")
    [line] = result.chart.elements
    assert line.label == "squares" and [point[1] for point in line.points] == [1, 4, 9]
    assert result.png is not None and base64.b64decode(result.png).startswith(b"\x89PNG")
    assert "png" in result.formats() and "chart" in result.formats()

    figures = sandbox.run_code(
        "fig, (a, b) = plt.subplots(1, 2)\na.bar(['x', 'y'], [1, 2])\nb.pie([1, 3])\n"
        "fig.suptitle('Two')\nplt.show()"
    )
    [result] = figures.results
    assert result.chart is not None and (result.chart.type, result.chart.title) == (
        ChartType.SUPERCHART,
        "Two",
    )
    assert [chart.type for chart in result.chart.elements] == [ChartType.BAR, ChartType.PIE]


def test_rich_results_html_markdown_json(sandbox: Sandbox) -> None:
    execution = sandbox.run_code(
        "class Page:\n"
        "    def _repr_html_(self): return '<b>hi</b>'\n"
        "    def _repr_markdown_(self): return '**hi**'\n"
        "display(Page())\n"
        "class Data:\n"
        "    def _repr_json_(self): return {'a': 1}\n"
        "    def _repr_latex_(self): return r'$x^2$'\n"
        "Data()"
    )
    shown, main = execution.results
    assert (shown.html, shown.markdown, shown.is_main_result) == ("<b>hi</b>", "**hi**", False)
    assert (main.json, main.latex, main.is_main_result) == ({"a": 1}, "$x^2$", True)
    assert shown.text is not None and shown.text.startswith("<") and "Page object" in shown.text


def test_javascript_and_typescript(sandbox: Sandbox) -> None:
    sandbox.run_code("const a = 20", language="js")
    execution = sandbox.run_code("console.log('from node'); a * 2 + 2", language="javascript")
    assert (execution.text, execution.logs.stdout) == ("42", ["from node\n"])
    failed = sandbox.run_code("nothing.here", language="js")
    assert failed.error is not None and failed.error.name == "ReferenceError"
    assert sandbox.run_code("process.env.GREETING", language="js", envs={"GREETING": "hi"}).text == "hi"
    assert sandbox.run_code("process.env.GREETING === undefined", language="js").text == "true"
    assert sandbox.run_code("const n: number = 1; n + 1", language="ts").text == "2"
    assert sandbox.run_code("echo $((6 * 7))", language="bash").logs.stdout == ["42\n"]


def test_r_and_java(sandbox: Sandbox) -> None:
    """code_latest has R and a JDK: both kernels keep state, and an R plot is a PNG result."""
    sandbox.run_code("xs <- c(1, 2, 3)", language="r")
    assert sandbox.run_code("mean(xs)", language="r").text == "[1] 2"
    plotted = sandbox.run_code("plot(xs)", language="r")
    assert plotted.results and plotted.results[0].png
    failed = sandbox.run_code("stop('no way')", language="r")
    assert failed.error is not None and "no way" in failed.error.value
    sandbox.run_code("int n = 40;", language="java")
    assert sandbox.run_code("n + 2", language="java").text == "42"


def test_contexts_have_state_of_their_own(sandbox: Sandbox) -> None:
    context = sandbox.create_code_context(cwd="/tmp")
    assert (context.language, context.cwd) == ("python", "/tmp")
    assert sandbox.run_code("import os\ny = 1\nos.getcwd()", context=context).text == "/tmp"
    default = sandbox.run_code("y")
    assert default.error is not None and default.error.name == "NameError"
    assert sandbox.run_code("y + 1", context=context).text == "2"

    listed = {item.id: item for item in sandbox.list_code_contexts()}
    assert listed[context.id].cwd == "/tmp"
    assert {"python", "javascript"} <= {item.language for item in listed.values()}

    sandbox.restart_code_context(context)
    restarted = sandbox.run_code("y", context=context)
    assert restarted.error is not None and restarted.error.name == "NameError"

    node = sandbox.create_code_context(language="js")
    assert node.language == "javascript"
    assert sandbox.run_code("let z = 5; z * 2", context=node).text == "10"
    sandbox.remove_code_context(node.id)
    sandbox.remove_code_context(context)
    assert context.id not in {item.id for item in sandbox.list_code_contexts()}
    with pytest.raises(NotFoundException):
        sandbox.run_code("1", context=context)
    with pytest.raises(NotFoundException):
        sandbox.remove_code_context(context)
    with pytest.raises(NotFoundException):
        sandbox.restart_code_context("no-such-context")


def test_unknown_context_and_the_raw_stream(code_server: CoveServer, sandbox: Sandbox) -> None:
    with pytest.raises(NotFoundException):
        sandbox.run_code("1", context=Context("no-such-context", "python", "/home/user"))

    headers = {
        "E2b-Sandbox-Id": sandbox.sandbox_id,
        "E2b-Sandbox-Port": "49999",
        "X-Access-Token": sandbox._envd_access_token or "",
    }
    both = {"code": "1", "context_id": "python", "language": "python", "env_vars": None}
    assert httpx.post(f"{code_server.url}/execute", json=both, headers=headers).status_code == 400
    cell = {"code": "print(1)\n2", "context_id": None, "language": None, "env_vars": None}
    answer = httpx.post(f"{code_server.url}/execute", json=cell, headers=headers)
    assert answer.status_code == 200 and answer.text.endswith("\n")
    lines = [json.loads(line) for line in answer.text.split("\n")[:-1]]  # no blank line anywhere
    assert [line["type"] for line in lines] == [
        "stdout",
        "result",
        "number_of_executions",
        "end_of_execution",
    ]
    assert lines[1] == {"type": "result", "text": "2", "is_main_result": True}
    wrong = {**headers, "X-Access-Token": "wrong"}
    assert httpx.post(f"{code_server.url}/execute", json=cell, headers=wrong).status_code == 502


async def test_async_sdk(async_sandbox: AsyncSandbox) -> None:
    printed: list[str] = []

    async def on_stdout(message: OutputMessage) -> None:
        printed.append(message.line)

    await async_sandbox.run_code("x = 41")
    execution = await async_sandbox.run_code("print('p')\nx + 1", on_stdout=on_stdout)
    assert (execution.text, printed) == ("42", ["p\n"])
    context = await async_sandbox.create_code_context()
    missing = await async_sandbox.run_code("x", context=context)
    assert missing.error is not None and missing.error.name == "NameError"
    assert context.id in {item.id for item in await async_sandbox.list_code_contexts()}
    await async_sandbox.remove_code_context(context)
    with pytest.raises(NotFoundException):
        await async_sandbox.restart_code_context(context)

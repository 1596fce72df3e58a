"""`run_code` in sessions of `code_latest`: JavaScript on Node.js, and Python with matplotlib and pandas.

Python's basics (state, streams, errors, timeouts, restarts) are tested on the default image in
test_code.py; here each of them for JavaScript, and what only code_latest's packages give Python.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from cove import EnhancedCodeExecutionResult, Session
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, CoveServer, sdk_session

CODE_IMAGE = "code_latest"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JS_PNG_CELL = r"""
const zlib = require('zlib');
function chunk(kind, data) {
  const length = Buffer.alloc(4); length.writeUInt32BE(data.length);
  return Buffer.concat([length, Buffer.from(kind), data, Buffer.alloc(4)]);
}
const header = Buffer.alloc(13);
header.writeUInt32BE(5, 0); header.writeUInt32BE(4, 4); header[8] = 8; header[9] = 2;
const rows = Buffer.alloc(4 * (1 + 5 * 3), 255); for (let y = 0; y < 4; y++) rows[y * 16] = 0;
display.png(Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), chunk('IHDR', header),
  chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]));
display.html('<b>swatch</b>');
'drawn'
"""
"""A 5x4 white PNG made with Node's zlib (its chunks' CRCs left 0: Node 18 has no zlib.crc32), displayed."""


def js(session: Session, code: str, **arguments: Any) -> EnhancedCodeExecutionResult:
    return session.code.run_code(code, "javascript", **arguments)


def png_size(encoded: str | None) -> tuple[int, int]:
    """Width and height of a base64 PNG, after checking it is one."""
    assert encoded is not None
    png = base64.b64decode(encoded)
    assert png.startswith(PNG_MAGIC) and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@BOTH_RUNTIMES
def test_javascript_state_persists_across_calls(code_session: Session) -> None:
    first = js(code_session, "const fs = require('fs')\nlet total = 40\nfunction add(n) { return total + n }")
    assert first.success and first.results == [] and first.execution_count == 1, first.error_message
    second = js(code_session, "process.chdir('/tmp'); fs.writeFileSync('note.txt', 'kept'); add(2)")
    assert second.success and second.result == "42" and second.execution_count == 2
    third = js(code_session, "let total = 1; [total, process.cwd(), fs.readFileSync('note.txt', 'utf8')]")
    assert third.success and third.result == "[ 1, '/tmp', 'kept' ]", "declared again, and the cwd is kept"
    awaited = js(code_session, "const late = await new Promise(r => setTimeout(() => r('later'), 10)); late")
    assert awaited.success and awaited.result == "'later'"
    assert js(code_session, "late.toUpperCase()").result == "'LATER'", "a top-level await's declaration stays"
    imported = js(code_session, "const os = await import('node:os')\nos.platform()")
    assert imported.success and imported.result == "'linux'" and imported.logs.stderr == [], "import() works"
    python = code_session.code.run_code("total = 'python'\ntotal")
    assert python.result == "'python'" and python.execution_count == 1, "a kernel and a count per language"
    assert js(code_session, "total").result == "1"


@BOTH_RUNTIMES
def test_javascript_output_streams_and_rich_results(code_session: Session) -> None:
    ran = js(
        code_session,
        "console.log('to stdout'); console.error('to stderr'); process.stdout.write('raw\\n')\n"
        "require('child_process').execSync('echo from a child', {stdio: 'inherit'})\n"
        "6 * 7",
    )
    assert ran.success, ran.error_message
    assert "".join(ran.logs.stdout) == "to stdout\nraw\nfrom a child\n"
    assert "".join(ran.logs.stderr) == "to stderr\n"
    assert [(r.text, r.is_main_result) for r in ran.results] == [("42", True)]
    drawn = js(code_session, JS_PNG_CELL)
    assert drawn.success, drawn.error_message
    image, html, main = drawn.results
    assert png_size(image.png) == (5, 4) and html.html == "<b>swatch</b>"
    assert main.is_main_result and main.text == "'drawn'"


@BOTH_RUNTIMES
def test_javascript_exception_name_value_and_stack(code_session: Session) -> None:
    ran = js(code_session, "console.log('before')\nfunction parse() {\n  return JSON.parse('{')\n}\nparse()")
    assert not ran.success and ran.error is not None
    assert ran.error.name == "SyntaxError" and "JSON" in ran.error.value
    assert "SyntaxError" in ran.error_message
    assert "at parse (<cell 1>:3:" in ran.error.traceback and "kernel.js" not in ran.error.traceback
    assert "".join(ran.logs.stdout) == "before\n", "what it printed before is kept"
    thrown = js(code_session, "async function f() { throw new RangeError('far') }\nawait f()")
    assert thrown.error is not None and (thrown.error.name, thrown.error.value) == ("RangeError", "far")
    assert js(code_session, "parse.name").result == "'parse'", "the kernel goes on"


@BOTH_RUNTIMES
def test_javascript_timeout_interrupts_and_the_kernel_keeps_its_state(code_session: Session) -> None:
    assert js(code_session, "var kept = 'still here'").success
    looping = js(code_session, "console.log('looping')\nwhile (true) {}", timeout_s=2)
    assert not looping.success and looping.timed_out and not looping.kernel_died
    assert looping.error is not None and looping.error.name == "TimeoutError"
    assert "timeout_s=2" in looping.error_message and "".join(looping.logs.stdout) == "looping\n"
    waiting = js(code_session, "await new Promise(() => {})", timeout_s=1)
    assert waiting.timed_out and not waiting.kernel_died and waiting.error is not None
    assert "awaited a promise" in waiting.error.traceback
    after = js(code_session, "kept")
    assert after.success and after.result == "'still here'" and not after.kernel_restarted


@BOTH_RUNTIMES
def test_javascript_killed_kernel_is_restarted_and_says_so(code_session: Session) -> None:
    assert js(code_session, "var lost = 1").success
    died = js(code_session, "process.exit(3)")
    assert not died.success and died.kernel_died and died.error is not None
    assert died.error.name == "KernelDied" and "exit code 3" in died.error.value
    fresh = js(code_session, "typeof lost")
    assert fresh.success and fresh.result == "'undefined'" and fresh.kernel_restarted
    pid = js(code_session, "var lost = 2; process.pid").result
    assert code_session.command.execute_command(f"kill -9 {pid}").success
    back = js(code_session, "typeof lost")
    assert back.success and back.result == "'undefined'" and back.kernel_restarted


@BOTH_RUNTIMES
def test_javascript_kernels_of_two_sessions_are_apart(
    code_session: Session, code_server: CoveServer, runtime: str
) -> None:
    assert js(code_session, "var secret = 'mine'").success
    with sdk_session(code_server, CODE_IMAGE, runtime) as other:
        there = js(other, "secret")
        assert not there.success and there.error is not None and there.error.name == "ReferenceError"
        assert not there.kernel_restarted, "its first kernel"
    assert js(code_session, "secret").result == "'mine'"


@BOTH_RUNTIMES
def test_python_matplotlib_chart_and_pandas_table(code_session: Session) -> None:
    setup = code_session.code.run_code(
        "import numpy as np, pandas as pd\nimport matplotlib.pyplot as plt\nxs = np.linspace(0, 6, 50)"
    )
    assert setup.success, setup.error_message
    shown = code_session.code.run_code("plt.figure(figsize=(4, 3))\nplt.plot(xs, np.sin(xs))\nplt.show()")
    assert shown.success, shown.error_message
    [chart] = shown.results
    width, height = png_size(chart.png)
    assert not chart.is_main_result and 200 < width <= 400 and 150 < height <= 300
    figure = code_session.code.run_code("fig, ax = plt.subplots()\nax.bar(['a', 'b'], [1, 2])\nfig")
    assert figure.success and [r.is_main_result for r in figure.results] == [True], "the figure once"
    assert png_size(figure.results[0].png)[0] > 100
    table = code_session.code.run_code("pd.DataFrame({'x': xs[:3].round(2), 'y': [1, 2, 3]})")
    assert table.success and table.results[0].html is not None and "<table" in table.results[0].html
    assert "0.12" in (table.result or ""), "the state (xs) is kept"


@pytest.fixture
def official_code_session(code_server: CoveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A code_latest session made with the official AgentBay SDK (which ignores NO_PROXY)."""
    from agentbay import AgentBay as OfficialAgentBay
    from agentbay import Config as OfficialConfig
    from agentbay import CreateSessionParams as OfficialParams

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "AGENTBAY_REGION_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(os.environ, "AGENTBAY_LOG_LEVEL", "CRITICAL")
    agent_bay = OfficialAgentBay(
        api_key=KEY_A, cfg=OfficialConfig(endpoint=code_server.url, timeout_ms=60_000)
    )
    created = agent_bay.create(OfficialParams(image_id=CODE_IMAGE))
    assert created.success, created.error_message
    yield created.session
    created.session.delete()


@pytest.mark.filterwarnings(r"ignore:Config\(endpoint=:DeprecationWarning")
def test_the_official_sdk_runs_javascript(official_code_session: Any) -> None:
    code = official_code_session.code
    first = code.run_code("const n = 41\nconsole.log('set')", "javascript")
    assert first.success and first.logs.stdout == ["set\n"], first.error_message
    second = code.run_code("n + 1", "js")
    assert second.success and second.result == "42" and second.execution_count == 2
    failed = code.run_code("null.x", "node")
    assert not failed.success and "TypeError" in failed.error_message
    assert code.run_code("n", "nodejs").result == "41", "the kernel outlives the exception"


def test_the_official_sdk_runs_r_and_java_on_code_latest(official_code_session: Any) -> None:
    code = official_code_session.code
    assert code.run_code("xs <- c(2, 4)", "R").success
    mean = code.run_code("mean(xs)", "r")
    assert mean.success and mean.result == "[1] 3", mean.error_message
    plot = code.run_code("plot(xs)", "r")
    assert plot.success and png_size(plot.results[0].png) == (700, 500)
    failed = code.run_code("stop('no way')", "r")
    assert not failed.success and "no way" in failed.error_message
    assert code.run_code("int n = 41;", "java").success
    answer = code.run_code("n + 1", "Java")
    assert answer.success and answer.result == "42", answer.error_message


DISPLAY_CELL = r"""
import io
import matplotlib.pyplot as plt
from IPython.display import HTML, JSON, SVG, Image, Javascript, Latex, Markdown, display
figure = plt.figure(figsize=(1, 1))
png, jpeg = io.BytesIO(), io.BytesIO()
figure.savefig(png, format="png")
figure.savefig(jpeg, format="jpeg")
plt.close(figure)
display(HTML("<b>bold</b>"), Markdown("**strong**"), SVG('<svg xmlns="http://www.w3.org/2000/svg"/>'))
display(Latex(r"$x^2$"), JSON({"a": [1, 2]}), Javascript("console.log(1)"))
display(Image(png.getvalue()), Image(jpeg.getvalue(), format="jpeg"))
"""
"""IPython's display objects, one of each kind, and a PNG and a JPEG drawn by matplotlib."""
CHARTS_CELL = """
fig, ax = plt.subplots(); ax.plot([1, 2, 3], [4, 5, 6], label='up'); ax.set_title('rise'); plt.show()
fig, ax = plt.subplots(); ax.scatter([1, 2], [3, 4], label='dots'); plt.show()
fig, ax = plt.subplots(); ax.bar(['a', 'b'], [1, 2], label='count'); plt.show()
fig, ax = plt.subplots(); ax.pie([1, 3], labels=['x', 'y']); plt.show()
fig, ax = plt.subplots(); ax.boxplot([[1, 2, 3, 4, 10]]); plt.show()
fig, (left, right) = plt.subplots(1, 2); left.plot([1, 2]); right.imshow([[0, 1]])
fig.suptitle('two'); plt.show()
"""


@BOTH_RUNTIMES
def test_python_display_objects_give_every_format(code_session: Session) -> None:
    ran = code_session.code.run_code(DISPLAY_CELL)
    assert ran.success, ran.error_message
    html, markdown, svg, latex, data, script, png, jpeg = ran.results
    assert (html.html, markdown.markdown, latex.latex) == ("<b>bold</b>", "**strong**", "$x^2$")
    assert svg.svg is not None and svg.svg.startswith("<svg") and data.json == {"a": [1, 2]}
    assert script.javascript == "console.log(1)" and script.formats() == ["text", "javascript"]
    assert png_size(png.png) == (100, 100) and png.formats() == ["text", "png"]
    assert jpeg.jpeg is not None and base64.b64decode(jpeg.jpeg).startswith(b"\xff\xd8")
    assert all(not result.is_main_result for result in ran.results)


@BOTH_RUNTIMES
def test_python_figures_carry_chart_data(code_session: Session) -> None:
    assert code_session.code.run_code("import matplotlib.pyplot as plt").success
    ran = code_session.code.run_code(CHARTS_CELL)
    assert ran.success, ran.error_message
    charts = [result.chart for result in ran.results]
    assert all(result.png for result in ran.results), "each figure has its PNG too"
    line, scatter, bar, pie, box, composite = charts
    assert (line["type"], line["title"], line["elements"]) == (
        "line",
        "rise",
        [{"label": "up", "points": [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]}],
    )
    assert scatter["type"] == "scatter" and scatter["elements"][0]["points"] == [[1.0, 3.0], [2.0, 4.0]]
    assert bar["elements"] == [
        {"label": "count", "group": "a", "value": 1.0},
        {"label": "count", "group": "b", "value": 2.0},
    ]
    assert [(e["label"], e["angle"]) for e in pie["elements"]] == [("x", 90.0), ("y", 270.0)]
    [whiskers] = box["elements"]
    assert box["type"] == "box_and_whisker" and whiskers["median"] == 3.0 and whiskers["outliers"] == [10.0]
    assert (whiskers["min"], whiskers["first_quartile"], whiskers["third_quartile"]) == (1.0, 2.0, 4.0)
    assert composite["type"] == "composite_chart" and composite["title"] == "two"
    assert [chart["type"] for chart in composite["elements"]] == ["line", "unknown"]


@BOTH_RUNTIMES
def test_bash_and_typescript_keep_their_state(code_session: Session) -> None:
    assert code_session.code.run_code("cd /tmp && kept=5", "bash").success
    ran = code_session.code.run_code("echo $PWD $kept", "bash")
    assert ran.success and ran.logs.stdout == ["/tmp 5\n"], ran.error_message
    failed = code_session.code.run_code("exit 4", "bash")
    assert not failed.success and failed.kernel_died
    again = code_session.code.run_code('echo "[$kept]"', "bash")
    assert again.success and again.logs.stdout == ["[]\n"] and again.kernel_restarted
    assert code_session.code.run_code("const n: number = 41\ninterface P { x: number }", "ts").success
    typescript = code_session.code.run_code("const p: P = { x: n + 1 }; p.x", "typescript")
    assert typescript.success and typescript.result == "42", typescript.error_message
    unknown = code_session.code.run_code("1", "cobol")
    assert not unknown.success and "typescript (also ts), java, bash" in unknown.error_message


@pytest.mark.filterwarnings(r"ignore:Config\(endpoint=:DeprecationWarning")
def test_the_official_sdk_reads_every_format_and_charts(official_code_session: Any) -> None:
    code = official_code_session.code
    ran = code.run_code(DISPLAY_CELL, "python")
    assert ran.success, ran.error_message
    html, markdown, svg, latex, data, _script, png, jpeg = ran.results
    assert (html.html, markdown.markdown, latex.latex, data.json) == (
        "<b>bold</b>",
        "**strong**",
        "$x^2$",
        {"a": [1, 2]},
    )
    assert svg.svg.startswith("<svg") and png_size(png.png) == (100, 100) and jpeg.jpeg
    charts = code.run_code(CHARTS_CELL, "python")
    assert charts.success, charts.error_message
    assert [result.chart["type"] for result in charts.results] == [
        "line",
        "scatter",
        "bar",
        "pie",
        "box_and_whisker",
        "composite_chart",
    ]
    assert "chart" in charts.results[0].formats() and "png" in charts.results[0].formats()

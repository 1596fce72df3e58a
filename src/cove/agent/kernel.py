"""A Python kernel for the `run_code` tool: cells run one after another in one namespace.

The tool agent (tools/code.py) starts one per session on first use and keeps it, so variables,
imports and the working directory persist from call to call, as in a Jupyter notebook. Standard
library only; it runs as plain `python3` (not isolated like the agent), so cells see the image's
installed packages.

The wire is a socket the agent passes (its fd is the first argument of `main`): the agent
writes one JSON line per cell, `{"code": "...", "env": {...}}` (env optional: set for that cell
only); the kernel answers `{"started": true}` at once,
then one JSON line with the cell's outcome (see `Kernel.run_cell`). fds 1 and 2 are pipes whose
read ends the agent passes too, and the kernel reads them itself, so what print() and child
processes write alike lands in the running cell's stdout and stderr. kernel.js, the JavaScript
kernel, speaks the same protocol. SIGINT interrupts a running cell (KeyboardInterrupt) and is ignored between
cells; the end of the socket (the agent is gone) ends the kernel.
"""

from __future__ import annotations

import ast
import builtins
import codecs
import contextlib
import io
import json
import linecache
import os
import select
import signal
import sys
import threading
import time
import types
from typing import Any

CO_COROUTINE = 0x80
"""inspect.CO_COROUTINE (without importing inspect): code with a top-level await compiles to a coroutine."""
CELL_FILE_PREFIX = "<cell "
REPR_METHODS = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("application/pdf", "_repr_pdf_"),
    ("text/latex", "_repr_latex_"),
    ("application/json", "_repr_json_"),
    ("application/javascript", "_repr_javascript_"),
)
"""IPython's display protocol: the method an object may have for each kind of rich output."""
BINARY_TYPES = ("image/png", "image/jpeg", "application/pdf")
"""Carried as base64 text."""
STARTED = b'{"started": true}\n'
CHART_KEY = "chart"
"""The bundle key of a figure's chart data: AgentBay's SDK reads it into its result's `chart`."""


class OutputCapture:
    """fds 1 and 2 are pipes read here by a thread into the running cell's stdout and stderr, up to
    `limit` bytes each per cell (the rest is counted), so nothing that writes to them can block."""

    def __init__(self, limit: int, stdout_fd: int, stderr_fd: int) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.streams = {stdout_fd: "stdout", stderr_fd: "stderr"}  # the read ends, not blocking
        self.chunks: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.kept = dict.fromkeys(self.chunks, 0)
        self.dropped = dict.fromkeys(self.chunks, 0)
        self.decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in self.chunks}
        threading.Thread(target=self.run, name="cove-kernel-output", daemon=True).start()

    def run(self) -> None:
        poller = select.poll()
        for fd in self.streams:
            poller.register(fd, select.POLLIN)
        while True:
            poller.poll()
            with self.lock:
                for fd in self.read_available():
                    poller.unregister(fd)  # a cell closed fd 1 or 2 for good

    def read_available(self) -> list[int]:
        """Call with the lock held; answers the streams that ended."""
        ended = []
        for fd, name in self.streams.items():
            while True:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if not data:
                    ended.append(fd)
                    break
                self.add(name, data)
        for fd in ended:
            del self.streams[fd]
            os.close(fd)
        return ended

    def add(self, name: str, data: bytes) -> None:
        kept = data[: max(self.limit - self.kept[name], 0)]
        self.kept[name] += len(kept)
        self.dropped[name] += len(data) - len(kept)
        text = self.decoders[name].decode(kept)
        if text:
            self.chunks[name].append(text)

    def take(self) -> dict[str, Any]:
        """What was written since the last call (flush Python's own buffered streams first)."""
        with self.lock:
            self.read_available()
            taken: dict[str, Any] = {}
            for name in self.chunks:
                tail = self.decoders[name].decode(b"", final=True)
                taken[name] = [*self.chunks[name], *([tail] if tail else [])]
                taken[f"{name}_truncated_bytes"] = self.dropped[name]
                self.chunks[name], self.kept[name], self.dropped[name] = [], 0, 0
            return taken


class Kernel:
    """The namespace and what a cell leaves behind: its results, output, error and count."""

    def __init__(self, capture: OutputCapture, results_limit: int) -> None:
        self.capture = capture
        self.results_limit = results_limit
        main = types.ModuleType("__main__")  # cells run in __main__, so pickle finds their classes
        main.__dict__["__builtins__"] = builtins
        sys.modules["__main__"] = main
        self.namespace = main.__dict__
        self.execution_count = 0
        self.pid = os.getpid()
        self.displayed: list[dict[str, Any]] = []
        self.shown_figures: list[Any] = []
        self.interruptible = False
        self.loop: Any = None
        """An asyncio event loop for cells with a top-level await, made for the first one."""
        builtins.display = self.display  # type: ignore[attr-defined]  # as IPython has it
        sys.meta_path.insert(0, IPythonDisplayFinder(self.display))

    def on_interrupt(self, signum: int, frame: types.FrameType | None) -> None:
        """SIGINT: interrupt the running cell, once; between cells, nothing."""
        if self.interruptible:
            self.interruptible = False
            raise KeyboardInterrupt

    def display(self, *objects: Any, raw: bool = False, **_: Any) -> None:
        """IPython's display(): each object becomes a result of the cell (raw: already a mime bundle)."""
        for item in objects:
            if raw and isinstance(item, dict):
                self.displayed.append(
                    {
                        **encoded_formats(item),
                        "text/plain": str(item.get("text/plain", "")),
                        "isMainResult": False,
                    }
                )
            else:
                self.displayed.append(self.bundle(item, main=False))

    def run_cell(self, code: str) -> dict[str, Any]:
        """Run one cell; answers its results (mime bundles), output, error, count and time."""
        self.execution_count += 1
        filename = f"{CELL_FILE_PREFIX}{self.execution_count}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
        self.displayed = []
        self.shown_figures = []
        self.take_over_pyplot_show()
        signal.signal(signal.SIGINT, self.on_interrupt)  # again: a cell may have set its own
        main: dict[str, Any] | None = None
        error: dict[str, str] | None = None
        started = time.perf_counter()
        try:
            self.interruptible = True
            try:
                value = self.execute(code, filename)
            finally:
                self.interruptible = False
            elapsed = time.perf_counter() - started
            if value is not None and not code.rstrip().endswith(";"):  # a final ';' hides it, as in Jupyter
                self.namespace["_"] = value
                main = self.bundle(value, main=True)
        except BaseException as caught:  # the cell's own exceptions, KeyboardInterrupt and SystemExit too
            self.interruptible = False
            elapsed = time.perf_counter() - started
            error = describe_error(caught)
        if os.getpid() != self.pid:
            os._exit(0)  # a child process the cell forked came back here: only the kernel answers
        results = [*self.displayed, *([main] if main else []), *self.take_figures()]
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a cell may have replaced or closed them
                stream.flush()
        return {
            "execution_count": self.execution_count,
            "execution_time": elapsed,
            "results": bounded(results, self.results_limit),
            **self.capture.take(),
            "error": error,
        }

    def execute(self, code: str, filename: str) -> Any:
        """Run the cell's statements; if the last is an expression, answer its value."""
        tree = ast.parse(code, filename)
        final = tree.body[-1] if tree.body else None
        last = ast.Expression(final.value) if isinstance(final, ast.Expr) else None
        if last is not None:
            tree.body.pop()
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        if tree.body:
            self.run(compile(tree, filename, "exec", flags=flags, dont_inherit=True))
        if last is not None:
            return self.run(compile(last, filename, "eval", flags=flags, dont_inherit=True))
        return None

    def run(self, compiled: types.CodeType) -> Any:
        value = eval(compiled, self.namespace)
        if compiled.co_flags & CO_COROUTINE:
            if self.loop is None:
                import asyncio

                self.loop = asyncio.new_event_loop()
            value = self.loop.run_until_complete(value)
        return value

    def bundle(self, item: Any, main: bool) -> dict[str, Any]:
        """The object's mime bundle: text/plain (its repr) and whatever rich formats it offers."""
        data = {} if isinstance(item, type) else rich_formats(item)
        if is_figure(item):
            self.shown_figures.append(item)
        data["text/plain"] = data["text/plain"] if isinstance(data.get("text/plain"), str) else repr(item)
        data["isMainResult"] = main
        return data

    def take_over_pyplot_show(self) -> None:
        """Once matplotlib.pyplot is loaded, plt.show() makes the open figures results of the cell."""
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is None or getattr(pyplot.show, "cove_kernel", False):
            return

        def show(*args: Any, **kwargs: Any) -> None:
            self.displayed.extend(self.take_figures())

        show.cove_kernel = True  # type: ignore[attr-defined]
        pyplot.show = show  # type: ignore[attr-defined]

    def take_figures(self) -> list[dict[str, Any]]:
        """matplotlib's open figures as PNG results, then closed, as Jupyter's inline backend does."""
        pyplot: Any = sys.modules.get("matplotlib.pyplot")
        if pyplot is None:
            return []
        try:
            open_figures = [pyplot.figure(number) for number in pyplot.get_fignums()]
            shown = self.shown_figures  # displayed already (the cell's value, say): not twice
            figures = [self.bundle(figure, main=False) for figure in open_figures if figure not in shown]
            pyplot.close("all")
        except Exception as failure:
            print(f"cove kernel: the figures could not be drawn: {failure!r}", file=sys.stderr)
            return []
        return figures


class IPythonDisplayFinder:
    """Makes IPython's display() (`from IPython.display import display`) the kernel's: outside an
    IPython shell it would only print. It patches the module that defines it as it is imported."""

    MODULES = ("IPython.core.display_functions", "IPython.core.display")
    """Where IPython 8 defines display(), and IPython 7."""

    def __init__(self, display: Any) -> None:
        self.display = display

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.MODULES:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        loader = spec and spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        load = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            load(module)
            if callable(getattr(module, "display", None)):
                module.display = self.display  # type: ignore[attr-defined]

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def rich_formats(item: Any) -> dict[str, Any]:
    """What `_repr_mimebundle_` and the `_repr_*_` methods give, and a matplotlib figure's PNG and chart."""
    found: dict[str, Any] = {}
    offered = call_repr(item, "_repr_mimebundle_", include=None, exclude=None)
    if isinstance(offered, tuple) and offered:
        offered = offered[0]  # (data, metadata)
    if isinstance(offered, dict):
        found.update(offered)
    for mime, method in REPR_METHODS:
        if mime not in found:
            value = call_repr(item, method)
            if isinstance(value, tuple) and value:
                value = value[0]
            if value is not None:
                found[mime] = value
    if is_figure(item):
        try:
            if "image/png" not in found:
                buffer = io.BytesIO()
                item.savefig(buffer, format="png", bbox_inches="tight")
                found["image/png"] = buffer.getvalue()
            chart = load_beside("charts.py").figure_chart(item)
            if chart is not None:
                found[CHART_KEY] = chart
        except Exception as failure:
            print(f"cove kernel: the figure could not be drawn: {failure!r}", file=sys.stderr)
    return encoded_formats(found)


def bounded(results: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The results, each left out (but for a note) once they add up to more than `limit` bytes."""
    total, kept = 0, []
    for result in results:
        size = len(json.dumps(result))
        if total + size > limit:
            note = f"(a result of {size} bytes was left out: results are at most {limit} bytes a cell)"
            result = {"text/plain": note, "isMainResult": result.get("isMainResult", False)}
            size = len(note)
        total += size
        kept.append(result)
    return kept


def load_beside(filename: str) -> Any:
    """A module beside this file (charts.py, bash_kernel.py, r_kernel.py, process_kernel.py), loaded by its
    path as the agent loads this one, once, on first use."""
    name = f"cove_kernel_{filename.partition('.')[0]}"
    module = sys.modules.get(name)
    if module is None:
        from importlib.machinery import SourceFileLoader

        path = os.path.join(os.path.dirname(__file__), filename)
        code = SourceFileLoader(name, path).get_code(name)
        if code is None:
            raise ImportError(f"no code in {path}")
        module = sys.modules[name] = types.ModuleType(name)
        module.__file__ = path
        exec(code, module.__dict__)
    return module


def call_repr(item: Any, name: str, **arguments: Any) -> Any:
    """`item.name(**arguments)`, or None if it has no such method or it fails (which is told on stderr)."""
    method = getattr(item, name, None)
    if not callable(method):
        return None
    try:
        return method(**arguments)
    except Exception as failure:
        print(f"cove kernel: {type(item).__name__}.{name}() failed: {failure!r}", file=sys.stderr)
        return None


def encoded_formats(found: dict[Any, Any]) -> dict[str, Any]:
    """Formats as JSON can carry them: images as base64 text, text as str, JSON as itself."""
    formats: dict[str, Any] = {}
    for mime, value in found.items():
        if not isinstance(mime, str) or mime == "isMainResult":
            continue
        if mime in BINARY_TYPES and isinstance(value, bytes | bytearray):
            import base64  # here, as traceback below: a kernel starts faster without them

            formats[mime] = base64.b64encode(value).decode("ascii")
        elif isinstance(value, str):
            formats[mime] = value
        elif isinstance(value, dict | list) and (mime.endswith("json") or mime == CHART_KEY):
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                continue
            formats[mime] = value
    return formats


def is_figure(item: Any) -> bool:
    return type(item).__module__.startswith("matplotlib.") and callable(getattr(item, "savefig", None))


def describe_error(error: BaseException) -> dict[str, str]:
    """Name, value and traceback of an exception, with the cell's frames only (not the kernel's)."""
    import traceback

    kernel_file = describe_error.__code__.co_filename
    frames = error.__traceback__
    while frames is not None and not frames.tb_frame.f_code.co_filename.startswith(CELL_FILE_PREFIX):
        frames = frames.tb_next  # the kernel's (and asyncio's, for a top-level await) before the cell's
    if frames is None and not isinstance(error, SyntaxError):
        frames = error.__traceback__  # raised outside the cell's own code (a library's __repr__, say)
    report = traceback.TracebackException(type(error), error, frames)
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in report.stack if frame.filename != kernel_file]  # on_interrupt, for one
    )
    return {"name": type(error).__name__, "value": str(error), "traceback": "".join(report.format())}


def main(language: str, control_fd: int, output_limit: int, stdout_fd: int, stderr_fd: int) -> None:
    """Serve cells of `language` (python, bash: bash_kernel.py, or r: r_kernel.py) on the socket
    `control_fd` until the agent closes it; `stdout_fd` and `stderr_fd` read what is written to fds 1
    and 2."""
    sys.argv = [""]
    for fd in (stdout_fd, stderr_fd):
        os.set_inheritable(fd, False)  # a cell's child processes write to fds 1 and 2, never read them
    capture = OutputCapture(output_limit, stdout_fd, stderr_fd)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)  # in step with what child processes write
    if language == "python":
        kernel_type: Any = Kernel
    elif language == "r":
        kernel_type = load_beside("r_kernel.py").RKernel
    else:
        kernel_type = load_beside("bash_kernel.py").BashKernel
    kernel = kernel_type(capture, output_limit)
    signal.signal(signal.SIGINT, kernel.on_interrupt)
    os.set_inheritable(control_fd, False)  # a cell's child processes must not hold the agent's line
    with open(control_fd, "rb") as requests:
        serve(kernel, capture, requests, control_fd)


def serve(kernel: Any, capture: OutputCapture, requests: io.BufferedReader, control_fd: int) -> None:
    while True:
        line = requests.readline()
        if not line:
            return
        send(control_fd, STARTED)
        cell = json.loads(line)
        saved = {name: os.environ.get(name) for name in cell.get("env") or {}}
        try:
            os.environ.update(cell.get("env") or {})  # for this cell only: restored below
            answer = kernel.run_cell(str(cell.get("code", "")))
            encoded = json.dumps(answer).encode()
        except BaseException as failure:  # a bug here, or an interrupt as the cell ended: keep serving
            error = {"name": type(failure).__name__, "value": str(failure), "traceback": ""}
            fallback = {"execution_count": kernel.execution_count, "execution_time": 0.0, "results": []}
            encoded = json.dumps({**fallback, **capture.take(), "error": error}).encode()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        send(control_fd, encoded + b"\n")


def send(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]

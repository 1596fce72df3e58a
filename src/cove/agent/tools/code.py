"""The `run_code` tool: cells in a kernel per language that keeps its state, like a notebook's.

The first call in a language starts its kernel (../kernel.py for Python, ../kernel.js for JavaScript
and, stripping types first, TypeScript, ../Kernel.java, which drives the JDK's JShell, for Java,
../bash_kernel.py on kernel.py's machinery for Bash, and ../r_kernel.py on it, driving ../kernel.R,
for R) as a child of the agent, and later calls
run their cells in it, one at a time, so variables, imports and the working directory persist.
Every kernel speaks the same protocol on a socket and gets the same pipes as its stdout and stderr,
so one `KernelProcess` and `KernelSlot` serve all languages. A cell past its timeout is interrupted
with SIGINT and the kernel keeps its state; one that ignores the interrupt gets its kernel killed.
A kernel that died is replaced on the next call, whose answer says `kernel_restarted`. The answer
is the JSON AgentBay's SDK parses (see `answer_text`).

Each language's kernel is its default context; the `code_context` tool makes more (E2B's code
contexts): a context is a kernel of its own, with its own state and working directory, that
`run_code` reaches by `context_id`. A default context's id is its language's name.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import process_trees
from ..answer_size import ANSWER_BUDGET_BYTES, SEPARATOR_BYTES, cut_text, fit_chunks, wire_size
from ..environment import user_environment
from . import Tool, ToolError
from .shell import OUTPUT_LIMIT_BYTES

DEFAULT_TIMEOUT_S = 60
INTERRUPT_GRACE_S = 3.0
"""How long a cell has to stop after the interrupt before its kernel is killed."""
START_TIMEOUT_S = 30.0
"""How long a new kernel may take to take its first cell."""
AGENT_DIR = Path(__file__).resolve().parent.parent
KERNEL_FILE = AGENT_DIR / "kernel.py"
JAVASCRIPT_KERNEL_FILE = AGENT_DIR / "kernel.js"
JAVA_KERNEL_FILE = AGENT_DIR / "Kernel.java"
BOOT = (
    "import sys, types; from importlib.machinery import SourceFileLoader; "
    "kernel = sys.modules['cove_kernel'] = types.ModuleType('cove_kernel'); kernel.__file__ = sys.argv[1]; "
    "exec(SourceFileLoader('cove_kernel', sys.argv[1]).get_code('cove_kernel'), kernel.__dict__); "
    "kernel.main(sys.argv[2], *map(int, sys.argv[3:]))"
)
"""Loads kernel.py by its path (with its compiled bytecode), so the agent's folder is not on sys.path
(importlib.util would cost the kernel's start 6 ms)."""
CODE_IMAGE = "code_latest"
"""The built-in image with every runtime run_code uses (docs/images.md)."""
OUTPUT_SHARE = ANSWER_BUDGET_BYTES // 6
"""What each of stdout, stderr and the results may take of an answer on the wire: with the error's
shares, five sixths of it, so that escaping everything (for a lone surrogate) still fits."""
ERROR_SHARES = {"name": OUTPUT_SHARE // 4, "value": OUTPUT_SHARE // 2, "traceback": OUTPUT_SHARE // 2}
"""The error's fields; executionError repeats name and value."""
MAX_CONTEXTS = 32
"""Code contexts a session may make besides the default ones: each may hold a kernel process."""
ENV_LANGUAGES = ("python", "javascript", "typescript")
"""The kernels that take environment variables for one cell (`env`)."""


@dataclass(frozen=True)
class Language:
    """How to start one language's kernel; every kernel then speaks the same protocol."""

    name: str
    title: str
    aliases: tuple[str, ...]
    command: Callable[[dict[str, str]], list[str]]
    """The kernel's command line, given its environment, but for the numbers every kernel takes last:
    its socket's fd, the output limit per cell, and the fds to read its stdout and stderr from."""


def _on_path(program: str, environment: dict[str, str]) -> str | None:
    """Where `program` is on the PATH the kernel gets, which need not be the agent's own."""
    return shutil.which(program, path=environment.get("PATH", os.defpath))


def python_command(environment: dict[str, str]) -> list[str]:
    return [sys.executable, "-c", BOOT, str(KERNEL_FILE), "python"]


def bash_command(environment: dict[str, str]) -> list[str]:
    """kernel.py's machinery, driving a bash (bash_kernel.py)."""
    if _on_path("bash", environment) is None:
        raise ToolError("run_code: bash needs `bash` on PATH, and this session's image has none")
    return [sys.executable, "-c", BOOT, str(KERNEL_FILE), "bash"]


def javascript_command(environment: dict[str, str]) -> list[str]:
    """Node with its internals exposed: the kernel parses cells with the acorn parser Node bundles."""
    node = _on_path("node", environment)
    if node is None:
        raise ToolError(
            "run_code: javascript needs Node.js (`node` on PATH), and this session's image has none; "
            f"create the session with image_id='{CODE_IMAGE}', which has it (`cove image build {CODE_IMAGE}`)"
        )
    return [node, "--expose-internals", str(JAVASCRIPT_KERNEL_FILE)]


def typescript_command(environment: dict[str, str]) -> list[str]:
    """The JavaScript kernel, given the TypeScript module beside the `tsc` on PATH (Debian's
    node-typescript or npm's typescript), with which it strips each cell's types."""
    tsc = _on_path("tsc", environment)
    module = Path(os.path.realpath(tsc)).parent.parent if tsc else None
    if module is None or not (module / "package.json").exists():
        raise ToolError(
            "run_code: typescript needs the TypeScript compiler (`tsc` on PATH, from Debian's "
            f"node-typescript or npm's typescript), and this session's image has none; create the session "
            f"with image_id='{CODE_IMAGE}', which has it, or run the code as javascript"
        )
    return [*javascript_command(environment), f"--typescript={module}"]


def java_command(environment: dict[str, str]) -> list[str]:
    """A single-file source launch of Kernel.java, which drives the JDK's JShell; java.io is opened to
    it so it can take its socket by number. A JRE has neither javac nor JShell: the `jshell` beside
    `java` tells a JDK. The JIT stops at C1: javac compiles every snippet, and compiles (and starts)
    about twice as fast so, for hot loops slower than C2 would run them."""
    java = _on_path("java", environment)
    if java is None or not (Path(os.path.realpath(java)).parent / "jshell").exists():
        raise ToolError(
            "run_code: java needs a JDK 11 or newer (`java` on PATH, with `jshell` beside it), and this "
            f"session's image has {'only a JRE' if java else 'none'}; create the session with "
            f"image_id='{CODE_IMAGE}', which has one"
        )
    return [
        java,
        "-XX:TieredStopAtLevel=1",
        "--add-opens",
        "java.base/java.io=ALL-UNNAMED",
        str(JAVA_KERNEL_FILE),
    ]


def r_command(environment: dict[str, str]) -> list[str]:
    """kernel.py's machinery, driving an R (r_kernel.py, kernel.R)."""
    if _on_path("R", environment) is None:
        raise ToolError(
            "run_code: r needs R (`R` on PATH), and this session's image has none; create the session "
            f"with image_id='{CODE_IMAGE}', which has it (`cove image build {CODE_IMAGE}`)"
        )
    return [sys.executable, "-c", BOOT, str(KERNEL_FILE), "r"]


PYTHON = Language("python", "Python", ("python", "py", "python3"), python_command)
JAVASCRIPT = Language("javascript", "JavaScript", ("javascript", "js", "node", "nodejs"), javascript_command)
TYPESCRIPT = Language("typescript", "TypeScript", ("typescript", "ts"), typescript_command)
JAVA = Language("java", "Java", ("java",), java_command)
BASH = Language("bash", "Bash", ("bash", "sh", "shell"), bash_command)
R = Language("r", "R", ("r",), r_command)
LANGUAGES = {language.name: language for language in (PYTHON, JAVASCRIPT, TYPESCRIPT, JAVA, BASH, R)}
"""Each has a kernel of its own per session: typescript's state is apart from javascript's."""


class KernelProcess:
    """A running kernel: its process, and the socket that carries its cells and answers.

    Its stdout and stderr are pipes whose read ends it gets too, so what its cells and their child
    processes write lands in the running cell's output; the agent keeps the stderr pipe until the
    first cell, to tell what a kernel that could not start said."""

    def __init__(self, language: Language, cwd: str | None = None) -> None:
        self.language = language
        environment = user_environment({})
        environment.setdefault("MPLBACKEND", "Agg")  # matplotlib draws into images, never a window
        command = language.command(environment)
        agent_end, kernel_end = socket.socketpair()
        pipes = [os.pipe(), os.pipe()]  # (read, write) for stdout, stderr
        for read_end, _ in pipes:
            os.set_blocking(read_end, False)
        (stdout_read, stdout_write), (stderr_read, stderr_write) = pipes
        numbers = (kernel_end.fileno(), OUTPUT_LIMIT_BYTES, stdout_read, stderr_read)
        try:
            self.popen, self.tree = process_trees.popen(
                f"kernel-{language.name}",  # killing its tree kills what its cells started
                [*command, *map(str, numbers)],
                cwd=cwd or home(),
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=stdout_write,
                stderr=stderr_write,
                pass_fds=(kernel_end.fileno(), stdout_read, stderr_read),
            )
        except OSError as error:
            agent_end.close()
            os.close(stderr_read)
            raise ToolError(f"cannot start the {language.title} kernel: {error.strerror}") from None
        finally:
            kernel_end.close()
            for fd in (stdout_read, stdout_write, stderr_write):
                os.close(fd)
        self.startup_stream: int | None = stderr_read
        self.socket = agent_end
        self.received = bytearray()
        self.scanned = 0
        self.killed = False

    def alive(self) -> bool:
        return self.popen.poll() is None

    def read_line(self, deadline: float) -> bytes | None:
        """The next line the kernel sends; None at the deadline, b"" if the kernel is gone."""
        while True:
            end = self.received.find(b"\n", self.scanned)
            if end >= 0:
                line = bytes(self.received[: end + 1])
                del self.received[: end + 1]
                self.scanned = 0
                return line
            self.scanned = len(self.received)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.socket.settimeout(remaining)
            try:
                data = self.socket.recv(1 << 20)
            except TimeoutError:
                return None
            except OSError:
                return b""
            if not data:
                return b""
            self.received += data

    def send(self, code: str, env: dict[str, str] | None = None) -> bool:
        """Hand the kernel a cell (with `env` set while it runs); False if it is gone and never took it."""
        self.socket.settimeout(START_TIMEOUT_S)
        cell: dict[str, Any] = {"code": code, **({"env": env} if env else {})}
        try:
            self.socket.sendall(json.dumps(cell).encode() + b"\n")
        except OSError:
            return False
        started = self.read_line(time.monotonic() + START_TIMEOUT_S)
        if started is None:
            self.kill()
            raise ToolError(
                f"the {self.language.title} kernel did not take the cell within {START_TIMEOUT_S:g} s; "
                "it was killed"
            )
        if started:
            self.close_startup_stream()
        return bool(started)

    def close_startup_stream(self) -> None:
        if self.startup_stream is not None:
            os.close(self.startup_stream)
            self.startup_stream = None

    def startup_failure(self) -> str:
        """What a kernel that died before its first cell said, and how it ended."""
        ending = self.ending()
        said = bytearray()
        while self.startup_stream is not None:
            try:
                data = os.read(self.startup_stream, 65536)
            except BlockingIOError:  # a process it started still holds the pipe
                data = b""
            if not data:
                self.close_startup_stream()
            said += data
        return f"{ending}; it said: {said[-2000:].decode(errors='replace').strip()}"

    def ending(self) -> str:
        """How the kernel ended, once it has."""
        try:
            code = self.popen.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.popen.returncode
        if code >= 0:
            return f"exit code {code}"
        name = signal.Signals(-code).name
        if -code == signal.SIGKILL and not self.killed:
            return f"killed by {name}: out of memory, or killed from inside the session"
        return f"{'killed' if self.killed else 'ended'} by {name}"

    def interrupt(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, signal.SIGINT)

    def kill(self) -> None:
        """End the kernel and every process its cells started (by process group only while the kernel
        has not been reaped, so that its group id cannot have been reused)."""
        running = self.alive()
        self.killed = self.killed or running
        if running or self.tree.cgroup is not None:
            self.tree.kill()
        self.popen.wait()
        self.tree.release()
        self.close_startup_stream()
        self.socket.close()


@dataclass
class CellOutcome:
    answer: dict[str, Any] | None
    """The kernel's answer; None if the kernel died (or was killed) before it gave one."""
    timed_out: bool = False
    ending: str = ""
    """How the kernel ended, when it did."""


@dataclass
class KernelSlot:
    """One language's kernel in this session; its lock lets one cell run at a time."""

    language: Language
    lock: threading.Lock = field(default_factory=threading.Lock)
    kernel: KernelProcess | None = None
    started: int = 0
    """Kernels started so far: a new one after the first means the state of the old one is lost."""
    cwd: str | None = None
    """Where the kernel starts; the home directory if None."""

    def run(self, code: str, timeout_s: float, env: dict[str, str] | None = None) -> tuple[CellOutcome, bool]:
        """Run a cell in the kernel, started first if there is none; answers its outcome and whether a
        kernel had to be started in place of one that had ended."""
        restarted = False
        for _attempt in range(2):
            if self.kernel is None or not self.kernel.alive():
                self.forget()
                restarted = restarted or self.started > 0
                self.kernel = KernelProcess(self.language, self.cwd)
                self.started += 1
            kernel = self.kernel
            if kernel.send(code, env):
                return self.wait(kernel, timeout_s), restarted
            fresh = kernel.startup_stream is not None  # it never took a cell: it could not start
            failure = kernel.startup_failure() if fresh else ""
            self.forget()  # gone before it took the cell: a new one takes it
            if fresh:
                raise ToolError(f"the {self.language.title} kernel could not start ({failure})")
        raise ToolError(f"the {self.language.title} kernel ended twice before it took the cell")

    def wait(self, kernel: KernelProcess, timeout_s: float) -> CellOutcome:
        started = time.monotonic()
        line = kernel.read_line(started + timeout_s)
        timed_out = line is None
        if line is None:
            kernel.interrupt()
            line = kernel.read_line(time.monotonic() + INTERRUPT_GRACE_S)
        if not line:  # it did not stop at the interrupt (None), or it died (b"")
            if line is None:
                kernel.kill()
            ending = kernel.ending()
            self.forget()
            return CellOutcome(None, timed_out, ending)
        answer = json.loads(line)
        return CellOutcome(answer if isinstance(answer, dict) else None, timed_out)

    def forget(self) -> None:
        if self.kernel is not None:
            self.kernel.kill()
            self.kernel = None


KERNELS = {name: KernelSlot(language) for name, language in LANGUAGES.items()}
CONTEXTS: dict[str, KernelSlot] = {}
"""The contexts `code_context` made, by id; the default ones are KERNELS."""


def home() -> str:
    return os.environ.get("HOME") or "/"


def holds_state() -> bool:
    """A live kernel keeps the agent: its namespace is the session's notebook state; so do contexts."""
    return bool(CONTEXTS) or any(slot.kernel is not None and slot.kernel.alive() for slot in KERNELS.values())


def context_slot(context_id: str) -> KernelSlot:
    """The kernel of a context: one `code_context` made, or a language's default one (its name)."""
    slot = CONTEXTS.get(context_id) or KERNELS.get(context_id)
    if slot is None:
        raise ToolError(
            f"no code context {context_id!r} in this session; code_context action 'list' names them"
        )
    return slot


def describe_context(context_id: str, slot: KernelSlot) -> dict[str, str]:
    return {"id": context_id, "language": slot.language.name, "cwd": slot.cwd or home()}


def check_language(language: str) -> Language:
    name = language.strip().lower()
    for known in LANGUAGES.values():
        if name in known.aliases:
            return known
    offered = ", ".join(
        f"{known.name} (also {', '.join(known.aliases[1:])})" if known.aliases[1:] else known.name
        for known in LANGUAGES.values()
    )
    raise ToolError(f"run_code: unknown language '{language}'; run_code runs {offered}")


def error_of(outcome: CellOutcome, title: str, timeout_s: int) -> dict[str, str] | None:
    """The cell's error: its exception, or what the timeout or the kernel's end did to it."""
    answer = outcome.answer or {}
    error = answer.get("error") if isinstance(answer.get("error"), dict) else None
    lost = "its state is lost, and the next call starts a new kernel"
    if outcome.answer is None and outcome.timed_out:
        return {
            "name": "TimeoutError",
            "value": f"the cell ran longer than timeout_s={timeout_s} s and did not stop at the interrupt, "
            f"so its kernel was killed; {lost}",
            "traceback": "",
        }
    if outcome.answer is None:
        return {
            "name": "KernelDied",
            "value": f"the {title} kernel ended during the cell ({outcome.ending}); {lost}",
            "traceback": "",
        }
    if outcome.timed_out:
        return {
            "name": "TimeoutError",
            "value": f"the cell ran longer than timeout_s={timeout_s} s and was interrupted (SIGINT); "
            "the kernel keeps its state",
            "traceback": str((error or {}).get("traceback", "")),
        }
    return error


def answer_text(
    outcome: CellOutcome, language: Language, restarted: bool, timeout_s: int, elapsed: float
) -> tuple[str, bool]:
    """The answer as AgentBay's SDK reads it (its `executionError`, `result` as JSON strings of mime
    bundles, `stdout`/`stderr` lists, counts in both spellings), with Cove's fields beside; and
    whether it is an error."""
    answer = outcome.answer or {}
    error = error_of(outcome, language.title, timeout_s)
    if error:
        error = {key: cut_text(str(error.get(key, "")), ERROR_SHARES[key])[0] for key in ERROR_SHARES}
    count = answer.get("execution_count")
    seconds = answer.get("execution_time", elapsed)
    stdout, stdout_cut = fit_chunks(list(map(str, answer.get("stdout", []))), OUTPUT_SHARE)
    stderr, stderr_cut = fit_chunks(list(map(str, answer.get("stderr", []))), OUTPUT_SHARE)
    payload: dict[str, Any] = {
        "executionError": f"{error['name']}: {error['value']}" if error else "",
        "result": fit_results(answer.get("results", []), OUTPUT_SHARE),
        "stdout": stdout,
        "stderr": stderr,
        "execution_count": count,
        "execution_time": seconds,
        "executionCount": count,
        "executionTime": seconds,
        "error": error,
        "kernel_restarted": restarted,
        "language": language.name,
    }
    if outcome.timed_out:
        payload["timed_out"] = True
    if outcome.answer is None:
        payload["kernel_died"] = True
    for stream, cut in (("stdout", stdout_cut), ("stderr", stderr_cut)):
        if answer.get(f"{stream}_truncated_bytes") or cut:
            payload[f"{stream}_truncated_bytes"] = answer.get(f"{stream}_truncated_bytes", 0) + cut
    text = json.dumps(payload, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate in some output: escape everything instead
        text = json.dumps(payload)
    return text, error is not None


def fit_results(bundles: list[Any], budget: int) -> list[str]:
    """The results as JSON strings, each that would pass `budget` on the wire left out but for a note."""
    kept = []
    for bundle in bundles:
        text = json.dumps(bundle, ensure_ascii=False)
        size = wire_size(text) + SEPARATOR_BYTES
        if size > budget:
            main = bundle.get("isMainResult", False) if isinstance(bundle, dict) else False
            note = f"(a result of {size} bytes on the wire was left out: it would not fit the answer)"
            text = json.dumps({"text/plain": note, "isMainResult": main})
            size = wire_size(text) + SEPARATOR_BYTES
        kept.append(text)
        budget -= size
    return kept


def run_code(arguments: dict[str, Any]) -> str:
    language = check_language(arguments.get("language", "python"))
    timeout_s: int = arguments.get("timeout_s", DEFAULT_TIMEOUT_S)
    slot = KERNELS[language.name]
    if "context_id" in arguments:
        slot = context_slot(arguments["context_id"])
        if "language" in arguments and slot.language is not language:
            raise ToolError(
                f"run_code: context {arguments['context_id']!r} runs {slot.language.name}, "
                f"not {language.name}; give the context or the language"
            )
        language = slot.language
    env = arguments.get("env") or None
    if env and language.name not in ENV_LANGUAGES:
        raise ToolError(
            f"run_code: env is supported for {', '.join(ENV_LANGUAGES)} cells, not {language.name}"
        )
    started = time.monotonic()
    if not slot.lock.acquire(timeout=timeout_s):
        raise ToolError(
            f"another cell kept this session's {language.title} kernel busy for all of "
            f"timeout_s={timeout_s} s; cells run one at a time"
        )
    try:
        waited = time.monotonic() - started  # for an earlier cell: the call as a whole keeps to timeout_s
        outcome, restarted = slot.run(arguments["code"], max(timeout_s - waited, 1.0), env)
    finally:
        slot.lock.release()
    text, failed = answer_text(outcome, language, restarted, timeout_s, time.monotonic() - started)
    if failed:
        raise ToolError(text)
    return text


def code_context(arguments: dict[str, Any]) -> str:
    """E2B's code contexts: create (a kernel of its own, started on its first cell), list, restart
    (its state is lost; the next cell starts a new kernel) and remove."""
    action = arguments["action"]
    if action == "list":
        defaults = {
            name: slot for name, slot in KERNELS.items() if name in ("python", "javascript") or slot.kernel
        }
        return json.dumps([describe_context(key, slot) for key, slot in {**defaults, **CONTEXTS}.items()])
    if action == "create":
        if len(CONTEXTS) >= MAX_CONTEXTS:
            raise ToolError(f"code_context: a session has at most {MAX_CONTEXTS} contexts; remove one first")
        language = check_language(arguments.get("language") or "python")
        cwd = os.path.join(home(), arguments.get("cwd") or home())
        if not os.path.isdir(cwd):
            raise ToolError(f"code_context: no such directory: {cwd}")
        context_id = str(uuid.uuid4())
        CONTEXTS[context_id] = KernelSlot(language, cwd=cwd)
        return json.dumps(describe_context(context_id, CONTEXTS[context_id]))
    if action not in ("restart", "remove") or "context_id" not in arguments:
        raise ToolError("code_context: action is create, list, restart or remove (these two with context_id)")
    context_id = arguments["context_id"]
    slot = context_slot(context_id)
    if action == "remove" and context_id in KERNELS:
        raise ToolError(f"code_context: {context_id!r} is a default context; restart it to clear its state")
    if not slot.lock.acquire(timeout=INTERRUPT_GRACE_S):
        raise ToolError(
            f"code_context: a cell is running in context {context_id!r}; {action} it once it ends"
        )
    try:
        slot.forget()
        if action == "remove":
            del CONTEXTS[context_id]
    finally:
        slot.lock.release()
    return json.dumps(describe_context(context_id, slot))


TOOLS = [
    Tool(
        name="run_code",
        description=(
            "Run Python, JavaScript, TypeScript, Java, Bash or R code in the session's kernel for that "
            "language, which keeps its variables, imports and working directory from call to call, as a "
            "notebook does. Answers JSON: result (mime bundles as JSON strings, with every format the "
            "value offers, and chart data for matplotlib figures; the value of a final expression is the "
            "main result, display() adds more; R's plots are PNG results), "
            "stdout and stderr (lists), executionError, execution_count and execution_time; an "
            "exception is an error with its name, value and traceback. At timeout_s the cell is "
            "interrupted and the kernel keeps its state."
        ),
        run=run_code,
        properties={
            "code": {"type": "string", "description": "the cell: statements in its language"},
            "language": {
                "type": "string",
                "description": "python (also py, python3), the default, javascript (also js, node, "
                "nodejs: Node.js, in images that have it, such as code_latest), typescript (also ts: "
                "with Node.js and the TypeScript compiler), java (JShell: in images with a JDK 11 or "
                "newer, such as code_latest), bash (also sh, shell) or r (in images with R, such as "
                "code_latest)",
            },
            "timeout_s": {
                "type": "integer",
                "minimum": 1,
                "description": f"default {DEFAULT_TIMEOUT_S}; then the cell is interrupted",
            },
            "context_id": {
                "type": "string",
                "description": "the code context to run in (code_context makes them); by default the "
                "language's own kernel, whose context id is the language's name",
            },
            "env": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "environment variables set while this cell runs, then restored "
                f"({', '.join(ENV_LANGUAGES)})",
            },
        },
        required=("code",),
    ),
    Tool(
        name="code_context",
        description=(
            "Code contexts: kernels of their own for run_code, each with its own state and working "
            "directory. create (language, cwd) answers the context's id, language and cwd; list answers "
            "every context, the default ones (a language's own kernel, its id the language's name) "
            "included; restart clears a context's state; remove ends it. Answers JSON."
        ),
        run=code_context,
        properties={
            "action": {"type": "string", "enum": ["create", "list", "restart", "remove"]},
            "language": {"type": "string", "description": "for create: as run_code's, default python"},
            "cwd": {
                "type": "string",
                "description": "for create: the kernel's working directory, default home",
            },
            "context_id": {"type": "string", "description": "for restart and remove"},
        },
        required=("action",),
    ),
]

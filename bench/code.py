"""`run_code` round trips: a warm kernel, and the first call of a session (the kernel starts).

Python on the default image; JavaScript (Node.js), Java (JShell) and R on `code_latest`, if a folder
of images has it (--images-dir; otherwise the first of IMAGE_DIRS with one), else skipped with the
reason printed.
Run as root from the repo root: `.venv/bin/python -m bench.code` (options: --runs, --first,
--images-dir). Prints a table and writes bench/results/code.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import bench_server, summary
from cove import AgentBay, Session

RESULTS = Path(__file__).parent / "results" / "code.json"
CODE_IMAGE = "code_latest"
IMAGE_DIRS = (os.environ.get("COVE_IMAGES_DIR", ""), "/var/lib/cove/images", "/var/cache/cove-test/images")
"""Where a built code_latest may be: the server's own folder, and the one the tests build it in."""
CODE_LANGUAGES = ("javascript", "java", "r")
"""The languages timed on code_latest."""
TWO = {"r": "[1] 2"}
"""How a language shows 1+1, where it is not "2"."""


def timed(call: Callable[[], Any], runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        timings.append(time.perf_counter() - start)
        assert result.success, result.error_message
    return timings


def kernel_memory(session: Session) -> float:
    """MiB the kernel adds to the session's memory cgroup (agent running in both readings)."""
    assert session.command.execute_command("true").success  # starts the agent
    time.sleep(0.5)
    before = session.get_metrics().metrics
    assert session.code.run_code("1+1").result == "2"  # starts the kernel
    time.sleep(0.5)
    after = session.get_metrics().metrics
    assert before is not None and after is not None
    return (after.mem_used - before.mem_used) / 2**20


def time_warm_cells(session: Session, runs: int, language: str = "python") -> list[float]:
    """`run_code("1+1")` with the kernel running: SDK, HTTP, server, agent socket, kernel, and back."""
    assert session.code.run_code("1+1", language).result == TWO.get(language, "2")
    return timed(lambda: session.code.run_code("1+1", language), runs)


def time_true_commands(session: Session, runs: int) -> list[float]:
    """`execute_command("true")` in the same session: the tool call's own round trip, for scale."""
    return timed(lambda: session.command.execute_command("true"), runs)


def time_python_commands(session: Session, runs: int) -> list[float]:
    """What the same cell costs without a kernel: a new `python3` per call, through the shell tool."""
    return timed(lambda: session.command.execute_command("python3 -c 'print(1+1)'"), runs)


def time_first_cells(
    agent_bay: AgentBay, runs: int, agent_running: bool, language: str = "python"
) -> list[float]:
    """The first `run_code` of new sessions: the kernel starts (and the agent too, unless running)."""
    timings = []
    for _ in range(runs):
        session = agent_bay.create().session
        assert session is not None
        if agent_running:
            assert session.command.execute_command("true").success
        start = time.perf_counter()
        result = session.code.run_code("1+1", language)
        timings.append(time.perf_counter() - start)
        assert result.success and not result.kernel_restarted, result.error_message
        session.delete()
    return timings


def code_images_dir(chosen: str) -> Path | None:
    """The folder of images that has code_latest: the one chosen, or the first of IMAGE_DIRS."""
    candidates = [chosen] if chosen else [folder for folder in IMAGE_DIRS if folder]
    return next((Path(f) for f in candidates if (Path(f) / CODE_IMAGE / "image.json").is_file()), None)


def code_latest_figures(images_dir: Path, runs: int, first: int) -> dict[str, Any]:
    """The same round trips for each of CODE_LANGUAGES, on a server whose default image is code_latest."""
    results: dict[str, Any] = {}
    with bench_server(images_dir=str(images_dir), default_image=CODE_IMAGE) as bench:
        for language in CODE_LANGUAGES:
            session = bench.agent_bay.create().session
            assert session is not None
            results[f"{language}_warm_run_code_ms"] = summary(time_warm_cells(session, runs, language))
            session.delete()
            results[f"{language}_first_run_code_ms"] = summary(
                time_first_cells(bench.agent_bay, first, agent_running=False, language=language)
            )
            results[f"{language}_first_run_code_agent_running_ms"] = summary(
                time_first_cells(bench.agent_bay, first, agent_running=True, language=language)
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="warm round trips")
    parser.add_argument(
        "--first", type=int, default=20, help="new sessions whose first cell is timed, each way"
    )
    parser.add_argument("--images-dir", default="", help=f"a folder of images with {CODE_IMAGE} in it")
    args = parser.parse_args()
    with bench_server() as bench:
        session = bench.agent_bay.create().session
        assert session is not None
        memory = kernel_memory(session)
        warm = summary(time_warm_cells(session, args.runs))
        true = summary(time_true_commands(session, args.runs))
        command = summary(time_python_commands(session, args.runs))
        session.delete()
        cold = summary(time_first_cells(bench.agent_bay, args.first, agent_running=False))
        kernel_start = summary(time_first_cells(bench.agent_bay, args.first, agent_running=True))
    results = {
        "runs": args.runs,
        "first_runs": args.first,
        "warm_run_code_ms": warm,
        "true_command_ms": true,
        "python_command_ms": command,
        "first_run_code_ms": cold,
        "first_run_code_agent_running_ms": kernel_start,
        "kernel_memory_mib": memory,
    }
    images_dir = code_images_dir(args.images_dir)
    if images_dir is not None:
        results.update(code_latest_figures(images_dir, args.runs, args.first))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measure':<44}{'p50':>10}{'p95':>10}")
    rows: list[tuple[str, dict[str, float]]] = [
        ("run_code('1+1'), warm kernel", warm),
        ("execute_command('true')", true),
        ("execute_command(\"python3 -c 'print(1+1)'\")", command),
        ("first run_code (agent and kernel start)", cold),
        ("first run_code, agent running (kernel start)", kernel_start),
    ]
    for language in CODE_LANGUAGES if images_dir is not None else ():
        rows += [
            (f"run_code('1+1', '{language}'), warm kernel", results[f"{language}_warm_run_code_ms"]),
            (f"first {language} run_code (agent, kernel)", results[f"{language}_first_run_code_ms"]),
            (
                f"first {language} run_code, agent running",
                results[f"{language}_first_run_code_agent_running_ms"],
            ),
        ]
    for name, figures in rows:
        print(f"{name:<44}{figures['p50']:>8.2f}ms{figures['p95']:>8.2f}ms")
    print(f"memory a kernel adds to its session: {memory:.1f} MiB")
    if images_dir is None:
        searched = args.images_dir or ", ".join(folder for folder in IMAGE_DIRS if folder)
        print(
            f"{', '.join(CODE_LANGUAGES)} skipped: no {CODE_IMAGE} image in {searched} "
            f"(`cove image build {CODE_IMAGE}`)"
        )


if __name__ == "__main__":
    main()

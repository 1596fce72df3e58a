"""What E2B's SDK costs over Cove's own: `Sandbox.create()` then `commands.run("echo hi")`.

Run from the repo root: `.venv/bin/python -m bench.e2b_sdk` (option: --rounds). Starts a scratch server
(bench/harness.py) and, in each round, times the same work through both SDKs, in alternating
order: the unmodified `e2b` SDK pointed at Cove by its API and sandbox URLs (header routing), and
Cove's SDK (`AgentBay.create()`, then `command.execute_command("echo hi")`). Each sandbox is
deleted after its timing, outside it, and the server's warm pool gets a moment to refill. One
round of each is run first and not counted (imports, first connections). Prints a table and
writes bench/results/e2b_sdk.json.

Target: the E2B SDK's p50 within 1.3x of Cove's SDK's.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2b import Sandbox
from tests.integration.server import KEY_A

from bench.harness import Bench, bench_server, load_average, milliseconds, verdict
from cove import AgentBay

RESULTS = Path(__file__).parent / "results" / "e2b_sdk.json"
POOL_REFILL_S = 0.3
"""Pause after each delete: the warm pool prepares its next sandbox, not during the next create."""
TARGET_RATIO = 1.3


def through_e2b(bench: Bench) -> Callable[[], float]:
    urls = {"api_url": bench.server.url, "sandbox_url": bench.server.url, "api_key": KEY_A}

    def once() -> float:
        started = time.perf_counter()
        sandbox = Sandbox.create(**urls)  # type: ignore[arg-type]
        assert sandbox.commands.run("echo hi").stdout == "hi\n"
        elapsed = time.perf_counter() - started
        sandbox.kill()
        return elapsed

    return once


def through_cove(agent_bay: AgentBay) -> Callable[[], float]:
    def once() -> float:
        started = time.perf_counter()
        session = agent_bay.create().session
        assert session.command.execute_command("echo hi").output == "hi\n"
        elapsed = time.perf_counter() - started
        session.delete()
        return elapsed

    return once


def measure(rounds: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"rounds": rounds, "load_average_start": load_average()}
    with bench_server() as bench:
        runs = {"e2b": through_e2b(bench), "cove": through_cove(bench.agent_bay)}
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for run in runs.values():  # not counted
            run()
            time.sleep(POOL_REFILL_S)
        for round_number in range(rounds):
            order = list(runs) if round_number % 2 == 0 else list(reversed(runs))
            for name in order:
                samples[name].append(runs[name]())
                time.sleep(POOL_REFILL_S)
    figures["load_average_end"] = load_average()
    for name, seconds in samples.items():
        figures[name] = milliseconds(seconds)
    figures["ratio_p50"] = round(figures["e2b"]["p50"] / figures["cove"]["p50"], 3)
    figures["target_ratio"] = TARGET_RATIO
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds of each SDK (default 20)")
    figures = measure(parser.parse_args().rounds)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print("create + echo hi    p50 ms   p90 ms   max ms")
    for name in ("e2b", "cove"):
        row = figures[name]
        print(f"{name + ' SDK':<18} {row['p50']:>7.1f}  {row['p90']:>7.1f}  {row['max']:>7.1f}")
    ratio = figures["ratio_p50"]
    print(f"E2B / Cove p50: {ratio:.2f}x (target within {TARGET_RATIO}x: {verdict(ratio <= TARGET_RATIO)})")
    print(f"load average: {figures['load_average_start']} -> {figures['load_average_end']}")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

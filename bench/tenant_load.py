"""Another tenant's latency while one tenant holds all the tool calls it may run.

Run as root from the repo root: `.venv/bin/python -m bench.tenant_load` (options: --limit, --requests,
--sleep). Tenant B measures GET /v1/sessions and a short `echo` tool call, first on a quiet server,
then while tenant A keeps `--limit` (the `tenant_tool_calls` setting) `sleep` calls running and one
more thread of A's asks for more all the time (each refused with 429). Prints p50 and p95 of both
phases and writes bench/results/tenant_load.json.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tests.integration.server import KEY_A, KEY_B, CoveServer

from bench.harness import bench_server, summary

RESULTS = Path(__file__).parent / "results" / "tenant_load.json"


def session_of(client: httpx.Client) -> str:
    answer = client.post("/v1/sessions", json={})
    assert answer.status_code == 201, answer.text
    session_id: str = answer.json()["session"]["session_id"]
    return session_id


def tool_call(client: httpx.Client, session_id: str, command: str) -> int:
    answer = client.post(f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": command}})
    return answer.status_code


def latencies(requests: int, ask: Callable[[], int]) -> dict[str, float]:
    """p50 and p95 of `requests` sequential calls of `ask`, each of which must answer 200."""
    seconds = []
    for _ in range(requests):
        started = time.perf_counter()
        status = ask()
        seconds.append(time.perf_counter() - started)
        assert status == 200, status
    return summary(seconds)


def measure_b(server: CoveServer, requests: int) -> dict[str, dict[str, float]]:
    with server.client(KEY_B) as b:
        session_id = session_of(b)
        return {
            "list_sessions": latencies(requests, lambda: b.get("/v1/sessions").status_code),
            "tool_call": latencies(requests // 4, lambda: tool_call(b, session_id, "echo b")),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=32, help="tenant_tool_calls, all held by tenant A")
    parser.add_argument("--requests", type=int, default=400, help="GETs of tenant B per phase")
    parser.add_argument("--sleep", type=int, default=60, help="seconds each of A's calls sleeps")
    args = parser.parse_args()
    with bench_server(tenant_tool_calls=args.limit, warm_pool=0) as bench:
        quiet = measure_b(bench.server, args.requests)
        with bench.server.client(KEY_A) as a, ThreadPoolExecutor(args.limit) as pool:
            a_session = session_of(a)
            sleeps = [pool.submit(tool_call, a, a_session, f"sleep {args.sleep}") for _ in range(args.limit)]
            while int(bench.server.sandbox(a_session, "pgrep -cx sleep || true").stdout or 0) < args.limit:
                time.sleep(0.1)
            refused, stop = [], threading.Event()

            def hammer() -> None:
                while not stop.is_set():
                    refused.append(tool_call(a, a_session, "true"))

            hammering = threading.Thread(target=hammer)
            hammering.start()
            loaded = measure_b(bench.server, args.requests)
            stop.set()
            hammering.join()
            assert not any(call.done() for call in sleeps), "A's sleeps ended before B was measured"
            assert [call.result() for call in sleeps] == [200] * args.limit
    results = {
        "tenant_tool_calls": args.limit,
        "requests": args.requests,
        "quiet": quiet,
        "loaded": loaded,
        "a_refused_429": refused.count(429),
        "a_other_answers": len(refused) - refused.count(429),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"tenant A: {args.limit} sleeps held, {results['a_refused_429']} more calls refused with 429")
    print(f"{'tenant B (ms)':<28}{'quiet p50':>10}{'quiet p95':>10}{'loaded p50':>11}{'loaded p95':>11}")
    for name in ("list_sessions", "tool_call"):
        row = [quiet[name]["p50"], quiet[name]["p95"], loaded[name]["p50"], loaded[name]["p95"]]
        print(f"{name:<28}" + "".join(f"{value:>10.1f} " for value in row))


if __name__ == "__main__":
    main()

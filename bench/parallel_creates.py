"""Create throughput with many clients at once.

Run as root from the repo root: `.venv/bin/python -m bench.parallel_creates` (options: --sessions,
--clients). `--clients` threads create `--sessions` sessions through the REST API as fast as they
are answered, then delete them the same way; once with the default warm pool, once without one.
Prints creates and deletes per second with each create's p50 and p95, and writes
bench/results/parallel_creates.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.integration.server import KEY_A, CoveServer

from bench.harness import bench_server, summary

RESULTS = Path(__file__).parent / "results" / "parallel_creates.json"


def timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def create(server: CoveServer, ids: list[str]) -> None:
    with server.client(KEY_A) as client:
        answer = client.post("/v1/sessions", json={})
    assert answer.status_code == 201, answer.text
    ids.append(answer.json()["session"]["session_id"])


def delete(server: CoveServer, session_id: str) -> None:
    with server.client(KEY_A) as client:
        answer = client.delete(f"/v1/sessions/{session_id}")
    assert answer.status_code == 200, answer.text


def measure(sessions: int, clients: int, warm_pool: int | None) -> dict[str, object]:
    """Creates, then deletes, of `sessions` sessions by `clients` threads on a fresh server."""
    pool_setting = {} if warm_pool is None else {"warm_pool": warm_pool}
    with (
        bench_server(session_quota=sessions + 10, **pool_setting) as bench,
        ThreadPoolExecutor(clients) as pool,
    ):
        ids: list[str] = []
        started = time.perf_counter()
        create_seconds = list(pool.map(lambda _: timed(lambda: create(bench.server, ids)), range(sessions)))
        create_wall = time.perf_counter() - started
        started = time.perf_counter()
        delete_seconds = list(pool.map(lambda i: timed(lambda: delete(bench.server, i)), ids))
        delete_wall = time.perf_counter() - started
    return {
        "creates_per_s": sessions / create_wall,
        "create": summary(create_seconds),
        "deletes_per_s": sessions / delete_wall,
        "delete": summary(delete_seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    runs = {
        "warm pool (default)": measure(args.sessions, args.clients, None),
        "no warm pool": measure(args.sessions, args.clients, 0),
    }
    results = {"sessions": args.sessions, "clients": args.clients, "runs": runs}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{args.sessions} sessions, {args.clients} clients")
    columns = ("creates/s", 10), ("p50 ms", 9), ("p95 ms", 9), ("deletes/s", 11), ("p50 ms", 9), ("p95 ms", 9)
    print(f"{'server':<22}" + "".join(f"{name:>{width}}" for name, width in columns))
    for name, run in runs.items():
        create_ms, delete_ms = run["create"], run["delete"]
        assert isinstance(create_ms, dict) and isinstance(delete_ms, dict)
        row = f"{name:<22}{run['creates_per_s']:>10.1f}{create_ms['p50']:>9.1f}{create_ms['p95']:>9.1f}"
        print(row + f"{run['deletes_per_s']:>11.1f}{delete_ms['p50']:>9.1f}{delete_ms['p95']:>9.1f}")


if __name__ == "__main__":
    main()

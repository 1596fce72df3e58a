"""A thousand idle sessions on one server: create, list, use and delete them all, with no leftover.

Run as root from the repo root: `.venv/bin/python -m bench.many_sessions` (options: --sessions,
--clients). Each session runs one command (which starts its tool agent); agents leave after 5 s
idle, then the host's memory per idle session is taken. Prints a table and writes
bench/results/many_sessions.json.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.integration.server import KEY_A, CoveServer

from bench.harness import bench_server, summary
from bench.sessions import mem_available_kib

RESULTS = Path(__file__).parent / "results" / "many_sessions.json"
AGENT_IDLE_EXIT_S = 5


def timed(
    server: CoveServer, clients: int, calls: list[tuple[str, str, dict[str, object] | None]]
) -> list[float]:
    """Run (method, path, body) requests from `clients` threads; every answer must be a success."""

    def one(call: tuple[str, str, dict[str, object] | None]) -> float:
        method, path, body = call
        with server.client(KEY_A) as client:
            start = time.perf_counter()
            answer = client.request(method, path, json=body)
            elapsed = time.perf_counter() - start
        assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text}"
        if path.endswith("/tools/shell"):
            assert "ok" in answer.json()["result"]["content"][0]["text"], answer.text
        return elapsed

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    settings = {"session_quota": args.sessions, "agent_idle_exit_s": AGENT_IDLE_EXIT_S}
    with bench_server(**settings) as bench:
        server = bench.server
        before = mem_available_kib()
        started = time.perf_counter()
        create = [("POST", "/v1/sessions", {"labels": {"bench": "many"}})] * args.sessions
        with ThreadPoolExecutor(args.clients) as pool:
            ids = list(
                pool.map(
                    lambda call: (
                        server.client(KEY_A).post(call[1], json=call[2]).json()["session"]["session_id"]
                    ),
                    create,
                )
            )
        create_s = time.perf_counter() - started
        with server.client(KEY_A) as client:
            pages, listed = 0, 0
            while True:
                page = client.get(
                    "/v1/sessions", params={"labels": '{"bench": "many"}', "page": pages + 1, "limit": 100}
                ).json()
                listed += len(page["sessions"])
                pages += 1
                if not page["next_page"]:
                    break
        assert listed == args.sessions, f"listed {listed} of {args.sessions}"
        use = timed(
            server,
            args.clients,
            [("POST", f"/v1/sessions/{i}/tools/shell", {"arguments": {"command": "echo ok"}}) for i in ids],
        )
        time.sleep(AGENT_IDLE_EXIT_S + 5)  # every agent has left: the sessions are idle again
        idle_mib = (before - mem_available_kib()) / 1024 / args.sessions
        delete = timed(server, args.clients, [("DELETE", f"/v1/sessions/{i}", None) for i in ids])
        leftovers = server.leftovers()
    figures = {
        "sessions": args.sessions,
        "clients": args.clients,
        "create_all_s": create_s,
        "listed": listed,
        "command_ms": summary(use),
        "delete_ms": summary(delete),
        "idle_host_mib_per_session": idle_mib,
        "leftovers": leftovers,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"{args.sessions} sessions created in {create_s:.1f} s with {args.clients} clients; {listed} listed"
    )
    print(f"first command in each (agent start): p50 {figures['command_ms']['p50']:.1f} ms")
    print(f"delete: p50 {figures['delete_ms']['p50']:.1f} ms")
    print(f"host memory per idle session: {idle_mib:.1f} MiB")
    print(f"leftovers after deleting all: {leftovers}")
    print(f"written to {RESULTS}")
    if any(leftovers.values()):
        raise SystemExit("leftovers found")


if __name__ == "__main__":
    main()

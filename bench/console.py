"""What the web console costs the API: request latency with nobody watching, against the same
requests while a console's event stream is open, interleaved in one run.

Run as root from the repo root: `.venv/bin/python -m bench.console` (options: --rounds, --blocks).
Three requests are timed, on one session: a read (`GET /v1/sessions/{id}`), a write that wakes
event streams (`PUT .../labels`), and a tool call (`shell`, a round trip to the sandbox). Blocks of
`--rounds` of each alternate between "closed" (no stream open) and "open" (one `GET /v1/events`
read by a thread, as a console tab holds it). With nobody watching, the only code the console
adds to the API's path is the store's change notice after each write; its cost is timed on its own.
Prints a table and writes bench/results/console.json.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.harness import bench_server, load_average, summary
from cove.sessions.changes import SessionChanges

RESULTS = Path(__file__).parent / "results" / "console.json"


@contextmanager
def event_stream_open(client: httpx.Client) -> Iterator[list[str]]:
    """A console's live list: the event stream, read line by line by a thread until closed."""
    seen: list[str] = []
    ready = threading.Event()
    stop = threading.Event()

    def read() -> None:
        with client.stream("GET", "/v1/events", timeout=None) as response:
            for line in response.iter_lines():
                if line.startswith("event:"):
                    seen.append(line)
                    ready.set()
                if stop.is_set():
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ready.wait(30), "the event stream sent no snapshot"
    try:
        yield seen
    finally:
        stop.set()


def timed(request: Callable[[], httpx.Response], rounds: int) -> list[float]:
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = request()
        seconds.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="requests of each kind per block")
    parser.add_argument("--blocks", type=int, default=4, help="closed/open block pairs")
    options = parser.parse_args()

    with bench_server(warm_pool=0) as bench, bench.server.client() as api, bench.server.client() as watcher:
        session_id = api.post("/v1/sessions", json={}).json()["session"]["session_id"]
        label = iter(range(1_000_000))
        requests: dict[str, Callable[[], httpx.Response]] = {
            "read a session": lambda: api.get(f"/v1/sessions/{session_id}"),
            "write its labels": lambda: api.put(
                f"/v1/sessions/{session_id}/labels", json={"labels": {"n": str(next(label))}}
            ),
            "tool call (shell)": lambda: api.post(
                f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": "true"}}
            ),
        }
        timed(requests["tool call (shell)"], 5)  # the agent is up before the first block
        times: dict[str, dict[str, list[float]]] = {
            mode: {name: [] for name in requests} for mode in ("closed", "open")
        }
        events_seen = 0
        for _ in range(options.blocks):
            for name, request in requests.items():
                times["closed"][name] += timed(request, options.rounds)
            with event_stream_open(watcher) as seen:
                for name, request in requests.items():
                    times["open"][name] += timed(request, options.rounds)
                time.sleep(0.3)  # the last writes' upserts arrive
                events_seen += len(seen)
        api.delete(f"/v1/sessions/{session_id}")

    nobody = SessionChanges()
    repeats = 1_000_000
    notice_ns = min(timeit.repeat(nobody.note, number=repeats, repeat=5)) / repeats * 1e9
    rows = {}
    for name in requests:
        closed, opened = summary(times["closed"][name]), summary(times["open"][name])
        rows[name] = {"closed": closed, "open": opened, "open_to_closed_p50": opened["p50"] / closed["p50"]}
    figures = {
        "rounds": options.rounds,
        "blocks": options.blocks,
        "requests": rows,
        "events_seen_while_open": events_seen,
        "change_notice_with_nobody_watching_ns": round(notice_ns, 1),
        "load_average": load_average(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")

    print(f"{'request':<20} {'closed p50':>11} {'open p50':>10} {'open/closed':>12}")
    for name, row in rows.items():
        print(
            f"{name:<20} {row['closed']['p50']:>9.2f}ms {row['open']['p50']:>8.2f}ms "
            f"{row['open_to_closed_p50']:>11.2f}x"
        )
    write_p50_ns = rows["write its labels"]["closed"]["p50"] * 1e6
    print(
        f"change notice with nobody watching: {notice_ns:.0f} ns a write "
        f"({notice_ns / write_p50_ns:.1e} of a write's p50); load average {figures['load_average']}"
    )


if __name__ == "__main__":
    main()

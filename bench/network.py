"""What a session's network costs: create latency, idle memory, throughput and connection setup.

Run as root from the repo root: `.venv/bin/python -m bench.network` (options: --creates, --idle,
--memory-rounds, --mb, --downloads, --connects, --requests, --no-cold). Starts the test hosts
(tests/network/testnet.py, 198.18.0.0/24 in a network namespace) and a scratch server, and
compares sessions with `{"network": {"mode": "egress"}}` against `{"mode": "none"}`, and traffic
from a session against the same traffic from the host. Every byte goes to the test hosts or
loopback. Prints a table and writes bench/results/network.json.

Figures are taken in one run, with the two (or three) sides interleaved, so that the machine's
noise hits them alike; compare the differences and ratios, not the absolute figures across runs.

Targets: create with egress within +5 ms of none at p50; idle memory with egress at most +2 MiB per
session over none; download throughput from a session at least 0.5x the host's; TCP connect p50
within +1 ms of the host's.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.integration.server import KEY_A, CoveServer
from tests.network.testnet import TestNetwork

from bench.harness import bench_server, load_average, milliseconds, verdict
from bench.sessions import cgroup_memory_bytes, mem_available_kib

RESULTS = Path(__file__).parent / "results" / "network.json"
API = "198.18.0.11"
"""api.test: HTTP on 80, /bytes/N streams N bytes."""
EGRESS = {"mode": "egress"}
NONE = {"mode": "none"}
PROXIED = {"mode": "egress", "allow_out": ["api.test"], "deny_out": ["0.0.0.0/0"]}
"""A domain rule: every TCP connection goes through the server's egress proxy (Host / SNI)."""
IDLE_SETTLE_S = 5
POOL_REFILL_S = 0.3
"""Pause after each delete: the warm pool prepares its next sandbox, not during the next create."""
DOWNLOAD_TIMEOUT_S = 300
LOOP_ROUNDS = 3
"""The connect loops run in this many rounds per place, the places interleaved."""

# The same loop runs on the host and in sessions: `connects` bare TCP connects (closed at once,
# nothing sent), then `requests` small HTTP requests, each on a new connection read to its end.
# In a proxied session the connect ends at the proxy; a request is where the proxy connects on.
# A pause (not timed) follows each: the test hosts' server has a listen backlog of 5 and would
# drop the SYNs of a burst (each one then costs the client a 1 s retransmission).
CONNECT_LOOP = r"""
import json, socket, sys, time
address, name, resolve = sys.argv[1], sys.argv[2], sys.argv[3] == "resolve"
connects, requests = int(sys.argv[4]), int(sys.argv[5])
if resolve:  # the proxy lets a name through only to the addresses it was resolved to
    assert socket.gethostbyname(name) == address
request = f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode()
timings = {"connect": [], "request": []}
for _ in range(connects):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    start = time.perf_counter()
    sock.connect((address, 80))
    timings["connect"].append(time.perf_counter() - start)
    sock.close()
    time.sleep(0.003)
for _ in range(requests):
    start = time.perf_counter()
    with socket.create_connection((address, 80), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    timings["request"].append(time.perf_counter() - start)
    time.sleep(0.003)
    assert answer.startswith(b"HTTP/1.1 200") and b"hello from " + name.encode() in answer, answer[:200]
print(json.dumps(timings))
"""


def create_session(client: Any, network: dict[str, Any]) -> str:
    answer = client.post("/v1/sessions", json={"network": network})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["session"]["session_id"])


def delete_session(client: Any, session_id: str) -> None:
    answer = client.delete(f"/v1/sessions/{session_id}")
    assert answer.is_success, answer.text


def create_latency(server: CoveServer, runs: int) -> dict[str, dict[str, dict[str, float]]]:
    """`runs` creates of each mode, interleaved (ABBA, so that drift hits both alike), each deleted
    before the next: the wall time of POST /v1/sessions to its 201, and of its DELETE."""
    creates: dict[str, list[float]] = {"egress": [], "none": []}
    deletes: dict[str, list[float]] = {"egress": [], "none": []}
    networks = {"egress": EGRESS, "none": NONE}
    with server.client(KEY_A) as client:
        for mode in ("egress", "none"):  # warm-up, not counted
            delete_session(client, create_session(client, networks[mode]))
            time.sleep(POOL_REFILL_S)
        for run in range(runs):
            for mode in ("egress", "none") if run % 2 == 0 else ("none", "egress"):
                start = time.perf_counter()
                session_id = create_session(client, networks[mode])
                created = time.perf_counter()
                delete_session(client, session_id)
                creates[mode].append(created - start)
                deletes[mode].append(time.perf_counter() - created)
                time.sleep(POOL_REFILL_S)
    return {
        "create": {mode: milliseconds(values) for mode, values in creates.items()},
        "delete": {mode: milliseconds(values) for mode, values in deletes.items()},
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def meminfo_kib(*fields: str) -> int:
    """The sum of these /proc/meminfo fields."""
    values = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return sum(int(values[field].split()[0]) for field in fields)


KERNEL_FIELDS = ("SUnreclaim", "Percpu")
"""Where the kernel keeps what a session's network is made of (network devices, their per-CPU
statistics, routes, nftables objects): less noisy than MemAvailable, which other processes move."""


def idle_memory(server: CoveServer, count: int, rounds: int) -> dict[str, Any]:
    """Per round and mode: create `count` idle sessions, let them settle, take the drop of the
    host's MemAvailable, the growth of the kernel's unreclaimable memory, the sessions' memory
    cgroups and the server's RSS, then delete them. Modes alternate ABBA across rounds."""
    assert server.process is not None
    pid = server.process.pid
    samples: dict[str, list[dict[str, float]]] = {"egress": [], "none": []}
    networks = {"egress": EGRESS, "none": NONE}
    with server.client(KEY_A) as client:
        for round_ in range(rounds):
            for mode in ("egress", "none") if round_ % 2 == 0 else ("none", "egress"):
                time.sleep(2)  # what the last deletes freed settles
                before, kernel_before = mem_available_kib(), meminfo_kib(*KERNEL_FIELDS)
                rss_before = rss_mib(pid)
                ids = []
                for _ in range(count):
                    ids.append(create_session(client, networks[mode]))
                    time.sleep(POOL_REFILL_S)
                time.sleep(IDLE_SETTLE_S)
                after, kernel_after = mem_available_kib(), meminfo_kib(*KERNEL_FIELDS)
                rss_after = rss_mib(pid)
                cgroups = [cgroup_memory_bytes(server, session_id) / 2**20 for session_id in ids]
                for session_id in ids:
                    delete_session(client, session_id)
                samples[mode].append(
                    {
                        "host_mib_per_session": (before - after) / 1024 / count,
                        "kernel_mib_per_session": (kernel_after - kernel_before) / 1024 / count,
                        "cgroup_mib_median": statistics.median(cgroups),
                        "server_rss_before_mib": rss_before,
                        "server_rss_after_mib": rss_after,
                    }
                )
    result: dict[str, Any] = {"sessions": count, "rounds": rounds, "samples": samples}
    for mode, values in samples.items():
        result[mode] = {key: statistics.median(sample[key] for sample in values) for key in values[0]}
    return result


def curl_speed(argv_prefix: list[str], url: str, size: int) -> float:
    """MB/s (10^6 bytes per second) of one `curl -o /dev/null` download of `size` bytes."""
    curl = f"curl -sS --noproxy '*' --max-time {DOWNLOAD_TIMEOUT_S} -o /dev/null"
    curl += " -w '%{size_download} %{speed_download}'"
    result = subprocess.run(
        [*argv_prefix, f"{curl} {shlex.quote(url)}"],
        capture_output=True,
        text=True,
        timeout=DOWNLOAD_TIMEOUT_S + 30,
        check=False,
    )
    assert result.returncode == 0, f"curl {url}: {result.returncode} {result.stderr}"
    received, speed = result.stdout.split()
    assert int(received) == size, f"curl {url}: {received} of {size} bytes"
    return float(speed) / 1e6


def throughput(
    server: CoveServer, default_session: str, proxied_session: str, size: int, runs: int
) -> dict[str, Any]:
    """Host, session (kernel path) and proxied session downloads of `size` bytes, interleaved."""
    runc = ["runc", "--root", str(server.data_dir / "runc"), "exec"]
    places = {
        "host": (["sh", "-c"], f"http://{API}/bytes/{size}"),
        "session": ([*runc, default_session, "sh", "-c"], f"http://{API}/bytes/{size}"),
        "proxied": ([*runc, proxied_session, "sh", "-c"], f"http://api.test/bytes/{size}"),
    }
    speeds: dict[str, list[float]] = {place: [] for place in places}
    order = list(places)
    for run in range(runs):
        for place in order[run % len(order) :] + order[: run % len(order)]:
            prefix, url = places[place]
            speeds[place].append(curl_speed(prefix, url, size))
    medians = {place: statistics.median(values) for place, values in speeds.items()}
    return {
        "bytes": size,
        "runs": runs,
        "mb_s": speeds,
        "median_mb_s": medians,
        "session_vs_host": medians["session"] / medians["host"],
        "proxied_vs_host": medians["proxied"] / medians["host"],
    }


def connect_loop(
    prefix: list[str], python: str, resolve: bool, connects: int, requests: int
) -> dict[str, list[float]]:
    how = "resolve" if resolve else "-"
    argv = [python, "-I", "-c", CONNECT_LOOP, API, "api.test", how, str(connects), str(requests)]
    result = subprocess.run(
        [*prefix, *argv], capture_output=True, text=True, timeout=120 + connects + requests, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    timings: dict[str, list[float]] = json.loads(result.stdout)
    return timings


def connection_setup(
    server: CoveServer, default_session: str, proxied_session: str, connects: int, requests: int
) -> dict[str, Any]:
    """The connect loop from the host, a session and a proxied session, in LOOP_ROUNDS rounds."""
    runc = ["runc", "--root", str(server.data_dir / "runc"), "exec"]
    # The host does not use the test DNS server: it cannot resolve api.test, and needs not.
    places: dict[str, tuple[list[str], str, bool]] = {
        "host": ([], sys.executable, False),
        "session": ([*runc, default_session], "python3", True),
        "proxied": ([*runc, proxied_session], "python3", True),
    }
    timings: dict[str, dict[str, list[float]]] = {p: {"connect": [], "request": []} for p in places}
    order = list(places)
    for run in range(LOOP_ROUNDS):
        for place in order[run % len(order) :] + order[: run % len(order)]:
            prefix, python, resolve = places[place]
            loop = connect_loop(prefix, python, resolve, connects // LOOP_ROUNDS, requests // LOOP_ROUNDS)
            for kind, values in loop.items():
                timings[place][kind] += values
    figures: dict[str, Any] = {
        "connects": connects // LOOP_ROUNDS * LOOP_ROUNDS,
        "requests": requests // LOOP_ROUNDS * LOOP_ROUNDS,
    }
    for place, kinds in timings.items():
        figures[place] = {kind: milliseconds(values) for kind, values in kinds.items()}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--creates", type=int, default=20, help="creates of each mode")
    parser.add_argument("--idle", type=int, default=20, help="idle sessions of each mode")
    parser.add_argument("--memory-rounds", type=int, default=4)
    parser.add_argument("--mb", type=int, default=1000, help="download size, 10^6 bytes (at most 1073)")
    parser.add_argument("--downloads", type=int, default=3, help="downloads per place")
    parser.add_argument("--connects", type=int, default=300)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--no-cold", action="store_true", help="skip the server without a warm pool")
    args = parser.parse_args()
    figures: dict[str, Any] = {"load_average_start": load_average()}
    with TestNetwork():
        with bench_server(session_quota=args.idle + 10) as bench:
            server = bench.server
            figures["create_ms"] = create_latency(server, args.creates)
            figures["idle_memory"] = idle_memory(server, args.idle, args.memory_rounds)
            with server.client(KEY_A) as client:
                default_session = create_session(client, EGRESS)
                proxied_session = create_session(client, PROXIED)
                figures["throughput"] = throughput(
                    server, default_session, proxied_session, args.mb * 10**6, args.downloads
                )
                figures["connection_ms"] = connection_setup(
                    server, default_session, proxied_session, args.connects, args.requests
                )
                for session_id in (default_session, proxied_session):
                    delete_session(client, session_id)
        if not args.no_cold:
            with bench_server(warm_pool=0) as bench:
                figures["create_cold_ms"] = create_latency(bench.server, args.creates)
    figures["load_average_end"] = load_average()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    report(figures, args)
    print(f"written to {RESULTS}")


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"create, {args.creates} each, interleaved    {'egress':>10}{'none':>10}{'diff':>10}")
    servers = [("warm pool", figures["create_ms"])]
    if "create_cold_ms" in figures:
        servers.append(("no pool", figures["create_cold_ms"]))
    for label, timings in servers:
        for what, stat in (("create", "p50"), ("create", "p90"), ("delete", "p50")):
            egress, none = timings[what]["egress"][stat], timings[what]["none"][stat]
            name = f"{what}, {label}, {stat} ms"
            print(f"  {name:38}{egress:>10.1f}{none:>10.1f}{egress - none:>+10.1f}")
    create_diff = {
        label: timings["create"]["egress"]["p50"] - timings["create"]["none"]["p50"]
        for label, timings in servers
    }

    memory = figures["idle_memory"]
    egress_mib, none_mib = (memory[mode]["host_mib_per_session"] for mode in ("egress", "none"))
    print(f"idle, {memory['sessions']} sessions x {memory['rounds']} rounds")
    for key, label in (
        ("host_mib_per_session", "host MemAvailable drop, MiB/session"),
        ("kernel_mib_per_session", "kernel SUnreclaim+Percpu, MiB/session"),
        ("cgroup_mib_median", "session memory cgroup, MiB"),
    ):
        egress, none = memory["egress"][key], memory["none"][key]
        print(f"  {label:38}{egress:>10.2f}{none:>10.2f}{egress - none:>+10.2f}")
    for key, label in (("server_rss_before_mib", "before"), ("server_rss_after_mib", "with sessions")):
        egress, none = memory["egress"][key], memory["none"][key]
        print(f"  {'server RSS ' + label + ', MiB':38}{egress:>10.1f}{none:>10.1f}{egress - none:>+10.1f}")

    speed = figures["throughput"]
    medians = speed["median_mb_s"]
    print(f"download {speed['bytes'] / 1e6:.0f} MB, median of {speed['runs']}, MB/s")
    print(f"  {'host':38}{medians['host']:>10.0f}")
    print(f"  {'session (kernel path)':38}{medians['session']:>10.0f}{speed['session_vs_host']:>9.2f}x")
    print(
        f"  {'session, domain rule (proxy)':38}{medians['proxied']:>10.0f}{speed['proxied_vs_host']:>9.2f}x"
    )

    connection = figures["connection_ms"]
    print(f"TCP to {API}:80, ms{'':21}{'p50':>10}{'p90':>10}{'p50-host':>10}")
    for kind, count in (("connect", connection["connects"]), ("request", connection["requests"])):
        host_p50 = connection["host"][kind]["p50"]
        for place in ("host", "session", "proxied"):
            values = connection[place][kind]
            label = f"{kind} x{count}, {place}"
            print(
                f"  {label:38}{values['p50']:>10.3f}{values['p90']:>10.3f}{values['p50'] - host_p50:>+10.3f}"
            )
    connect_diff = {
        place: connection[place]["connect"]["p50"] - connection["host"]["connect"]["p50"]
        for place in ("session", "proxied")
    }

    print("targets:")
    for label, diff in create_diff.items():
        print(f"  create p50 egress - none, {label}: {diff:+.1f} ms (<= +5): {verdict(diff <= 5)}")
    memory_diff = egress_mib - none_mib
    print(f"  idle memory egress - none {memory_diff:+.2f} MiB/session (<= +2): {verdict(memory_diff <= 2)}")
    kernel_diff = memory["egress"]["kernel_mib_per_session"] - memory["none"]["kernel_mib_per_session"]
    print(f"  (kernel memory egress - none {kernel_diff:+.2f} MiB/session)")
    for place in ("session", "proxied"):
        ratio = speed[f"{place}_vs_host"]
        print(f"  throughput {place} / host {ratio:.2f}x (>= 0.5): {verdict(ratio >= 0.5)}")
    for place, diff in connect_diff.items():
        print(f"  connect p50 {place} - host {diff:+.3f} ms (<= +1): {verdict(diff <= 1)}")
    start, end = figures["load_average_start"], figures["load_average_end"]
    print(f"load average: {start} at the start, {end} at the end")


if __name__ == "__main__":
    main()

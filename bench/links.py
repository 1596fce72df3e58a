"""Requests per second through a link (`get_link`) against the same server reached directly.

Run as root from the repo root: `.venv/bin/python -m bench.links` (options: --requests, --clients,
--mib). A small stdlib web server runs in a session on port 30100; the same httpx client code then
fetches a 2-byte response through the link (client -> Cove server -> agent relay -> port) and
directly from inside the session's network namespace (`nsenter -t PID -n`, the client still on the
host, so only the path differs), one client at a time and with several threads, and downloads one
large file both ways. Prints a table and writes bench/results/links.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from bench.harness import bench_server
from cove import CreateSessionParams

RESULTS = Path(__file__).parent / "results" / "links.json"
PORT = 30100
MiB = 1024 * 1024
SERVER = r"""
import http.server, sys

class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Quiet).serve_forever()
"""


def requests_per_second(url: str, total: int, clients: int) -> float:
    """`total` GETs of `url` shared by `clients` threads, each with its own keep-alive client."""
    per_client = total // clients
    failures: list[str] = []

    def run() -> None:
        with httpx.Client(trust_env=False, timeout=30) as client:
            for _ in range(per_client):
                response = client.get(url)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=run) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    assert not failures, failures[:3]
    return per_client * clients / elapsed


def megabytes_per_second(url: str) -> float:
    received = 0
    start = time.perf_counter()
    with httpx.stream("GET", url, trust_env=False, timeout=60) as response:
        assert response.status_code == 200, response.status_code
        for chunk in response.iter_raw(MiB):
            received += len(chunk)
    return received / 1e6 / (time.perf_counter() - start)


def measure(base: str, requests: int, clients: int) -> dict[str, float]:
    requests_per_second(base + "small.txt", 20, 1)  # warm up
    return {
        "sequential_rps": requests_per_second(base + "small.txt", requests, 1),
        "concurrent_rps": requests_per_second(base + "small.txt", requests, clients),
        "download_mb_s": megabytes_per_second(base + "large.bin"),
    }


def measure_directly(pid: int, requests: int, clients: int) -> dict[str, float]:
    """The same measurement from inside the session's network namespace."""
    command = ["nsenter", "-t", str(pid), "-n", "--", sys.executable, "-m", "bench.links"]
    command += [
        "--measure",
        f"http://127.0.0.1:{PORT}/",
        "--requests",
        str(requests),
        "--clients",
        str(clients),
    ]
    ran = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    result: dict[str, float] = json.loads(ran.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="small requests of each kind")
    parser.add_argument("--clients", type=int, default=4, help="threads of the concurrent runs")
    parser.add_argument("--mib", type=int, default=64, help="size of the downloaded file")
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)  # the nsenter'ed child
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.requests, args.clients)))
        return
    with bench_server() as bench:
        session = bench.agent_bay.create(CreateSessionParams()).session
        assert session is not None
        session.file_system.write_file("/tmp/site/small.txt", "ok")
        session.file_system.write_file("/tmp/server.py", SERVER)
        made = session.command.execute_command(f"head -c {args.mib * MiB} /dev/zero > /tmp/site/large.bin")
        assert made.success, made.error_message
        assert session.command.start(f"python3 /tmp/server.py {PORT}", cwd="/tmp/site").success
        link = session.get_link("https", PORT)
        assert link.success, link.error_message
        deadline = time.monotonic() + 30
        while httpx.get(link.data + "small.txt", trust_env=False).status_code != 200:
            assert time.monotonic() < deadline, "the server in the session never answered"
            time.sleep(0.1)
        through_link = measure(link.data, args.requests, args.clients)
        direct = measure_directly(bench.server.sandbox_pid(session.session_id), args.requests, args.clients)
        session.delete()
    results = {
        "requests": args.requests,
        "clients": args.clients,
        "download_mib": args.mib,
        "link": through_link,
        "direct": direct,
        "ratio": {name: through_link[name] / direct[name] for name in direct},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    rows = [
        ("2-byte GET, 1 client (req/s)", "sequential_rps"),
        (f"2-byte GET, {args.clients} clients (req/s)", "concurrent_rps"),
        (f"download {args.mib} MiB (MB/s)", "download_mb_s"),
    ]
    print(f"{'measure':<34}{'link':>10}{'direct':>10}{'ratio':>8}")
    for label, name in rows:
        print(f"{label:<34}{through_link[name]:>10.0f}{direct[name]:>10.0f}{results['ratio'][name]:>8.2f}")


if __name__ == "__main__":
    main()

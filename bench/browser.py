"""What a browser session costs: InitBrowser cold, CDP round trips through Cove against the same inside
the session, page screenshots, and an idle browser's memory.

Run as root from the repo root: `.venv/bin/python -m bench.browser` (options: --cold, --calls,
--rounds, --shots). Starts a scratch server on browser_latest (built into the test image cache first
if it is not there, tests/integration/recipe_images.py), whose sessions run on runc, the default
runtime (the side in the session's network namespace finds it through runc's state). Prints a table and writes
bench/results/browser.json.

- InitBrowser cold: fresh sessions of two kinds, alternating. One calls `POST /v1/sessions/{id}/browser`
  (what InitBrowser and `browser.initialize` do) first: the agent, the display and Chromium start.
  The other calls `shell` `true` first (the agent starts), then the browser start (the display and
  Chromium). Then, in each, a restart: stop the browser and start it again (Chromium alone).
- CDP round trip: `Runtime.evaluate('1+1')` on the first tab (attached as a flat session), one call
  after the other on one WebSocket, by the same client code on both sides: the agent's stdlib CDP
  client (cove.agent.cdp) from the host through the session's CDP URL (the link listener, the server's
  relay, the agent's port relay, Chromium); from inside the session straight to Chromium's port
  (the session's python3, under its CPU limit and seccomp filter, timing each call there); and from
  a host process in the session's network namespace (`nsenter -n`), straight to the port: the same
  machine and Python as the first, without the relay. `--rounds` rounds of `--calls` calls each,
  alternating sides.
- screenshots: `Page.captureScreenshot` (PNG, the viewport) through Cove's URL, of a blank page and of
  a page full of text; and the `page_use_screenshot` tool (viewport) over REST for the text page.
- memory: the session's memory cgroup with the agent running and no browser, then with the browser
  started and idle on one blank tab (after a pause for it to settle).

Targets: InitBrowser cold p50 under 1.5 s; the CDP round trip through Cove under 2x the same inside.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from tests.integration.recipe_images import IMAGES_DIR, ensure_built
from tests.integration.server import KEY_A, CoveServer, scratch_server

from bench.harness import load_average, milliseconds, pytest_process_count, verdict
from bench.sessions import cgroup_memory_bytes
from cove.agent import cdp

RESULTS = Path(__file__).parent / "results" / "browser.json"
POOL_REFILL_S = 0.3
"""Pause after each delete: the warm pool prepares its next sandbox, not during the next create."""
SETTLE_S = 3.0
"""Pause before a memory reading: what the last call started settles."""
CDP_TIMEOUT_S = 120.0
TEXT_PAGE = "data:text/html," + "<p>" + "Cove runs agents in sandboxes. " * 400 + "</p>"
INSIDE_SCRIPT = """
import json, sys, time, urllib.request
sys.path.insert(0, sys.argv[2])
from cdp import CdpConnection
found = json.load(urllib.request.urlopen("http://127.0.0.1:9222/json/version"))
path = "/devtools/" + found["webSocketDebuggerUrl"].split("/devtools/", 1)[1]
with CdpConnection(9222, path, 120) as cdp:
    page = next(t for t in cdp.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
    flat = cdp.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
    seconds = []
    for _ in range(int(sys.argv[1])):
        start = time.perf_counter()
        assert cdp.call("Runtime.evaluate", {"expression": "1+1"}, flat)["result"]["value"] == 2
        seconds.append(time.perf_counter() - start)
print(json.dumps(seconds))
"""


class BrowserSession:
    """One session on browser_latest, driven over REST."""

    def __init__(self, client: httpx.Client) -> None:
        answer = client.post("/v1/sessions", json={})
        assert answer.status_code == 201, answer.text
        self.client, self.session_id = client, str(answer.json()["session"]["session_id"])

    def call(self, name: str, **arguments: Any) -> str:
        response = self.client.post(
            f"/v1/sessions/{self.session_id}/tools/{name}", json={"arguments": arguments}
        )
        assert response.status_code == 200, f"{name}: {response.status_code} {response.text[:500]}"
        result = response.json()["result"]
        text: str = result["content"][0]["text"] if result["content"] else ""
        assert not result["isError"], f"{name}: {text[:500]}"
        return text

    def start_browser(self) -> tuple[float, str]:
        """The wall time of a browser start, and the CDP URL."""
        start = time.perf_counter()
        answer = self.client.post(f"/v1/sessions/{self.session_id}/browser", json={})
        elapsed = time.perf_counter() - start
        assert answer.status_code == 200 and answer.json()["started"], answer.text
        return elapsed, str(answer.json()["cdp_url"])

    def cdp_url(self) -> str:
        answer = self.client.get(f"/v1/sessions/{self.session_id}/browser/cdp_url")
        assert answer.status_code == 200, answer.text
        return str(answer.json()["url"])

    def stop_browser(self) -> None:
        answer = self.client.delete(f"/v1/sessions/{self.session_id}/browser")
        assert answer.is_success and answer.json()["stopped"], answer.text

    def delete(self) -> None:
        answer = self.client.delete(f"/v1/sessions/{self.session_id}")
        assert answer.is_success, answer.text
        time.sleep(POOL_REFILL_S)


def cold_start(client: httpx.Client, runs: int) -> dict[str, Any]:
    """`runs` sessions of each kind, alternating (ABBA)."""
    timings: dict[str, list[float]] = {"first_call": [], "agent_running": [], "restart": []}
    for run in range(runs):
        for kind in ("first_call", "agent_running") if run % 2 == 0 else ("agent_running", "first_call"):
            session = BrowserSession(client)
            if kind == "agent_running":
                session.call("shell", command="true")
            timings[kind].append(session.start_browser()[0])
            session.stop_browser()
            timings["restart"].append(session.start_browser()[0])
            session.delete()
    return {kind: milliseconds(values) for kind, values in timings.items()}


def connect_through_cove(cdp_url: str) -> tuple[cdp.CdpConnection, str]:
    """A CDP connection through the session's URL, and the flat session id of its first tab."""
    where = urlsplit(cdp_url)
    assert where.hostname == "127.0.0.1" and where.port is not None, cdp_url
    connection = cdp.CdpConnection(where.port, where.path, CDP_TIMEOUT_S)
    page = next(t for t in connection.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
    flat: str = connection.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})[
        "sessionId"
    ]
    return connection, flat


def round_trips(
    server: CoveServer, session: BrowserSession, cdp_url: str, calls: int, rounds: int
) -> dict[str, Any]:
    session.call("write_file", path="/tmp/bench/cdp.py", content=Path(cdp.__file__).read_text())
    session.call("write_file", path="/tmp/bench/inside.py", content=INSIDE_SCRIPT)
    host_copy = Path(tempfile.mkdtemp(prefix="cove-bench-cdp-"))
    shutil.copy(cdp.__file__, host_copy / "cdp.py")
    in_namespace = ["nsenter", "-t", str(server.sandbox_pid(session.session_id)), "-n", sys.executable]
    timings: dict[str, list[float]] = {"through_cove": [], "inside": [], "host_in_namespace": []}
    try:
        for _ in range(rounds):
            connection, flat = connect_through_cove(cdp_url)
            with connection:
                for _ in range(calls):
                    start = time.perf_counter()
                    answer = connection.call("Runtime.evaluate", {"expression": "1+1"}, flat)
                    timings["through_cove"].append(time.perf_counter() - start)
                    assert answer["result"]["value"] == 2
            shell = json.loads(
                session.call("shell", command=f"python3 /tmp/bench/inside.py {calls} /tmp/bench")
            )
            timings["inside"] += json.loads(shell["stdout"])
            direct = subprocess.run(
                [*in_namespace, "-c", INSIDE_SCRIPT, str(calls), str(host_copy)],
                capture_output=True,
                text=True,
                check=True,
                timeout=CDP_TIMEOUT_S,
            )
            timings["host_in_namespace"] += json.loads(direct.stdout)
    finally:
        shutil.rmtree(host_copy)
    figures: dict[str, Any] = {side: milliseconds(values) for side, values in timings.items()}
    cove = figures["through_cove"]["p50"]
    figures["ratio_p50_to_inside"] = cove / figures["inside"]["p50"]
    figures["ratio_p50_to_host_in_namespace"] = cove / figures["host_in_namespace"]["p50"]
    return figures


def screenshots(session: BrowserSession, cdp_url: str, shots: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    connection, flat = connect_through_cove(cdp_url)
    with connection:
        connection.call("Page.enable", session_id=flat)
        for label, url in (("blank", "about:blank"), ("text", TEXT_PAGE)):
            connection.call("Page.navigate", {"url": url}, flat)
            connection.wait_event("Page.loadEventFired", flat)
            seconds, sizes = [], []
            for _ in range(shots):
                start = time.perf_counter()
                data = connection.call("Page.captureScreenshot", {"format": "png"}, flat)["data"]
                seconds.append(time.perf_counter() - start)
                sizes.append(len(base64.b64decode(data)))
            figures[f"cdp_{label}"] = milliseconds(seconds) | {"png_kib": round(max(sizes) / 1024, 1)}
    seconds = []
    for _ in range(shots):
        start = time.perf_counter()
        assert session.call("page_use_screenshot", full_page=False).startswith("data:image/png;base64,")
        seconds.append(time.perf_counter() - start)
    figures["page_use_screenshot_text"] = milliseconds(seconds)
    return figures


def memory(server: CoveServer, session: BrowserSession) -> dict[str, float]:
    """MiB of the session's memory cgroup without and with an idle browser (the session is fresh)."""
    session.call("shell", command="true")
    time.sleep(SETTLE_S)
    before = cgroup_memory_bytes(server, session.session_id)
    session.start_browser()
    time.sleep(SETTLE_S)
    after = cgroup_memory_bytes(server, session.session_id)
    return {
        "agent_only_mib": before / 2**20,
        "idle_browser_mib": after / 2**20,
        "browser_added_mib": (after - before) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cold", type=int, default=6, help="fresh sessions of each kind")
    parser.add_argument("--calls", type=int, default=100, help="CDP calls per round on each side")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating sides")
    parser.add_argument("--shots", type=int, default=30, help="screenshots of each page")
    args = parser.parse_args()
    ensure_built("browser_latest", print)
    figures: dict[str, Any] = {
        "load_average_start": load_average(),
        "test_processes_start": pytest_process_count(),
    }
    settings = {"images_dir": IMAGES_DIR, "default_image": "browser_latest"}
    with scratch_server(**settings) as server, server.client(KEY_A) as client:
        client.timeout = CDP_TIMEOUT_S
        BrowserSession(client).delete()  # the image is ready, the pool filled: not counted
        figures["init_browser_ms"] = cold_start(client, args.cold)
        session = BrowserSession(client)
        figures["memory"] = memory(server, session)
        cdp_url = session.cdp_url()
        figures["cdp_round_trip_ms"] = round_trips(server, session, cdp_url, args.calls, args.rounds)
        figures["screenshot_ms"] = screenshots(session, cdp_url, args.shots)
        session.delete()
    figures["load_average_end"] = load_average()
    figures["test_processes_end"] = pytest_process_count()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    report(figures, args)
    print(f"written to {RESULTS}")


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"{'ms':52}{'p50':>9}{'p90':>9}{'max':>9}")

    def row(label: str, values: dict[str, float]) -> None:
        print(f"  {label:50}{values['p50']:>9.1f}{values['p90']:>9.1f}{values['max']:>9.1f}")

    init = figures["init_browser_ms"]
    print(f"InitBrowser, {args.cold} fresh sessions of each kind")
    row("first call of the session (agent, display, Chromium)", init["first_call"])
    row("agent running (display, Chromium)", init["agent_running"])
    row("restart after a stop (Chromium)", init["restart"])
    trips = figures["cdp_round_trip_ms"]
    print(f"CDP Runtime.evaluate('1+1'), {args.rounds} rounds of {args.calls} calls on each side")
    row("through Cove's CDP URL, from the host", trips["through_cove"])
    row("inside the session, to Chromium's port", trips["inside"])
    row("host process in the session's network namespace", trips["host_in_namespace"])
    shots = figures["screenshot_ms"]
    print(f"screenshots of the viewport, {args.shots} each")
    for label in ("blank", "text"):
        row(
            f"CDP Page.captureScreenshot PNG, {label} page ({shots[f'cdp_{label}']['png_kib']} KiB)",
            shots[f"cdp_{label}"],
        )
    row("page_use_screenshot tool over REST, text page", shots["page_use_screenshot_text"])
    used = figures["memory"]
    print("memory of the session's cgroup, MiB")
    print(f"  {'agent running, no browser':50}{used['agent_only_mib']:>9.1f}")
    print(f"  {'browser idle on one blank tab':50}{used['idle_browser_mib']:>9.1f}")
    print(f"  {'added by the browser (and its display)':50}{used['browser_added_mib']:>+9.1f}")
    print("targets:")
    cold = init["first_call"]["p50"]
    print(f"  InitBrowser cold p50: {cold:.0f} ms (< 1500): {verdict(cold < 1500)}")
    ratio = trips["ratio_p50_to_inside"]
    print(f"  CDP round trip p50 through Cove / inside: {ratio:.2f}x (< 2): {verdict(ratio < 2)}")
    direct = trips["ratio_p50_to_host_in_namespace"]
    print(f"  CDP round trip p50 through Cove / host in its namespace: {direct:.2f}x: {verdict(direct < 2)}")
    start, end = figures["load_average_start"], figures["load_average_end"]
    print(f"load average: {start} at the start, {end} at the end")
    processes = figures["test_processes_start"], figures["test_processes_end"]
    print(f"pytest processes on the machine: {processes[0]} at the start, {processes[1]} at the end")


if __name__ == "__main__":
    main()

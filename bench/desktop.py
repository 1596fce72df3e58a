"""What the desktop costs: the display's cold start, screenshot and click round trips, and memory.

Run as root from the repo root: `.venv/bin/python -m bench.desktop` (options: --cold, --shots,
--clicks, --memory). Starts a scratch server (default warm pool, agents leave after 5 s idle) and
calls the computer tools over HTTP on loopback, as `POST /v1/sessions/{id}/tools/{name}`. Prints a
table and writes bench/results/desktop.json.

- cold start: fresh sessions of two kinds, alternating. One calls `get_screen_size` first (the agent
  and the display start); the other calls `shell` `true` first (the agent starts), then
  `get_screen_size` (the display starts, the agent already running). Then, in each, warm
  `get_screen_size` calls.
- screenshots: `screenshot` PNG and JPEG, interleaved, of the bare desktop (no window: X's root
  window) and of a busy one (four xterms full of text); the time until the whole answer is read,
  and the image's size.
- clicks: `click_mouse` (left) and `move_mouse`, interleaved, over a fixed list of points.
  `click_mouse` includes xdotool's `click`, which waits its `--delay` (100 ms by default) after
  the click.
- viewer: a VNC client on the desktop viewer's WebSocket (the link listener, the agent, a new
  x11vnc in the session), on the busy desktop: the time from the WebSocket's start to the server's
  init, and to a first full frame in raw pixels; and x11vnc's memory (PSS) while it serves.
- memory: per session, its memory cgroup idle (init only), after a `shell` call (the agent runs),
  after `get_screen_size` (the agent and the display), and once the agent left (the display alone).

Targets (none for the viewer): a 1280x800 PNG screenshot p50 under 60 ms; click p50 under 15 ms;
display cold start p50 under 500 ms; an idle session's memory unchanged while the display is off
(no display process, and its cgroup within 0.5 MiB of 4.2-4.3 MiB, the sessions and network
benches' figures of 2026-12-04: an idle session's file pages and kernel memory vary by a few hundred
KiB from one to the next).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from tests.integration.rfb import RfbClient
from tests.integration.server import KEY_A, CoveServer, scratch_server

from bench.harness import load_average, milliseconds, pytest_process_count, verdict
from bench.sessions import cgroup_memory_bytes

RESULTS = Path(__file__).parent / "results" / "desktop.json"
AGENT_IDLE_EXIT_S = 5
POOL_REFILL_S = 0.3
"""Pause after each delete: the warm pool prepares its next sandbox, not during the next create."""
SETTLE_S = 2.0
"""Pause before a memory reading: what the last call started settles."""
AGENT_EXIT_WAIT_S = 30.0
WINDOW_WAIT_S = 20.0
WARM_CALLS = 5
IDLE_SESSION_MIB = (4.2, 4.3)
"""An idle session's memory cgroup before the desktop (docs/benchmarks.md, 2026-12-04)."""
BUSY_TERMINALS = [
    # Four xterms tiling the screen, each filled with text that then stays still.
    f"xterm -geometry 104x30+{x}+{y} -title busy -e sh -c 'ls -l /usr/bin /usr/lib | head -200; sleep 3600'"
    for x, y in ((0, 0), (640, 0), (0, 400), (640, 400))
]
DISPLAY_PROCESSES = ("Xvfb", "openbox")


class Desktop:
    """One session and timed tool calls on it."""

    def __init__(self, client: httpx.Client, session_id: str) -> None:
        self.client, self.session_id = client, session_id

    def call(self, name: str, **arguments: Any) -> tuple[float, str, int]:
        """Call a tool; answers the wall time until its whole answer was read, its text and the
        HTTP body's size. A tool error fails the bench."""
        start = time.perf_counter()
        response = self.client.post(
            f"/v1/sessions/{self.session_id}/tools/{name}", json={"arguments": arguments}
        )
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, f"{name}: {response.status_code} {response.text[:500]}"
        result = response.json()["result"]
        text: str = result["content"][0]["text"] if result["content"] else ""
        assert not result["isError"], f"{name}: {text[:500]}"
        return elapsed, text, len(response.content)


def create(client: httpx.Client) -> Desktop:
    answer = client.post("/v1/sessions", json={})
    assert answer.status_code == 201, answer.text
    return Desktop(client, str(answer.json()["session"]["session_id"]))


def delete(desktop: Desktop) -> None:
    answer = desktop.client.delete(f"/v1/sessions/{desktop.session_id}")
    assert answer.is_success, answer.text
    time.sleep(POOL_REFILL_S)


def check_screen(text: str) -> None:
    size = json.loads(text)
    assert (size["width"], size["height"]) == (1280, 800), size


def cold_start(client: httpx.Client, runs: int) -> dict[str, Any]:
    """`runs` sessions of each kind, alternating (ABBA)."""
    timings: dict[str, list[float]] = {
        "first_call_display": [],
        "first_call_shell": [],
        "display_agent_running": [],
        "warm_get_screen_size": [],
    }
    for run in range(runs):
        for kind in ("display", "shell") if run % 2 == 0 else ("shell", "display"):
            desktop = create(client)
            if kind == "display":
                elapsed, text, _ = desktop.call("get_screen_size")
                timings["first_call_display"].append(elapsed)
            else:
                elapsed, _, _ = desktop.call("shell", command="true")
                timings["first_call_shell"].append(elapsed)
                elapsed, text, _ = desktop.call("get_screen_size")
                timings["display_agent_running"].append(elapsed)
            check_screen(text)
            for _ in range(WARM_CALLS):
                elapsed, text, _ = desktop.call("get_screen_size")
                timings["warm_get_screen_size"].append(elapsed)
            delete(desktop)
    return {name: milliseconds(values) for name, values in timings.items()}


def screenshots(desktop: Desktop, runs: int) -> dict[str, Any]:
    """`runs` PNG and `runs` JPEG screenshots, interleaved, after a few not counted."""
    timings: dict[str, list[float]] = {"png": [], "jpeg": []}
    sizes: dict[str, list[tuple[int, int]]] = {"png": [], "jpeg": []}
    for run in range(3 + runs):
        for kind in ("png", "jpeg") if run % 2 == 0 else ("jpeg", "png"):
            elapsed, text, body = desktop.call("screenshot", format=kind)
            shot = json.loads(text)
            assert (shot["mime_type"], shot["width"], shot["height"]) == (f"image/{kind}", 1280, 800)
            if run >= 3:
                timings[kind].append(elapsed)
                sizes[kind].append((len(base64.b64decode(shot["data"])), body))
    figures: dict[str, Any] = {}
    for kind in timings:
        figures[kind] = {
            **milliseconds(timings[kind]),
            "image_kib": statistics.median(size[0] for size in sizes[kind]) / 1024,
            "answer_kib": statistics.median(size[1] for size in sizes[kind]) / 1024,
        }
    return figures


def clicks(desktop: Desktop, runs: int) -> dict[str, Any]:
    """`runs` left clicks and `runs` pointer moves, interleaved, at fixed pseudo-random points of
    the bare desktop (a left click on openbox's root window opens nothing)."""
    points = random.Random(1280800)
    timings: dict[str, list[float]] = {"click_mouse": [], "move_mouse": []}
    for run in range(3 + runs):
        for tool in ("click_mouse", "move_mouse") if run % 2 == 0 else ("move_mouse", "click_mouse"):
            arguments: dict[str, Any] = {"x": points.randrange(1280), "y": points.randrange(800)}
            if tool == "click_mouse":
                arguments["button"] = "left"
            elapsed, _, _ = desktop.call(tool, **arguments)
            if run >= 3:
                timings[tool].append(elapsed)
    return {tool: milliseconds(values) for tool, values in timings.items()}


def fill_screen(desktop: Desktop) -> int:
    """Start the busy terminals and wait until their windows show; answers how many showed."""
    for command in BUSY_TERMINALS:
        desktop.call("start_app", start_cmd=command)
    deadline = time.monotonic() + WINDOW_WAIT_S
    while True:
        windows = json.loads(desktop.call("list_root_windows")[1])
        shown = sum(1 for window in windows if window["window_title"] == "busy")
        if shown == len(BUSY_TERMINALS) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # their text is drawn
    return shown


def viewer(server: CoveServer, desktop: Desktop, runs: int) -> dict[str, Any]:
    """`runs` viewers, one after the other, on the running display."""
    answer = desktop.client.get(f"/v1/sessions/{desktop.session_id}/desktop_url")
    assert answer.status_code == 200, answer.text
    url = answer.json()["url"]
    timings: dict[str, list[float]] = {"server_init": [], "first_frame": []}
    pss: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        client = RfbClient(url)
        assert client.handshake() == (1280, 800)
        timings["server_init"].append(time.perf_counter() - start)
        client.request_update(1280, 800)
        while client.read_update() < 1280 * 800:
            client.request_update(1280, 800)
        timings["first_frame"].append(time.perf_counter() - start)
        time.sleep(SETTLE_S / 4)
        found = [p["pss_mib"] for p in session_processes(server, desktop.session_id) if p["name"] == "x11vnc"]
        assert len(found) == 1, f"expected one x11vnc, found {len(found)}"
        pss.extend(found)
        client.connection.close()
        time.sleep(0.2)
    return {
        **{name: milliseconds(values) for name, values in timings.items()},
        "x11vnc_pss_mib": statistics.median(pss),
    }


def session_processes(server: CoveServer, session_id: str) -> list[dict[str, Any]]:
    """The session's processes, seen from the host (no process joins the session to look): those
    whose memory cgroup is the session's; their name, and PSS in MiB."""
    instance = (server.data_dir / "instance_id").read_text().strip()
    marker = f"/cove/{instance}/{session_id}"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroups = (entry / "cgroup").read_text().splitlines()
            if not any(marker in line for line in cgroups if ":memory:" in line or line.startswith("0::")):
                continue
            name = (entry / "comm").read_text().strip()
            pss = 0
            for line in (entry / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
        except OSError:
            continue  # it left meanwhile
        found.append({"name": name, "pss_mib": pss / 1024})
    return sorted(found, key=lambda process: str(process["name"]))


def memory_stat(server: CoveServer, session_id: str) -> dict[str, float]:
    """The session's memory cgroup: its usage, and anonymous and file memory (v1 or v2), MiB."""
    for path in server.cgroup_dirs():
        if path.name == session_id and (path / "memory.stat").exists():
            fields = dict(line.split() for line in (path / "memory.stat").read_text().splitlines())
            anon = fields.get("total_rss", fields.get("anon", "0"))
            file = fields.get("total_cache", fields.get("file", "0"))
            return {
                "cgroup_mib": cgroup_memory_bytes(server, session_id) / 2**20,
                "anon_mib": int(anon) / 2**20,
                "file_mib": int(file) / 2**20,
            }
    raise RuntimeError(f"no memory cgroup for {session_id}")


def reading(server: CoveServer, session_id: str) -> dict[str, Any]:
    processes = session_processes(server, session_id)
    return {**memory_stat(server, session_id), "processes": processes}


def agent_left(server: CoveServer, session_id: str) -> bool:
    """Whether only init is left of the session's Python processes."""
    names = [process["name"] for process in session_processes(server, session_id)]
    return names.count("python3") == 1


def memory(server: CoveServer, client: httpx.Client, count: int) -> dict[str, Any]:
    """Per session: idle, agent running, agent and display, display alone."""
    samples: list[dict[str, Any]] = []
    for _ in range(count):
        desktop = create(client)
        sample: dict[str, Any] = {}
        time.sleep(SETTLE_S)
        sample["idle"] = reading(server, desktop.session_id)
        desktop.call("shell", command="true")
        time.sleep(SETTLE_S)
        sample["agent"] = reading(server, desktop.session_id)
        check_screen(desktop.call("get_screen_size")[1])
        time.sleep(SETTLE_S)
        sample["agent_display"] = reading(server, desktop.session_id)
        deadline = time.monotonic() + AGENT_EXIT_WAIT_S
        while not agent_left(server, desktop.session_id):
            assert time.monotonic() < deadline, "the agent did not leave"
            time.sleep(0.5)
        time.sleep(SETTLE_S)
        sample["display"] = reading(server, desktop.session_id)
        samples.append(sample)
        delete(desktop)
    result: dict[str, Any] = {"sessions": count, "samples": samples}
    for state in ("idle", "agent", "agent_display", "display"):
        result[state] = {
            key: statistics.median(sample[state][key] for sample in samples)
            for key in ("cgroup_mib", "anon_mib", "file_mib")
        }
    for name in DISPLAY_PROCESSES:
        values = [
            process["pss_mib"]
            for sample in samples
            for process in sample["display"]["processes"]
            if process["name"] == name
        ]
        result[f"{name}_pss_mib"] = statistics.median(values) if values else None
    result["display_processes_while_off"] = sum(
        process["name"] in DISPLAY_PROCESSES
        for sample in samples
        for state in ("idle", "agent")
        for process in sample[state]["processes"]
    )
    result["idle_process_names"] = sorted(
        {process["name"] for sample in samples for process in sample["idle"]["processes"]}
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cold", type=int, default=10, help="fresh sessions of each kind")
    parser.add_argument("--shots", type=int, default=50, help="screenshots of each format per screen")
    parser.add_argument("--clicks", type=int, default=100, help="clicks and moves each")
    parser.add_argument("--viewers", type=int, default=10, help="viewers connected one after another")
    parser.add_argument("--memory", type=int, default=5, help="sessions whose memory is read")
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "load_average_start": load_average(),
        "test_processes_start": pytest_process_count(),
    }
    with scratch_server(agent_idle_exit_s=AGENT_IDLE_EXIT_S) as server, server.client(KEY_A) as client:
        delete(create(client))  # the image is ready, the pool filled: not counted
        figures["cold_start_ms"] = cold_start(client, args.cold)
        desktop = create(client)
        desktop.call("get_screen_size")
        figures["screenshot_bare_ms"] = screenshots(desktop, args.shots)
        figures["click_ms"] = clicks(desktop, args.clicks)
        figures["busy_windows"] = fill_screen(desktop)
        figures["screenshot_busy_ms"] = screenshots(desktop, args.shots)
        figures["viewer"] = viewer(server, desktop, args.viewers)
        delete(desktop)
        figures["memory"] = memory(server, client, args.memory)
    figures["load_average_end"] = load_average()
    figures["test_processes_end"] = pytest_process_count()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    report(figures, args)
    print(f"written to {RESULTS}")


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    cold = figures["cold_start_ms"]
    print(f"{'ms':52}{'p50':>9}{'p90':>9}{'max':>9}")

    def row(label: str, values: dict[str, float]) -> None:
        print(f"  {label:50}{values['p50']:>9.1f}{values['p90']:>9.1f}{values['max']:>9.1f}")

    print(f"cold start, {args.cold} fresh sessions of each kind")
    row("first call get_screen_size (agent + display)", cold["first_call_display"])
    row("get_screen_size after shell (display alone)", cold["display_agent_running"])
    row("first call shell true (agent)", cold["first_call_shell"])
    row(f"warm get_screen_size (x{cold['warm_get_screen_size']['count']})", cold["warm_get_screen_size"])
    for screen in ("bare", "busy"):
        shots = figures[f"screenshot_{screen}_ms"]
        print(f"screenshot 1280x800, {screen} desktop, {args.shots} each, interleaved")
        for kind in ("png", "jpeg"):
            values = shots[kind]
            size = f" ({values['image_kib']:.0f} KiB, answer {values['answer_kib']:.0f} KiB)"
            row(kind + size, values)
    print(f"pointer, {args.clicks} each, interleaved")
    for tool in ("click_mouse", "move_mouse"):
        row(tool, figures["click_ms"][tool])

    shown = figures["viewer"]
    print(f"viewer, {args.viewers} connections on the busy desktop, raw pixels")
    row("WebSocket start to the VNC server's init", shown["server_init"])
    row("WebSocket start to a first full frame", shown["first_frame"])
    print(f"  x11vnc PSS while serving: {shown['x11vnc_pss_mib']:.1f} MiB")

    memory = figures["memory"]
    print(
        f"memory cgroup, median of {memory['sessions']} sessions, MiB{'':8}{'usage':>9}{'anon':>9}{'file':>9}"
    )
    for state, label in (
        ("idle", "idle (init only)"),
        ("agent", "after shell (agent)"),
        ("agent_display", "after get_screen_size (agent + display)"),
        ("display", "agent left (display alone)"),
    ):
        values = memory[state]
        print(f"  {label:50}{values['cgroup_mib']:>9.2f}{values['anon_mib']:>9.2f}{values['file_mib']:>9.2f}")
    display_cost = memory["agent_display"]["cgroup_mib"] - memory["agent"]["cgroup_mib"]
    print(f"  {'display started (agent + display - agent)':50}{display_cost:>+9.2f}")
    alone = memory["display"]["cgroup_mib"] - memory["idle"]["cgroup_mib"]
    print(f"  {'display alone - idle':50}{alone:>+9.2f}")
    print(f"  PSS Xvfb {memory['Xvfb_pss_mib']:.1f} MiB, openbox {memory['openbox_pss_mib']:.1f} MiB")
    print(f"  idle session's processes: {', '.join(memory['idle_process_names'])}")

    print("targets:")
    for screen in ("bare", "busy"):
        p50 = figures[f"screenshot_{screen}_ms"]["png"]["p50"]
        print(f"  screenshot PNG p50, {screen} desktop: {p50:.1f} ms (< 60): {verdict(p50 < 60)}")
    click = figures["click_ms"]["click_mouse"]["p50"]
    print(f"  click_mouse p50: {click:.1f} ms (< 15): {verdict(click < 15)}")
    for key, label in (("first_call_display", "first call"), ("display_agent_running", "agent running")):
        p50 = cold[key]["p50"]
        print(f"  display cold start p50, {label}: {p50:.0f} ms (< 500): {verdict(p50 < 500)}")
    idle = memory["idle"]["cgroup_mib"]
    unchanged = memory["display_processes_while_off"] == 0 and idle <= max(IDLE_SESSION_MIB) + 0.5
    print(
        f"  idle memory while the display is off: {idle:.2f} MiB against {IDLE_SESSION_MIB[0]}-"
        f"{IDLE_SESSION_MIB[1]} before the desktop, {memory['display_processes_while_off']} display "
        f"processes: {verdict(unchanged)}"
    )
    start, end = figures["load_average_start"], figures["load_average_end"]
    print(f"load average: {start} at the start, {end} at the end")
    print(
        f"pytest processes beside the bench: {figures['test_processes_start']} at the start, "
        f"{figures['test_processes_end']} at the end"
    )


if __name__ == "__main__":
    main()

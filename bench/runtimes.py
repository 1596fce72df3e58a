"""runc against gVisor's runsc (runtime "gvisor"): create, first command, exec round trip, idle memory,
and pause and resume of a session holding 256 MiB (runc: freezer; gvisor: checkpoint and restore).

Run as root from the repo root: `.venv/bin/python -m bench.runtimes` (options: --runs, --execs,
--idle, --pauses).
Needs runsc (scripts/install.sh --runsc-only). Prints a table of medians and writes
bench/results/runtimes.json. The warm pool is off, so both runtimes pay for a whole create.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from tests.integration.server import CoveServer

from bench.harness import bench_server, load_average
from cove import AgentBay, CreateSessionParams, Session

RESULTS = Path(__file__).parent / "results" / "runtimes.json"
RUNTIMES = ("runc", "gvisor")
HOLDER = r"""
import hashlib, os, time
data = bytearray(os.urandom(1 << 20)) * 256
open("/tmp/digest.tmp", "w").write(hashlib.sha256(data).hexdigest())
os.rename("/tmp/digest.tmp", "/tmp/digest")
while True:
    time.sleep(1)
"""


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable")


def cgroup_memory_mib(server: CoveServer, session_id: str) -> float:
    for path in server.cgroup_dirs():
        if path.name == session_id:
            for name in ("memory.usage_in_bytes", "memory.current"):
                if (path / name).exists():
                    return int((path / name).read_text()) / 2**20
    raise RuntimeError(f"no memory cgroup for {session_id}")


def create(agent_bay: AgentBay, runtime: str) -> Session:
    created = agent_bay.create(CreateSessionParams(runtime=runtime))
    assert created.session is not None, created.error_message
    return created.session


def creates(agent_bay: AgentBay, runtime: str, runs: int) -> dict[str, float]:
    """Median create (request to RUNNING) and create plus the first command's answer, ms."""
    create_s, first_s = [], []
    for _ in range(runs):
        started = time.perf_counter()
        session = create(agent_bay, runtime)
        create_s.append(time.perf_counter() - started)
        assert session.command.execute_command("true").success
        first_s.append(time.perf_counter() - started)
        session.delete()
    return {
        "create_ms": statistics.median(create_s) * 1000,
        "first_command_ms": statistics.median(first_s) * 1000,
    }


def exec_round_trip(agent_bay: AgentBay, runtime: str, execs: int) -> float:
    session = create(agent_bay, runtime)
    try:
        session.command.execute_command("true")
        timings = []
        for _ in range(execs):
            started = time.perf_counter()
            assert session.command.execute_command("true").success
            timings.append(time.perf_counter() - started)
        return statistics.median(timings) * 1000
    finally:
        session.delete()


def idle_memory(server: CoveServer, agent_bay: AgentBay, runtime: str, count: int) -> dict[str, float]:
    """Idle sessions (init and agent after one command): their cgroup's memory, and the host's."""
    before = mem_available_mib()
    sessions = [create(agent_bay, runtime) for _ in range(count)]
    try:
        for session in sessions:
            session.command.execute_command("true")
        time.sleep(3)
        after = mem_available_mib()
        cgroups = [cgroup_memory_mib(server, s.session_id) for s in sessions]
    finally:
        for session in sessions:
            session.delete()
    return {"cgroup_mib": statistics.median(cgroups), "host_mib_per_session": (before - after) / count}


def pause_resume(agent_bay: AgentBay, runtime: str, runs: int) -> dict[str, float]:
    """A session holding 256 MiB written by Python: pause, resume, and the host memory a pause frees."""
    session = create(agent_bay, runtime)
    try:
        assert session.file_system.write_file("/home/user/holder.py", HOLDER).success
        assert session.command.start("python3 /home/user/holder.py").success
        deadline = time.monotonic() + 120
        while not session.command.execute_command("cat /tmp/digest 2>/dev/null").stdout.strip():
            assert time.monotonic() < deadline, "the holder never filled its memory"
            time.sleep(0.5)
        pauses, resumes, freed = [], [], []
        for _ in range(runs):
            time.sleep(1)
            before = mem_available_mib()
            started = time.perf_counter()
            assert session.beta_pause().success
            pauses.append(time.perf_counter() - started)
            time.sleep(1)
            freed.append(mem_available_mib() - before)
            started = time.perf_counter()
            assert session.beta_resume().success
            assert session.command.execute_command("true").success
            resumes.append(time.perf_counter() - started)
        print(f"{runtime}: pauses {pauses}, resumes {resumes}, MemAvailable rises {freed}", flush=True)
        return {
            "pause_ms": statistics.median(pauses) * 1000,
            "resume_to_first_command_ms": statistics.median(resumes) * 1000,
            "mem_available_rise_mib": statistics.median(freed),
        }
    finally:
        session.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--execs", type=int, default=30)
    parser.add_argument("--idle", type=int, default=5)
    parser.add_argument("--pauses", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, object] = {"load_average_before": load_average()}
    with bench_server(warm_pool=0, session_quota=args.idle + 5) as bench:
        for runtime in RUNTIMES:
            figures: dict[str, float] = {}
            figures.update(creates(bench.agent_bay, runtime, args.runs))
            figures["exec_round_trip_ms"] = exec_round_trip(bench.agent_bay, runtime, args.execs)
            figures.update(
                {
                    f"idle_{k}": v
                    for k, v in idle_memory(bench.server, bench.agent_bay, runtime, args.idle).items()
                }
            )
            figures.update(pause_resume(bench.agent_bay, runtime, args.pauses))
            results[runtime] = figures
    results["load_average_after"] = load_average()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    names = list(results["runc"])  # type: ignore[call-overload]
    print(f"{'median':38} {'runc':>10} {'gvisor':>10}")
    for name in names:
        row = [results[r][name] for r in RUNTIMES]  # type: ignore[index]
        print(f"{name:38} {row[0]:10.1f} {row[1]:10.1f}")
    print(f"load average before {results['load_average_before']}, after {results['load_average_after']}")


if __name__ == "__main__":
    main()

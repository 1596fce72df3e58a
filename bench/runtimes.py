"""runc against gVisor's runsc (runtime "gvisor"): create, first command, exec round trip, idle memory,
pause and resume of sessions holding 256 MiB and 1 GiB (runc: freezer; gvisor: checkpoint and
restore), and, gvisor only, a fork of a session holding 256 MiB up to its first command's answer.

Run as root from the repo root: `.venv/bin/python -m bench.runtimes` (options: --runs, --execs,
--idle, --pauses, --sizes, --forks, --fork-sizes).
Needs runsc (scripts/install.sh --runsc-only). Prints a table of medians, whether gvisor meets its
targets, and writes bench/results/runtimes.json. The warm pool is off, so both runtimes pay for a
whole create.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from pathlib import Path

from tests.integration.server import CoveServer

from bench.harness import bench_server, load_average, verdict
from cove import AgentBay, CreateSessionParams, Session

RESULTS = Path(__file__).parent / "results" / "runtimes.json"
RUNTIMES = ("runc", "gvisor")
HOLDER = r"""
import hashlib, os, sys, time
data = bytearray(os.urandom(1 << 20)) * int(sys.argv[1])
open("/tmp/digest.tmp", "w").write(hashlib.sha256(data).hexdigest())
os.rename("/tmp/digest.tmp", "/tmp/digest")
while True:
    time.sleep(1)
"""

HEADROOM_MIB = 512
"""Memory limit above what the holder holds: Python, the agent, and on gvisor the Sentry."""
PAUSE_MS_PER_GIB = 1500
RESUME_MS = 1000
FORK_MS = 1000
"""gvisor's targets: a pause per GiB held; a resume of up to 1 GiB, and a fork, to the first command."""


def mib_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


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


def create(agent_bay: AgentBay, runtime: str, memory_mb: int | None = None) -> Session:
    created = agent_bay.create(CreateSessionParams(runtime=runtime, memory_mb=memory_mb))
    assert created.session is not None, created.error_message
    return created.session


def holding(agent_bay: AgentBay, runtime: str, size_mib: int) -> Session:
    """A session whose Python process holds `size_mib` MiB it wrote (random: nothing to share or
    compress), once it has filled them all."""
    session = create(agent_bay, runtime, max(1024, size_mib + HEADROOM_MIB))
    try:
        assert session.file_system.write_file("/home/user/holder.py", HOLDER).success
        assert session.command.start(f"python3 /home/user/holder.py {size_mib}").success
        deadline = time.monotonic() + 300
        while not session.command.execute_command("cat /tmp/digest 2>/dev/null").stdout.strip():
            assert time.monotonic() < deadline, "the holder never filled its memory"
            time.sleep(0.5)
    except BaseException:
        session.delete()
        raise
    return session


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


PAUSED_FOR_S = 3.0
"""Longer than this host's init takes to reap an orphan (orphan_reaping_ms)."""


def pause_resume(agent_bay: AgentBay, runtime: str, size_mib: int, runs: int) -> dict[str, float]:
    """A session holding `size_mib` MiB: pause, resume to the first command, and the host memory a
    pause frees."""
    session = holding(agent_bay, runtime, size_mib)
    try:
        pauses, answers, resumes, freed = [], [], [], []
        for _ in range(runs):
            time.sleep(1)
            before = mem_available_mib()
            started = time.perf_counter()
            assert session.beta_pause().success
            pauses.append(time.perf_counter() - started)
            # paused for a while, as a paused session is: a gvisor pause answers once its image is
            # complete, and its stopped sandbox is deleted after that, which a resume waits for
            time.sleep(PAUSED_FOR_S)
            freed.append(mem_available_mib() - before)
            started = time.perf_counter()
            assert session.beta_resume().success
            answers.append(time.perf_counter() - started)
            assert session.command.execute_command("true").success
            resumes.append(time.perf_counter() - started)
        print(
            f"{runtime} {size_mib} MiB: pauses {pauses}, resume answers {answers}, resumes to the first "
            f"command {resumes}, MemAvailable rises {freed}",
            flush=True,
        )
        return {
            f"pause_{size_mib}mib_ms": statistics.median(pauses) * 1000,
            f"resume_{size_mib}mib_answer_ms": statistics.median(answers) * 1000,
            f"resume_{size_mib}mib_to_first_command_ms": statistics.median(resumes) * 1000,
            f"mem_available_rise_{size_mib}mib": statistics.median(freed),
        }
    finally:
        session.delete()


def forks(agent_bay: AgentBay, size_mib: int, runs: int) -> dict[str, float]:
    """Forks of a gvisor session holding `size_mib` MiB: the fork's answer (the new session
    RUNNING), and the answer to its first command, both from the request. Each fork is checked to
    go on with the holder's process and its file, then deleted."""
    source = holding(agent_bay, "gvisor", size_mib)
    try:
        digest = source.command.execute_command("cat /tmp/digest").stdout
        answers, firsts = [], []
        for _ in range(runs):
            time.sleep(1)
            started = time.perf_counter()
            forked = source.beta_fork()
            answers.append(time.perf_counter() - started)
            assert forked.session is not None, forked.error_message
            try:
                assert forked.session.command.execute_command("true").success
                firsts.append(time.perf_counter() - started)
                assert forked.session.command.execute_command("pgrep -f holder.py").success
                assert forked.session.command.execute_command("cat /tmp/digest").stdout == digest
            finally:
                forked.session.delete()
        print(f"gvisor fork {size_mib} MiB: answers {answers}, first commands {firsts}", flush=True)
        return {
            f"fork_{size_mib}mib_answer_ms": statistics.median(answers) * 1000,
            f"fork_{size_mib}mib_to_first_command_ms": statistics.median(firsts) * 1000,
        }
    finally:
        source.delete()


def runc_fork_answer(agent_bay: AgentBay) -> str:
    """What a fork of a runc session answers (forks need gvisor's checkpoint)."""
    session = create(agent_bay, "runc")
    try:
        forked = session.beta_fork()
        assert not forked.success, "a runc session was forked"
        return f"{forked.http_status_code} {forked.code}: {forked.error_message}"
    finally:
        session.delete()


def targets(gvisor: dict[str, float], sizes: list[int], fork_sizes: list[int]) -> dict[str, str]:
    """gvisor's figures against its targets, met or not: a pause per GiB held, a resume of up to
    1 GiB, a fork."""
    found = {}
    for size in sizes:
        pause_limit = PAUSE_MS_PER_GIB * size / 1024
        found[f"pause {size} MiB < {pause_limit:.0f} ms"] = verdict(
            gvisor[f"pause_{size}mib_ms"] < pause_limit
        )
        if size <= 1024:
            found[f"resume {size} MiB to first command < {RESUME_MS} ms"] = verdict(
                gvisor[f"resume_{size}mib_to_first_command_ms"] < RESUME_MS
            )
    for size in fork_sizes:
        found[f"fork {size} MiB to first command < {FORK_MS} ms"] = verdict(
            gvisor[f"fork_{size}mib_to_first_command_ms"] < FORK_MS
        )
    return found


def orphan_reaping_ms() -> float:
    """How long the host's init leaves an exited orphan unreaped, ms. A stopped gvisor sandbox is
    such an orphan, and `runsc delete` (the end of a pause) waits until it is reaped."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        orphan = os.fork()
        if orphan == 0:
            time.sleep(0.2)
            os._exit(0)
        os.write(write_end, str(orphan).encode())
        os._exit(0)
    os.waitpid(middle, 0)
    orphan = int(os.read(read_end, 32))
    os.close(read_end)
    os.close(write_end)
    stat = Path(f"/proc/{orphan}/stat")
    with contextlib.suppress(FileNotFoundError):
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.001)
    started = time.perf_counter()
    while stat.exists():
        time.sleep(0.001)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--execs", type=int, default=30)
    parser.add_argument("--idle", type=int, default=5)
    parser.add_argument("--pauses", type=int, default=3)
    parser.add_argument("--sizes", type=mib_list, default=[256, 1024], help="MiB held in pauses")
    parser.add_argument("--forks", type=int, default=3)
    parser.add_argument("--fork-sizes", type=mib_list, default=[256], help="MiB held in forks")
    args = parser.parse_args()
    results: dict[str, object] = {
        "load_average_before": load_average(),
        "host_orphan_reaping_ms": orphan_reaping_ms(),
    }
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
            for size in args.sizes:
                figures.update(pause_resume(bench.agent_bay, runtime, size, args.pauses))
            if runtime == "gvisor":
                for size in args.fork_sizes:
                    figures.update(forks(bench.agent_bay, size, args.forks))
            results[runtime] = figures
        results["runc_fork_answer"] = runc_fork_answer(bench.agent_bay)
    results["load_average_after"] = load_average()
    results["gvisor_targets"] = targets(results["gvisor"], args.sizes, args.fork_sizes)  # type: ignore[arg-type]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'median':38} {'runc':>10} {'gvisor':>10}")
    for name in results["gvisor"]:  # type: ignore[attr-defined]
        row = [results[r].get(name) for r in RUNTIMES]  # type: ignore[attr-defined]
        print(f"{name:38} " + " ".join("         -" if v is None else f"{v:10.1f}" for v in row))
    print(f"a runc fork answers {results['runc_fork_answer']}")
    print(f"the host's init reaped an orphan after {results['host_orphan_reaping_ms']:.0f} ms")
    for target, met in results["gvisor_targets"].items():  # type: ignore[attr-defined]
        print(f"gvisor {target}: {met}")
    print(f"load average before {results['load_average_before']}, after {results['load_average_after']}")


if __name__ == "__main__":
    main()

"""Session create-to-ready latency against bare `runc run`, and the memory of idle sessions.

Run as root from the repo root: `.venv/bin/python -m bench.sessions` (options: --runs, --idle).
Prints a table and writes bench/results/sessions.json. Targets: create p50 within 1.5x of bare
runc; an idle session under 20 MiB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.integration.server import CoveServer, remove_data, running_server

from bench.harness import percentile
from cove.sandbox.images import SANDBOX_HOME, SANDBOX_UID
from cove.sandbox.oci_spec import IdMapping, Limits, Mount, build_spec
from cove.sandbox.runtime import AGENT_DIR, AGENT_MOUNT, INIT_ARGS

RESULTS = Path(__file__).parent / "results" / "sessions.json"


def time_cove_creates(server: CoveServer, runs: int, body: dict[str, object]) -> list[float]:
    """Wall time of the create call, from request to a RUNNING answer, over real HTTP."""
    timings = []
    with server.client() as client:
        client.delete(
            f"/v1/sessions/{client.post('/v1/sessions', json=body).json()['session']['session_id']}"
        )
        for _ in range(runs):
            start = time.perf_counter()
            answer = client.post("/v1/sessions", json=body)
            timings.append(time.perf_counter() - start)
            assert answer.status_code == 201, answer.text
            client.delete(f"/v1/sessions/{answer.json()['session']['session_id']}")
    return timings


def time_bare_runc(image_rootfs: Path, runs: int) -> list[float]:
    """`runc run -d` of the same image and init, no overlay, no server: the floor we compare with."""
    bundle = Path(tempfile.mkdtemp(prefix="cove-bench-", dir="/var/tmp"))
    bundle.chmod(0o711)
    state = bundle / "state"
    spec = build_spec(
        hostname="bare",
        rootfs=str(image_rootfs),
        args=INIT_ARGS,
        user_uid=SANDBOX_UID,
        home=SANDBOX_HOME,
        id_mapping=IdMapping(100000, 65536, SANDBOX_UID, 100000 + SANDBOX_UID),  # the image's own owner
        limits=Limits(memory_mb=1024, cpus=1.0, pids=512, disk_mb=10240),
        cgroups_path="/cove-bench/bare",
        binds=[Mount(source=str(AGENT_DIR), destination=AGENT_MOUNT)],
    )
    spec["root"]["readonly"] = True
    (bundle / "config.json").write_text(json.dumps(spec))
    timings = []
    try:
        for i in range(runs):
            name = f"bare-{i}"
            start = time.perf_counter()
            subprocess.run(
                [
                    "runc",
                    "--root",
                    str(state),
                    "run",
                    "--detach",
                    "--no-new-keyring",
                    "--bundle",
                    str(bundle),
                    name,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
            timings.append(time.perf_counter() - start)
            subprocess.run(["runc", "--root", str(state), "delete", "--force", name], check=True)
    finally:
        shutil.rmtree(bundle, ignore_errors=True)
    return timings


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def cgroup_memory_bytes(server: CoveServer, session_id: str) -> int:
    for path in server.cgroup_dirs():
        if path.name != session_id:
            continue
        for name in ("memory.usage_in_bytes", "memory.current"):
            if (path / name).exists():
                return int((path / name).read_text())
    raise RuntimeError(f"no memory cgroup for {session_id}")


def process_pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def idle_memory(server: CoveServer, count: int) -> dict[str, float]:
    before = mem_available_kib()
    with server.client() as client:
        ids = [client.post("/v1/sessions", json={}).json()["session"]["session_id"] for _ in range(count)]
        time.sleep(3)
        after = mem_available_kib()
        cgroup = [cgroup_memory_bytes(server, i) / 2**20 for i in ids]
        pss = [process_pss_kib(server.sandbox_pid(i)) / 1024 for i in ids]
        for session_id in ids:
            client.delete(f"/v1/sessions/{session_id}")
    return {
        "sessions": count,
        "cgroup_mib_median": statistics.median(cgroup),
        "cgroup_mib_max": max(cgroup),
        "init_pss_mib_median": statistics.median(pss),
        "host_mib_per_session": (before - after) / 1024 / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--idle", type=int, default=100)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cove-bench-", dir="/var/tmp"))
    root.chmod(0o711)
    try:
        with running_server(root / "cold", warm_pool=0) as server:
            cold = time_cove_creates(server, args.runs, {})
        with running_server(root / "data", session_quota=args.idle + 10) as server:
            cove = time_cove_creates(server, args.runs, {})
            bare = time_bare_runc(server.data_dir / "images" / "linux_latest" / "rootfs", args.runs)
            memory = idle_memory(server, args.idle)
    finally:
        remove_data(root)
    figures = {
        "runs": args.runs,
        "cove_create_ms": {"p50": percentile(cove, 0.5) * 1000, "p95": percentile(cove, 0.95) * 1000},
        "cove_create_cold_ms": {"p50": percentile(cold, 0.5) * 1000, "p95": percentile(cold, 0.95) * 1000},
        "bare_runc_run_ms": {"p50": percentile(bare, 0.5) * 1000, "p95": percentile(bare, 0.95) * 1000},
        "idle_memory": memory,
    }
    bare_p50 = figures["bare_runc_run_ms"]["p50"]
    figures["create_p50_ratio"] = figures["cove_create_ms"]["p50"] / bare_p50
    figures["create_cold_p50_ratio"] = figures["cove_create_cold_ms"]["p50"] / bare_p50
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{'':28}{'p50 ms':>10}{'p95 ms':>10}")
    for label, key in (
        ("cove create (warm pool)", "cove_create_ms"),
        ("cove create (no warm pool)", "cove_create_cold_ms"),
        ("bare runc run -d", "bare_runc_run_ms"),
    ):
        print(f"{label:28}{figures[key]['p50']:>10.1f}{figures[key]['p95']:>10.1f}")
    print(
        f"create p50 ratio cove/bare: {figures['create_p50_ratio']:.2f} warm, "
        f"{figures['create_cold_p50_ratio']:.2f} cold (target <= 1.5)"
    )
    print(
        f"idle sessions: {memory['sessions']}, cgroup memory median {memory['cgroup_mib_median']:.1f} MiB "
        f"(max {memory['cgroup_mib_max']:.1f}), init PSS median {memory['init_pss_mib_median']:.1f} MiB, "
        f"host MemAvailable drop {memory['host_mib_per_session']:.1f} MiB/session (target < 20)"
    )
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

"""Tool call round trip against `runc exec`, streamed upload/download throughput, pause and resume.

Run as root from the repo root: `.venv/bin/python -m bench.tools` (options: --runs, --mib).
Prints a table and writes bench/results/tools.json. Targets: an SDK command round trip under
0.5x `runc exec` of the same command in the same container; upload and download each at least
200 MB/s for a 100 MiB file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from tests.integration.server import CoveServer

from bench.harness import bench_server, summary
from cove import AgentBay, Session

RESULTS = Path(__file__).parent / "results" / "tools.json"
MiB = 1024 * 1024


def time_sdk_commands(session: Session, runs: int) -> list[float]:
    """`execute_command("true")`: SDK, HTTP, server, agent socket, bash, and back."""
    timings = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        result = session.command.execute_command("true")
        timings.append(time.perf_counter() - start)
        assert result.success, result.error_message
    return timings[1:]  # the first call loads the agent's tools


def time_first_commands(agent_bay: AgentBay, runs: int) -> list[float]:
    """The first command of a new session, which starts its tool agent (init starts it on demand)."""
    timings = []
    for _ in range(runs):
        session = agent_bay.create().session
        assert session is not None
        start = time.perf_counter()
        result = session.command.execute_command("true")
        timings.append(time.perf_counter() - start)
        assert result.success, result.error_message
        session.delete()
    return timings


def time_pause_resume(session: Session, runs: int) -> tuple[list[float], list[float]]:
    """`beta_pause()` and `beta_resume()` round trips (SDK, HTTP, database, `runc pause`/`resume`)."""
    pauses, resumes = [], []
    for _ in range(runs):
        start = time.perf_counter()
        assert session.beta_pause().success
        pauses.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert session.beta_resume().success
        resumes.append(time.perf_counter() - start)
    return pauses, resumes


def time_runc_exec(server: CoveServer, session_id: str, runs: int) -> list[float]:
    """`runc exec` of the same command in the same container, as the same user."""
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        result = server.runc("exec", session_id, "bash", "-c", "true")
        timings.append(time.perf_counter() - start)
        assert result.returncode == 0, result.stderr
    return timings


def time_transfers(session: Session, scratch: Path, mib: int, runs: int) -> dict[str, float]:
    """Median MB/s (10^6 bytes per second) of upload and download of one `mib` MiB file."""
    source, back = scratch / "up.bin", scratch / "down.bin"
    source.write_bytes(os.urandom(mib * MiB))
    uploads, downloads = [], []
    for _ in range(runs):
        start = time.perf_counter()
        uploaded = session.file_system.upload_file(str(source), "/tmp/bench.bin")
        uploads.append(time.perf_counter() - start)
        assert uploaded.success, uploaded.error_message
        start = time.perf_counter()
        downloaded = session.file_system.download_file("/tmp/bench.bin", str(back))
        downloads.append(time.perf_counter() - start)
        assert downloaded.success and downloaded.bytes_received == mib * MiB, downloaded.error_message
    size_mb = mib * MiB / 1e6
    return {
        "upload_mb_s": size_mb / statistics.median(uploads),
        "download_mb_s": size_mb / statistics.median(downloads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="command round trips of each kind")
    parser.add_argument("--mib", type=int, default=100, help="size of the transferred file")
    parser.add_argument("--transfers", type=int, default=5, help="uploads and downloads to time")
    parser.add_argument("--pauses", type=int, default=50, help="pause/resume cycles to time")
    parser.add_argument("--first", type=int, default=20, help="new sessions whose first command is timed")
    args = parser.parse_args()
    with bench_server() as bench:
        session = bench.agent_bay.create().session
        assert session is not None
        sdk = summary(time_sdk_commands(session, args.runs))
        runc = summary(time_runc_exec(bench.server, session.session_id, args.runs))
        transfers = time_transfers(session, bench.scratch, args.mib, args.transfers)
        session.command.start("sleep 600")  # something to freeze
        pauses, resumes = (summary(t) for t in time_pause_resume(session, args.pauses))
        session.delete()
        first = summary(time_first_commands(bench.agent_bay, args.first))
    results = {
        "runs": args.runs,
        "sdk_command_ms": sdk,
        "runc_exec_ms": runc,
        "command_p50_ratio": sdk["p50"] / runc["p50"],
        "first_command_ms": first,
        "pause_ms": pauses,
        "resume_ms": resumes,
        "transfer_mib": args.mib,
        **transfers,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measure':<34}{'p50':>10}{'p95':>10}")
    print(f"{'SDK execute_command(true)':<34}{sdk['p50']:>8.2f}ms{sdk['p95']:>8.2f}ms")
    print(f"{'runc exec bash -c true':<34}{runc['p50']:>8.2f}ms{runc['p95']:>8.2f}ms")
    print(f"{'first command (agent starts)':<34}{first['p50']:>8.2f}ms{first['p95']:>8.2f}ms")
    print(f"{'beta_pause()':<34}{pauses['p50']:>8.2f}ms{pauses['p95']:>8.2f}ms")
    print(f"{'beta_resume()':<34}{resumes['p50']:>8.2f}ms{resumes['p95']:>8.2f}ms")
    print(f"round trip p50 ratio: {results['command_p50_ratio']:.2f}x runc exec (target < 0.5x)")
    print(f"upload {args.mib} MiB: {transfers['upload_mb_s']:.0f} MB/s (target >= 200)")
    print(f"download {args.mib} MiB: {transfers['download_mb_s']:.0f} MB/s (target >= 200)")


if __name__ == "__main__":
    main()

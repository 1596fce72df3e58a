"""Context sync throughput: a session's synced folder uploaded into its context on delete, and the
context downloaded into a new session's folder on create; for 1,000 small files and for one large
file, with the local-folder backend and (unless --no-s3) an S3 one (moto's server, as in the tests).

Run as root from the repo root: `.venv/bin/python -m bench.contexts` (options: --runs, --files,
--file-kib, --large-mib, --no-s3). Prints a table and writes bench/results/contexts.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from tests.s3 import S3Server

from bench.harness import Bench, bench_server

RESULTS = Path(__file__).parent / "results" / "contexts.json"
SYNCED = "/home/user/work"
NO_UPLOAD = {"uploadPolicy": {"autoUpload": False}}


def timed_create(api: httpx.Client, syncs: list[dict[str, Any]]) -> tuple[str, float]:
    start = time.perf_counter()
    answer = api.post("/v1/sessions", json={"context_syncs": syncs})
    seconds = time.perf_counter() - start
    assert answer.status_code == 201, answer.text
    return answer.json()["session"]["session_id"], seconds


def timed_delete(api: httpx.Client, session_id: str) -> float:
    start = time.perf_counter()
    answer = api.delete(f"/v1/sessions/{session_id}")
    seconds = time.perf_counter() - start
    assert answer.status_code == 200, answer.text
    return seconds


def inside(bench: Bench, session_id: str, script: str) -> str:
    ran = bench.server.sandbox(session_id, script, timeout=600)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def measure(bench: Bench, api: httpx.Client, fill: str, size: int, runs: int) -> dict[str, float]:
    """Median seconds and MB/s of the upload on delete and the download on create of `fill`'s folder."""
    uploads, downloads, baseline = [], [], []
    for _ in range(runs):
        session_id, seconds = timed_create(api, [])
        baseline.append(seconds + timed_delete(api, session_id))
        context = api.post("/v1/contexts", json={"name": f"bench-{uuid.uuid4().hex[:8]}"}).json()["context"]
        first, _ = timed_create(api, [{"context_id": context["id"], "path": SYNCED}])
        inside(bench, first, fill)
        expected = inside(bench, first, f"find {SYNCED} -type f | wc -l; du -sb {SYNCED} | cut -f1")
        uploads.append(timed_delete(api, first))
        syncs = [{"context_id": context["id"], "path": SYNCED, "policy": NO_UPLOAD}]
        second, seconds = timed_create(api, syncs)
        downloads.append(seconds)
        assert inside(bench, second, f"find {SYNCED} -type f | wc -l; du -sb {SYNCED} | cut -f1") == expected
        timed_delete(api, second)
        api.delete(f"/v1/contexts/{context['id']}")
    upload, download = statistics.median(uploads), statistics.median(downloads)
    return {
        "bytes": size,
        "upload_s": upload,
        "download_s": download,
        "upload_mb_s": size / 1e6 / upload,
        "download_mb_s": size / 1e6 / download,
        "create_and_delete_without_sync_s": statistics.median(baseline),
    }


def run_backend(args: argparse.Namespace, **settings: object) -> dict[str, dict[str, float]]:
    small_bytes, large_bytes = args.files * args.file_kib * 1024, args.large_mib * 2**20
    small = (
        f"mkdir -p {SYNCED} && cd {SYNCED} && head -c {small_bytes} /dev/urandom"
        f" | split -b {args.file_kib * 1024} -a 4 - f"
    )
    large = f"mkdir -p {SYNCED} && head -c {large_bytes} /dev/urandom > {SYNCED}/large.bin"
    with bench_server(warm_pool=0, **settings) as bench, bench.server.client() as api:
        return {
            f"{args.files} files of {args.file_kib} KiB": measure(bench, api, small, small_bytes, args.runs),
            f"one file of {args.large_mib} MiB": measure(bench, api, large, large_bytes, args.runs),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--file-kib", type=int, default=4)
    parser.add_argument("--large-mib", type=int, default=500)
    parser.add_argument("--no-s3", action="store_true", help="only the local-folder backend")
    args = parser.parse_args()
    results: dict[str, Any] = {"runs": args.runs, "local": run_backend(args)}
    if not args.no_s3:
        with S3Server() as s3:
            results["s3 (moto)"] = run_backend(args, **s3.cove_settings(s3.new_bucket()))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'backend':<11}{'workload':<24}{'upload':>16}{'download':>16}{'create+delete':>15}")
    for backend, workloads in results.items():
        if backend == "runs":
            continue
        for workload, f in workloads.items():
            print(
                f"{backend:<11}{workload:<24}"
                f"{f['upload_mb_s']:>8.1f} MB/s {f['upload_s']:>5.2f}s"
                f"{f['download_mb_s']:>8.1f} MB/s {f['download_s']:>5.2f}s"
                f"{f['create_and_delete_without_sync_s'] * 1000:>12.0f} ms"
            )


if __name__ == "__main__":
    main()

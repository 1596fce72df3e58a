"""Cove against Docker, Podman and llm-sandbox: one root filesystem, the same work, interleaved.

Run as root from the repo root:

    .venv/bin/python -m bench.peers --setup      # once: docker.io and podman (Debian), llm-sandbox (PyPI)
    .venv/bin/python -m bench.peers              # --creates 30 --round-trips 100 --idle 20 --repeats 3
    .venv/bin/python -m bench.peers --no-peers   # Cove alone: compare two versions of Cove
    .venv/bin/python -m bench.peers --breakdown  # one Cove session's processes, idle and after a command

Cove's server is started on a scratch data directory; its linux_latest root filesystem is packed
into a tar and imported as an image into Docker (a dockerd of the bench's own, on its own socket,
with no bridge and no iptables rules) and into Podman. Every container runs with no network, as the
image's user (uid 1000), with `sleep infinity` as PID 1; commands run with `bash -c`. Peers:

- cove: the native REST API over loopback (create a session, then the shell tool).
- docker-api: the Docker Engine API over its Unix socket (create, start, exec), as SDKs drive it.
- docker-cli: the `docker` command (`run -d`, `exec`), as people and scripts drive it.
- podman-cli: the `podman` command (`run -d`, `exec`); Podman has no daemon.
- llm-sandbox: its SandboxSession on the Docker backend, driven in a venv of its own that --setup
  makes (bench/peers_llm_sandbox.py), so the project's environment gets none of its dependencies.

Measures, each run interleaved peer by peer: create -> first output (create a sandbox and run
`echo ready` in it), command round trip (`echo ok` in one sandbox), idle memory per sandbox (the
container's memory cgroup plus its host-side helper: containerd-shim for Docker, conmon for Podman,
none for Cove, whose sandboxes have no per-session host process; taken at rest: 3 s after the
create, and for Cove once the tool agent has left, after its idle exit), memory after one command, and a
50 MiB write (`dd ... conv=fsync` into the sandbox's home) and read back (`sha256sum` of it).
The figures are the median of the runs' medians. A peer that cannot run is skipped with the reason
printed. Prints a table with ratios to Cove and writes bench/results/peers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

from bench.harness import bench_server, load_average, pytest_process_count

RESULTS = Path(__file__).parent / "results" / "peers.json"
BREAKDOWN = RESULTS.with_name("peers_cove_breakdown.json")
WORK = Path("/var/lib/cove-bench-peers")
DOCKER_SOCKET = "/run/cove-bench-docker.sock"
LLM_SANDBOX_VENV = WORK / "llm-sandbox-venv"
DOCKER = "/usr/bin/docker"  # Debian's client, beside the daemon it talks to
PODMAN = "/usr/bin/podman"
IMAGE = "cove-bench/linux_latest:latest"
USER = "1000:1000"
PODMAN_LIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
"""Podman's defaults (nofile 1048576, nproc from the host) are above what this host lets runc set;
Docker's daemon passes its own, lower ones."""
HELPERS = ("containerd-shim", "containerd-shim-runc-v2", "conmon")
"""Host processes that exist once per container; their PSS counts as the container's."""
AGENT_EXIT_WAIT_S = 150
"""How long a Cove session may take to be at rest: its agent's idle exit, and a margin."""
WRITE = 'dd if=/dev/zero of="$HOME/bench-50m" bs=1M count=50 conv=fsync status=none && echo written'
READ = 'sha256sum "$HOME/bench-50m" | cut -c1-16'
ZEROS_50MIB_SHA256 = "8565a714dca840f8"
"""The start of the SHA-256 of 50 MiB of zeros."""


def apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True, env=env
    )


def setup() -> None:
    """Install the peers: Docker and Podman from Debian, llm-sandbox from PyPI in a venv of its own
    (not the project's); the daemons are started by the bench itself."""
    apt_install("docker.io", "podman")
    subprocess.run(["python3", "-m", "venv", str(LLM_SANDBOX_VENV)], check=True)
    subprocess.run(
        [str(LLM_SANDBOX_VENV / "bin" / "pip"), "install", "-q", "llm-sandbox", "docker"], check=True
    )
    print(
        "installed: docker.io and podman (Debian), llm-sandbox (PyPI) in "
        f"{LLM_SANDBOX_VENV}; `python -m bench.peers` starts its own dockerd"
    )


# --- process and cgroup memory -------------------------------------------------------------------


def memory_cgroup(pid: int) -> Path:
    """The memory cgroup directory of a process, as mounted here (v1 memory hierarchy, or v2)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    v1 = [line.split(":", 2)[2] for line in lines if "memory" in line.split(":", 2)[1].split(",")]
    base, relative = (
        (Path("/sys/fs/cgroup/memory"), v1[0]) if v1 else (Path("/sys/fs/cgroup"), lines[-1].split(":", 2)[2])
    )
    parts = relative.strip("/").split("/")
    for skip in range(len(parts)):  # inside a cgroup namespace the mount shows only our own subtree
        candidate = base.joinpath(*parts[skip:])
        if candidate.is_dir() and str(pid) in (candidate / "cgroup.procs").read_text().split():
            return candidate
    raise RuntimeError(f"no memory cgroup found for pid {pid} ({relative})")


def cgroup_memory(pid: int) -> dict[str, float]:
    """usage (v1 memory.usage_in_bytes or v2 memory.current) and its anonymous and file parts, MiB."""
    path = memory_cgroup(pid)
    usage_file = path / "memory.usage_in_bytes"
    usage = int((usage_file if usage_file.exists() else path / "memory.current").read_text())
    stat = dict(line.split() for line in (path / "memory.stat").read_text().splitlines())
    anon = int(stat.get("total_rss", stat.get("anon", 0)))
    file = int(stat.get("total_cache", stat.get("file", 0)))
    return {"usage": usage / 2**20, "anon": anon / 2**20, "file": file / 2**20}


def pss_mib(pid: int) -> float:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def helper_pss_mib(init_pid: int) -> float:
    """PSS of the per-container host process that holds the container's init, if there is one."""
    holder = parent(init_pid)
    comm = Path(f"/proc/{holder}/comm").read_text().strip()
    return pss_mib(holder) if comm.startswith(HELPERS) else 0.0


# --- peers ---------------------------------------------------------------------------------------


class Peer:
    name = ""

    def create(self) -> str:
        """A new sandbox; answers its handle once it is ready to run a command."""
        raise NotImplementedError

    def run(self, handle: str, command: str) -> str:
        raise NotImplementedError

    def init_pid(self, handle: str) -> int:
        raise NotImplementedError

    def remove(self, handle: str) -> None:
        raise NotImplementedError

    def settle(self, handles: list[str]) -> None:
        """Wait until new sandboxes are at rest."""
        time.sleep(3)

    def close(self) -> None:
        pass


class CovePeer(Peer):
    name = "cove"

    def __init__(self, client: httpx.Client, sandbox_pid: Callable[[str], int]) -> None:
        self.client = client
        self.sandbox_pid = sandbox_pid

    def create(self) -> str:
        answer = self.client.post("/v1/sessions", json={})
        answer.raise_for_status()
        session_id: str = answer.json()["session"]["session_id"]
        return session_id

    def run(self, handle: str, command: str) -> str:
        answer = self.client.post(
            f"/v1/sessions/{handle}/tools/shell", json={"arguments": {"command": command}}
        )
        answer.raise_for_status()
        text: str = answer.json()["result"]["content"][0]["text"]
        return text

    def init_pid(self, handle: str) -> int:
        return self.sandbox_pid(handle)

    def remove(self, handle: str) -> None:
        self.client.delete(f"/v1/sessions/{handle}").raise_for_status()

    def settle(self, handles: list[str]) -> None:
        """At rest is init alone: a new session's agent leaves after its idle exit (60 s by default)."""
        deadline = time.monotonic() + AGENT_EXIT_WAIT_S
        for handle in handles:
            procs = memory_cgroup(self.init_pid(handle)) / "cgroup.procs"
            while len(procs.read_text().split()) > 1:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the agent of {handle} did not leave in {AGENT_EXIT_WAIT_S} s")
                time.sleep(0.5)


class DockerApiPeer(Peer):
    """The Engine API over the Unix socket: what the Docker SDKs (and llm-sandbox) send."""

    name = "docker-api"

    def __init__(self) -> None:
        self.client = httpx.Client(
            transport=httpx.HTTPTransport(uds=DOCKER_SOCKET), base_url="http://docker/v1.41", timeout=120
        )

    def create(self) -> str:
        body = {
            "Image": IMAGE,
            "Cmd": ["sleep", "infinity"],
            "User": USER,
            "NetworkDisabled": True,
            "HostConfig": {"NetworkMode": "none"},
        }
        answer = self.client.post("/containers/create", json=body)
        answer.raise_for_status()
        container: str = answer.json()["Id"]
        self.client.post(f"/containers/{container}/start").raise_for_status()
        return container

    def run(self, handle: str, command: str) -> str:
        body = {"Cmd": ["bash", "-c", command], "AttachStdout": True, "AttachStderr": True}
        answer = self.client.post(f"/containers/{handle}/exec", json=body)
        answer.raise_for_status()
        started = self.client.post(f"/exec/{answer.json()['Id']}/start", json={"Detach": False, "Tty": False})
        started.raise_for_status()
        return demultiplex(started.content)

    def init_pid(self, handle: str) -> int:
        pid: int = self.client.get(f"/containers/{handle}/json").json()["State"]["Pid"]
        return pid

    def remove(self, handle: str) -> None:
        self.client.delete(f"/containers/{handle}", params={"force": "true"}).raise_for_status()

    def close(self) -> None:
        self.client.close()


def demultiplex(stream: bytes) -> str:
    """The text of an attached stream without a TTY: frames of an 8-byte header, then the bytes."""
    out, offset = bytearray(), 0
    while offset + 8 <= len(stream):
        (size,) = struct.unpack(">I", stream[offset + 4 : offset + 8])
        out += stream[offset + 8 : offset + 8 + size]
        offset += 8 + size
    return out.decode(errors="replace")


class CliPeer(Peer):
    """`docker` or `podman` on the command line; a new client process for every call."""

    def __init__(
        self,
        name: str,
        command: list[str],
        options: tuple[str, ...] = (),
        remove_options: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.command = command
        self.options = options
        self.remove_options = remove_options
        self.count = 0

    def cli(self, *args: str) -> str:
        done = subprocess.run([*self.command, *args], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args[:2])}: {done.stderr.strip()}")
        return done.stdout

    def create(self) -> str:
        self.count += 1
        name = f"cove-bench-{self.name}-{os.getpid()}-{self.count}"
        self.cli(
            "run",
            "-d",
            "--network",
            "none",
            "--user",
            USER,
            *self.options,
            "--name",
            name,
            IMAGE,
            "sleep",
            "infinity",
        )
        return name

    def run(self, handle: str, command: str) -> str:
        return self.cli("exec", handle, "bash", "-c", command)

    def init_pid(self, handle: str) -> int:
        return int(self.cli("inspect", "--format", "{{.State.Pid}}", handle))

    def remove(self, handle: str) -> None:
        # `sleep` as PID 1 ignores SIGTERM: Podman would wait its 10 s stop timeout (Docker kills at once).
        self.cli("rm", "--force", *self.remove_options, handle)


class LlmSandboxPeer(Peer):
    """llm-sandbox's SandboxSession on the Docker backend, driven in its own venv (one process for
    the whole bench, so its import time counts once, as in an application)."""

    name = "llm-sandbox"

    def __init__(self) -> None:
        python = LLM_SANDBOX_VENV / "bin" / "python"
        if not python.exists():
            raise RuntimeError(f"not installed: no {python} (run `python -m bench.peers --setup`)")
        driver = Path(__file__).with_name("peers_llm_sandbox.py")
        self.driver = subprocess.Popen(
            [str(python), str(driver), DOCKER_SOCKET, IMAGE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, request: dict[str, object]) -> dict[str, object]:
        assert self.driver.stdin is not None and self.driver.stdout is not None
        self.driver.stdin.write(json.dumps(request) + "\n")
        self.driver.stdin.flush()
        line = self.driver.stdout.readline()
        if not line:
            raise RuntimeError("the llm-sandbox driver stopped; its error is above")
        answer: dict[str, object] = json.loads(line)
        return answer

    def create(self) -> str:
        return str(self.ask({"create": True})["handle"])

    def run(self, handle: str, command: str) -> str:
        return str(self.ask({"run": handle, "command": command})["output"])

    def init_pid(self, handle: str) -> int:
        return int(str(self.ask({"pid": handle})["pid"]))

    def remove(self, handle: str) -> None:
        self.ask({"remove": handle})

    def close(self) -> None:
        if self.driver.stdin is not None:
            self.driver.stdin.close()
        self.driver.wait(30)


def remove_leftovers(peer: CliPeer) -> None:
    """Remove the containers an interrupted run left running in Podman (found by their name)."""
    with suppress(OSError, RuntimeError):
        names = peer.cli("ps", "--all", "--filter", "name=^cove-bench-", "--format", "{{.Names}}").split()
        for name in names:
            peer.remove(name)


# --- the peers' daemons and the shared image -----------------------------------------------------


@contextmanager
def docker_daemon() -> Iterator[None]:
    """A dockerd of the bench's own: own socket, data and exec root, no bridge, no iptables."""
    if not shutil.which("dockerd"):
        raise RuntimeError("dockerd is not installed (run `python -m bench.peers --setup`)")
    WORK.mkdir(parents=True, exist_ok=True)
    log = (WORK / "dockerd.log").open("ab")
    daemon = subprocess.Popen(
        [
            "dockerd",
            "--host",
            f"unix://{DOCKER_SOCKET}",
            "--data-root",
            str(WORK / "docker"),
            "--exec-root",
            "/run/cove-bench-docker",
            "--pidfile",
            "/run/cove-bench-dockerd.pid",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
        ],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(
            [DOCKER, "-H", f"unix://{DOCKER_SOCKET}", "info"], capture_output=True
        ).returncode:
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start; see {WORK / 'dockerd.log'}")
            time.sleep(0.5)
        yield
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


def pack_rootfs(rootfs: Path, tar_path: Path) -> None:
    """A tar of the image's root filesystem, its owners moved back from Cove's sandbox ID range (the
    root folder's owner is the range's start) to the IDs the image has inside a sandbox."""
    offset = rootfs.stat().st_uid

    def unshifted(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid, info.gid = max(0, info.uid - offset), max(0, info.gid - offset)
        info.uname = info.gname = ""
        return info

    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name, filter=unshifted)


def import_image(command: list[str], tar_path: Path) -> None:
    """Import the tar as IMAGE, in place of an earlier run's (which would stay on disk, untagged)."""
    subprocess.run([*command, "rmi", "--force", IMAGE], capture_output=True)
    subprocess.run([*command, "import", str(tar_path), IMAGE], check=True, capture_output=True)


# --- measures ------------------------------------------------------------------------------------


def time_creates(peer: Peer, count: int) -> list[float]:
    timings = []
    for _ in range(count):
        start = time.perf_counter()
        handle = peer.create()
        output = peer.run(handle, "echo ready")
        timings.append(time.perf_counter() - start)
        assert "ready" in output, f"{peer.name}: {output!r}"
        peer.remove(handle)
    return timings


def time_round_trips(peer: Peer, count: int) -> list[float]:
    handle = peer.create()
    try:
        peer.run(handle, "echo ok")
        timings = []
        for _ in range(count):
            start = time.perf_counter()
            output = peer.run(handle, "echo ok")
            timings.append(time.perf_counter() - start)
            assert "ok" in output, f"{peer.name}: {output!r}"
        return timings
    finally:
        peer.remove(handle)


def sandbox_memory(peer: Peer, handles: list[str]) -> dict[str, float]:
    """Medians over the sandboxes: cgroup usage and parts, helper PSS, and their sum, in MiB."""
    rows = []
    for handle in handles:
        pid = peer.init_pid(handle)
        row = cgroup_memory(pid)
        row["helper_pss"] = helper_pss_mib(pid)
        row["total"] = row["usage"] + row["helper_pss"]
        rows.append(row)
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def memory(peer: Peer, count: int) -> dict[str, dict[str, float]]:
    handles = []
    try:
        for _ in range(count):
            handles.append(peer.create())
        peer.settle(handles)
        idle = sandbox_memory(peer, handles)
        for handle in handles:
            assert "ok" in peer.run(handle, "echo ok")
        time.sleep(1)
        after_command = sandbox_memory(peer, handles)
    finally:
        for handle in handles:
            with suppress(Exception):
                peer.remove(handle)
    return {"idle": idle, "after_command": after_command}


def write_read(peer: Peer) -> dict[str, float]:
    handle = peer.create()
    try:
        peer.run(handle, "true")
        start = time.perf_counter()
        written = peer.run(handle, WRITE)
        write_s = time.perf_counter() - start
        start = time.perf_counter()
        digest = peer.run(handle, READ)
        read_s = time.perf_counter() - start
        assert "written" in written, f"{peer.name}: {written!r}"
        assert ZEROS_50MIB_SHA256 in digest, f"{peer.name}: {digest!r}"
    finally:
        peer.remove(handle)
    return {"write_ms": write_s * 1000, "read_ms": read_s * 1000}


def one_run(peers: list[Peer], args: argparse.Namespace) -> dict[str, dict[str, object]]:
    run: dict[str, dict[str, object]] = {peer.name: {} for peer in peers}
    for peer in peers:  # create -> first output
        run[peer.name]["create_first_output_ms"] = statistics.median(time_creates(peer, args.creates)) * 1000
    for peer in peers:
        run[peer.name]["round_trip_ms"] = statistics.median(time_round_trips(peer, args.round_trips)) * 1000
    for peer in peers:
        run[peer.name]["memory_mib"] = memory(peer, args.idle)
    for peer in peers:
        run[peer.name].update(write_read(peer))
    return run


def median_of_runs(runs: list[dict[str, dict[str, object]]], peer: str) -> dict[str, float]:
    def values(pick: Callable[[dict[str, object]], float]) -> float:
        return statistics.median(pick(run[peer]) for run in runs)

    def mem(state: str, key: str) -> Callable[[dict[str, object]], float]:
        return lambda figures: figures["memory_mib"][state][key]  # type: ignore[index]

    return {
        "create_first_output_ms": values(lambda f: f["create_first_output_ms"]),  # type: ignore[arg-type,return-value]
        "round_trip_ms": values(lambda f: f["round_trip_ms"]),  # type: ignore[arg-type,return-value]
        "idle_cgroup_mib": values(mem("idle", "usage")),
        "idle_helper_pss_mib": values(mem("idle", "helper_pss")),
        "idle_total_mib": values(mem("idle", "total")),
        "after_command_cgroup_mib": values(mem("after_command", "usage")),
        "after_command_total_mib": values(mem("after_command", "total")),
        "write_50mib_ms": values(lambda f: f["write_ms"]),  # type: ignore[arg-type,return-value]
        "read_50mib_ms": values(lambda f: f["read_ms"]),  # type: ignore[arg-type,return-value]
    }


ROWS = (
    ("create -> first output, ms", "create_first_output_ms"),
    ("command round trip, ms", "round_trip_ms"),
    ("idle: cgroup, MiB", "idle_cgroup_mib"),
    ("idle: host helper PSS, MiB", "idle_helper_pss_mib"),
    ("idle: total, MiB", "idle_total_mib"),
    ("after one command: total, MiB", "after_command_total_mib"),
    ("50 MiB write (fsync), ms", "write_50mib_ms"),
    ("50 MiB read back (sha256), ms", "read_50mib_ms"),
)


def print_table(medians: dict[str, dict[str, float]]) -> None:
    names = list(medians)
    print(f"{'median of runs':32}" + "".join(f"{name:>22}" for name in names))
    for label, key in ROWS:
        cells = []
        for name in names:
            value, base = medians[name][key], medians["cove"][key]
            ratio = f" ({value / base:.1f}x)" if name != "cove" and base else ""
            cells.append(f"{value:.1f}{ratio}")
        print(f"{label:32}" + "".join(f"{cell:>22}" for cell in cells))


def processes_in(cgroup: Path) -> list[dict[str, object]]:
    """Every process of a cgroup with its RSS and PSS parts, in MiB."""
    found = []
    for pid in sorted(int(line) for line in (cgroup / "cgroup.procs").read_text().split()):
        with suppress(OSError):
            figures: dict[str, object] = {
                "pid": pid,
                "command": Path(f"/proc/{pid}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode()
                .strip()[:90],
            }
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Shared_Clean", "Private_Dirty"):
                    figures[key] = round(int(value.split()[0]) / 1024, 2)
            found.append(figures)
    return found


def cgroup_stat(cgroup: Path) -> dict[str, float]:
    """The memory cgroup's usage and the parts of memory.stat that make it up, in MiB."""
    usage_file = cgroup / "memory.usage_in_bytes"
    usage = int((usage_file if usage_file.exists() else cgroup / "memory.current").read_text())
    stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    keys = ("total_rss", "total_cache", "total_mapped_file", "total_shmem", "anon", "file", "kernel", "shmem")
    return {"usage": round(usage / 2**20, 2)} | {
        key: round(int(stat[key]) / 2**20, 2) for key in keys if key in stat
    }


def breakdown() -> None:
    """One Cove session: its cgroup and each of its processes, fresh, at rest, then after one command."""
    states: dict[str, object] = {}
    with bench_server() as bench, bench.server.client() as client:
        peer = CovePeer(client, bench.server.sandbox_pid)
        session = peer.create()
        try:
            cgroup = memory_cgroup(peer.init_pid(session))
            time.sleep(3)  # fresh: the agent started with the sandbox is still there
            states["fresh"] = {"cgroup": cgroup_stat(cgroup), "processes": processes_in(cgroup)}
            peer.settle([session])
            states["idle"] = {"cgroup": cgroup_stat(cgroup), "processes": processes_in(cgroup)}
            peer.run(session, "echo ok")
            time.sleep(1)
            states["after_command"] = {"cgroup": cgroup_stat(cgroup), "processes": processes_in(cgroup)}
            holder = parent(peer.init_pid(session))
            states["init_parent"] = {
                "pid": holder,
                "command": Path(f"/proc/{holder}/comm").read_text().strip(),
            }
        finally:
            peer.remove(session)
    BREAKDOWN.parent.mkdir(exist_ok=True)
    BREAKDOWN.write_text(json.dumps(states, indent=2) + "\n")
    print(json.dumps(states, indent=2))
    print(f"written to {BREAKDOWN}")


def usable(check: Callable[[], object], name: str, skipped: dict[str, str]) -> bool:
    try:
        check()
    except Exception as error:  # any reason a peer cannot run: shown, and the peer is left out
        skipped[name] = f"{type(error).__name__}: {error}".strip()[:300]
        print(f"skipped {name}: {skipped[name]}", file=sys.stderr)
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setup", action="store_true", help="install the peers (Debian packages) and stop")
    parser.add_argument("--creates", type=int, default=30)
    parser.add_argument("--round-trips", type=int, default=100)
    parser.add_argument("--idle", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--breakdown", action="store_true", help="the processes of one Cove session, idle and after a command"
    )
    parser.add_argument(
        "--no-peers", action="store_true", help="Cove alone (to compare two versions of Cove quickly)"
    )
    args = parser.parse_args()
    if args.setup:
        setup()
        return
    if args.breakdown:
        breakdown()
        return
    skipped: dict[str, str] = {}
    load_before = load_average()
    with bench_server(session_quota=args.idle + 10) as bench, bench.server.client() as client:
        WORK.mkdir(parents=True, exist_ok=True)
        tar_path = WORK / "linux_latest.tar"
        pack_rootfs(bench.server.data_dir / "images" / "linux_latest" / "rootfs", tar_path)
        peers: list[Peer] = [CovePeer(client, bench.server.sandbox_pid)]
        docker_cli = [DOCKER, "-H", f"unix://{DOCKER_SOCKET}"]
        with docker_daemon_or_none(skipped, wanted=not args.no_peers) as docker_up:
            if docker_up and usable(lambda: import_image(docker_cli, tar_path), "docker", skipped):
                api = DockerApiPeer()
                if usable(lambda: api.remove(api.create()), "docker-api", skipped):
                    peers.append(api)
                cli = CliPeer("docker-cli", docker_cli)
                if usable(lambda: cli.remove(cli.create()), "docker-cli", skipped):
                    peers.append(cli)
                try:
                    llm_sandbox: Peer = LlmSandboxPeer()
                except RuntimeError as error:
                    skipped["llm-sandbox"] = str(error)
                    print(f"skipped llm-sandbox: {error}", file=sys.stderr)
                else:
                    if usable(lambda: llm_sandbox.remove(llm_sandbox.create()), "llm-sandbox", skipped):
                        peers.append(llm_sandbox)
                    else:
                        llm_sandbox.close()
            podman = CliPeer("podman-cli", [PODMAN], PODMAN_LIMITS, ("--time", "0"))
            if not args.no_peers:
                remove_leftovers(podman)
            if (
                not args.no_peers
                and usable(lambda: import_image([PODMAN], tar_path), "podman-cli", skipped)
                and usable(lambda: podman.remove(podman.create()), "podman-cli", skipped)
            ):
                peers.append(podman)
            tar_path.unlink()
            runs = []
            for number in range(args.repeats):
                print(
                    f"run {number + 1} of {args.repeats}: {', '.join(peer.name for peer in peers)}",
                    flush=True,
                )
                runs.append(one_run(peers, args))
            for peer in peers:
                peer.close()
            found_versions = versions()
    medians = {peer.name: median_of_runs(runs, peer.name) for peer in peers}
    figures = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": vars(args),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "pytest_processes_beside": pytest_process_count(),
        "versions": found_versions,
        "skipped": skipped,
        "medians": medians,
        "runs": runs,
    }
    results = RESULTS.with_name("peers_cove_only.json") if args.no_peers else RESULTS
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps(figures, indent=2) + "\n")
    print_table(medians)
    print(f"load average before {load_before}, after {figures['load_average_after']}")
    print(f"written to {results}")


@contextmanager
def docker_daemon_or_none(skipped: dict[str, str], wanted: bool) -> Iterator[bool]:
    if not wanted:
        yield False
        return
    try:
        daemon = docker_daemon()
        daemon.__enter__()
    except Exception as error:
        for name in ("docker-api", "docker-cli"):
            skipped[name] = str(error)
            print(f"skipped {name}: {error}", file=sys.stderr)
        yield False
        return
    try:
        yield True
    finally:
        daemon.__exit__(None, None, None)


def versions() -> dict[str, str]:
    found = {}
    for name, command in (
        ("runc", ["runc", "--version"]),
        ("docker", [DOCKER, "-H", f"unix://{DOCKER_SOCKET}", "version", "--format", "{{.Server.Version}}"]),
        ("podman", [PODMAN, "--version"]),
        ("kernel", ["uname", "-r"]),
    ):
        with suppress(OSError):
            done = subprocess.run(command, capture_output=True, text=True)
            found[name] = (done.stdout or done.stderr).splitlines()[0] if (done.stdout or done.stderr) else ""
    return found


if __name__ == "__main__":
    main()

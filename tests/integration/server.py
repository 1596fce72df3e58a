"""A real Cove server in a child process, on a free loopback port, with its own data directory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from cove import AgentBay, Config, CreateSessionParams, Session
from cove.sandbox.cgroups import hierarchy_roots
from cove.sandbox.egress_rules import chain_key, interface_group, table_name
from cove.sandbox.mounts import mount_points_under
from cove.sandbox.runtime import PREPARED_FILE, PREPARED_READY
from tests.network import testnet

KEY_A = "test-key-tenant-a"
KEY_B = "test-key-tenant-b"
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class CoveServer:
    """Starts `python -m cove serve`; keeps data across restarts, like a real deployment."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.settings = {
            "api_keys": f"{KEY_A},{KEY_B}",
            "link_port": free_port(),
            # Sessions reach the test hosts only, and resolve names with their DNS server.
            "egress_allow": testnet.SUBNET,
            "dns_upstream": testnet.DNS_ADDRESS,
            **settings,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"{data_dir.name}-server.log"
        self.verify: bool | str = True
        """What clients trust when the server serves HTTPS (`tls_cert_file`): a CA bundle's path."""

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.get("tls_cert_file") else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def link_url(self) -> str:
        """Where links are served: a listener, and so an origin, apart from the API's."""
        return f"http://127.0.0.1:{self.settings['link_port']}"

    def start(self) -> None:
        env = dict(os.environ)
        env.update({f"COVE_{k.upper()}": str(v) for k, v in self.settings.items()})
        command = [sys.executable, "-m", "cove", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--log-level", "warning"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1, verify=self.trust()).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start in {START_TIMEOUT_S}s: {self.log.read_text()}")

    def trust(self) -> bool | ssl.SSLContext:
        """httpx's `verify` for this server: the default, or a context trusting `verify`'s CAs."""
        return ssl.create_default_context(cafile=self.verify) if isinstance(self.verify, str) else self.verify

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=60)
        self.process = None

    def remove_sandboxes(self) -> None:
        """What a test leaves running goes: containers first (their network interfaces go with
        them), then their overlay mounts and the sessions' filesystem (a loop mount: its loop
        device goes with it), and the server's nftables table."""
        for session_id in self.runc("list", "-q").stdout.split():
            self.runc("delete", "--force", session_id)
        for session_id in self.gvisor_containers():
            self.runsc("delete", "--force", session_id)
        unmount_all(self.data_dir)
        # The server keeps its rules and cgroups when it stops, for sessions that outlive it; these
        # are gone.
        instance_file = self.data_dir / "instance_id"
        if instance_file.exists():
            instance = instance_file.read_text().strip()
            subprocess.run(
                ["nft", "delete", "table", "inet", table_name(instance)], capture_output=True, check=False
            )
            for root in hierarchy_roots():
                remove_cgroup_tree(root / "cove" / instance)

    def client(self, key: str = KEY_A) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=120, verify=self.trust()
        )

    def runc(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """runc against this server's containers, as an operator would use it."""
        return subprocess.run(
            ["runc", "--root", str(self.data_dir / "runc"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def runsc(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """runsc against this server's gvisor sandboxes."""
        return subprocess.run(
            ["runsc", "--root", str(self.data_dir / "runsc"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def gvisor_containers(self) -> set[str]:
        if shutil.which("runsc") is None or not (self.data_dir / "runsc").is_dir():
            return set()
        return set(self.runsc("list", "-quiet").stdout.split())

    def gvisor_sandbox_goes(self, session_id: str, within_s: float = 30) -> bool:
        """Whether a session's gvisor sandbox is gone within `within_s`: a pause answers once the
        image is complete, and deletes the stopped sandbox in the background."""
        deadline = time.monotonic() + within_s
        while session_id in self.gvisor_containers():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def release_agent_sockets(self, session_id: str, within_s: float = 15) -> None:
        """Do what a gvisor pause or snapshot does first, with no server to go on: have the sandbox's
        init let go of the host's sockets (SIGUSR1), and wait until its socket is gone."""
        assert self.runsc("kill", session_id, "USR1").returncode == 0
        socket_path = self.data_dir / "sessions" / session_id / "run" / "agent.sock"
        deadline = time.monotonic() + within_s
        while socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def sandbox(self, session_id: str, script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a shell script inside a session's sandbox, as its user."""
        if session_id in self.gvisor_containers():
            return self.runsc("exec", "--user", "1000:1000", session_id, "sh", "-c", script, timeout=timeout)
        return self.runc("exec", session_id, "sh", "-c", script, timeout=timeout)

    def sandbox_pid(self, session_id: str) -> int:
        pid: int = json.loads(self.runc("state", session_id).stdout)["pid"]
        return pid

    def containers(self) -> set[str]:
        """Every sandbox of this server: runc's and runsc's."""
        result = self.runc("list", "-q")
        return set(result.stdout.split()) | self.gvisor_containers()

    def cgroup_dirs(self) -> list[Path]:
        """Every cgroup directory this server's sessions have, in every hierarchy."""
        instance = (self.data_dir / "instance_id").read_text().strip()
        return sorted(
            child
            for root in hierarchy_roots()
            if (root / "cove" / instance).is_dir()
            for child in (root / "cove" / instance).iterdir()
            if child.is_dir()
        )

    def prepared(self, ready_only: bool = False) -> set[str]:
        """The warm pool's sandboxes not yet taken by a session (with `ready_only`, those whose
        agent has answered: the ones a create can take)."""
        sessions = self.data_dir / "sessions"
        found = set()
        for marker in sessions.glob(f"*/{PREPARED_FILE}") if sessions.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):
                if not ready_only or marker.read_text() == PREPARED_READY:
                    found.add(marker.parent.name)
        return found

    def leftovers(self) -> dict[str, list[str]]:
        """What this server's sessions hold on the host, but for prepared (warm pool) sandboxes."""
        prepared = self.prepared()
        sessions = self.data_dir / "sessions"
        return {
            "containers": sorted(self.containers() - prepared),
            "mounts": [m for m in self.mounts() if Path(m).parent.name not in prepared],
            "cgroups": [str(p) for p in self.cgroup_dirs() if p.name not in prepared],
            "folders": sorted(p.name for p in sessions.iterdir() if p.is_dir() and p.name not in prepared),
            "interfaces": [i for i in self.interfaces() if i[2:] not in {p[-13:] for p in prepared}],
            "rules": [c for c in self.session_chains() if c[2:] not in {chain_key(p) for p in prepared}],
        }

    def interfaces(self) -> list[str]:
        """The host ends of this server's sessions' network interfaces."""
        group = str(interface_group((self.data_dir / "instance_id").read_text().strip()))
        return sorted(
            link.name
            for link in Path("/sys/class/net").iterdir()
            if link.name.startswith("cv") and (link / "netdev_group").read_text().strip() == group
        )

    def session_chains(self) -> list[str]:
        """The per-session chains in this server's nftables table (s_<session>, ...)."""
        table = table_name((self.data_dir / "instance_id").read_text().strip())
        listed = subprocess.run(["nft", "list", "chains", "inet", table], capture_output=True, text=True)
        names = [line.split()[1] for line in listed.stdout.splitlines() if line.strip().startswith("chain ")]
        return sorted(name for name in names if name[:2] in ("s_", "d_", "r_"))

    def mounts(self) -> list[str]:
        prefix = str(self.data_dir / "sessions") + "/"
        return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if prefix in line]


NOTHING_LEFT: dict[str, list[str]] = {
    "containers": [],
    "mounts": [],
    "cgroups": [],
    "folders": [],
    "interfaces": [],
    "rules": [],
}
"""`CoveServer.leftovers()` of a server whose sessions are all gone."""


def unmount_all(root: Path) -> None:
    """Unmount everything under `root`, deepest first, so that the folder can be removed."""
    for point in mount_points_under(root):
        subprocess.run(["umount", "-l", str(point)], check=False)


def remove_data(root: Path) -> None:
    """Remove a test's scratch folder, and first what servers mounted in it (even those that failed
    to start: the sessions' filesystem is mounted early)."""
    unmount_all(root)
    shutil.rmtree(root, ignore_errors=True)


@contextmanager
def running_server(data_dir: Path, **settings: Any) -> Iterator[CoveServer]:
    """A started server that is stopped, and whose sessions are all removed, at the end."""
    server = CoveServer(data_dir, **settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.remove_sandboxes()


def remove_cgroup_tree(top: Path) -> None:
    """Remove a cgroup folder and the ones below it, deepest first; any still in use stays."""
    if not top.is_dir():
        return
    for folder, _, _ in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


@contextmanager
def scratch_server(**settings: Any) -> Iterator[CoveServer]:
    """A started server of its own, in a scratch folder sandboxes can reach, removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="cove-test-", dir="/var/tmp"))
    root.chmod(0o711)
    try:
        with running_server(root / "data", **settings) as server:
            yield server
    finally:
        remove_data(root)


@contextmanager
def sdk_session(server: CoveServer, image_id: str, runtime: str | None = None) -> Iterator[Session]:
    """A session of `image_id` on `runtime` (None: the server's default) made through Cove's SDK
    with KEY_A, deleted afterwards, pass or fail."""
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        created = agent_bay.create(CreateSessionParams(image_id=image_id, runtime=runtime))
        assert created.session is not None, created.error_message
        try:
            yield created.session
        finally:
            created.session.delete()

"""The sandbox runtime: one container per session, over an overlay of a shared image, run by runc
or by gVisor's runsc (the session's `runtime`: "runc" or "gvisor"; gvisor.py has what differs).

Layout under DATA_DIR:
    runc/                    runc's own state (`runc --root`)
    runsc/                   runsc's own state, for gvisor sessions
    agent/                   a tmpfs with a read-only copy of the tool agent (agent_files.py), which
                             every sandbox binds at /.cove/agent
    sessions/                a btrfs filesystem (session_volumes.py), from sessions.btrfs if the
                             data directory is not on btrfs
    sessions/<id>/           a subvolume with the session's disk limit: config.json, upper/ + work/
                             (the session's writable layer), rootfs/ (the overlay mount point),
                             runc.log and init.log, network.json (session_network.py), and run/:
                             the sandbox's /.cove/run, where its tool agent listens (agent.sock)
                             and reads what the host tells it (limits.json, screen.json, env.json);
                             runtime: "runc" or "gvisor"; for gvisor also netns
    paused/<id>/             a paused gvisor sandbox's checkpoint/ (gvisor.py): on the data
                             directory's own filesystem, not in the session's subvolume, so that
                             an image as large as the session's memory neither counts against its
                             disk limit nor is written and flushed through the loop device
    snapshots/<tenant>/<id>/ a snapshot of a gvisor session (SessionManager.snapshot): image/ (its
                             checkpoint), upper/ (its writable layer), source.json
Cgroups live at /cove/<instance>/<id> in every hierarchy, so two servers on one host never touch
each other's sessions. Containers outlive the server process: runc detaches them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cove.errors import CapacityExceeded, InvalidArgument, InvalidState, RuntimeUnavailable, SandboxError
from cove.sandbox import cgroups, gvisor
from cove.sandbox.accounting import Usage, read_usage, stopped_usage
from cove.sandbox.agent_client import AgentClient
from cove.sandbox.agent_files import INIT_NAME, publish_agent
from cove.sandbox.identities import DEFAULT_IDENTITY_REGISTRY, SessionIdentities
from cove.sandbox.images import SANDBOX_HOME, SANDBOX_UID, Image
from cove.sandbox.mounts import mount_overlay, mount_points_under, unmount
from cove.sandbox.network_policy import EGRESS, NetworkPolicy, NetworkState
from cove.sandbox.oci_spec import CPU_PERIOD_US, IdMapping, Limits, Mount, build_spec
from cove.sandbox.process_runner import run_bounded
from cove.sandbox.screen import DEFAULT_SCREEN, Screen
from cove.sandbox.session_network import NetworkSettings, SessionNetworks
from cove.sandbox.session_volumes import SessionVolumes
from cove.sandbox.user_namespace import cap_session, raise_host_caps

log = logging.getLogger(__name__)
AGENT_DIR = Path(__file__).resolve().parent.parent / "agent"
AGENT_MOUNT = "/.cove/agent"
AGENT_RUN_MOUNT = "/.cove/run"
AGENT_LIMITS_FILE = "limits.json"
AGENT_SCREEN_FILE = "screen.json"
AGENT_ENV_FILE = "env.json"
CGROUP_MOUNT = "/.cove/cgroup"
"""Where the sandbox sees its delegated cgroup (cgroups.delegate), a cgroup per process tree."""
INIT_ARGS = [f"{AGENT_MOUNT}/{INIT_NAME}"]
ID_RANGE_SIZE = 65536
RUNC_TIMEOUT_S = 60
OUT_OF_ROOM = (
    "quota exceeded",
    "no space left",
    "resource temporarily unavailable",
    "cannot allocate memory",
)
"""How runc reports a host resource running out (errno texts), which is a 503, not Cove's fault."""
RUNC = "runc"
GVISOR = "gvisor"
RUNTIMES = (RUNC, GVISOR)
"""The runtimes a session may run on: runc (kernel namespaces) or gvisor (runsc, its own kernel)."""
RUNTIME_FILE = "runtime"
PREPARED_FILE = "prepared"
"""In the folder of a warm pool's sandbox that no session has taken yet (`prepare`); it holds
PREPARED_READY once the sandbox's agent has answered."""
PREPARED_READY = "ready\n"
WARM_UP_TIMEOUT_S = 30
"""How long a prepared sandbox's first tool call may take (its agent's start)."""
CHECKPOINT_TIMEOUT_S = 300
"""A checkpoint or restore moves the sandbox's whole memory: far longer than other runtime calls."""
SNAPSHOT_SOURCE_FILE = "source.json"
"""In a snapshot's folder: the host uid that owns its files, and its source's network policy."""
NO_KEYRING = ("--no-new-keyring",)
"""runc would give each sandbox a session keyring, charged to the kernel's key budget
(kernel.keys.maxkeys, 200 per user by default), which capped a host at about 200 sandboxes. Sandboxes
keep the server's keyring instead, which they cannot touch: seccomp refuses every keyring call."""


@dataclass(frozen=True)
class Engine:
    """The OCI runtime binary that runs a kind of sandbox, with its state folder and global options."""

    name: str
    binary: str
    state_dir: Path
    options: tuple[str, ...] = ()

    def command(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.state_dir), *self.options, *args]

    @property
    def available(self) -> bool:
        return shutil.which(self.binary) is not None


@dataclass(frozen=True)
class CleanupReport:
    """What a sweep for leftovers removed."""

    containers: list[str]
    mounts: list[str]
    cgroups: list[str]
    directories: list[str]
    interfaces: list[str]


def _instance_id(data_dir: Path) -> str:
    path = data_dir / "instance_id"
    if not path.exists():
        path.write_text(uuid.uuid4().hex[:12] + "\n")
    return path.read_text().strip()


def _runc_error(log: Path, fallback: str) -> str:
    """The last error runc wrote to its JSON log, which says far more than its exit code."""
    message = fallback
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("level") in ("error", "fatal"):
                message = entry.get("msg", message)
    return message


def _check_traversable(directory: Path) -> None:
    """The sandbox's mapped root must reach DATA_DIR/sessions to mount its root filesystem."""
    for parent in [directory, *directory.parents]:
        if not parent.stat().st_mode & 0o001:
            raise SandboxError(
                f"{parent} is not searchable by other users (mode {parent.stat().st_mode & 0o777:o}), "
                f"so sandboxes cannot reach their root filesystem under {directory}; "
                "choose another data directory or run 'chmod o+x' on it"
            )


class _Finishing(threading.Thread):
    """Work on a session's sandbox done in the background (RuncRuntime._finish_later)."""

    def __init__(self, session_id: str, work: Callable[[], bool]) -> None:
        super().__init__(name=f"cove-finish-{session_id}")
        self.work = work
        self.went_well = False

    def run(self) -> None:
        self.went_well = self.work()


class RuncRuntime:
    """Creates, inspects and destroys session sandboxes with runc, or with runsc for gvisor sessions."""

    def __init__(
        self,
        data_dir: Path,
        runc: str = "runc",
        id_start: int = 100000,
        sandbox_env: dict[str, str] | None = None,
        identity_registry: Path = DEFAULT_IDENTITY_REGISTRY,
        capacity: int = 2000,
        sessions_volume_mb: int = 0,
        network: NetworkSettings | None = None,
        runsc: str = "runsc",
    ) -> None:
        self.sessions_dir = data_dir / "sessions"
        self.paused_dir = data_dir / "paused"
        self.state_dir = data_dir / "runc"
        self.engines = {
            RUNC: Engine(RUNC, runc, self.state_dir),
            GVISOR: Engine(GVISOR, runsc, data_dir / "runsc", gvisor.RUNSC_OPTIONS),
        }
        self._runtimes: dict[str, str] = {}
        """Each session's runtime, as its folder records it (read once)."""
        self._finishing: dict[str, _Finishing] = {}
        """What the host finishes in the background after a gvisor pause, resume or fork (_finish_later)."""
        self.volumes = SessionVolumes(self.sessions_dir, data_dir / "sessions.btrfs", sessions_volume_mb)
        for private in (*(e.state_dir for e in self.engines.values()), self.paused_dir):
            private.mkdir(parents=True, exist_ok=True)
            private.chmod(0o700)
        self.sessions_dir.chmod(0o711)
        data_dir.chmod(0o711)
        _check_traversable(self.sessions_dir)
        self.runc = runc
        self.sandbox_env = sandbox_env or {}
        self.id_start = id_start
        self.capacity = capacity
        self.identities = SessionIdentities(identity_registry)
        self.cgroup_parent = f"/cove/{_instance_id(data_dir)}"
        if shutil.which(runc) is None:
            raise SandboxError(f"{runc!r} not found; install it (scripts/install.sh does) or set COVE_RUNC")
        self.agent_dir = data_dir / "agent"
        publish_agent(AGENT_DIR, self.agent_dir)
        self._keep_identities()
        for directory in self.sessions_dir.iterdir():
            gvisor.move_old_images(directory, self.images_dir(directory.name))
        raise_host_caps(capacity)
        self.network_settings = network or NetworkSettings()
        self.networks = SessionNetworks(
            self.network_settings, _instance_id(data_dir), identity_registry.parent / "addresses"
        )
        self.networks.start(sorted(self.sessions_dir.iterdir()))

    def close(self) -> None:
        """Stop the sessions' DNS forwarder and egress proxy (sandboxes and their rules stay)."""
        self.networks.close()

    def _keep_identities(self) -> None:
        """Claim again the identities of this data directory's sandboxes (the registry may be new)."""
        for directory in self.sessions_dir.iterdir():
            mapping = self.id_mapping(directory.name)
            if mapping is not None and not self.identities.keep(mapping.user_host_id, directory):
                log.warning("the host uid of %s is claimed by another sandbox too", directory.name)

    def id_mapping(self, session_id: str) -> IdMapping | None:
        """The ID mapping of a session's sandbox, as its config.json has it (None before it exists)."""
        try:
            spec = json.loads((self.session_dir(session_id) / "config.json").read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        return IdMapping.from_spec(spec["linux"]["uidMappings"])

    def check_available(self, runtime: str) -> None:
        """Refuse a runtime this host cannot run (runsc not installed), saying how to install it."""
        engine = self.engines[runtime]
        if not engine.available:
            raise RuntimeUnavailable(gvisor.missing_message(engine.binary))

    def runtime_of(self, session_id: str) -> str:
        """The runtime a session's sandbox runs on (runc for a folder that records none)."""
        known = self._runtimes.get(session_id)
        if known is None:
            try:
                known = (self.session_dir(session_id) / RUNTIME_FILE).read_text().strip()
            except (FileNotFoundError, NotADirectoryError):
                return RUNC
            if known not in RUNTIMES:
                known = RUNC
            self._runtimes[session_id] = known
        return known

    def _engine(self, session_id: str) -> Engine:
        return self.engines[self.runtime_of(session_id)]

    def _runc(
        self, *args: str, timeout: float = RUNC_TIMEOUT_S, engine: Engine | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A runtime command (`args`: the command, its options, the session's id, the rest), run by
        the session's runtime, or by `engine`."""
        if engine is None:
            session_id = next(arg for arg in args[1:] if not arg.startswith("-"))
            engine = self._engine(session_id)
        return run_bounded(engine.command(*args), timeout)

    def session_dir(self, session_id: str) -> Path:
        return self.sessions_dir / session_id

    def images_dir(self, session_id: str) -> Path:
        """Where a pause of the gvisor session `session_id` writes its checkpoint (gvisor.py)."""
        return self.paused_dir / session_id

    def agent_run_dir(self, session_id: str) -> Path:
        """The host side of the sandbox's /.cove/run: writable by the sandbox, so never trusted."""
        return self.session_dir(session_id) / "run"

    def create(
        self,
        session_id: str,
        image: Image,
        limits: Limits,
        network: NetworkPolicy,
        screen: Screen = DEFAULT_SCREEN,
        env: Mapping[str, str] | None = None,
        runtime: str = RUNC,
    ) -> None:
        """Make and start the session's container (`runc run`); on failure nothing is left."""
        self.check_available(runtime)
        with self._cleaned_up_on_failure(session_id, "create"):
            self._make_bundle(session_id, image, limits, runtime)
            self._tell_agent_screen(session_id, screen)
            if env:
                self._write_for_agent(session_id, AGENT_ENV_FILE, dict(env))
            if runtime == GVISOR:
                # runsc reads the sandbox's interfaces when it starts: they must be there before.
                self._set_network(session_id, network, starting=True)
                self._runc_logged(session_id, "run", "--detach", *self._new_container(session_id), session_id)
                return
            self._runc_logged(session_id, "run", "--detach", *self._new_container(session_id), session_id)
            self._start_agent_early(session_id)
            self._cap_user_namespace(session_id, alongside=lambda: self.set_network(session_id, network))

    def _start_agent_early(self, session_id: str) -> None:
        """Have the sandbox's init start its tool agent now rather than on the session's first call
        (a connection, closed at once, is what starts it): the agent's start then overlaps the rest
        of the create. In the background, as init may not listen yet; a failure is the first
        call's to report."""
        client = AgentClient(self.agent_run_dir(session_id), session_id)

        def knock() -> None:
            with contextlib.suppress(Exception):
                client.connect().close()

        threading.Thread(target=knock, name="cove-agent-start", daemon=True).start()

    def prepare(self, session_id: str, image: Image, limits: Limits) -> None:
        """A sandbox ready to answer before any session has it: created, started, and its tool
        agent running with the shell tool loaded (by one `true` through it), so a create that takes
        it only sets what the session asks (`start`) and its first call finds the agent waiting.

        A warm pool keeps a few like this. Its screen, environment and limits are the defaults
        until `start` says otherwise: the agent reads those files when it starts a process or the
        display, never before. Its agent leaves after its idle time like any other (a later first
        call then starts it again), so an unused prepared sandbox is back to one small process.
        Its session folder holds PREPARED_FILE until `start`.
        """
        with self._cleaned_up_on_failure(session_id, "create"):
            self._make_bundle(session_id, image, limits)
            marker = self.session_dir(session_id) / PREPARED_FILE
            marker.touch()
            self._tell_agent_screen(session_id, DEFAULT_SCREEN)
            self._runc_logged(session_id, "create", *self._new_container(session_id), session_id)
            directory, pid = self.session_dir(session_id), self._init_pid(session_id)
            if self.network_settings.default_mode == EGRESS:
                netns = f"/proc/{pid}/ns/net"
                self._cap_user_namespace(
                    session_id, alongside=lambda: self.networks.attach(session_id, directory, netns)
                )
            else:
                self._cap_user_namespace(session_id)
            self._runc_logged(session_id, "start", session_id)
            AgentClient(self.agent_run_dir(session_id), session_id).call(
                "tools/call", {"name": "shell", "arguments": {"command": "true"}}, timeout_s=WARM_UP_TIMEOUT_S
            )
            marker.write_text(PREPARED_READY)

    def _new_container(self, session_id: str) -> list[str]:
        """The options of `runc create` and `runc run` for a session's bundle."""
        directory = self.session_dir(session_id)
        keyring = NO_KEYRING if self.runtime_of(session_id) == RUNC else ()
        return [*keyring, "--pid-file", str(directory / "init.pid"), "--bundle", str(directory)]

    def _init_pid(self, session_id: str) -> int:
        return int((self.session_dir(session_id) / "init.pid").read_text())

    def _cap_user_namespace(self, session_id: str, alongside: Callable[[], object] | None = None) -> None:
        """Cap the sandbox's user namespace, and meanwhile do `alongside` (its network): both wait
        on host commands, so a create pays only for the longer."""
        if alongside is None:
            cap_session(self._init_pid(session_id), run_bounded)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="cove-cap") as pool:
            capped = pool.submit(cap_session, self._init_pid(session_id), run_bounded)
            try:
                alongside()
            finally:
                capped.result()

    def set_network(self, session_id: str, policy: NetworkPolicy) -> None:
        """Put a session's network policy in force, from its next connection on."""
        self._set_network(session_id, policy)

    def _set_network(self, session_id: str, policy: NetworkPolicy, starting: bool = False) -> None:
        directory = self.session_dir(session_id)
        on_gvisor = self.runtime_of(session_id) == GVISOR
        if not on_gvisor:
            netns = f"/proc/{self._init_pid(session_id)}/ns/net"
        else:
            netns = str(directory / gvisor.NETNS_FILE)
            if not starting and policy.mode == EGRESS and self.networks.attachment(directory) is None:
                raise InvalidArgument(
                    "network: a gvisor session's network stack takes its interface when the session "
                    "starts, so a session created without network cannot be given one; create a new "
                    "session with network egress"
                )
        self.networks.apply(session_id, directory, netns, policy, keep_interface=on_gvisor)

    def network_state(self, session_id: str) -> NetworkState:
        return self.networks.state(self.session_dir(session_id))

    def start(
        self,
        session_id: str,
        network: NetworkPolicy,
        limits: Limits | None = None,
        screen: Screen | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Give a prepared sandbox (already running) to a session: its network policy, and its
        limits, screen size and environment variables if they differ from the defaults."""
        with self._cleaned_up_on_failure(session_id, "start"):
            (self.session_dir(session_id) / PREPARED_FILE).unlink(missing_ok=True)
            self.set_network(session_id, network)
            if screen is not None:
                self._tell_agent_screen(session_id, screen)
            if env:
                self._write_for_agent(session_id, AGENT_ENV_FILE, dict(env))
            if limits is not None:
                memory = str(limits.memory_mb * 1024 * 1024)
                quota = str(int(limits.cpus * CPU_PERIOD_US))
                self._runc_logged(
                    session_id,
                    *(
                        "update",
                        "--memory",
                        memory,
                        "--memory-swap",
                        memory,
                        "--pids-limit",
                        str(limits.pids),
                    ),
                    *("--cpu-quota", quota, "--cpu-period", str(CPU_PERIOD_US), session_id),
                )
                self.volumes.set_limit(session_id, limits.disk_mb)
                self._tell_agent(session_id, limits)

    @contextlib.contextmanager
    def _cleaned_up_on_failure(self, session_id: str, action: str) -> Iterator[None]:
        try:
            yield
        except BaseException as exc:
            self.destroy(session_id)
            if isinstance(exc, OSError | subprocess.SubprocessError):
                raise SandboxError(f"could not {action} the sandbox of {session_id}: {exc}") from exc
            raise

    def _make_bundle(self, session_id: str, image: Image, limits: Limits, runtime: str = RUNC) -> None:
        """The session's writable layer, its overlay root filesystem and its config.json."""
        directory = self.session_dir(session_id)
        upper, work, rootfs = directory / "upper", directory / "work", directory / "rootfs"
        run = self.agent_run_dir(session_id)
        self.volumes.create(session_id, limits.disk_mb)
        (directory / RUNTIME_FILE).write_text(runtime + "\n")
        self._runtimes[session_id] = runtime
        for path in (upper, work, rootfs, run):
            path.mkdir()
        if len(os.listdir(self.sessions_dir)) > self.capacity:
            raise CapacityExceeded(
                f"this host already runs {self.capacity} sandboxes, its limit (COVE_MAX_SANDBOXES); "
                "delete sessions or try again later"
            )
        id_mapping = IdMapping(self.id_start, ID_RANGE_SIZE, SANDBOX_UID, self.identities.claim(directory))
        sandbox_user = id_mapping.to_host(SANDBOX_UID)
        os.chown(run, sandbox_user, sandbox_user)
        run.chmod(0o700)
        self._tell_agent(session_id, limits)
        binds = [
            Mount(source=str(self.agent_dir), destination=AGENT_MOUNT),
            Mount(source=str(run), destination=AGENT_RUN_MOUNT, read_only=False),
        ]
        # gVisor's kernel has cgroups of its own: a host cgroup bound in would mean nothing there.
        user_cgroup = (
            cgroups.delegate(f"{self.cgroup_parent}/{session_id}", sandbox_user) if runtime == RUNC else None
        )
        if user_cgroup is not None:
            binds.append(
                Mount(source=str(user_cgroup), destination=CGROUP_MOUNT, read_only=False, executable=False)
            )
        # The overlay's root takes its owner from the upper layer: make it the sandbox's root.
        sandbox_root = id_mapping.to_host(0)
        os.chown(upper, sandbox_root, sandbox_root)
        # The image's home belongs to no session's user: the session's own layer holds the folder.
        home = upper / SANDBOX_HOME.lstrip("/")
        home.mkdir(parents=True)
        os.chown(home.parent, sandbox_root, sandbox_root)
        os.chown(home, sandbox_user, sandbox_user)
        home.chmod(0o750)
        # Names resolve through the gateway (session_network.py), in the layer: no mount to show.
        etc = upper / "etc"
        resolv_conf = etc / "resolv.conf"
        etc.mkdir()
        resolv_conf.write_text(f"nameserver {self.networks.gateway}\noptions timeout:2 attempts:2\n")
        for path, mode in ((etc, 0o755), (resolv_conf, 0o644)):
            os.chown(path, sandbox_root, sandbox_root)
            path.chmod(mode)
        mount_overlay(image.rootfs, upper, work, rootfs)
        spec = build_spec(
            hostname=session_id,
            rootfs=str(rootfs),
            args=INIT_ARGS,
            user_uid=SANDBOX_UID,
            home=SANDBOX_HOME,
            id_mapping=id_mapping,
            limits=limits,
            cgroups_path=f"{self.cgroup_parent}/{session_id}",
            binds=binds,
            env=self.sandbox_env,
        )
        if runtime == GVISOR:
            netns = gvisor.make_network_namespace(directory)
            for namespace in spec["linux"]["namespaces"]:
                if namespace["type"] == "network":
                    namespace["path"] = netns
        (directory / "config.json").write_text(json.dumps(spec))

    def _tell_agent(self, session_id: str, limits: Limits) -> None:
        """Write the limits the agent keeps its reserve of processes by into its run folder
        (agent/process_trees.py reads them)."""
        self._write_for_agent(session_id, AGENT_LIMITS_FILE, {"pids": limits.pids})

    def _tell_agent_screen(self, session_id: str, screen: Screen) -> None:
        """Write the screen size the agent starts the session's display at (agent/display.py)."""
        self._write_for_agent(session_id, AGENT_SCREEN_FILE, {"width": screen.width, "height": screen.height})

    def _write_for_agent(self, session_id: str, name: str, content: Mapping[str, int | str]) -> None:
        """Write a JSON file for the agent into its run folder (agent/host_files.py reads them).

        Written by root before anything of the session runs in the sandbox (with the bundle, and
        again when a prepared sandbox is given to a session with other settings), so the agent
        trusts only a file the session user cannot have written. The folder is the sandbox's: the
        file is made new, never opened where a link may have been planted, and renamed into place.
        """
        run = self.agent_run_dir(session_id)
        temporary = run / f".{name}.{uuid.uuid4().hex}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with open(descriptor, "w") as file:
            json.dump(content, file)
        os.replace(temporary, run / name)

    def _runc_logged(self, session_id: str, *args: str, timeout: float = RUNC_TIMEOUT_S) -> None:
        """A runc command whose errors go to the session's JSON log, raised as SandboxError."""
        directory = self.session_dir(session_id)
        log = directory / "runc.log"
        engine = self._engine(session_id)
        with open(directory / "init.log", "ab") as init_log:
            # The container inherits these descriptors, so they must not be pipes we wait on.
            logging = ["--log", str(log), "--log-format", "json"]
            argv = [engine.binary, "--root", str(engine.state_dir), *engine.options, *logging, *args]
            result = run_bounded(
                gvisor.starting(argv) if engine.name == GVISOR and args[0] in ("run", "restore") else argv,
                timeout,
                stdout=init_log,
                stderr=init_log,
            )
        if result.returncode != 0:
            message = _runc_error(log, f"{engine.binary} {args[0]} failed")
            verb = {"pause": "pause", "resume": "resume", "checkpoint": "pause", "restore": "resume"}.get(
                args[0], "start"
            )
            if any(words in message.lower() for words in OUT_OF_ROOM):
                raise CapacityExceeded(
                    f"this host has no room for another sandbox now ({message}); try again later"
                )
            raise SandboxError(f"could not {verb} the sandbox of {session_id}: {message}")

    def pause(self, session_id: str) -> None:
        """runc: freeze every process of the sandbox (cgroup freezer): no CPU, memory and files kept.
        gvisor: checkpoint the sandbox into its folder and stop it, which gives its memory back."""
        if self.runtime_of(session_id) == GVISOR:
            self._checkpoint(session_id)
        else:
            self._runc_logged(session_id, "pause", session_id)

    def resume(self, session_id: str) -> None:
        if self.runtime_of(session_id) == GVISOR:
            self._restore(session_id)
        else:
            self._runc_logged(session_id, "resume", session_id)

    def _checkpoint(self, session_id: str) -> None:
        """Write the sandbox's image, complete, then stop the sandbox.

        The agent first lets go of the host's sockets; the sandbox is frozen, so nothing runs between
        the image and the stop; the image is written to checkpoint.partial and renamed to checkpoint
        only once flushed; the sandbox is stopped only after that. A server killed at any point
        leaves a running (or frozen) sandbox without a complete image, or a complete image: the
        session is running or paused, never lost.
        """
        self._finished(session_id)
        directory = self.images_dir(session_id)
        directory.mkdir(mode=0o700, exist_ok=True)
        gvisor.sync_folder(self.paused_dir)
        final, partial = directory / gvisor.CHECKPOINT, directory / gvisor.CHECKPOINT_PARTIAL
        if not final.is_dir():
            gvisor.remove(directory / gvisor.CHECKPOINT_RESTORING)  # a resume's leftover, restored
            gvisor.remove(partial)
            partial.mkdir(mode=0o700)
            try:
                self._release_host_sockets(session_id)
                self._freeze(session_id)
                self._runc_logged(
                    session_id,
                    *("checkpoint", "--leave-running", *gvisor.CHECKPOINT_OPTIONS),
                    *("--image-path", str(partial), session_id),
                    timeout=CHECKPOINT_TIMEOUT_S,
                )
                gvisor.sync_tree(partial)
            except BaseException as error:
                gvisor.remove(partial)
                self._thaw(session_id)
                if isinstance(error, SandboxError) and gvisor.HOST_SOCKET_REFUSAL in self._log_tail(
                    session_id
                ):
                    raise InvalidState(
                        f"session {session_id} cannot be paused now: a program in it listens on a Unix "
                        "socket in its files, which gVisor cannot checkpoint; it runs on as it was. "
                        "Stop that program (or move its socket to an abstract name) and pause again"
                    ) from error
                raise
            os.rename(partial, final)
            gvisor.sync_folder(directory)
        self._finish_later(session_id, lambda: self._ran("delete", "--force", session_id))

    def _freeze(self, session_id: str) -> None:
        """Freeze a running sandbox; one a cut-off checkpoint left frozen stays so."""
        try:
            self._runc_logged(session_id, "pause", session_id)
        except SandboxError:
            if self._container_status(session_id) != "paused":
                raise

    def _ran(self, *args: str) -> bool:
        """Run a runtime command (as _runc) whose failure is only logged: whether it went well."""
        result = self._runc(*args)
        if result.returncode != 0:
            log.warning("runtime command %s failed: %s", " ".join(args), result.stderr.strip()[-500:])
        return result.returncode == 0

    def _finish_later(self, session_id: str, work: Callable[[], bool]) -> None:
        """Run `work` in the background, for what need not hold up the answer to a pause, a resume
        or a fork: deleting a checkpointed sandbox (its memory goes back as soon as runsc kills it,
        but runsc then waits until the host's init has reaped its process, which some inits do
        only after a second or two); telling a restored sandbox's init to listen again (the tool
        agent's client waits for its socket); removing the image a sandbox was restored from;
        thawing a fork's source. Whatever next works on the session's sandbox or images waits for
        it first (_finished)."""
        self._finished(session_id)
        thread = _Finishing(session_id, work)
        self._finishing[session_id] = thread
        thread.start()

    def _finished(self, session_id: str) -> bool:
        """Wait for what _finish_later started for the session, if it is under way: whether it
        went well (True if nothing was)."""
        thread = self._finishing.pop(session_id, None)
        if thread is None:
            return True
        thread.join()
        return thread.went_well

    def _release_host_sockets(self, session_id: str) -> None:
        """Have the agent let go of the host's sockets (agent/init.c): done when its socket is gone.

        init listens only once it handles the signal, so a sandbox just started is waited for."""
        socket_path = self.agent_run_dir(session_id) / "agent.sock"
        deadline = time.monotonic() + gvisor.RELEASE_WAIT_S
        while not os.path.lexists(socket_path) and time.monotonic() < deadline:
            time.sleep(0.01)
        self._runc_logged(session_id, "kill", session_id, gvisor.SUSPEND_SIGNAL)
        deadline = time.monotonic() + gvisor.RELEASE_WAIT_S
        while os.path.lexists(socket_path):
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"could not pause the sandbox of {session_id}: its tool agent did not let go of its "
                    "connections in time; try again"
                )
            time.sleep(0.01)

    def settle_interrupted(self, session_id: str, recorded_running: bool = False) -> None:
        """At a server's start, finish what a pause or resume cut off left of a gvisor sandbox: a
        partial image goes; a sandbox whose complete image exists is stopped; a running one whose
        agent was asked to let go of its sockets listens again (init ignores the signal otherwise).
        A session recorded running whose sandbox is frozen (a fork or snapshot cut off) is thawed."""
        if self.runtime_of(session_id) != GVISOR:
            return
        directory = self.images_dir(session_id)
        gvisor.remove(directory / gvisor.CHECKPOINT_PARTIAL)
        status = self._container_status(session_id)
        if (directory / gvisor.CHECKPOINT).is_dir():
            if status is not None:
                self._runc("delete", "--force", session_id)
        elif status == "running":
            self._listen_again(session_id)
            gvisor.remove(directory / gvisor.CHECKPOINT_RESTORING)
        elif status == "paused" and recorded_running:
            self._thaw(session_id)

    def fork(self, source_id: str, session_ids: list[str], image: Image, limits: Limits) -> None:
        """New gvisor sandboxes `session_ids` restored from one checkpoint of the running `source_id`:
        the same processes, memory and files, each going on its own from then on.

        The source is frozen while its image is written and its writable layer copied (so the two
        agree), then runs on; every copy's files of the session user are given its own host uid;
        every new sandbox gets a network namespace, an interface and an address of its own, with the
        source's policy, and its own hostname. On failure nothing of any new sandbox is left.
        """
        if self.runtime_of(source_id) != GVISOR:
            raise InvalidArgument("only a gvisor session can be forked (docs/runtimes.md)")
        source = self.session_dir(source_id)
        old_mapping = self.id_mapping(source_id)
        attachment = self.networks.attachment(source)
        first = self.session_dir(session_ids[0])
        image_dir = self.images_dir(session_ids[0]) / gvisor.FORK_IMAGE
        try:
            for session_id in session_ids:
                with self._cleaned_up_on_failure(session_id, "fork"):
                    self._make_bundle(session_id, image, limits, GVISOR)
                    unmount(self.session_dir(session_id) / "rootfs")
                    shutil.rmtree(self.session_dir(session_id) / "upper")
            image_dir.parent.mkdir(mode=0o700, exist_ok=True)
            image_dir.mkdir(mode=0o700)
            self.write_image(source_id, image_dir, first / "upper")
            for session_id in session_ids[1:]:
                self._copy_layer(first / "upper", self.session_dir(session_id) / "upper")
            old_uid = old_mapping.user_host_id if old_mapping is not None else None
            for session_id in session_ids:
                policy = attachment.policy if attachment is not None else None
                self._start_restored(session_id, image, image_dir, old_uid, policy)
        except BaseException as exc:
            for session_id in session_ids:
                self.destroy(session_id)
            if isinstance(exc, OSError | subprocess.SubprocessError):
                raise SandboxError(f"could not fork the sandbox of {source_id}: {exc}") from exc
            raise
        gvisor.remove(image_dir)

    def snapshot(self, source_id: str, folder: Path) -> int:
        """Write a snapshot of the running gvisor sandbox `source_id` into `folder` (made here): its
        checkpoint in image/, its writable layer in upper/, and in source.json the host uid owning
        its files and its network policy. The sandbox runs on. Answers the snapshot's size in bytes;
        on failure nothing of `folder` is left."""
        if self.runtime_of(source_id) != GVISOR:
            raise InvalidArgument("only a gvisor session can be snapshotted (docs/runtimes.md)")
        mapping = self.id_mapping(source_id)
        attachment = self.networks.attachment(self.session_dir(source_id))
        folder.mkdir(mode=0o700, parents=True)
        try:
            (folder / "image").mkdir(mode=0o700)
            self.write_image(source_id, folder / "image", folder / "upper")
            source = {
                "uid": mapping.user_host_id if mapping is not None else None,
                "policy": attachment.policy.to_wire() if attachment is not None else None,
            }
            (folder / SNAPSHOT_SOURCE_FILE).write_text(json.dumps(source))
            gvisor.sync_tree(folder)
        except BaseException as exc:
            gvisor.remove(folder)
            if isinstance(exc, OSError | subprocess.SubprocessError):
                raise SandboxError(f"could not snapshot the sandbox of {source_id}: {exc}") from exc
            raise
        return gvisor.size_of(folder)

    def from_snapshot(self, folder: Path, session_id: str, image: Image, limits: Limits) -> None:
        """A new gvisor sandbox `session_id` restored from the snapshot in `folder`, which is only
        read: a failed restore leaves it as it was, and nothing of the new sandbox."""
        source = json.loads((folder / SNAPSHOT_SOURCE_FILE).read_text())
        policy = None if source["policy"] is None else NetworkPolicy.from_wire(source["policy"], EGRESS)
        self.check_available(GVISOR)
        with self._cleaned_up_on_failure(session_id, "restore a snapshot into"):
            self._make_bundle(session_id, image, limits, GVISOR)
            directory = self.session_dir(session_id)
            unmount(directory / "rootfs")
            shutil.rmtree(directory / "upper")
            self._copy_layer(folder / "upper", directory / "upper")
            self._start_restored(session_id, image, folder / "image", source["uid"], policy)

    def write_image(self, source_id: str, image_dir: Path, layer: Path) -> None:
        """Checkpoint the running gvisor sandbox `source_id` into `image_dir` and copy its writable
        layer to `layer` (not there yet), with the sandbox frozen meanwhile so that the two agree;
        it then runs on."""
        self._finished(source_id)
        try:
            self._release_host_sockets(source_id)
            self._runc_logged(source_id, "pause", source_id)
            self._runc_logged(
                source_id,
                *("checkpoint", "--leave-running", *gvisor.CHECKPOINT_OPTIONS),
                *("--image-path", str(image_dir), source_id),
                timeout=CHECKPOINT_TIMEOUT_S,
            )
            self._copy_layer(self.session_dir(source_id) / "upper", layer)
        finally:
            self._finish_later(source_id, lambda: self._thaw(source_id))

    def _thaw(self, session_id: str) -> bool:
        """Thaw a sandbox frozen for a checkpoint and have it listen for the host again."""
        thawed = self._ran("resume", session_id)
        return self._listen_again(session_id) and thawed

    def _listen_again(self, session_id: str) -> bool:
        """Tell the init of a sandbox that was checkpointed or restored to listen for the host again."""
        return self._ran("kill", session_id, gvisor.RESUME_SIGNAL)

    def _copy_layer(self, source: Path, destination: Path) -> None:
        copied = run_bounded(
            ["cp", "-a", "--reflink=auto", str(source), str(destination)], CHECKPOINT_TIMEOUT_S
        )
        if copied.returncode != 0:
            raise SandboxError(f"could not copy the files of a sandbox: {copied.stderr.strip()}")

    def _start_restored(
        self,
        session_id: str,
        image: Image,
        image_dir: Path,
        old_uid: int | None,
        policy: NetworkPolicy | None,
    ) -> None:
        """Restore the made bundle of `session_id`, whose writable layer is a copy of the image's
        source (files of host uid `old_uid`), from `image_dir`, which is left as it was."""
        directory = self.session_dir(session_id)
        new_mapping = self.id_mapping(session_id)
        if old_uid is not None and new_mapping is not None:
            gvisor.change_owner(directory / "upper", old_uid, new_mapping.user_host_id)
        mount_overlay(image.rootfs, directory / "upper", directory / "work", directory / "rootfs")
        if policy is not None:  # the source had an interface, which its network stack restores with
            netns = str(directory / gvisor.NETNS_FILE)
            if policy.mode != EGRESS:  # shut to none: so is the copy's own, which it can open again
                self.networks.attach(session_id, directory, netns)
            self._set_network(session_id, policy, starting=True)
            self.networks.configure_again(directory, netns)
        self._runc_logged(
            session_id,
            *("restore", "--detach", *gvisor.RESUME_OPTIONS, "--image-path", str(image_dir)),
            *self._new_container(session_id),
            session_id,
            timeout=CHECKPOINT_TIMEOUT_S,
        )
        self._set_hostname(session_id)
        self._finish_later(session_id, lambda: self._listen_again(session_id))

    def _set_hostname(self, session_id: str) -> None:
        """Give a restored sandbox its own hostname: the image has its source's, kept in the
        checkpointed UTS namespace (the spec's hostname is read only when a sandbox is made), so it
        is set from inside, by a process of the sandbox's root with CAP_SYS_ADMIN there."""
        result = self._runc(
            *("exec", "--user=0:0", "--cap=CAP_SYS_ADMIN", session_id),
            *INIT_ARGS,
            "--hostname",
            session_id,
        )
        if result.returncode != 0:
            raise SandboxError(
                f"could not give the sandbox of {session_id} its hostname: {result.stderr.strip()}"
            )

    def _log_tail(self, session_id: str, size: int = 65536) -> str:
        """The ends of the runtime's log of a session and of the output its commands leave."""
        tails = []
        for name in ("runc.log", "init.log"):
            try:
                with open(self.session_dir(session_id) / name, "rb") as log_file:
                    log_file.seek(0, os.SEEK_END)
                    log_file.seek(max(0, log_file.tell() - size))
                    tails.append(log_file.read().decode(errors="replace"))
            except FileNotFoundError:
                continue
        return "\n".join(tails)

    def _container_status(self, session_id: str) -> str | None:
        result = self._runc("state", session_id)
        if result.returncode != 0:
            return None
        status: str = json.loads(result.stdout)["status"]
        return status

    def _restore(self, session_id: str) -> None:
        """Start the sandbox again from its image, with every process, file and page it had."""
        directory = self.images_dir(session_id)
        final, restoring = directory / gvisor.CHECKPOINT, directory / gvisor.CHECKPOINT_RESTORING
        stopped = self._finished(session_id)
        image = gvisor.image(directory)
        if image is None:  # frozen by a pause the server did not live to finish
            self._runc_logged(session_id, "resume", session_id)
            self._listen_again(session_id)
            return
        if not stopped:  # the paused sandbox could not be deleted (a server's start deletes its own)
            self._runc("delete", "--force", session_id)
        if image == final:
            os.rename(final, restoring)
            gvisor.sync_folder(directory)
        try:
            session_dir = self.session_dir(session_id)
            self.networks.configure_again(session_dir, str(session_dir / gvisor.NETNS_FILE))
            self._runc_logged(
                session_id,
                *("restore", "--detach", *gvisor.RESUME_OPTIONS, "--image-path", str(restoring)),
                *self._new_container(session_id),
                session_id,
                timeout=CHECKPOINT_TIMEOUT_S,
            )
        except BaseException:
            self._runc("delete", "--force", session_id)
            os.rename(restoring, final)
            raise
        self._finish_later(session_id, lambda: self._restored(session_id, restoring))

    def _restored(self, session_id: str, image: Path) -> bool:
        """After a resume: the sandbox listens again, and the image it was restored from goes."""
        listening = self._listen_again(session_id)
        gvisor.remove(image)
        return listening

    def destroy(self, session_id: str) -> None:
        """Remove the container, its mount, cgroups and files. Safe to call for any state."""
        mapping = self.id_mapping(session_id)
        self._finished(session_id)
        self._runc("delete", "--force", session_id)
        self._runtimes.pop(session_id, None)
        directory = self.session_dir(session_id)
        self.networks.detach(session_id, directory)
        for point in mount_points_under(directory):
            unmount(point)
        cgroups.remove(self.cgroup_parent, session_id)
        if not mount_points_under(directory):
            self.volumes.remove(session_id)
        gvisor.remove(self.images_dir(session_id))
        if mapping is not None and not directory.exists():
            self.identities.release(mapping.user_host_id, directory)

    def root_view(self, session_id: str, image: Image) -> Path:
        """The session's root filesystem as the host sees it (image and writable layer), for reading
        what a stopped sandbox left; mounted again if it is not (after a reboot of the host)."""
        directory = self.session_dir(session_id)
        rootfs = directory / "rootfs"
        if rootfs not in mount_points_under(directory):
            mount_overlay(image.rootfs, directory / "upper", directory / "work", rootfs)
        return rootfs

    def sandbox_user(self, session_id: str) -> tuple[int, int]:
        """The session user's uid and gid as the host sees them."""
        mapping = self.id_mapping(session_id)
        if mapping is None:
            raise SandboxError(f"the sandbox of {session_id} has no config.json")
        return mapping.user_host_id, mapping.user_host_id

    def states(self) -> dict[str, str]:
        """Every container runc and runsc know here, by id: 'running', 'stopped', 'paused', 'created'."""
        found: dict[str, str] = {}
        for engine in self.engines.values():
            if not engine.available:
                continue
            result = self._runc("list", "--format", "json", engine=engine)
            if result.returncode != 0:
                raise SandboxError(f"{engine.binary} list failed: {result.stderr.strip()}")
            found.update({e["id"]: e["status"] for e in json.loads(result.stdout or "null") or []})
        for directory in self.sessions_dir.iterdir():
            checkpointed = gvisor.checkpointed_state(
                self.images_dir(directory.name), found.get(directory.name)
            )
            if checkpointed is not None:
                found[directory.name] = checkpointed
        return found

    def state(self, session_id: str) -> str | None:
        """The container's state, or None when runc has no such container; a gvisor session
        paused into a checkpoint is 'paused'."""
        status = self._container_status(session_id)
        if self.runtime_of(session_id) == GVISOR:
            return gvisor.checkpointed_state(self.images_dir(session_id), status) or status
        return status

    def usage(self, session_id: str) -> Usage:
        """A sample of the session's resource use (see accounting.py)."""
        result = self._runc("state", session_id)
        directory = self.session_dir(session_id)
        layer = directory / "upper"
        # paused into a complete image: its sandbox is gone, or being deleted (_finish_later)
        images = self.images_dir(session_id)
        stopped = result.returncode != 0 or (images / gvisor.CHECKPOINT).is_dir()
        if stopped and gvisor.image(images) is not None:
            spec = json.loads((directory / "config.json").read_bytes())
            return stopped_usage(layer, int(spec["linux"]["resources"]["memory"]["limit"]))
        if result.returncode != 0:
            raise SandboxError(f"the sandbox of {session_id} is gone: {result.stderr.strip()}")
        pid = int(json.loads(result.stdout)["pid"])
        network = None
        if self.runtime_of(session_id) == GVISOR:
            stats = self._runc("events", "--stats", session_id)
            if stats.returncode != 0:
                raise SandboxError(f"the sandbox of {session_id} gave no figures: {stats.stderr.strip()}")
            network = gvisor.network_bytes(stats.stdout)
        return read_usage(f"{self.cgroup_parent}/{session_id}", layer, pid, network)

    def exec(
        self, session_id: str, argv: list[str], timeout: float = RUNC_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the sandbox as its user and wait for it (tests and diagnostics)."""
        return self._runc("exec", session_id, *argv, timeout=timeout)

    def cleanup_leftovers(self, keep: set[str]) -> CleanupReport:
        """Remove every container, mount, cgroup and folder here that no session in `keep` owns."""
        containers = []
        for engine in self.engines.values():
            if not engine.available:
                continue
            result = self._runc("list", "--format", "json", engine=engine)
            listed = (
                {e["id"] for e in json.loads(result.stdout or "null") or []}
                if result.returncode == 0
                else set()
            )
            for session_id in sorted(listed - keep):
                self._runc("delete", "--force", session_id, engine=engine)
                containers.append(session_id)
        containers.sort()
        mounts = [p for p in mount_points_under(self.sessions_dir) if p.parent.name not in keep]
        for point in mounts:
            unmount(point)
        leftover_cgroups = cgroups.remove_leftovers(self.cgroup_parent, keep)
        interfaces = self.networks.sweep(self.sessions_dir, keep)
        directories = sorted(p.name for p in self.sessions_dir.iterdir() if p.name not in keep)
        for name in directories:
            if not mount_points_under(self.sessions_dir / name):
                self.volumes.remove(name)
        for images in self.paused_dir.iterdir():
            if images.name not in keep:
                gvisor.remove(images)
        return CleanupReport(
            containers=containers,
            mounts=[str(p) for p in mounts],
            cgroups=leftover_cgroups,
            directories=directories,
            interfaces=interfaces,
        )

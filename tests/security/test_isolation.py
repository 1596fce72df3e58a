"""Each isolation property of a session, observed from inside its real runc sandbox."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cove.sandbox.identities import FIRST_SESSION_UID
from cove.sandbox.oci_spec import MASKED_PATHS
from cove.sandbox.user_namespace import SESSION_CAPS
from tests.integration.server import CoveServer

NewSession = Callable[..., dict[str, Any]]


def test_commands_run_as_unprivileged_user_with_a_home(server: CoveServer, new_session: NewSession) -> None:
    session = new_session()
    result = server.sandbox(session["session_id"], 'id -u; id -un; echo "$HOME"; touch ~/ok && echo writable')
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1000", "user", "/home/user", "writable"]


def test_no_capabilities_and_no_new_privileges(server: CoveServer, new_session: NewSession) -> None:
    session = new_session()
    status = server.sandbox(session["session_id"], "cat /proc/self/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[name], 16) == 0, name
    assert fields["NoNewPrivs"].strip() == "1"


def test_root_inside_is_not_root_outside(server: CoveServer, new_session: NewSession) -> None:
    session = new_session()
    uid_map = server.sandbox(session["session_id"], "cat /proc/self/uid_map").stdout.split()
    user_host_id = int(uid_map[4])
    assert uid_map == ["0", "100000", "1000", "1000", str(user_host_id), "1", "1001", "101001", "64535"]
    assert user_host_id >= FIRST_SESSION_UID
    assert host_uids(server, session["session_id"]) == [str(user_host_id)] * 4


def host_uids(server: CoveServer, session_id: str) -> list[str]:
    """The uids of the session's init as the host sees them."""
    host_status = Path(f"/proc/{server.sandbox_pid(session_id)}/status").read_text()
    return next(line for line in host_status.splitlines() if line.startswith("Uid:")).split()[1:]


def test_each_session_has_its_own_host_identity(server: CoveServer, new_session: NewSession) -> None:
    first, second = new_session()["session_id"], new_session()["session_id"]
    assert host_uids(server, first) != host_uids(server, second)
    # Files the user makes belong to that identity on the host; the image's own stay root's.
    server.sandbox(first, "touch ~/mine")
    layer = server.data_dir / "sessions" / first / "upper"
    assert (layer / "home/user/mine").stat().st_uid == int(host_uids(server, first)[0])
    assert server.sandbox(first, "stat -c %U:%u /usr/bin /home/user ~/mine").stdout.split() == [
        "root:0",
        "user:1000",
        "user:1000",
    ]


def test_per_user_kernel_counters_are_not_shared(server: CoveServer, new_session: NewSession) -> None:
    """One session using all the inotify instances it may have leaves the others theirs."""
    exhaust = (
        "nohup python3 -c 'import ctypes, time; c = ctypes.CDLL(None); n = 0\n"
        "while c.inotify_init() >= 0 and n < 100000: n += 1\n"
        "print(n, flush=True); time.sleep(60)' > /tmp/used 2>&1 &\n"
        "for _ in $(seq 100); do [ -s /tmp/used ] && break; sleep 0.1; done; cat /tmp/used"
    )
    first, second = new_session()["session_id"], new_session()["session_id"]
    used = int(server.sandbox(first, exhaust).stdout)  # and the first session keeps holding them
    assert used == SESSION_CAPS["max_inotify_instances"]  # the session's own cap stopped it
    opened = server.sandbox(
        second, "python3 -c 'import ctypes; print(ctypes.CDLL(None).inotify_init() >= 0)'"
    )
    assert opened.stdout.strip() == "True"


def test_hostname_is_the_session_id(server: CoveServer, new_session: NewSession) -> None:
    session = new_session()
    assert server.sandbox(session["session_id"], "hostname").stdout.strip() == session["session_id"]


def test_only_loopback_network_with_mode_none(server: CoveServer, new_session: NewSession) -> None:
    session = new_session(network={"mode": "none"})
    interfaces = server.sandbox(session["session_id"], "ls /sys/class/net").stdout.split()
    assert interfaces == ["lo"]
    routes = server.sandbox(session["session_id"], "tail -n +2 /proc/net/route").stdout
    assert routes.strip() == ""
    loopback = server.sandbox(
        session["session_id"],
        "python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
        "c=socket.create_connection(s.getsockname()); print('loopback ok')\"",
    )
    assert loopback.stdout.strip() == "loopback ok", loopback.stderr


def test_own_pid_namespace(server: CoveServer, new_session: NewSession) -> None:
    session = new_session()
    processes = server.sandbox(session["session_id"], "ps -eo pid=,args=").stdout.splitlines()
    first = processes[0].split(None, 1)
    assert first[0] == "1" and first[1] == "/.cove/agent/init"
    # init, the tool agent (started with the session, until its idle exit), the shell and ps:
    # nothing of the host's
    others = [line.split(None, 1)[1] for line in processes[1:]]
    assert len(others) <= 3, processes
    assert all("agent.server" in args or args.startswith(("sh -c ps", "ps ")) for args in others), processes


def test_memory_limit_kills_a_memory_hog(server: CoveServer, new_session: NewSession) -> None:
    session = new_session(resources={"memory_mb": 64})
    hog = server.sandbox(
        session["session_id"], "python3 -c \"b = bytearray(256 * 1024 * 1024); b[::4096] = b'x' * 65536\""
    )
    assert hog.returncode == 137  # SIGKILL from the OOM killer
    assert server.sandbox(session["session_id"], "echo alive").stdout.strip() == "alive"


def test_process_limit_stops_a_fork_bomb(server: CoveServer, new_session: NewSession) -> None:
    session = new_session(resources={"pids": 32})
    bomb = server.sandbox(
        session["session_id"],
        'python3 -c "\nimport os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n'
        "            time.sleep(30); os._exit(0)\n        n += 1\nexcept OSError as e:\n"
        '    print(n, e.errno, flush=True)\nos.killpg(0, 9)"',
    )
    forked, errno = bomb.stdout.split()
    assert int(forked) < 32 and errno == "11"  # EAGAIN: the pids cgroup said no
    assert server.sandbox(session["session_id"], "echo alive").stdout.strip() == "alive"


def test_cpu_limit_is_set_in_the_cgroup(server: CoveServer, new_session: NewSession) -> None:
    session = new_session(resources={"cpus": 0.5})
    cgroup = next(p for p in server.cgroup_dirs() if p.name == session["session_id"] and "cpu" in str(p))
    quota_file = cgroup / "cpu.cfs_quota_us"
    if quota_file.exists():
        assert int(quota_file.read_text()) == 50_000
    else:
        assert (cgroup / "cpu.max").read_text().split() == ["50000", "100000"]


def test_host_files_outside_the_image_are_invisible(
    server: CoveServer, new_session: NewSession, tmp_path: Path
) -> None:
    marker = Path("/tmp") / f"cove-host-marker-{uuid.uuid4().hex}"
    marker.write_text("host secret")
    try:
        session = new_session()
        result = server.sandbox(
            session["session_id"],
            f"ls {marker} {server.data_dir} /usr/bin/runc {Path.cwd()} 2>&1; ls /tmp | wc -l",
        )
        assert "host secret" not in result.stdout
        assert result.stdout.count("No such file or directory") == 4
        assert result.stdout.strip().endswith("0")
    finally:
        marker.unlink()


def test_masked_and_read_only_kernel_paths(server: CoveServer, new_session: NewSession) -> None:
    session = new_session()
    # Which of runc's masked files this kernel has varies; every one it has must read empty.
    present = [p for p in MASKED_PATHS if p.startswith("/proc/") and Path(p).is_file()]
    assert present, "the host kernel should expose at least one masked /proc file"
    sizes = server.sandbox(session["session_id"], "; ".join(f"wc -c < {p}" for p in present))
    assert sizes.stdout.split() == ["0"] * len(present), sizes.stderr
    write = server.sandbox(session["session_id"], "echo 1 > /proc/sys/kernel/panic")
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr or "Permission denied" in write.stderr


def test_image_is_read_only_and_each_session_writes_its_own_layer(
    server: CoveServer, new_session: NewSession
) -> None:
    first, second = new_session(), new_session()
    denied = server.sandbox(first["session_id"], "touch /usr/bin/evil")
    assert denied.returncode != 0
    wrote = server.sandbox(first["session_id"], "echo mine > /tmp/note && cat /tmp/note")
    assert wrote.stdout.strip() == "mine"
    assert server.sandbox(second["session_id"], "cat /tmp/note").returncode != 0
    assert not (server.data_dir / "images/linux_latest/rootfs/tmp/note").exists()

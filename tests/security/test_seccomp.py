"""The seccomp profile, tried from inside real sessions: what it refuses, and what still works."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from typing import Any

from cove import Session
from cove.sandbox.seccomp import ALLOWED, default_profile
from tests.integration.server import CoveServer

NewSession = Callable[..., dict[str, Any]]

SYSCALL_NUMBERS = {
    # the architectures Cove's profile covers (seccomp.ARCHITECTURES), where their numbers differ
    "x86_64": {
        "unshare": 272,
        "clone": 56,
        "clone3": 435,
        "add_key": 248,
        "request_key": 249,
        "keyctl": 250,
        "bpf": 321,
        "perf_event_open": 298,
        "userfaultfd": 323,
        "io_uring_setup": 425,
        "kexec_load": 246,
        "open_by_handle_at": 304,
        "mount": 165,
        "setns": 308,
        "fsopen": 430,
    },
    "aarch64": {
        "unshare": 97,
        "clone": 220,
        "clone3": 435,
        "add_key": 217,
        "request_key": 218,
        "keyctl": 219,
        "bpf": 280,
        "perf_event_open": 241,
        "userfaultfd": 282,
        "io_uring_setup": 425,
        "kexec_load": 104,
        "open_by_handle_at": 265,
        "mount": 40,
        "setns": 268,
        "fsopen": 430,
    },
}

# Each attack calls the raw system call through ctypes and prints errno (0: it was allowed).
PROBE = r"""
import ctypes, json, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
NR = json.loads(sys.argv[1])
def call(number, *args):
    ctypes.set_errno(0)
    result = libc.syscall(number, *[ctypes.c_long(a) for a in args])
    return ctypes.get_errno() if result == -1 else 0
def sock(family, kind, protocol):
    try:
        socket.socket(family, kind, protocol).close()
        return 0
    except OSError as error:
        return error.errno
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x20000, 0x40000000
print(json.dumps({
    "unshare_user": call(NR["unshare"], CLONE_NEWUSER),
    "unshare_user_and_mount": call(NR["unshare"], CLONE_NEWUSER | CLONE_NEWNS),
    "unshare_net": call(NR["unshare"], CLONE_NEWNET),
    "clone_new_user": call(NR["clone"], CLONE_NEWUSER | 17, 0, 0, 0, 0),
    "clone3": call(NR["clone3"], 0, 0),
    "add_key": call(NR["add_key"], 0, 0, 0, 0, 0),
    "request_key": call(NR["request_key"], 0, 0, 0, 0),
    "keyctl": call(NR["keyctl"], 0, 0, 0, 0, 0),
    "bpf": call(NR["bpf"], 0, 0, 0),
    "perf_event_open": call(NR["perf_event_open"], 0, 0, -1, -1, 0),
    "userfaultfd": call(NR["userfaultfd"], 0),
    "io_uring_setup": call(NR["io_uring_setup"], 1, 0),
    "kexec_load": call(NR["kexec_load"], 0, 0, 0, 0),
    "open_by_handle_at": call(NR["open_by_handle_at"], 0, 0, 0),
    "mount": call(NR["mount"], 0, 0, 0, 0, 0),
    "setns": call(NR["setns"], 0, 0),
    "fsopen": call(NR["fsopen"], 0, 0),
    "af_packet": sock(17, socket.SOCK_RAW, 0),
    "netlink_netfilter": sock(16, socket.SOCK_RAW, 12),
    "netlink_route": sock(16, socket.SOCK_RAW, 0),
    "tcp": sock(socket.AF_INET, socket.SOCK_STREAM, 0),
    "unix": sock(socket.AF_UNIX, socket.SOCK_STREAM, 0),
    "seccomp_mode": open("/proc/self/status").read().split("Seccomp:")[1].split()[0],
}))
"""
EPERM, ENOSYS = 1, 38
REFUSED = [
    "unshare_user",
    "unshare_user_and_mount",
    "unshare_net",
    "clone_new_user",
    "add_key",
    "request_key",
    "keyctl",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "kexec_load",
    "open_by_handle_at",
    "mount",
    "setns",
    "fsopen",
    "af_packet",
    "netlink_netfilter",
]


def probe(server: CoveServer, session_id: str) -> dict[str, Any]:
    numbers = json.dumps(SYSCALL_NUMBERS[platform.machine()])
    result = server.sandbox(session_id, f"python3 -c '{PROBE}' '{numbers}'")
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_dangerous_system_calls_are_refused(server: CoveServer, new_session: NewSession) -> None:
    answer = probe(server, new_session()["session_id"])
    assert answer["seccomp_mode"] == "2"  # a filter is in force
    assert {name: answer[name] for name in REFUSED} == {name: EPERM for name in REFUSED}
    assert answer["clone3"] == ENOSYS  # so the C library falls back to clone, whose flags are checked


def test_ordinary_sockets_still_work(server: CoveServer, new_session: NewSession) -> None:
    answer = probe(server, new_session()["session_id"])
    assert (answer["netlink_route"], answer["tcp"], answer["unix"]) == (0, 0, 0)


def test_commands_of_the_tool_agent_run_under_the_profile(session: Session) -> None:
    unshare_user = "import ctypes; c = ctypes.CDLL(None, use_errno=True); "
    unshare_user += "print(c.unshare(0x10000000), ctypes.get_errno())"
    result = session.command.execute_command(f"grep Seccomp: /proc/self/status; python3 -c '{unshare_user}'")
    assert result.success, result.error_message
    assert [line.split() for line in result.output.splitlines()] == [["Seccomp:", "2"], ["-1", "1"]]


def test_runtimes_threads_and_processes_work(server: CoveServer, new_session: NewSession) -> None:
    script = (
        "python3 -c 'import threading, subprocess, multiprocessing, tempfile, mmap; "
        't = threading.Thread(target=print, args=("thread",)); t.start(); t.join(); '
        'child = subprocess.run(["sh", "-c", "echo child | cat"], capture_output=True, text=True); '
        "print(child.stdout.strip()); "
        "p = multiprocessing.Pool(2); print(sum(p.map(abs, [-1, -2]))); p.close(); "
        'f = tempfile.TemporaryFile(); f.write(b"x" * 4096); f.flush(); m = mmap.mmap(f.fileno(), 4096); '
        "print(m[:1].decode())'; ps -e -o pid= | wc -l"
    )
    result = server.sandbox(new_session()["session_id"], script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[:4] == ["thread", "child", "3", "x"]


def test_profile_lists_none_of_the_refused_calls() -> None:
    refused = {"mount", "umount2", "pivot_root", "setns", "keyctl", "add_key", "request_key", "bpf"}
    refused |= {"perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "kexec_load"}
    refused |= {"open_by_handle_at", "init_module", "finit_module", "fsopen", "open_tree", "clone3"}
    assert not refused & set(ALLOWED)
    profile = default_profile("x86_64")
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {
        name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for name in rule["names"]
    }
    assert not refused & allowed
    unconditional = set(profile["syscalls"][0]["names"])
    assert not {"clone", "unshare", "socket", "personality"} & unconditional  # allowed only by argument

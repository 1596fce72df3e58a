"""The tool agent's memory after one `shell` call, and the modules that call loads.

Run as root from the repo root:

    .venv/bin/python -m bench.agent_memory                  # real sessions (--sessions 3)
    .venv/bin/python -m bench.agent_memory --local          # the agent alone, started as init starts it
    .venv/bin/python -m bench.agent_memory --local --env MALLOC_ARENA_MAX=1

Sessions: a real server and runc sandboxes; each session runs `echo ok` with the shell tool, then the
agent process (the child of the sandbox's init) is read: RssAnon from /proc/PID/status and the
Anonymous line of smaps_rollup. The modules come from the sandbox's own python3 running the agent's
code path for that call (`agent.server`, the shell tool's handler, the answer's encoding) with the
agent's flags (-I -S), as it cannot be asked for its sys.modules.

Local: the agent is started on this host with /usr/bin/python3 (the interpreter images copy) and the
file descriptors init hands over, from a bytecode-compiled copy of src/cove/agent, so variables in
its environment (--env) can be tried without a new init. Prints the medians and writes
bench/results/agent_memory.json (or agent_memory_local.json).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.harness import bench_server
from cove.sandbox.agent_files import copy_agent

AGENT_SOURCE = Path(__file__).resolve().parent.parent / "src" / "cove" / "agent"
RESULTS = Path(__file__).parent / "results" / "agent_memory.json"
SETTLE_S = 1.0
"""How long after the answer the agent is read, for the threads of the call to have ended."""
SHELL_CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "shell", "arguments": {"command": "echo ok"}},
}
MODULES_SCRIPT = f"""
import sys
sys.path.insert(0, '/.cove')
from agent import protocol
from agent.server import Agent
protocol.encode(Agent().answer({SHELL_CALL!r}))
print(' '.join(sorted(sys.modules)))
"""
"""The agent's code path for one shell call, printing the modules it loaded."""


def anonymous_kib(pid: int) -> dict[str, int]:
    """RssAnon (status) and Anonymous (smaps_rollup) of a process, in KiB."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    rollup = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    )
    return {
        "rss_anon": int(status["RssAnon"].split()[0]),
        "anonymous": int(rollup["Anonymous"].split()[0]),
    }


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def measure_sessions(count: int) -> list[dict[str, object]]:
    """One session after another: its agent's memory after `echo ok`, and the modules of that path."""
    runs: list[dict[str, object]] = []
    with bench_server() as bench, bench.server.client() as client:
        for _ in range(count):
            answer = client.post("/v1/sessions", json={})
            answer.raise_for_status()
            session = answer.json()["session"]["session_id"]
            try:
                shell(client, session, "echo ok")
                time.sleep(SETTLE_S)
                agents = [
                    pid
                    for pid in children(bench.server.sandbox_pid(session))
                    if b"agent.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
                ]
                if len(agents) != 1:
                    raise RuntimeError(f"expected one agent in the session, found {agents}")
                figures: dict[str, object] = dict(anonymous_kib(agents[0]))
                command = f"python3 -I -S -c {shlex_quote(MODULES_SCRIPT)}"
                figures["modules"] = json.loads(shell(client, session, command))["stdout"].split()
                runs.append(figures)
            finally:
                client.delete(f"/v1/sessions/{session}").raise_for_status()
    return runs


def shell(client: object, session: str, command: str) -> str:
    answer = client.post(  # type: ignore[attr-defined]
        f"/v1/sessions/{session}/tools/shell", json={"arguments": {"command": command}}
    )
    answer.raise_for_status()
    text: str = answer.json()["result"]["content"][0]["text"]
    return text


def shlex_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def measure_local(count: int, env: dict[str, str], flags: list[str]) -> list[dict[str, object]]:
    """The agent started `count` times as init starts it (fds 3 and 4), each after one shell call."""
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="cove-agent-memory-") as folder:
        copy_agent(AGENT_SOURCE, Path(folder) / "agent")
        subprocess.run(["/usr/bin/python3", "-m", "compileall", "-q", folder], check=True)
        for _ in range(count):
            runs.append(run_local_agent(folder, env, flags))
    return runs


def run_local_agent(folder: str, env: dict[str, str], flags: list[str]) -> dict[str, object]:
    path = f"{folder}/agent.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    ours, theirs = socket.socketpair()
    code = f"import sys; sys.path.insert(0, {folder!r}); from agent.server import serve; serve()"

    argv = ["/usr/bin/python3", *flags, "-I", "-S", "-c", code]
    pid = os.fork()
    if pid == 0:  # as init starts the agent
        try:
            listen_fd, control_fd = os.dup(listener.fileno()), os.dup(theirs.fileno())  # above 4
            os.dup2(listen_fd, 3)
            os.dup2(control_fd, 4)
            os.execve(argv[0], argv, {"PATH": "/usr/bin:/bin", "HOME": folder, **env})
        finally:
            os._exit(127)
    theirs.close()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(path)
            connection.sendall(json.dumps(SHELL_CALL).encode() + b"\n")
            answer = json.loads(connection.makefile("rb").readline())
        if answer["result"]["isError"]:
            raise RuntimeError(f"the shell call failed: {answer}")
        time.sleep(SETTLE_S)
        figures: dict[str, object] = dict(anonymous_kib(pid))
        modules = subprocess.run(
            ["/usr/bin/python3", "-I", "-S", "-c", MODULES_SCRIPT.replace("/.cove", folder)],
            env={"PATH": "/usr/bin:/bin", "HOME": folder},
            capture_output=True,
            text=True,
            check=True,
        )
        figures["modules"] = modules.stdout.split()
        return figures
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        ours.close()
        listener.close()
        os.unlink(path)


def summary(runs: list[dict[str, object]]) -> dict[str, object]:
    def median_mib(key: str) -> float:
        return round(statistics.median(int(run[key]) for run in runs) / 1024, 2)  # type: ignore[call-overload]

    modules = runs[-1]["modules"]
    assert isinstance(modules, list)
    return {
        "runs": len(runs),
        "rss_anon_mib": median_mib("rss_anon"),
        "anonymous_mib": median_mib("anonymous"),
        "anonymous_kib_each": [run["anonymous"] for run in runs],
        "module_count": len(modules),
        "modules": modules,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=3, help="how many sessions (or local agents)")
    parser.add_argument("--local", action="store_true", help="the agent alone on this host, not in a session")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="for the local agent's environment"
    )
    parser.add_argument(
        "--flag", action="append", default=[], metavar="FLAG", help="a python3 flag for the local agent"
    )
    args = parser.parse_args()
    if args.local:
        env = dict(item.split("=", 1) for item in args.env)
        result = summary(measure_local(args.sessions, env, args.flag)) | {"env": env, "flags": args.flag}
        path = RESULTS.with_name("agent_memory_local.json")
    else:
        result = summary(measure_sessions(args.sessions))
        path = RESULTS
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    shown = {key: value for key, value in result.items() if key != "modules"}
    print(json.dumps(shown, indent=2))
    print("modules:", " ".join(result["modules"]))  # type: ignore[arg-type]
    print(f"written to {path}")


if __name__ == "__main__":
    main()

"""llm-sandbox driven for bench/peers.py: run in the venv that has llm-sandbox, one JSON request a line.

Requests on standard input, answers on standard output: {"create": true} -> {"handle": ...},
{"run": handle, "command": ...} -> {"output": ...}, {"pid": handle} -> {"pid": ...},
{"remove": handle} -> {}. Sessions use the Docker backend on the bench's dockerd, its image, no
network, uid 1000, and skip llm-sandbox's environment setup (a venv and a pip upgrade, which need
the network). A session's container is removed with force: `session.close()` stops it first, and
`sleep` as PID 1 makes that wait out Docker's 10 s stop timeout.
"""

import json
import shlex
import sys

import docker  # type: ignore[import-untyped,import-not-found,unused-ignore]
from llm_sandbox import SandboxBackend, SandboxSession  # type: ignore[import-not-found,unused-ignore]


def main() -> None:
    socket_path, image = sys.argv[1], sys.argv[2]
    client = docker.DockerClient(base_url=f"unix://{socket_path}")
    sessions = {}
    for line in sys.stdin:
        request = json.loads(line)
        if "create" in request:
            session = SandboxSession(
                backend=SandboxBackend.DOCKER,
                client=client,
                image=image,
                lang="python",
                keep_template=True,
                skip_environment_setup=True,
                workdir="/home/user",
                runtime_configs={
                    "command": ["sleep", "infinity"],
                    "network_mode": "none",
                    "user": "1000:1000",
                },
            )
            session.open()
            sessions[session.container.id] = session
            answer: dict[str, object] = {"handle": session.container.id}
        elif "run" in request:
            result = sessions[request["run"]].execute_command(shlex.join(["bash", "-c", request["command"]]))
            answer = {"output": result.stdout + result.stderr}
        elif "pid" in request:
            container = sessions[request["pid"]].container
            container.reload()
            answer = {"pid": container.attrs["State"]["Pid"]}
        else:
            sessions.pop(request["remove"]).container.remove(force=True)
            answer = {}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()

"""What `cove demo` shows: a session created through the SDK, inspected, and used."""

from __future__ import annotations

import time
from typing import Any

from cove.config import Settings


def _wait_until_started(server: Any) -> None:
    while not server.started:
        if server.should_exit:
            raise RuntimeError("the server stopped before it started; see the log above")
        time.sleep(0.05)


def show_a_session(settings: Settings, server: Any) -> None:
    """Create a session, print its details and run a command in it; the session is left running."""
    from cove import AgentBay, Config, CreateSessionParams

    _wait_until_started(server)
    key = settings.api_keys.split(",")[0].strip() or (settings.data_dir / "api_key").read_text().strip()
    with AgentBay(api_key=key, cfg=Config(endpoint=settings.base_url)) as agent_bay:
        started = time.perf_counter()
        result = agent_bay.create(CreateSessionParams(labels={"demo": "yes"}))
        if not result.success or result.session is None:
            print(f"demo: create failed: {result.error_message}")
            return
        elapsed = (time.perf_counter() - started) * 1000
        session = result.session
        print(f"\ndemo: created {session.session_id} in {elapsed:.0f} ms")
        print(f"demo: status {session.get_status().status}, labels {session.get_labels().data}")
        command = "id; hostname; uname -sr; python3 --version; ls /sys/class/net"
        ran = session.command.execute_command(command)
        print(f"demo: session.command.execute_command('{command}') printed:")
        print("".join(f"    {line}\n" for line in ran.output.splitlines()), end="")
        session.file_system.write_file("hello.txt", "written through the SDK\n")
        print(
            f"demo: file_system.read_file('hello.txt'): {session.file_system.read_file('hello.txt').content}",
            end="",
        )
        network = session.network.get()
        if network.policy is not None:
            print(
                f"demo: network {network.policy.mode}, address {network.address}; "
                "README.md's 'The network' tries it against test hosts"
            )
        listed = agent_bay.list(labels={"demo": "yes"})
        print(f"demo: {listed.total_count} session(s) labelled demo=yes")
        print(f"demo: server at {settings.base_url}, API key {key}")
        print(f"demo: the web console: open {settings.base_url}/ in a browser and sign in with that key")
        print(f"demo: try  COVE_API_KEY={key} cove session ls --endpoint {settings.base_url}\n")

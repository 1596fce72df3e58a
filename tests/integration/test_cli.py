"""The `cove` command against a real server: keys, images, sessions, and the demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cove.cli import main
from tests.integration.server import CoveServer, free_port


def cove(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def client_args(server: CoveServer) -> list[str]:
    """A fresh tenant, made with `cove key create` on the running server's data directory."""
    created = cove("key", "create", "--name", "cli-test", "--data-dir", str(server.data_dir))
    assert created.exit_code == 0, created.output
    key = created.output.strip()
    assert len(key) >= 32
    return ["--endpoint", server.url, "--api-key", key]


def test_key_ls_shows_created_keys_by_tenant(server: CoveServer, client_args: list[str]) -> None:
    listed = cove("key", "ls", "--data-dir", str(server.data_dir))
    assert listed.exit_code == 0
    assert listed.output.splitlines()[0].split() == ["TENANT", "NAME", "CREATED"]
    assert "cli-test" in listed.output
    assert client_args[-1] not in listed.output, "keys themselves are never shown again"


def test_session_create_ls_info_rm(client_args: list[str], server: CoveServer) -> None:
    created = cove(
        "session",
        "create",
        *client_args,
        "--label",
        "app=cli",
        "--memory-mb",
        "300",
        "--idle-timeout",
        "3600",
        "--idle-action",
        "pause",
    )
    assert created.exit_code == 0, created.output
    session_id = created.output.strip()
    assert re.fullmatch(r"session-[0-9a-z]+", session_id)
    assert server.sandbox(session_id, "echo hi").stdout.strip() == "hi"

    listed = cove("session", "ls", *client_args, "--label", "app=cli")
    assert listed.exit_code == 0, listed.output
    header, row, footer = listed.output.splitlines()
    assert header.split() == ["SESSION", "STATUS", "IMAGE", "LABELS", "CREATED"]
    assert row.split()[:4] == [session_id, "RUNNING", "linux_latest", "app=cli"]
    assert footer == "1 of 1 shown"

    info = cove("session", "info", *client_args, session_id)
    assert info.exit_code == 0
    assert '"memory_mb": 300' in info.output and f'"session_id": "{session_id}"' in info.output
    assert '"idle_timeout_s": 3600' in info.output and '"idle_action": "pause"' in info.output

    removed = cove("session", "rm", *client_args, session_id)
    assert (removed.exit_code, removed.output.strip()) == (0, f"deleted {session_id}")
    assert cove("session", "rm", *client_args, session_id).exit_code == 0, "deleting twice is fine"
    assert cove("session", "ls", *client_args).output.strip().endswith("0 of 0 shown")


def test_session_errors_are_one_clear_line(client_args: list[str]) -> None:
    missing = cove("session", "info", *client_args, "session-nope")
    assert missing.exit_code == 1
    assert "session-nope" in missing.output and "error:" in missing.output
    bad_label = cove("session", "create", *client_args, "--label", "no-equals-sign")
    assert bad_label.exit_code == 1 and "KEY=VALUE" in bad_label.output


def test_image_ls(server: CoveServer) -> None:
    listed = cove("image", "ls", "--data-dir", str(server.data_dir))
    assert listed.exit_code == 0
    header, *rows = listed.output.splitlines()
    assert header.split() == ["IMAGE", "SIZE", "SOURCE"]
    assert any(row.split()[0] == "linux_latest" for row in rows)


def test_demo_shows_a_working_session_and_exits(data_root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVE_", "AGENTBAY_"))}
    data_dir = data_root / "demo"
    command = [sys.executable, "-m", "cove", "demo", "--exit", "--port", str(free_port())]
    try:
        ran = subprocess.run(
            [*command, "--data-dir", str(data_dir)], env=env, capture_output=True, text=True, timeout=600
        )
        assert ran.returncode == 0, ran.stderr
        assert re.search(r"demo: created session-\w+ in \d+ ms", ran.stdout), ran.stdout
        assert "uid=1000(user)" in ran.stdout and "lo" in ran.stdout and "eth0" in ran.stdout
        assert re.search(r"demo: network egress, address 10\.203\.\d+\.\d+", ran.stdout), ran.stdout
        assert "read_file('hello.txt'): written through the SDK" in ran.stdout
        key = (data_dir / "api_key").read_text().strip()
        assert f"API key {key}" in ran.stdout, "with no keys configured the server makes one and shows it"
    finally:
        CoveServer(data_dir).remove_sandboxes()

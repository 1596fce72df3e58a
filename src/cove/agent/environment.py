"""The environment every process the agent starts for the user runs with (commands, background
processes, kernels, desktop programs): the sandbox's own, without Cove's settings for the agent,
plus the variables the session was created with, which the host writes to the run folder (E2B's
create-time `envVars`)."""

from __future__ import annotations

import os

from . import host_files

SESSION_ENV_PATH = f"{host_files.RUN_DIR}/env.json"
MAX_SESSION_ENV_BYTES = 64 * 1024
"""The host allows 32 KiB of names and values; JSON's quoting may double it."""


def session_variables(path: str | None = None) -> dict[str, str]:
    """The session's own variables (from `path`, by default the host's file), or none if the host
    wrote none the agent can trust."""
    variables = host_files.read_json(path or SESSION_ENV_PATH, MAX_SESSION_ENV_BYTES)
    if not isinstance(variables, dict):
        return {}
    return {
        name: value
        for name, value in variables.items()
        if isinstance(value, str) and "\0" not in name + value and not name.startswith("COVE_")
    }


def user_environment(extra: dict[str, str]) -> dict[str, str]:
    """The sandbox's environment, then the session's variables, then `extra` (the call's own)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COVE_")}
    environment.update(session_variables())
    environment.update(extra)
    return environment

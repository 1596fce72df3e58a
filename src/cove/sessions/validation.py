"""Checks on what clients send, each failure naming the field and the limit."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from cove.config import Settings
from cove.errors import InvalidArgument
from cove.sandbox.oci_spec import Limits
from cove.sandbox.runtime import RUNTIMES
from cove.sandbox.screen import DEFAULT_SCREEN, Screen

STATUSES = ("RUNNING", "PAUSING", "PAUSED", "RESUMING", "DELETING", "DELETED")
MAX_LABELS = 20
MAX_LABEL_KEY = 128
MAX_LABEL_VALUE = 256
MIN_MEMORY_MB = 32
MIN_CPUS = 0.01
MIN_PIDS = 8
MIN_DISK_MB = 16
MIN_SCREEN = Screen(320, 240)
MAX_SCREEN = Screen(7680, 4320)
"""8K UHD; its framebuffer alone is 127 MiB (4 bytes a pixel)."""
MAX_ENV_VARIABLES = 100
MAX_ENV_BYTES = 32 * 1024
"""Of all names and values together: the host writes them for the agent, which reads them on every
process it starts."""
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_TIMEOUT_S = 10 * 366 * 24 * 3600
"""Ten years: longer timeouts are refused rather than stored (0 already means none)."""
IDLE_ACTIONS = ("delete", "pause")
"""What becomes of a session idle past its idle timeout (docs/runtimes.md)."""


def is_text(value: str) -> bool:
    """Whether `value` can be stored and sent anywhere: valid UTF-8 (no lone surrogate), no NUL."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return "\0" not in value


def has_lone_surrogate(value: Any) -> bool:
    """Whether a JSON value holds a string or key that is not valid Unicode: no tool can take it as
    text, and no answer could echo it (UTF-8 has no encoding for it)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            pending += item
    return False


def check_labels(labels: Any, field: str = "labels") -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidArgument(f"{field} must be an object of string keys to string values")
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"{field}: {len(labels)} labels given, at most {MAX_LABELS} are allowed")
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgument(f"{field}: keys and values must be strings")
        if not is_text(key) or not is_text(value):
            raise InvalidArgument(f"{field}: keys and values must be UTF-8 text without NUL characters")
        if not key.strip():
            raise InvalidArgument(f"{field}: a label key is empty")
        if not value.strip():
            raise InvalidArgument(f"{field}: the value of label {key!r} is empty")
        if len(key) > MAX_LABEL_KEY:
            raise InvalidArgument(
                f"{field}: label key {key[:20]!r}... is longer than {MAX_LABEL_KEY} characters"
            )
        if len(value) > MAX_LABEL_VALUE:
            raise InvalidArgument(
                f"{field}: the value of label {key!r} is longer than {MAX_LABEL_VALUE} characters"
            )
    return dict(labels)


def _bounded(name: str, value: Any, default: Any, minimum: Any, maximum: Any, kind: type) -> Any:
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or (kind is int and value != int(value))
    ):
        raise InvalidArgument(
            f"resources.{name} must be a {'whole ' if kind is int else ''}number (not NaN or Infinity)"
        )
    if value < minimum:
        raise InvalidArgument(f"resources.{name} is {value}; the minimum is {minimum}")
    if value > maximum:
        raise InvalidArgument(f"resources.{name} is {value}; this server's maximum is {maximum}")
    return kind(value)


def check_limits(
    settings: Settings, memory_mb: Any = None, cpus: Any = None, pids: Any = None, disk_mb: Any = None
) -> Limits:
    """Per-session limits: defaults where unset, refused above the server maxima."""
    return Limits(
        memory_mb=_bounded(
            "memory_mb", memory_mb, settings.default_memory_mb, MIN_MEMORY_MB, settings.max_memory_mb, int
        ),
        cpus=_bounded("cpus", cpus, settings.default_cpus, MIN_CPUS, settings.max_cpus, float),
        pids=_bounded("pids", pids, settings.default_pids, MIN_PIDS, settings.max_pids, int),
        disk_mb=_bounded(
            "disk_mb", disk_mb, settings.default_disk_mb, MIN_DISK_MB, settings.max_disk_mb, int
        ),
    )


def check_runtime(settings: Settings, runtime: Any) -> str:
    """The runtime a create asks for (the server's default if none), if this server allows it."""
    allowed = allowed_runtimes(settings)
    chosen = settings.default_runtime if runtime is None else runtime
    if chosen not in RUNTIMES:
        raise InvalidArgument(f"runtime must be one of {', '.join(RUNTIMES)}, not {chosen!r:.100}")
    if chosen not in allowed:
        raise InvalidArgument(
            f"runtime {chosen!r} is not allowed on this server (COVE_ALLOWED_RUNTIMES: {', '.join(allowed)})"
        )
    return str(chosen)


def check_idle_action(settings: Settings, idle_action: Any) -> str:
    """What becomes of the session once idle past its idle timeout (the server's default if none)."""
    chosen = settings.idle_action if idle_action is None else idle_action
    if chosen not in IDLE_ACTIONS:
        raise InvalidArgument(f"idle_action must be one of {', '.join(IDLE_ACTIONS)}, not {chosen!r:.100}")
    return str(chosen)


def allowed_runtimes(settings: Settings) -> list[str]:
    return [name.strip() for name in settings.allowed_runtimes.split(",") if name.strip()]


def check_screen(screen: Any) -> Screen:
    """The desktop's size: {"width", "height"} in pixels, both required; None is the default."""
    if screen is None:
        return DEFAULT_SCREEN
    if not isinstance(screen, Mapping) or set(screen) != {"width", "height"}:
        raise InvalidArgument(
            f'screen must be an object {{"width": int, "height": int}}, not {screen!r:.100}'
        )
    for name in ("width", "height"):
        value, low, high = screen[name], getattr(MIN_SCREEN, name), getattr(MAX_SCREEN, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidArgument(
                f"screen.{name} must be a whole number of pixels from {low} to {high}, not {value!r:.100}"
            )
    return Screen(screen["width"], screen["height"])


def check_timeouts(settings: Settings, idle_timeout_s: Any, max_lifetime_s: Any) -> tuple[int, int]:
    """A session's idle timeout and maximum lifetime in seconds; 0 means none; server defaults where unset."""
    return (
        _seconds("idle_timeout_s", idle_timeout_s, settings.default_idle_timeout_s),
        _seconds("max_lifetime_s", max_lifetime_s, settings.default_max_lifetime_s),
    )


def _seconds(name: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIMEOUT_S:
        raise InvalidArgument(
            f"{name} must be a whole number of seconds from 0 (none) to {MAX_TIMEOUT_S}, not {value!r}"
        )
    return value


def check_status(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        raise InvalidArgument(f"status {status!r} is not one of {', '.join(STATUSES)}")
    return status


DEFAULT_TOOL_TIMEOUT_S = 60.0
PATH_ARGUMENTS = ("path", "paths", "source", "destination", "cwd")
"""Tool arguments that name files: a NUL in one is refused here, before it reaches the agent."""
WAITING_ARGUMENTS = {"timeout_ms": 1, "wait_ms": 1, "timeout_s": 1000}
"""Arguments by which a tool call asks to run or wait for a while (commands, process waits, code
cells), with the milliseconds in one unit of each."""


def check_tool_call(settings: Settings, name: Any, arguments: Any) -> float:
    """What the server, not the agent, limits in a tool call; answers how long the call may take."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument("name: a tool name is required")
    if not isinstance(arguments, dict):
        raise InvalidArgument("arguments must be a JSON object")
    if has_lone_surrogate(name):
        raise InvalidArgument("name: a tool name must be valid Unicode text (it has a lone surrogate)")
    if has_lone_surrogate(arguments):
        raise InvalidArgument(f"{name}: arguments must be valid Unicode text (one has a lone surrogate)")
    for argument in PATH_ARGUMENTS:
        value = arguments.get(argument)
        paths = value if isinstance(value, list) else [value]
        if any(isinstance(path, str) and "\0" in path for path in paths):
            raise InvalidArgument(f"{name}: argument '{argument}' cannot contain a NUL character")
    timeout_s = DEFAULT_TOOL_TIMEOUT_S
    for argument, unit_ms in WAITING_ARGUMENTS.items():
        value = arguments.get(argument)
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if value * unit_ms > settings.max_command_timeout_ms:
            maximum = settings.max_command_timeout_ms // unit_ms
            raise InvalidArgument(f"{argument} is {value}; this server's maximum is {maximum}")
        timeout_s = max(timeout_s, value * unit_ms / 1000)
    return timeout_s


def check_env(env: Any) -> dict[str, str]:
    """The environment variables every process of the session starts with."""
    if env is None:
        return {}
    if not isinstance(env, Mapping) or not all(isinstance(v, str) for v in env.values()):
        raise InvalidArgument(f"env must be an object of names to string values, not {env!r:.100}")
    if len(env) > MAX_ENV_VARIABLES:
        raise InvalidArgument(f"env has {len(env)} variables; at most {MAX_ENV_VARIABLES} are allowed")
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise InvalidArgument(f"env: {name!r:.100} is not a variable name (letters, digits and _)")
        if name.startswith("COVE_"):
            raise InvalidArgument(f"env: {name} is refused: names starting with COVE_ are Cove's own")
        if not is_text(value):
            raise InvalidArgument(f"env: the value of {name} must be text without NUL characters")
    size = sum(len(name.encode()) + len(value.encode()) for name, value in env.items())
    if size > MAX_ENV_BYTES:
        raise InvalidArgument(f"env is {size} bytes of names and values; at most {MAX_ENV_BYTES} are allowed")
    return dict(env)

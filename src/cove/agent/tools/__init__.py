"""The tools a session serves: each one a name, a JSON Schema for its arguments, and a function.

Tool functions return the text that MCP's `content[0].text` carries, in the formats AgentBay's SDK
parses, and raise `ToolError` for a failure the caller should see (`isError: true`).
"""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: `typing` is a large part of a small agent
    from collections.abc import Callable
    from typing import Any

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


class ToolError(Exception):
    """The tool ran and failed; the message is the text the caller gets with isError."""


class InvalidArguments(Exception):
    """The arguments do not fit the tool's schema; the message names the argument."""


class Tool:
    """A plain class, not a dataclass: `dataclasses` brings `inspect` and `ast` with it, over 1 MiB
    of an agent that otherwise runs one shell command."""

    __slots__ = ("description", "name", "properties", "required", "run")

    def __init__(
        self,
        *,
        name: str,
        description: str,
        run: Callable[[dict[str, Any]], str],
        properties: dict[str, dict[str, Any]] | None = None,
        required: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.description = description
        self.run = run
        self.properties = properties if properties is not None else {}
        self.required = required

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    @property
    def input_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": self.properties,
            "required": list(self.required),
            "additionalProperties": False,
        }

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "inputSchema": self.input_schema}

    def check(self, arguments: Any) -> dict[str, Any]:
        """The arguments, if they fit the schema; otherwise InvalidArguments naming the culprit."""
        if not isinstance(arguments, dict):
            raise InvalidArguments(f"{self.name}: arguments must be a JSON object")
        for name in self.required:
            if name not in arguments:
                raise InvalidArguments(f"{self.name}: argument '{name}' is required")
        for name, value in arguments.items():
            schema = self.properties.get(name)
            if schema is None:
                raise InvalidArguments(f"{self.name}: unknown argument '{name}'")
            _check_value(f"{self.name}: argument '{name}'", schema, value)
        return arguments


def _check_value(where: str, schema: dict[str, Any], value: Any) -> None:
    expected = schema.get("type")
    if expected is not None:
        types = JSON_TYPES[expected]
        if not isinstance(value, types) or (expected != "boolean" and isinstance(value, bool)):
            raise InvalidArguments(f"{where} must be of type {expected}")
    if "enum" in schema and value not in schema["enum"]:
        raise InvalidArguments(f"{where} must be one of {', '.join(map(str, schema['enum']))}")
    if "minimum" in schema and value < schema["minimum"]:
        raise InvalidArguments(f"{where} must be at least {schema['minimum']}")
    if expected == "array" and "items" in schema:
        for index, item in enumerate(value):
            _check_value(f"{where}[{index}]", schema["items"], item)
    if expected == "object" and "properties" in schema:
        for name in schema.get("required", ()):
            if name not in value:
                raise InvalidArguments(f"{where}: '{name}' is required")
        for name, item in value.items():
            if name in schema["properties"]:
                _check_value(f"{where}.{name}", schema["properties"][name], item)
    if (
        expected == "object"
        and "additionalProperties" in schema
        and isinstance(schema["additionalProperties"], dict)
    ):
        for name, item in value.items():
            _check_value(f"{where}.{name}", schema["additionalProperties"], item)


def hold_state() -> bool:
    """Whether a loaded tool module remembers something a later call needs (processes, baselines,
    kernels)."""
    modules = (sys.modules.get(f"{__name__}.{name}") for name in ("processes", "files", "code"))
    return any(module.holds_state() for module in modules if module is not None)


TOOL_NAMES: dict[str, tuple[str, ...]] = {
    "shell": ("shell",),
    "processes": (
        "process_start",
        "process_output",
        "process_write",
        "process_resize",
        "process_kill",
        "process_wait",
        "process_list",
        "kill_all_processes",
    ),
    "files": (
        "read_file",
        "write_file",
        "list_directory",
        "create_directory",
        "delete_file",
        "move_file",
        "edit_file",
        "get_file_info",
        "search_files",
        "read_multiple_files",
        "get_file_change",
    ),
    "code": ("run_code", "code_context"),
    "computer": (
        "click_mouse",
        "move_mouse",
        "drag_mouse",
        "scroll",
        "get_cursor_position",
        "input_text",
        "press_keys",
        "release_keys",
        "get_screen_size",
        "screenshot",
        "list_root_windows",
        "get_active_window",
        "activate_window",
        "close_window",
        "maximize_window",
        "minimize_window",
        "restore_window",
        "resize_window",
        "fullscreen_window",
        "focus_mode",
        "get_installed_apps",
        "start_app",
        "list_visible_apps",
        "stop_app_by_pname",
        "stop_app_by_pid",
        "stop_app_by_cmd",
    ),
    "browser": ("browser_start", "stopChrome"),
    "page_use": (
        "page_use_navigate",
        "page_use_screenshot",
        "page_use_close_session",
        "page_use_act_async",
        "page_use_observe_async",
        "page_use_extract_async",
        "page_use_login",
    ),
}
"""Each tool module's tool names, so that a call imports only the module of the tool it names (a
test keeps this in step with the modules' TOOLS)."""
MODULE_OF = {name: module for module, names in TOOL_NAMES.items() for name in names}


def tool_names() -> list[str]:
    return sorted(MODULE_OF)


def find_tool(name: str) -> Tool | None:
    """The tool called `name`, importing its module alone (the other modules stay unloaded)."""
    module = MODULE_OF.get(name)
    if module is None:
        return None
    tools: list[Tool] = importlib.import_module(f"{__name__}.{module}").TOOLS
    return next((tool for tool in tools if tool.name == name), None)


def all_tools() -> dict[str, Tool]:
    """Every tool by name, in the order of TOOL_NAMES (this imports every tool module)."""
    return {name: tool for name in MODULE_OF if (tool := find_tool(name)) is not None}

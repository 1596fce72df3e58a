"""The tools a session serves: each one a name, a JSON Schema for its arguments, and a function.

Tool functions return the text that MCP's `content[0].text` carries, in the formats AgentBay's SDK
parses, and raise `ToolError` for a failure the caller should see (`isError: true`).
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    run: Callable[[dict[str, Any]], str]
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    required: tuple[str, ...] = ()

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


def all_tools() -> dict[str, Tool]:
    """Every tool by name (imported here, so the agent loads tool modules only when serving)."""
    from . import browser, code, computer, files, page_use, processes, shell

    modules = (shell, processes, files, code, computer, browser, page_use)
    return {tool.name: tool for module in modules for tool in module.TOOLS}

"""docs/tools.md describes the tool catalogue the agent really serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.agent.tools import Tool, all_tools
from cove.sessions.manager import HOST_TOOLS

DOC = (Path(__file__).parents[2] / "docs" / "tools.md").read_text()


@pytest.mark.parametrize("tool", all_tools().values(), ids=lambda tool: tool.name)
def test_every_tool_and_argument_is_documented(tool: Tool) -> None:
    assert f"`{tool.name}`" in DOC
    section = DOC[DOC.index(f"`{tool.name}`") :]
    for argument in tool.properties:
        assert f"`{argument}`" in section, f"{tool.name}: argument {argument} is not in docs/tools.md"


def test_every_schema_is_a_closed_object() -> None:
    for tool in all_tools().values():
        schema = tool.input_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert set(schema["required"]) <= set(schema["properties"]), tool.name
        assert tool.description.strip(), tool.name


@pytest.mark.parametrize("tool", HOST_TOOLS, ids=lambda tool: tool["name"])
def test_the_servers_own_tools_are_documented(tool: dict[str, object]) -> None:
    assert f"`{tool['name']}`" in DOC

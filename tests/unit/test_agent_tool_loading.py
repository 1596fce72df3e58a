"""The agent imports a tool's module on the tool's first call, and only that module."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

from cove.agent import tools
from cove.sandbox.agent_files import copy_agent

AGENT_DIR = Path(tools.__file__).resolve().parent.parent
HEAVY_MODULES = ("subprocess", "socket", "socketserver", "threading", "json", "typing", "re", "enum")
"""Modules the agent's shell path does without: each, with what it imports, a few hundred KiB of an
agent whose interpreter alone takes about 2.3 MiB (bench/agent_memory.py)."""


def test_the_index_of_tool_names_matches_every_tool_module() -> None:
    for module, names in tools.TOOL_NAMES.items():
        defined = [tool.name for tool in importlib.import_module(f"cove.agent.tools.{module}").TOOLS]
        assert tuple(defined) == names, module


def test_an_unknown_name_finds_no_tool() -> None:
    assert tools.find_tool("no_such_tool") is None


def test_a_shell_call_loads_no_other_tool_module_nor_a_heavy_one(tmp_path: Path) -> None:
    # A fresh interpreter, as in a sandbox: the agent package imported as `agent`, with init beside
    # it (its launcher starts commands), standard library only.
    copy_agent(AGENT_DIR, tmp_path / "agent")
    script = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
from agent.server import Agent
answer = Agent().answer({{"id": 1, "method": "tools/call",
                          "params": {{"name": "shell", "arguments": {{"command": "echo hi"}}}}}})
loaded = sorted(name for name in sys.modules if name.startswith("agent.tools."))
heavy = sorted(name for name in {HEAVY_MODULES!r} if name in sys.modules)
print(repr({{"answer": answer, "loaded": loaded, "heavy": heavy}}))
"""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, check=True
    )
    found = ast.literal_eval(done.stdout)
    assert "hi" in found["answer"]["result"]["content"][0]["text"]
    assert found["loaded"] == ["agent.tools.shell"]
    assert found["heavy"] == []

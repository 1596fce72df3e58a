"""The size of a session's desktop, which the host tells the agent (runtime.py) and its display runs
at (agent/display.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Screen:
    width: int = 1280
    height: int = 800


DEFAULT_SCREEN = Screen()
"""AgentBay's computer default, and the size of sessions made by a Cove without screen sizes."""

"""Installed applications, read from freedesktop .desktop files: the start menu's folders and the
user's Desktop folder, as `get_installed_apps` reports them."""

from __future__ import annotations

import configparser
import os
import re
from typing import Any

START_MENU_DIRS = ("/usr/share/applications", "/usr/local/share/applications", "~/.local/share/applications")
DESKTOP_DIRS = ("~/Desktop",)
SYSTEM_CATEGORIES = frozenset({"Settings", "System"})
"""An entry in one of these categories is a system tool, unless it is also a terminal emulator: the
terminal is what a user opens, not a setting."""
FIELD_CODE = re.compile(r"\s*%[fFuUdDnNickvm]")


def entries(start_menu: bool, desktop: bool, ignore_system_apps: bool) -> list[dict[str, Any]]:
    """Apps as AgentBay's InstalledApp: name, start_cmd and, when the entry names one, work_directory."""
    folders = (START_MENU_DIRS if start_menu else ()) + (DESKTOP_DIRS if desktop else ())
    found: dict[str, dict[str, Any]] = {}
    for folder in folders:
        path = os.path.expanduser(folder)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if name.endswith(".desktop") and name not in found:
                app = _read(os.path.join(path, name), ignore_system_apps)
                if app is not None:
                    found[name] = app
    return list(found.values())


def _read(path: str, ignore_system_apps: bool) -> dict[str, Any] | None:
    parser = configparser.RawConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
        entry = parser["Desktop Entry"]
    except (configparser.Error, KeyError, UnicodeDecodeError):
        return None
    if entry.get("Type") != "Application" or "Exec" not in entry or "Name" not in entry:
        return None
    if entry.get("NoDisplay", "").lower() == "true" or entry.get("Hidden", "").lower() == "true":
        return None
    categories = set(filter(None, entry.get("Categories", "").split(";")))
    if ignore_system_apps and categories & SYSTEM_CATEGORIES and "TerminalEmulator" not in categories:
        return None
    app: dict[str, Any] = {"name": entry["Name"], "start_cmd": FIELD_CODE.sub("", entry["Exec"]).strip()}
    if entry.get("Path"):
        app["work_directory"] = entry["Path"]
    return app

"""Key names for `press_keys`, spelled as AgentBay's SDK rewrites them before sending.

AgentBay's session turns "ctrl", "CTRL" or "control" into "Ctrl", "A" into "a", and so on, in every
`press_keys` call (through `computer` or `call_mcp_tool`); Cove's SDK does the same, so both send
identical requests. Names it does not know go out unchanged.
"""

from __future__ import annotations

from typing import Any

NAMES = {
    "ctrl": "Ctrl",
    "control": "Ctrl",
    "alt": "Alt",
    "shift": "Shift",
    "win": "Win",
    "windows": "Win",
    "meta": "Meta",
    "super": "Super",
    "cmd": "Command",
    "command": "Command",
    "tab": "Tab",
    "enter": "Enter",
    "return": "Enter",
    "esc": "Escape",
    "escape": "Escape",
    "backspace": "Backspace",
    "delete": "Delete",
    "del": "Delete",
    "insert": "Insert",
    "ins": "Insert",
    "home": "Home",
    "end": "End",
    "pageup": "PageUp",
    "pgup": "PageUp",
    "pagedown": "PageDown",
    "pgdn": "PageDown",
    "space": "Space",
    "capslock": "CapsLock",
    "numlock": "NumLock",
    "scrolllock": "ScrollLock",
    "printscreen": "PrintScreen",
    "prtsc": "PrintScreen",
    "pause": "Pause",
    "break": "Pause",
    "up": "ArrowUp",
    "arrowup": "ArrowUp",
    "down": "ArrowDown",
    "arrowdown": "ArrowDown",
    "left": "ArrowLeft",
    "arrowleft": "ArrowLeft",
    "right": "ArrowRight",
    "arrowright": "ArrowRight",
    "minus": "-",
    "equal": "=",
    "leftbracket": "[",
    "rightbracket": "]",
    "backslash": "\\",
    "semicolon": ";",
    "quote": "'",
    "comma": ",",
    "period": ".",
    "slash": "/",
    "backtick": "`",
    **{f"f{number}": f"F{number}" for number in range(1, 25)},
}


def normalize_key(key: Any) -> Any:
    """One key's name: a letter in lower case, a known name in its spelling, anything else as given."""
    if not isinstance(key, str) or not key:
        return key
    if len(key) == 1 and key.isalpha():
        return key.lower()
    return NAMES.get(key.lower(), key)


def normalize_keys(keys: Any) -> Any:
    """A list of key names normalized; anything but a list (or tuple) is left for the tool to refuse."""
    return [normalize_key(key) for key in keys] if isinstance(keys, list | tuple) else keys

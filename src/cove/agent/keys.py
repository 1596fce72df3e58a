"""AgentBay's key names, as its SDK writes them for `press_keys` and as users pass them to
`release_keys` (unchanged), mapped to the X keysyms xdotool presses. Names match without regard to
case, so "ctrl", "Ctrl" and "CTRL" are one key."""

from __future__ import annotations

import string

NAMED = {
    "ctrl": "Control_L",
    "control": "Control_L",
    "alt": "Alt_L",
    "shift": "Shift_L",
    "win": "Super_L",
    "windows": "Super_L",
    "super": "Super_L",
    "meta": "Meta_L",
    "cmd": "Super_L",
    "command": "Super_L",
    "tab": "Tab",
    "enter": "Return",
    "return": "Return",
    "esc": "Escape",
    "escape": "Escape",
    "backspace": "BackSpace",
    "delete": "Delete",
    "del": "Delete",
    "insert": "Insert",
    "ins": "Insert",
    "home": "Home",
    "end": "End",
    "pageup": "Prior",
    "pgup": "Prior",
    "pagedown": "Next",
    "pgdn": "Next",
    "space": "space",
    "capslock": "Caps_Lock",
    "numlock": "Num_Lock",
    "scrolllock": "Scroll_Lock",
    "printscreen": "Print",
    "prtsc": "Print",
    "pause": "Pause",
    "break": "Pause",
    "up": "Up",
    "arrowup": "Up",
    "down": "Down",
    "arrowdown": "Down",
    "left": "Left",
    "arrowleft": "Left",
    "right": "Right",
    "arrowright": "Right",
    "minus": "minus",
    "-": "minus",
    "equal": "equal",
    "=": "equal",
    "leftbracket": "bracketleft",
    "[": "bracketleft",
    "rightbracket": "bracketright",
    "]": "bracketright",
    "backslash": "backslash",
    "\\": "backslash",
    "semicolon": "semicolon",
    ";": "semicolon",
    "quote": "apostrophe",
    "'": "apostrophe",
    "comma": "comma",
    ",": "comma",
    "period": "period",
    ".": "period",
    "slash": "slash",
    "/": "slash",
    "backtick": "grave",
    "`": "grave",
    **{f"f{n}": f"F{n}" for n in range(1, 25)},
    **{c: c for c in string.ascii_lowercase + string.digits},
}


def keysym(name: str) -> str:
    """The X keysym for an AgentBay key name; ValueError names a key it does not know."""
    found = NAMED.get(name.lower())
    if found is None:
        raise ValueError(f"unknown key '{name}'")
    return found

"""Characters `input_text` types that the keyboard map lacks, bound to spare keycodes before typing.

xdotool types such a character (é, ß, 中) by binding it to a spare keycode for one key press and
unbinding it right after. An app reads the keyboard map lazily, when the key event reaches it, and
may find the binding gone by then: the character is lost (seen one time in several on a busy host).
So the agent binds them first, with xmodmap, and leaves them bound; xdotool then finds them in the
map like any other key. The spare keycodes are those the map left empty when the agent first looked
(19 in Xvfb's default map); a text needing more is typed in pieces, each bound just before it is
typed, with a pause between them for apps to read the keys of the last piece.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

from . import display
from .tools import ToolError

SPARE_PATH = f"{display.FRAMEBUFFER_DIR}/spare-keycodes.json"
"""The spare keycodes, found once per display: later they hold characters bound here."""
PIECE_PAUSE_S = 0.2
_ROW = re.compile(r"^\s*(\d+)\s*(.*)$")
_KEYSYM = re.compile(r"0x([0-9a-f]+)")
WITHOUT_KEYSYM = {"\n", "\t"}
"""Typed by xdotool as Return and Tab, which every map has."""


def keysym(char: str) -> int:
    """X's keysym for a character: Latin-1 keysyms are the code point, the rest 0x1000000 above it."""
    code = ord(char)
    return code if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF else 0x1000000 + code


def read_map() -> dict[int, list[int]]:
    """Each keycode's keysyms (none for a spare one), from `xmodmap -pk`."""
    rows = display.run(["xmodmap", "-pk"]).stdout.decode(errors="replace").splitlines()
    found: dict[int, list[int]] = {}
    for row in rows:
        match = _ROW.match(row)
        if match:
            found[int(match[1])] = [int(value, 16) for value in _KEYSYM.findall(match[2]) if int(value, 16)]
    return found


def spare_keycodes(keymap: dict[int, list[int]]) -> list[int]:
    """The keycodes kept for binding characters: empty ones, as they were when first asked for."""
    try:
        with open(SPARE_PATH) as saved:
            spare = json.load(saved)
        if isinstance(spare, list) and all(isinstance(code, int) for code in spare):
            return spare
    except (OSError, ValueError):
        pass  # a new display, or a file the session broke: look again
    spare = [code for code, symbols in sorted(keymap.items()) if not symbols]
    with open(SPARE_PATH, "w") as saved:
        json.dump(spare, saved)
    return spare


def typable_pieces(text: str) -> Iterator[str]:
    """`text` in pieces, each yielded once the characters it needs are bound in the keyboard map."""
    try:
        keymap = read_map()
    except ToolError:  # an image without xmodmap: xdotool binds for each key itself
        yield text
        return
    present = {symbol for symbols in keymap.values() for symbol in symbols}
    missing = {char for char in text if char not in WITHOUT_KEYSYM and keysym(char) not in present}
    spare = spare_keycodes(keymap) if missing else []
    if not spare:
        yield text  # nothing to bind, or nowhere to bind it: xdotool binds for each key itself
        return
    for number, (piece, needed) in enumerate(_split(text, missing, len(spare))):
        if number:
            time.sleep(PIECE_PAUSE_S)
        _bind(needed, spare, keymap)
        yield piece


def _split(text: str, missing: set[str], room: int) -> Iterator[tuple[str, list[str]]]:
    """Pieces of `text` that each need at most `room` of the `missing` characters, and which."""
    start, needed = 0, list[str]()
    for index, char in enumerate(text):
        if char in missing and char not in needed:
            if len(needed) == room:
                yield text[start:index], needed
                start, needed = index, []
            needed.append(char)
    yield text[start:], needed


def _bind(chars: list[str], spare: list[int], keymap: dict[int, list[int]]) -> None:
    """Bind `chars` to spare keycodes, keeping those already bound to one of them."""
    wanted = {keysym(char) for char in chars}
    held = {keymap[code][0] for code in spare if keymap.get(code)}
    free = [code for code in spare if not keymap.get(code) or keymap[code][0] not in wanted]
    expressions = []
    for symbol, code in zip(sorted(wanted - held), free, strict=False):
        expressions += ["-e", f"keycode {code} = 0x{symbol:x}"]
        keymap[code] = [symbol]
    if expressions:
        display.run(["xmodmap", *expressions])

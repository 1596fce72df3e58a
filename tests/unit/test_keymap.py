"""How input_text splits a text over the spare keycodes (the binding itself runs on a real display
in tests/integration/test_computer.py)."""

from __future__ import annotations

from cove.agent import keymap


def test_keysyms_are_latin1_code_points_or_unicode_ones() -> None:
    assert [keymap.keysym(char) for char in "a~é中"] == [0x61, 0x7E, 0xE9, 0x1004E2D]


def test_pieces_need_no_more_characters_than_there_is_room_for() -> None:
    pieces = list(keymap._split("aébécdçe", {"é", "ç", "d"}, 2))
    assert pieces == [("aébécd", ["é", "d"]), ("çe", ["ç"])]
    assert list(keymap._split("abc", set(), 2)) == [("abc", [])]

"""The screen size the agent's display starts at, read from the file the host writes (which the
sandbox could tamper with): the host's size, else 1280x800."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cove.agent import display

NOBODY = 65534
"""An owner other than the test's own, as the host's root appears inside a sandbox."""


def size_file(tmp_path: Path, text: str, owner: int = NOBODY) -> str:
    path = tmp_path / "screen.json"
    path.write_text(text)
    os.chown(path, owner, owner)
    return str(path)


def test_the_hosts_size_is_taken(tmp_path: Path) -> None:
    assert display.screen_size(size_file(tmp_path, '{"width": 1023, "height": 767}')) == (1023, 767)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[1024, 768]",
        '{"width": 1024}',
        '{"width": 1024, "height": "768"}',
        '{"width": 0, "height": 768}',
        '{"width": 7681, "height": 768}',
        '{"width": true, "height": 768}',
    ],
)
def test_a_size_that_makes_no_sense_is_the_default(tmp_path: Path, text: str) -> None:
    assert display.screen_size(size_file(tmp_path, text)) == (1280, 800)


def test_no_file_or_one_the_session_user_wrote_is_the_default(tmp_path: Path) -> None:
    assert display.screen_size(str(tmp_path / "missing")) == (1280, 800)
    mine = size_file(tmp_path, '{"width": 1024, "height": 768}', owner=os.getuid())
    assert display.screen_size(mine) == (1280, 800)

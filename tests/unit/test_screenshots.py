"""The screenshots `system_screenshot` keeps: signed URLs, the last few per session, swept when gone."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cove.errors import SandboxError
from cove.sessions import screenshots
from cove.sessions.screenshots import ScreenshotNotFound, Screenshots, ScreenshotUrlNotValid

PNG = b"\x89PNG\r\n\x1a\n" + b"rest of the image"


class FakeAgent:
    def __init__(self, image: bytes = PNG, error: str = "") -> None:
        self.image, self.error = image, error

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert (method, params) == ("tools/call", {"name": "screenshot", "arguments": {"format": "png"}})
        if self.error:
            return {"content": [{"type": "text", "text": self.error}], "isError": True}
        text = json.dumps({"type": "image", "data": base64.b64encode(self.image).decode()})
        return {"content": [{"type": "text", "text": text}], "isError": False}


def take(shots: Screenshots, session_id: str, agent: Any = None) -> tuple[str, str]:
    """The image's name and token from the URL that `take` answers."""
    fake: Any = agent or FakeAgent()
    url = shots.take(session_id, fake)["content"][0]["text"]
    parts = urlsplit(url)
    assert parts.path.startswith(f"/v1/screenshots/{session_id}/") and parts.path.endswith(".png")
    return parts.path.rsplit("/", 1)[1].removesuffix(".png"), parse_qs(parts.query)["token"][0]


def test_a_url_opens_its_image_only(tmp_path: Path) -> None:
    shots = Screenshots(tmp_path, "http://cove")
    name, token = take(shots, "session-a")
    with shots.open("session-a", name, token) as image:
        assert image.read() == PNG
    for session_id, other, bad in (("session-b", name, token), ("session-a", name, token + "x")):
        with pytest.raises(ScreenshotUrlNotValid):
            shots.open(session_id, other, bad)
    expired = f"{int(time.time()) - 1}.{token.split('.')[1]}"
    with pytest.raises(ScreenshotUrlNotValid):
        shots.open("session-a", name, expired)


def test_a_session_keeps_its_last_images_and_loses_them_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(screenshots, "KEEP_PER_SESSION", 2)
    shots = Screenshots(tmp_path, "http://cove")
    first, second, third = (take(shots, "session-a") for _ in range(3))
    with pytest.raises(ScreenshotNotFound):
        shots.open("session-a", *first)
    shots.open("session-a", *second).close()
    take(shots, "session-b")
    shots.sweep(["session-b"])
    with pytest.raises(ScreenshotNotFound):
        shots.open("session-a", *third)
    shots.forget("session-b")
    assert list((tmp_path / "screenshots").iterdir()) == []


def test_the_agents_failures_are_answered(tmp_path: Path) -> None:
    shots = Screenshots(tmp_path, "http://cove")
    failing: Any = FakeAgent(error="no display")
    assert shots.take("session-a", failing)["isError"]
    with pytest.raises(SandboxError):
        take(shots, "session-a", FakeAgent(image=b"GIF89a"))

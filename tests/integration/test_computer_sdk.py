"""Cove's own `session.computer` against a real session's desktop: every method, its effect checked."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cove import AgentBayError, AsyncSession, MouseButton, Session, Window
from tests.integration.computer_tools import XTERM_ON_GVISOR, until
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, CoveServer, sdk_session
from tests.integration.test_agentbay_sdk import PROXY_VARIABLES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(image: bytes) -> tuple[int, int]:
    assert image[:8] == PNG_MAGIC and image[12:16] == b"IHDR"
    width, height = struct.unpack(">II", image[16:24])
    return width, height


def jpeg_size(image: bytes) -> tuple[int, int]:
    """The size in a JPEG's start-of-frame segment."""
    assert image[:3] == b"\xff\xd8\xff"
    at = 2
    while image[at + 1] not in (0xC0, 0xC1, 0xC2):
        at += 2 + struct.unpack(">H", image[at + 2 : at + 4])[0]
    height, width = struct.unpack(">HH", image[at + 5 : at + 9])
    return width, height


def cursor(session: Session) -> tuple[int, int]:
    position = json.loads(session.computer.get_cursor_position().data)
    return position["x"], position["y"]


@BOTH_RUNTIMES
def test_the_pointer_the_keyboard_and_the_screen(session: Session, server: CoveServer) -> None:
    computer = session.computer
    size = computer.get_screen_size()
    assert size.success and size.data == {"width": 1280, "height": 800, "dpiScalingFactor": 1.0}
    for x, y in ((0, 0), (1279, 799), (640, 123)):
        assert computer.move_mouse(x, y).data is True
        assert cursor(session) == (x, y)
    assert computer.click_mouse(10, 20).success and cursor(session) == (10, 20)
    assert computer.click_mouse(11, 21, MouseButton.DOUBLE_LEFT).success and cursor(session) == (11, 21)
    assert computer.click_mouse(12, 22, "right").success and cursor(session) == (12, 22)
    assert computer.drag_mouse(100, 100, 300, 200, "middle").success and cursor(session) == (300, 200)
    assert computer.scroll(400, 300, "down", 3).success and cursor(session) == (400, 300)

    off = computer.move_mouse(1280, 0)
    assert (off.success, off.data, off.error_message) == (False, None, "x 1280 is off the screen (0 to 1279)")
    assert off.request_id
    unknown = computer.press_keys(["ctrl", "Hyper"])
    assert not unknown.success and "unknown key 'Hyper'" in unknown.error_message
    with pytest.raises(ValueError, match="Invalid button"):
        computer.drag_mouse(0, 0, 1, 1, "double_left")

    url = computer.screenshot()
    assert url.success and url.data.startswith(f"{server.url}/v1/screenshots/{session.session_id}/")
    downloaded = httpx.get(url.data)  # no API key: the URL's token is its key
    assert downloaded.status_code == 200 and png_size(downloaded.content) == (1280, 800)
    png = computer.beta_take_screenshot()
    assert (png.success, png.type, png.mime_type, png.width, png.height) == (
        True,
        "image",
        "image/png",
        1280,
        800,
    )
    assert png_size(png.data) == (1280, 800)
    jpeg = computer.beta_take_screenshot("jpg")
    assert jpeg.mime_type == "image/jpeg" and jpeg_size(jpeg.data) == (1280, 800)
    with pytest.raises(ValueError, match="Invalid format"):
        computer.beta_take_screenshot("gif")


FULL_SCREEN = {"absolute_upper_left_x": 0, "absolute_upper_left_y": 0, "width": 1280, "height": 800}


def titled(session: Session, title: str) -> Window | None:
    return next((w for w in session.computer.list_root_windows().windows if w.title == title), None)


def visible(server: CoveServer, session: Session, title: str) -> bool:
    """Whether the window is mapped (a minimized one is not)."""
    script = f"DISPLAY=:99 xdotool search --onlyvisible --name '^{title}$'"
    return bool(server.sandbox(session.session_id, script).stdout.strip())


def active(session: Session) -> int | None:
    window = session.computer.get_active_window().window
    return window.window_id if window else None


@pytest.fixture
def either_session(
    request: pytest.FixtureRequest, server: CoveServer, runtime: str | None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """A session made by Cove's SDK on `runtime`, or one made by the unmodified official AgentBay SDK
    (EITHER_SESSION): both have the same `session.computer`."""
    if request.param == "cove":
        with sdk_session(server, "linux_latest", runtime) as session:
            yield session
        return
    import agentbay

    for name in PROXY_VARIABLES:  # the official client ignores NO_PROXY
        monkeypatch.delenv(name, raising=False)
    official = agentbay.AgentBay(api_key=KEY_A, cfg=agentbay.Config(endpoint=server.url, timeout_ms=60_000))
    created = official.create()
    assert created.success, created.error_message
    yield created.session
    created.session.delete()


EITHER_SESSION = pytest.mark.parametrize(
    ("either_session", "runtime"),
    [("cove", "runc"), pytest.param("cove", "gvisor", marks=XTERM_ON_GVISOR), ("official", None)],
    ids=["cove-runc", "cove-gvisor", "official"],
    indirect=True,
)
"""Cove's SDK on each runtime; the official SDK cannot name one, so its session is on the server's
default."""


@EITHER_SESSION
@pytest.mark.filterwarnings(r"ignore:Config\(endpoint=:DeprecationWarning")
def test_apps_their_windows_and_typed_text(either_session: Any, server: CoveServer) -> None:
    session = either_session
    computer = session.computer
    apps = computer.get_installed_apps()
    assert apps.success and "xterm" in [app.start_cmd for app in apps.data]
    assert computer.get_installed_apps(start_menu=False).data == []

    typing = computer.start_app("xterm -title typing -e sh -c 'cat > /tmp/typed.txt'", work_directory="/tmp")
    assert typing.success and typing.data[0].pname == "xterm" and "cat" in (typing.data[0].cmdline or "")
    window = until(lambda: titled(session, "typing"))
    assert computer.activate_window(window.window_id).success
    until(lambda: active(session) == window.window_id)
    lines = "héllo wörld 42\n" + "cove here\n" * 4
    assert computer.input_text(lines).success
    until(lambda: session.file_system.read_file("/tmp/typed.txt").content == lines)  # and on the screen
    # select a "cove" on the screen, by dragging over it and by double-clicking it; the middle
    # button pastes it into the terminal (the lines are 13 px high, 6 px a character)
    window = titled(session, "typing")
    row = window.absolute_upper_left_y + 30
    assert computer.drag_mouse(
        window.absolute_upper_left_x + 3, row, window.absolute_upper_left_x + 27, row
    ).success
    assert computer.click_mouse(window.absolute_upper_left_x + 200, row, "middle").success
    assert computer.input_text("|").success
    time.sleep(0.5)  # past xterm's multi-click time: the drag's click would make a triple click
    assert computer.click_mouse(window.absolute_upper_left_x + 10, row, "double_left").success
    assert computer.click_mouse(window.absolute_upper_left_x + 200, row, "middle").success
    assert computer.press_keys(["RETURN"]).success
    assert computer.press_keys(["shift"], hold=True).success
    assert computer.press_keys(["A"]).success  # sent as "a": Shift, held, makes it "A"
    assert computer.release_keys(["Shift"]).success
    assert computer.press_keys(["b"]).success and computer.press_keys(["enter"]).success
    assert computer.press_keys(["CTRL", "d"]).success
    typed = lines + "cove|cove\nAb\n"
    until(lambda: session.file_system.read_file("/tmp/typed.txt").content == typed)
    until(lambda: titled(session, "typing") is None)  # cat ended, and the terminal with it

    first = computer.start_app("xterm -title first").data[0].pid
    second = computer.start_app("xterm -title second").data[0].pid
    until(lambda: {first, second} <= {app.pid for app in computer.list_visible_apps().data})
    one, two = until(lambda: titled(session, "first")), until(lambda: titled(session, "second"))
    assert (one.pid, one.pname, two.pid) == (first, "xterm", second)
    assert computer.activate_window(two.window_id).success
    until(lambda: active(session) == two.window_id)
    assert computer.click_mouse(one.absolute_upper_left_x + 20, one.absolute_upper_left_y + 20).success
    until(lambda: active(session) == one.window_id)  # a click into a window activates it

    assert computer.resize_window(one.window_id, 600, 400).success
    # the window manager keeps to xterm's character cells: within one cell of the size asked
    until(
        lambda: 584 < titled(session, "first").width <= 600 and 384 < titled(session, "first").height <= 400
    )
    assert computer.maximize_window(one.window_id).success
    until(lambda: titled(session, "first").width == 1280)
    assert computer.minimize_window(one.window_id).success
    until(lambda: not visible(server, session, "first"))
    assert computer.restore_window(one.window_id).success
    until(lambda: visible(server, session, "first"))

    until(lambda: active(session) == one.window_id)
    assert computer.focus_mode(True).success
    until(lambda: not visible(server, session, "second"))
    assert visible(server, session, "first")
    assert computer.focus_mode(False).success
    until(lambda: visible(server, session, "second"))

    assert computer.fullscreen_window(one.window_id).success
    until(lambda: {key: getattr(titled(session, "first"), key) for key in FULL_SCREEN} == FULL_SCREEN)

    assert computer.close_window(two.window_id).success
    until(lambda: second not in {app.pid for app in computer.list_visible_apps().data})
    gone = computer.close_window(two.window_id)
    assert not gone.success and f"unknown window_id {two.window_id}" in gone.error_message

    assert computer.stop_app_by_pid(first).success
    until(lambda: first not in {app.pid for app in computer.list_visible_apps().data}, timeout=3)
    assert not computer.stop_app_by_pid(first).success
    by_cmd = computer.start_app("xterm -title by-cmd").data[0].pid
    by_name = computer.start_app("xterm -title by-name").data[0].pid
    until(lambda: {by_cmd, by_name} <= {app.pid for app in computer.list_visible_apps().data})
    assert computer.stop_app_by_cmd("pkill -f 'title by-[c]md'").success
    until(lambda: {app.pid for app in computer.list_visible_apps().data} == {by_name})
    assert computer.stop_app_by_pname("xterm").success
    until(lambda: computer.list_visible_apps().data == [], timeout=3)
    assert not computer.stop_app_by_pname("xterm").success and not computer.stop_app_by_cmd("false").success
    assert computer.list_root_windows().windows == [] and computer.get_active_window().window is None


@BOTH_RUNTIMES
async def test_the_async_client_drives_the_same_desktop(async_session: AsyncSession) -> None:
    computer = async_session.computer
    assert (await computer.move_mouse(1279, 0)).success
    assert json.loads((await computer.get_cursor_position()).data) == {"x": 1279, "y": 0}
    shot = await computer.beta_take_screenshot("jpeg")
    assert jpeg_size(shot.data) == (1280, 800) and (shot.width, shot.height) == (1280, 800)
    await async_session.delete()
    with pytest.raises(AgentBayError, match="Failed to take screenshot via MCP tool 'screenshot'"):
        await computer.beta_take_screenshot()

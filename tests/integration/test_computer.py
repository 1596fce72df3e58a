"""The computer tools on a real session's X display: their effects are checked inside the sandbox."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.computer_tools import XTERM_RUNTIMES, Call, ToolFailed, tool_caller, until
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import CoveServer


@BOTH_RUNTIMES
def test_the_pointer_lands_exactly_including_the_corners(desktop: tuple[str, Call]) -> None:
    _, call = desktop
    size = json.loads(call("get_screen_size"))
    assert (size["width"], size["height"], size["dpiScalingFactor"]) == (1280, 800, 1.0)
    for x, y in ((0, 0), (size["width"] - 1, size["height"] - 1), (640, 123)):
        call("move_mouse", x=x, y=y)
        assert json.loads(call("get_cursor_position")) == {"x": x, "y": y}
    with pytest.raises(ToolFailed, match="x 1280 is off the screen"):
        call("move_mouse", x=1280, y=0)
    with pytest.raises(ToolFailed, match="unknown key 'Hyper'"):
        call("press_keys", keys=["Ctrl", "Hyper"])


@BOTH_RUNTIMES
def test_screenshots_are_png_and_jpeg_of_the_screen(desktop: tuple[str, Call]) -> None:
    _, call = desktop
    shot = json.loads(call("screenshot", format="png"))
    assert (shot["type"], shot["mime_type"], shot["width"], shot["height"]) == (
        "image",
        "image/png",
        1280,
        800,
    )
    image = base64.b64decode(shot["data"], validate=True)
    assert image[:8] == b"\x89PNG\r\n\x1a\n" and image[12:16] == b"IHDR"
    assert struct.unpack(">II", image[16:24]) == (1280, 800)
    shot = json.loads(call("screenshot", format="jpeg"))
    assert shot["mime_type"] == "image/jpeg" and base64.b64decode(shot["data"])[:3] == b"\xff\xd8\xff"


@BOTH_RUNTIMES
def test_a_session_keeps_to_the_screen_size_it_was_created_with(
    api: httpx.Client, new_session: Callable[..., dict[str, Any]]
) -> None:
    session = new_session(screen={"width": 1024, "height": 768})
    assert session["screen"] == {"width": 1024, "height": 768}
    session_id, call = session["session_id"], tool_caller(api, session["session_id"])
    info = api.get(f"/v1/sessions/{session_id}/info").json()["info"]
    assert info["screen"] == {"width": 1024, "height": 768}
    size = json.loads(call("get_screen_size"))
    assert (size["width"], size["height"]) == (1024, 768)
    shot = json.loads(call("screenshot", format="png"))
    assert (shot["width"], shot["height"]) == (1024, 768)
    assert struct.unpack(">II", base64.b64decode(shot["data"])[16:24]) == (1024, 768)
    call("move_mouse", x=1023, y=767)
    with pytest.raises(ToolFailed, match=r"x 1024 is off the screen \(0 to 1023\)"):
        call("move_mouse", x=1024, y=0)

    refused = api.post("/v1/sessions", json={"screen": {"width": 1024, "height": 100}})
    assert refused.status_code == 400, refused.text
    assert "screen.height" in refused.json()["error"]["message"] and "not 100" in refused.text


@BOTH_RUNTIMES
def test_the_screenshot_url_downloads_as_png_until_the_session_ends(
    desktop: tuple[str, Call], server: CoveServer, api: httpx.Client
) -> None:
    session_id, call = desktop
    url = call("system_screenshot")
    assert url.startswith(f"{server.url}/v1/screenshots/{session_id}/"), url
    image = httpx.get(url)  # no API key: the token in the URL is its key
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    png = image.content
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (1280, 800)

    tampered = url[:-1] + ("A" if url[-1] != "A" else "B")
    refused = httpx.get(tampered)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "ScreenshotUrlNotValid", (
        refused.text
    )
    assert httpx.get(url.replace("token=", "token=1.")).status_code == 403

    assert api.delete(f"/v1/sessions/{session_id}").status_code == 200
    gone = httpx.get(url)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ScreenshotNotFound", gone.text
    assert not (server.data_dir / "screenshots" / session_id).exists()


@BOTH_RUNTIMES
def test_the_tool_list_names_system_screenshot_once(desktop: tuple[str, Call], api: httpx.Client) -> None:
    session_id, _ = desktop
    tools: list[dict[str, Any]] = api.get(f"/v1/sessions/{session_id}/tools").json()["tools"]
    assert [tool["name"] for tool in tools].count("system_screenshot") == 1


def window_geometry(server: CoveServer, session_id: str, window_id: int) -> tuple[int, int]:
    script = f"DISPLAY=:99 xdotool getwindowgeometry --shell {window_id}"
    fields = dict(line.split("=", 1) for line in server.sandbox(session_id, script).stdout.split())
    return int(fields["WIDTH"]), int(fields["HEIGHT"])


def near(size: tuple[int, int], wanted: tuple[int, int], cell: int = 16) -> bool:
    return all(0 <= want - have < cell for have, want in zip(size, wanted, strict=True))


@XTERM_RUNTIMES
def test_an_app_and_its_window(desktop: tuple[str, Call], server: CoveServer) -> None:
    session_id, call = desktop
    apps = json.loads(call("get_installed_apps", start_menu=True, desktop=False, ignore_system_app=True))
    assert "xterm" in [app["start_cmd"] for app in apps]
    started = json.loads(call("start_app", start_cmd="xterm -title cove-test"))
    pid = started[0]["pid"]
    assert started[0]["pname"] == "xterm"
    until(lambda: pid in [app["pid"] for app in json.loads(call("list_visible_apps"))])
    window = next(w for w in json.loads(call("list_root_windows", timeout_ms=3000)) if w["pid"] == pid)
    assert window["window_title"] == "cove-test" and window["pname"] == "xterm"
    call("activate_window", window_id=window["window_id"])
    until(lambda: json.loads(call("get_active_window") or "{}").get("window_id") == window["window_id"])
    call("resize_window", window_id=window["window_id"], width=600, height=400)
    # openbox honours the app's size increments (xterm's are character cells): within one cell
    until(lambda: near(window_geometry(server, session_id, window["window_id"]), (600, 400)))
    for tool in ("maximize_window", "minimize_window", "restore_window", "fullscreen_window"):
        call(tool, window_id=window["window_id"])
    until(lambda: window_geometry(server, session_id, window["window_id"]) == (1280, 800))
    call("maximize_window", window_id=window["window_id"])  # both at once, then back from both
    call("restore_window", window_id=window["window_id"])
    until(lambda: near(window_geometry(server, session_id, window["window_id"]), (600, 400)))
    with pytest.raises(ToolFailed, match="unknown window_id 12345"):
        call("close_window", window_id=12345)
    call("stop_app_by_pid", pid=pid)
    until(lambda: pid not in [app["pid"] for app in json.loads(call("list_visible_apps"))], timeout=3)
    with pytest.raises(ToolFailed, match=f"pid {pid}"):
        call("stop_app_by_pid", pid=pid)


@XTERM_RUNTIMES
def test_typed_text_reaches_the_app(desktop: tuple[str, Call], server: CoveServer) -> None:
    session_id, call = desktop
    call("start_app", start_cmd="xterm -title typing -e sh -c 'cat > /tmp/typed.txt'")
    window = until(
        lambda: [w for w in json.loads(call("list_root_windows")) if w["window_title"] == "typing"]
    )[0]
    call("activate_window", window_id=window["window_id"])
    until(lambda: json.loads(call("get_active_window") or "{}").get("window_id") == window["window_id"])
    call("input_text", text="héllo wörld 42\n")
    call("press_keys", keys=["Ctrl", "d"])
    until(lambda: server.sandbox(session_id, "cat /tmp/typed.txt").stdout == "héllo wörld 42\n")


@XTERM_RUNTIMES
def test_text_of_more_characters_than_spare_keycodes_arrives_whole(
    desktop: tuple[str, Call], server: CoveServer
) -> None:
    """Characters the keyboard map lacks are bound to spare keycodes (19 on Xvfb) before typing, in
    pieces when there are more of them."""
    session_id, call = desktop
    call("start_app", start_cmd="xterm -title typing -e sh -c 'cat > /tmp/typed.txt'")
    window = until(
        lambda: [w for w in json.loads(call("list_root_windows")) if w["window_title"] == "typing"]
    )[0]
    call("activate_window", window_id=window["window_id"])
    until(lambda: json.loads(call("get_active_window") or "{}").get("window_id") == window["window_id"])
    text = "αβγδεζηθικλμνξοπρστυφχψω ÀÉÎÕÜ 中文 ok\n"
    call("input_text", text=text)
    call("press_keys", keys=["Ctrl", "d"])
    until(lambda: server.sandbox(session_id, "cat /tmp/typed.txt").stdout == text)
    bound = server.sandbox(session_id, "DISPLAY=:99 xmodmap -pk").stdout
    assert "(U4E2D)" in bound, "the last piece's characters stay bound"


@BOTH_RUNTIMES
def test_a_killed_display_starts_again(desktop: tuple[str, Call], server: CoveServer) -> None:
    session_id, call = desktop
    assert "Xvfb" not in server.sandbox(session_id, "ps -eo comm").stdout, "no display before a call"
    call("move_mouse", x=10, y=20)
    server.sandbox(session_id, "pkill -KILL Xvfb")
    until(lambda: "Xvfb" not in server.sandbox(session_id, "ps -eo comm").stdout)
    assert json.loads(call("get_cursor_position")) == {"x": 640, "y": 400}, "a new display, pointer centred"
    assert "Xvfb" in server.sandbox(session_id, "ps -eo comm").stdout

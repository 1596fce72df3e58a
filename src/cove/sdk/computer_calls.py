"""`session.computer`: the desktop methods of AgentBay's SDK, each one computer tool call, and the
reading of each tool's answer into AgentBay's result.

Arguments, defaults and readings are AgentBay's (SDK 0.22.3), so code written for it behaves the
same: a wrong button, direction or screenshot format raises ValueError before any request; a tool
error is success=False with the tool's text as `error_message`; the list tools' answers must be
JSON arrays of objects, and anything else is a failed result, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import json
from enum import Enum
from typing import Any

from cove.sdk.core import Call
from cove.sdk.key_names import normalize_keys
from cove.sdk.models import (
    AgentBayError,
    AppOperationResult,
    BoolResult,
    InstalledApp,
    InstalledAppListResult,
    MouseButton,
    OperationResult,
    Process,
    ProcessListResult,
    ScreenshotResult,
    ScrollDirection,
    Window,
    WindowInfoResult,
    WindowListResult,
)
from cove.sdk.tool_calls import read_call

CLICK_BUTTONS = tuple(button.value for button in MouseButton)
DRAG_BUTTONS = ("left", "right", "middle")
DIRECTIONS = tuple(direction.value for direction in ScrollDirection)
IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg"}
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff"}


def _choice(what: str, value: Enum | str, allowed: tuple[str, ...]) -> str:
    chosen = value.value if isinstance(value, Enum) else value
    if chosen not in allowed:
        raise ValueError(f"Invalid {what} '{chosen}'. Must be one of {list(allowed)}")
    return str(chosen)


def _done(session_id: str, tool: str, arguments: dict[str, Any]) -> Call[BoolResult]:
    """A tool whose answer only says it was done: `data=True`."""
    return read_call(
        session_id, tool, arguments, BoolResult, lambda text: BoolResult(success=True, data=True)
    )


def _text(session_id: str, tool: str) -> Call[OperationResult]:
    """A tool whose text is the result, unparsed (`data`)."""
    return read_call(
        session_id, tool, {}, OperationResult, lambda text: OperationResult(success=True, data=text)
    )


# The mouse and the keyboard


def click_mouse(session_id: str, x: int, y: int, button: MouseButton | str) -> Call[BoolResult]:
    arguments = {"x": x, "y": y, "button": _choice("button", button, CLICK_BUTTONS)}
    return _done(session_id, "click_mouse", arguments)


def move_mouse(session_id: str, x: int, y: int) -> Call[BoolResult]:
    return _done(session_id, "move_mouse", {"x": x, "y": y})


def drag_mouse(
    session_id: str, from_x: int, from_y: int, to_x: int, to_y: int, button: MouseButton | str
) -> Call[BoolResult]:
    arguments = {
        "from_x": from_x,
        "from_y": from_y,
        "to_x": to_x,
        "to_y": to_y,
        "button": _choice("button", button, DRAG_BUTTONS),
    }
    return _done(session_id, "drag_mouse", arguments)


def scroll(
    session_id: str, x: int, y: int, direction: ScrollDirection | str, amount: int
) -> Call[BoolResult]:
    arguments = {"x": x, "y": y, "direction": _choice("direction", direction, DIRECTIONS), "amount": amount}
    return _done(session_id, "scroll", arguments)


def get_cursor_position(session_id: str) -> Call[OperationResult]:
    """`data` is the tool's JSON text {"x", "y"}, unparsed as in AgentBay."""
    return _text(session_id, "get_cursor_position")


def input_text(session_id: str, text: str) -> Call[BoolResult]:
    return _done(session_id, "input_text", {"text": text})


def press_keys(session_id: str, keys: list[str], hold: bool) -> Call[BoolResult]:
    return _done(session_id, "press_keys", {"keys": normalize_keys(keys), "hold": hold})


def release_keys(session_id: str, keys: list[str]) -> Call[BoolResult]:
    """The keys as given: AgentBay normalizes only `press_keys`."""
    return _done(session_id, "release_keys", {"keys": keys})


# The screen


def _read_screen_size(text: str) -> OperationResult:
    if not text:
        return OperationResult(success=True, data=text)
    try:
        return OperationResult(success=True, data=json.loads(text))
    except ValueError as error:
        return OperationResult(success=False, error_message=f"Failed to parse screen size JSON: {error}")


def get_screen_size(session_id: str) -> Call[OperationResult]:
    """`data` is {"width", "height", "dpiScalingFactor"}."""
    return read_call(session_id, "get_screen_size", {}, OperationResult, _read_screen_size)


def screenshot(session_id: str) -> Call[OperationResult]:
    """`data` is the URL of a PNG on the server (`system_screenshot`), fetchable with no API key."""
    return _text(session_id, "system_screenshot")


def image_format(format: str) -> str:
    """ "png" or "jpeg" ("jpg" is "jpeg"); anything else is a ValueError, as in AgentBay."""
    chosen = IMAGE_FORMATS.get((format or "").strip().lower())
    if chosen is None:
        raise ValueError("Invalid format: must be 'png', 'jpeg', or 'jpg'")
    return chosen


def read_image(text: str, format: str) -> ScreenshotResult:
    """The `screenshot` tool's JSON, checked as strictly as AgentBay checks it; ValueError says why not."""
    text = text.strip()
    if not text:
        raise ValueError("Screenshot tool returned empty data")
    if not text.startswith("{"):
        raise ValueError("Screenshot tool returned non-JSON data")
    try:
        answer = json.loads(text)
    except ValueError as error:
        raise ValueError(f"Invalid screenshot JSON: {error}") from error
    if not isinstance(answer, dict):
        raise ValueError("Invalid screenshot JSON: expected object")
    encoded, kind, mime_type = answer.get("data"), answer.get("type"), answer.get("mime_type")
    if not isinstance(encoded, str) or not encoded.strip():
        raise ValueError("Screenshot JSON missing base64 field")
    for name, value in (("type", kind), ("mime_type", mime_type)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"Invalid screenshot JSON: expected non-empty string '{name}'")
    width, height = answer.get("width"), answer.get("height")
    for name, value in (("width", width), ("height", height)):
        if value is not None and not isinstance(value, int):
            raise ValueError(f"Invalid screenshot JSON: expected integer '{name}'")
    try:
        image = base64.b64decode(encoded, validate=True)
    except binascii.Error as error:
        raise ValueError(f"Failed to decode screenshot data: {error}") from error
    if not image.startswith(MAGIC[format]):
        raise ValueError(f"Screenshot data does not match expected format '{format}'")
    if str(mime_type).strip().lower() != f"image/{format}":
        raise ValueError(
            f"Screenshot JSON mime_type does not match expected format: expected 'image/{format}', "
            f"got {mime_type!r}"
        )
    return ScreenshotResult(
        success=True, type=str(kind), data=image, mime_type=str(mime_type), width=width, height=height
    )


def beta_take_screenshot(session_id: str, format: str) -> Call[ScreenshotResult]:
    """The `screenshot` tool, straight: Cove serves it on every session (no LinkUrl needed)."""
    chosen = image_format(format)

    def read(text: str) -> ScreenshotResult:
        try:
            return read_image(text, chosen)
        except ValueError as error:
            return ScreenshotResult(success=False, error_message=str(error))

    return read_call(session_id, "screenshot", {"format": chosen}, ScreenshotResult, read)


def image_or_raise(result: ScreenshotResult) -> ScreenshotResult:
    """AgentBay's `beta_take_screenshot` raises on any failure, the server's or the image's."""
    if not result.success:
        raise AgentBayError(f"Failed to take screenshot via MCP tool 'screenshot': {result.error_message}")
    return result


# Windows


def _objects(answer: Any) -> list[dict[str, Any]]:
    """A JSON array of objects, as the list tools answer; ValueError otherwise."""
    if not isinstance(answer, list) or not all(isinstance(item, dict) for item in answer):
        raise ValueError("expected a JSON array of objects")
    return answer


def read_window(raw: Any) -> Window:
    """A window from its JSON (title under `window_title`), its child windows too."""
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    return Window(
        window_id=raw.get("window_id", 0),
        title=raw.get("window_title", ""),
        absolute_upper_left_x=raw.get("absolute_upper_left_x"),
        absolute_upper_left_y=raw.get("absolute_upper_left_y"),
        width=raw.get("width"),
        height=raw.get("height"),
        pid=raw.get("pid"),
        pname=raw.get("pname"),
        child_windows=[read_window(child) for child in _objects(raw.get("child_windows") or [])],
    )


def _read_windows(text: str) -> WindowListResult:
    try:
        windows = [read_window(raw) for raw in _objects(json.loads(text))] if text else []
    except ValueError as error:
        return WindowListResult(success=False, error_message=f"Failed to parse windows JSON: {error}")
    return WindowListResult(success=True, windows=windows)


def list_root_windows(session_id: str, timeout_ms: int) -> Call[WindowListResult]:
    return read_call(
        session_id, "list_root_windows", {"timeout_ms": timeout_ms}, WindowListResult, _read_windows
    )


def _read_active_window(text: str) -> WindowInfoResult:
    try:
        window = read_window(json.loads(text)) if text else None
    except ValueError as error:
        return WindowInfoResult(success=False, error_message=f"Failed to parse window JSON: {error}")
    return WindowInfoResult(success=True, window=window)


def get_active_window(session_id: str) -> Call[WindowInfoResult]:
    return read_call(session_id, "get_active_window", {}, WindowInfoResult, _read_active_window)


def window_action(session_id: str, tool: str, window_id: int) -> Call[BoolResult]:
    """activate, close, maximize, minimize, restore or fullscreen `window_id` (`tool` names which)."""
    return _done(session_id, tool, {"window_id": window_id})


def resize_window(session_id: str, window_id: int, width: int, height: int) -> Call[BoolResult]:
    return _done(session_id, "resize_window", {"window_id": window_id, "width": width, "height": height})


def focus_mode(session_id: str, on: bool) -> Call[BoolResult]:
    return _done(session_id, "focus_mode", {"on": on})


# Apps


def _read_apps(text: str) -> InstalledAppListResult:
    try:
        apps = [
            InstalledApp(
                name=raw.get("name", ""),
                start_cmd=raw.get("start_cmd", ""),
                stop_cmd=raw.get("stop_cmd"),
                work_directory=raw.get("work_directory"),
            )
            for raw in _objects(json.loads(text))
        ]
    except ValueError as error:
        return InstalledAppListResult(
            success=False, error_message=f"Failed to parse applications JSON: {error}"
        )
    return InstalledAppListResult(success=True, data=apps)


def get_installed_apps(
    session_id: str, start_menu: bool, desktop: bool, ignore_system_apps: bool
) -> Call[InstalledAppListResult]:
    """The tool's key is `ignore_system_app`, singular, as AgentBay sends it."""
    arguments = {"start_menu": start_menu, "desktop": desktop, "ignore_system_app": ignore_system_apps}
    return read_call(session_id, "get_installed_apps", arguments, InstalledAppListResult, _read_apps)


def _read_processes(text: str) -> ProcessListResult:
    try:
        processes = [
            Process(pname=raw.get("pname", ""), pid=raw.get("pid", 0), cmdline=raw.get("cmdline"))
            for raw in _objects(json.loads(text))
        ]
    except ValueError as error:
        return ProcessListResult(success=False, error_message=f"Failed to parse processes JSON: {error}")
    return ProcessListResult(success=True, data=processes)


def start_app(session_id: str, start_cmd: str, work_directory: str, activity: str) -> Call[ProcessListResult]:
    """`work_directory` and `activity` are sent only when given (not empty)."""
    arguments = {"start_cmd": start_cmd}
    if work_directory:
        arguments["work_directory"] = work_directory
    if activity:
        arguments["activity"] = activity
    return read_call(session_id, "start_app", arguments, ProcessListResult, _read_processes)


def list_visible_apps(session_id: str) -> Call[ProcessListResult]:
    """The processes that own a window."""
    return read_call(session_id, "list_visible_apps", {}, ProcessListResult, _read_processes)


def stop_app(session_id: str, tool: str, arguments: dict[str, Any]) -> Call[AppOperationResult]:
    """stop_app_by_pname, _by_pid or _by_cmd (`tool`), with its one argument."""
    return read_call(
        session_id, tool, arguments, AppOperationResult, lambda text: AppOperationResult(success=True)
    )

"""The computer tools: mouse, keyboard, screen, windows and apps on the session's X display, with
AgentBay's tool names, argument keys and answer texts (its SDK parses them; see docs/computer.md).

Every tool first makes sure the display runs (../display.py starts it on the first call). Mouse and
keyboard go through xdotool, windows through wmctrl (EWMH, which openbox honours), screenshots come
from Xvfb's framebuffer file. Bad input (a point off the screen, an unknown key, window or process)
is a tool error that names the value.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from .. import desktop_entries, display, keymap, keys, process_trees, screen_image
from . import Tool, ToolError
from .shell import run_command, spawn

BUTTONS = {"left": "1", "middle": "2", "right": "3"}
SCROLL_BUTTONS = {"up": "4", "down": "5", "left": "6", "right": "7"}
TYPING_DELAY_MS = 12
START_APP_SETTLE_S = 0.3
"""How long start_app watches a new app, so a start command that fails at once is an error."""
STOP_WAIT_S = 2.0
"""How long a stopped app gets to leave after SIGTERM before it is killed."""
STOP_CMD_TIMEOUT_MS = 30_000


def xdotool(*arguments: str, timeout: float = display.X_COMMAND_TIMEOUT_S) -> str:
    return display.run(["xdotool", *arguments], timeout=timeout).stdout.decode(errors="replace")


def screen_size() -> tuple[int, int]:
    width, height = xdotool("getdisplaygeometry").split()
    return int(width), int(height)


def point(arguments: dict[str, Any], x_key: str = "x", y_key: str = "y") -> list[str]:
    """The point as xdotool arguments, if it is on the screen."""
    width, height = screen_size()
    x, y = arguments[x_key], arguments[y_key]
    if not 0 <= x < width:
        raise ToolError(f"{x_key} {x} is off the screen (0 to {width - 1})")
    if not 0 <= y < height:
        raise ToolError(f"{y_key} {y} is off the screen (0 to {height - 1})")
    return [str(x), str(y)]


def done() -> str:
    return "true"


# Mouse and keyboard


def click_mouse(arguments: dict[str, Any]) -> str:
    button = arguments.get("button", "left")
    # xdotool waits --delay after every click (100 ms unless told): none after a single click, and
    # a short one between the two of a double click, well inside any double-click interval.
    if button == "double_left":
        clicks = ["click", "--repeat", "2", "--delay", "40", "1"]
    else:
        clicks = ["click", "--delay", "0", BUTTONS[button]]
    xdotool("mousemove", *point(arguments), *clicks)
    return done()


def move_mouse(arguments: dict[str, Any]) -> str:
    xdotool("mousemove", *point(arguments))
    return done()


def drag_mouse(arguments: dict[str, Any]) -> str:
    start, end = point(arguments, "from_x", "from_y"), point(arguments, "to_x", "to_y")
    button = BUTTONS[arguments.get("button", "left")]
    xdotool("mousemove", *start, "mousedown", button, "sleep", "0.05")
    xdotool("mousemove", *end, "sleep", "0.05", "mouseup", button)
    return done()


def scroll(arguments: dict[str, Any]) -> str:
    button = SCROLL_BUTTONS[arguments.get("direction", "up")]
    notches = str(arguments.get("amount", 1))
    xdotool("mousemove", *point(arguments), "click", "--repeat", notches, "--delay", "10", button)
    return done()


def get_cursor_position(arguments: dict[str, Any]) -> str:
    location = dict(line.split("=", 1) for line in xdotool("getmouselocation", "--shell").split())
    return json.dumps({"x": int(location["X"]), "y": int(location["Y"])})


def input_text(arguments: dict[str, Any]) -> str:
    text = arguments["text"]
    timeout = display.X_COMMAND_TIMEOUT_S + len(text) * TYPING_DELAY_MS * 4 / 1000
    for piece in keymap.typable_pieces(text):
        xdotool("type", "--delay", str(TYPING_DELAY_MS), "--", piece, timeout=timeout)
    return done()


def keysyms(names: list[str]) -> list[str]:
    if not names:
        raise ToolError("keys must name at least one key")
    try:
        return [keys.keysym(name) for name in names]
    except ValueError as error:
        raise ToolError(str(error)) from None


def press_keys(arguments: dict[str, Any]) -> str:
    pressed = keysyms(arguments["keys"])
    if arguments.get("hold", False):
        xdotool("keydown", *pressed)
    else:
        xdotool("key", "+".join(pressed))
    return done()


def release_keys(arguments: dict[str, Any]) -> str:
    xdotool("keyup", *reversed(keysyms(arguments["keys"])))
    return done()


# Screen


def get_screen_size(arguments: dict[str, Any]) -> str:
    width, height = screen_size()
    return json.dumps({"width": width, "height": height, "dpiScalingFactor": 1.0})


def screenshot(arguments: dict[str, Any]) -> str:
    kind = "jpeg" if arguments.get("format", "png") in ("jpeg", "jpg") else "png"
    try:
        frame = screen_image.read_frame(display.FRAMEBUFFER_PATH)
        image = screen_image.jpeg(frame) if kind == "jpeg" else screen_image.png(frame)
    except (OSError, ValueError, subprocess.SubprocessError) as error:
        raise ToolError(f"screenshot failed: {error}") from None
    data = base64.b64encode(image).decode()
    answer = {"type": "image", "mime_type": f"image/{kind}", "data": data}
    return json.dumps({**answer, "width": frame.width, "height": frame.height})


# Windows


def process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip()
    except OSError:
        return ""


def windows() -> list[dict[str, Any]]:
    """The window manager's top-level windows, as AgentBay's Window objects."""
    found = []
    for line in display.run(["wmctrl", "-lpG"]).stdout.decode(errors="replace").splitlines():
        fields = line.split(None, 8)
        if len(fields) < 8:
            continue
        window_id, _desktop, pid, x, y, width, height = fields[:7]
        window: dict[str, Any] = {
            "window_id": int(window_id, 16),
            "window_title": fields[8] if len(fields) > 8 else "",
            "absolute_upper_left_x": int(x),
            "absolute_upper_left_y": int(y),
            "width": int(width),
            "height": int(height),
            "child_windows": [],
        }
        if int(pid) > 0:
            window.update(pid=int(pid), pname=process_name(int(pid)))
        found.append(window)
    return found


def known_window(arguments: dict[str, Any]) -> str:
    """The window id as wmctrl wants it, if the window manager knows it."""
    window_id = arguments["window_id"]
    if window_id not in {window["window_id"] for window in windows()}:
        raise ToolError(f"unknown window_id {window_id}: list_root_windows lists the windows")
    return hex(window_id)


def wmctrl_window(*arguments: str) -> Callable[[dict[str, Any]], str]:
    """A tool that runs `wmctrl -i -r <window> <arguments>` on a known window."""

    def tool(call: dict[str, Any]) -> str:
        display.run(["wmctrl", "-i", "-r", known_window(call), *arguments])
        return done()

    return tool


def leave_maximized_and_fullscreen(window: str) -> None:
    """Two wmctrl calls: one `-b` changes at most two properties at a time."""
    display.run(["wmctrl", "-i", "-r", window, "-b", "remove,maximized_vert,maximized_horz"])
    display.run(["wmctrl", "-i", "-r", window, "-b", "remove,fullscreen"])


def list_root_windows(arguments: dict[str, Any]) -> str:
    return json.dumps(windows(), ensure_ascii=False)


def get_active_window(arguments: dict[str, Any]) -> str:
    active = display.run(["xdotool", "getactivewindow"], check=False).stdout.strip()
    if not active.isdigit():
        return ""
    window = next((w for w in windows() if w["window_id"] == int(active)), None)
    return "" if window is None else json.dumps(window, ensure_ascii=False)


def activate_window(arguments: dict[str, Any]) -> str:
    display.run(["wmctrl", "-i", "-a", known_window(arguments)])
    return done()


def close_window(arguments: dict[str, Any]) -> str:
    display.run(["wmctrl", "-i", "-c", known_window(arguments)])
    return done()


def minimize_window(arguments: dict[str, Any]) -> str:
    xdotool("windowminimize", str(int(known_window(arguments), 16)))
    return done()


def restore_window(arguments: dict[str, Any]) -> str:
    window = known_window(arguments)
    leave_maximized_and_fullscreen(window)
    display.run(["wmctrl", "-i", "-a", window])
    return done()


def resize_window(arguments: dict[str, Any]) -> str:
    window = known_window(arguments)
    leave_maximized_and_fullscreen(window)
    xdotool("windowsize", str(int(window, 16)), str(arguments["width"]), str(arguments["height"]))
    return done()


FOCUS_MODE_PATH = f"{display.FRAMEBUFFER_DIR}/focus-mode"
"""The windows focus mode minimized, to bring back when it ends (a file: the agent may leave)."""


def focus_mode(arguments: dict[str, Any]) -> str:
    """On: every window but the active one is minimized. Off: those windows come back."""
    if arguments["on"]:
        active = display.run(["xdotool", "getactivewindow"], check=False).stdout.strip()
        others = [w["window_id"] for w in windows() if str(w["window_id"]) != active.decode()]
        for window_id in others:
            xdotool("windowminimize", str(window_id))
        with open(FOCUS_MODE_PATH, "w") as saved:
            json.dump(others, saved)
        return done()
    try:
        with open(FOCUS_MODE_PATH) as saved:
            minimized = json.load(saved)
        os.unlink(FOCUS_MODE_PATH)
    except (OSError, ValueError):
        return done()
    present = {w["window_id"] for w in windows()}
    for window_id in minimized:
        if window_id in present:
            display.run(["wmctrl", "-i", "-R", hex(window_id)], check=False)
    return done()


# Apps


def describe_process(pid: int) -> dict[str, Any]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            cmdline = file.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmdline = ""
    return {"pname": process_name(pid), "pid": pid, "cmdline": cmdline}


def get_installed_apps(arguments: dict[str, Any]) -> str:
    apps = desktop_entries.entries(
        arguments.get("start_menu", True),
        arguments.get("desktop", False),
        arguments.get("ignore_system_app", True),
    )
    return json.dumps(apps, ensure_ascii=False)


def start_app(arguments: dict[str, Any]) -> str:
    """Start the command on the display as a process tree of its own; answers the tree's processes."""
    process, tree = spawn(
        arguments["start_cmd"],
        arguments.get("work_directory") or None,
        {"DISPLAY": display.DISPLAY},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        label="app",
    )
    with contextlib.suppress(subprocess.TimeoutExpired):
        code = process.wait(START_APP_SETTLE_S)
        tree.release()
        if code != 0:
            raise ToolError(f"start_cmd '{arguments['start_cmd']}' exited with code {code}")
    if process.returncode is None:
        display.release_when_done(process, tree)
    pids = process_trees.members(tree.cgroup) if tree.cgroup is not None else []
    pids = pids or ([process.pid] if process.returncode is None else [])
    return json.dumps([describe_process(pid) for pid in sorted(pids)], ensure_ascii=False)


def list_visible_apps(arguments: dict[str, Any]) -> str:
    pids = sorted({w["pid"] for w in windows() if "pid" in w})
    return json.dumps([describe_process(pid) for pid in pids], ensure_ascii=False)


def stoppable(pid: int) -> bool:
    """Whether `pid` is one of the session user's processes that a user may stop."""
    return pid not in (1, os.getpid()) and pid in process_trees.other_processes()


def stop(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL for what is still there after STOP_WAIT_S."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline and any(stoppable(pid) for pid in pids):
        time.sleep(0.02)
    for pid in pids:
        if stoppable(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def stop_app_by_pname(arguments: dict[str, Any]) -> str:
    pname = arguments["pname"]
    pids = [pid for pid in process_trees.other_processes() if stoppable(pid) and process_name(pid) == pname]
    if not pids:
        raise ToolError(f"no process named '{pname}'")
    stop(pids)
    return done()


def stop_app_by_pid(arguments: dict[str, Any]) -> str:
    pid = arguments["pid"]
    if not stoppable(pid):
        raise ToolError(f"no process with pid {pid} that can be stopped")
    stop([pid])
    return done()


def stop_app_by_cmd(arguments: dict[str, Any]) -> str:
    answer = run_command(arguments["stop_cmd"], STOP_CMD_TIMEOUT_MS, None, {"DISPLAY": display.DISPLAY})
    if answer["exit_code"] != 0:
        raise ToolError(f"stop_cmd exited with code {answer['exit_code']}: {answer['stderr'].strip()}")
    return done()


def on_display(run: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str]:
    """The tool, run once the display answers (started on the first call, again if it died)."""

    def tool(arguments: dict[str, Any]) -> str:
        display.ensure()
        return run(arguments)

    return tool


INTEGER = {"type": "integer"}
WINDOW = {"window_id": {"type": "integer", "description": "a window_id from list_root_windows"}}
KEYS = {"type": "array", "items": {"type": "string"}, "description": "key names such as Ctrl, a, Enter"}
TOOL_SPECS: list[tuple[str, str, Callable[[dict[str, Any]], str], dict[str, Any], tuple[str, ...]]] = [
    (
        "click_mouse",
        "Click at a point of the screen.",
        click_mouse,
        {"x": INTEGER, "y": INTEGER, "button": {"type": "string", "enum": [*BUTTONS, "double_left"]}},
        ("x", "y"),
    ),
    (
        "move_mouse",
        "Move the pointer to a point of the screen.",
        move_mouse,
        {"x": INTEGER, "y": INTEGER},
        ("x", "y"),
    ),
    (
        "drag_mouse",
        "Press a button at one point, move to another with it held, and release it there.",
        drag_mouse,
        {
            "from_x": INTEGER,
            "from_y": INTEGER,
            "to_x": INTEGER,
            "to_y": INTEGER,
            "button": {"type": "string", "enum": list(BUTTONS)},
        },
        ("from_x", "from_y", "to_x", "to_y"),
    ),
    (
        "scroll",
        "Scroll the wheel at a point of the screen, `amount` clicks in a direction.",
        scroll,
        {
            "x": INTEGER,
            "y": INTEGER,
            "direction": {"type": "string", "enum": list(SCROLL_BUTTONS)},
            "amount": {"type": "integer", "minimum": 1},
        },
        ("x", "y"),
    ),
    ("get_cursor_position", 'The pointer\'s position: {"x", "y"}.', get_cursor_position, {}, ()),
    (
        "input_text",
        "Type text (any Unicode) into the focused window.",
        input_text,
        {"text": {"type": "string"}},
        ("text",),
    ),
    (
        "press_keys",
        "Press keys together (a shortcut such as Ctrl+c), and release them unless `hold`.",
        press_keys,
        {"keys": KEYS, "hold": {"type": "boolean"}},
        ("keys",),
    ),
    ("release_keys", "Release keys pressed with hold.", release_keys, {"keys": KEYS}, ("keys",)),
    ("get_screen_size", "The screen's width, height and dpiScalingFactor.", get_screen_size, {}, ()),
    (
        "screenshot",
        "The screen as a base64 PNG or JPEG: JSON with type, mime_type, data, width and height.",
        screenshot,
        {"format": {"type": "string", "enum": ["png", "jpeg", "jpg"]}},
        (),
    ),
    (
        "list_root_windows",
        "The top-level windows: id, title, position, size, pid and process name.",
        list_root_windows,
        {"timeout_ms": {"type": "integer", "minimum": 0}},
        (),
    ),
    ("get_active_window", "The focused window, or empty text when none is.", get_active_window, {}, ()),
    ("activate_window", "Raise and focus a window.", activate_window, WINDOW, ("window_id",)),
    ("close_window", "Ask a window to close.", close_window, WINDOW, ("window_id",)),
    (
        "maximize_window",
        "Maximize a window.",
        wmctrl_window("-b", "add,maximized_vert,maximized_horz"),
        WINDOW,
        ("window_id",),
    ),
    ("minimize_window", "Minimize (iconify) a window.", minimize_window, WINDOW, ("window_id",)),
    (
        "restore_window",
        "Bring a window back from maximized, fullscreen or minimized.",
        restore_window,
        WINDOW,
        ("window_id",),
    ),
    (
        "resize_window",
        "Resize a window's client area (it leaves maximized or fullscreen first).",
        resize_window,
        {**WINDOW, "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1}},
        ("window_id", "width", "height"),
    ),
    (
        "fullscreen_window",
        "Make a window fullscreen.",
        wmctrl_window("-b", "add,fullscreen"),
        WINDOW,
        ("window_id",),
    ),
    (
        "focus_mode",
        "On: minimize every window but the active one; off: bring them back.",
        focus_mode,
        {"on": {"type": "boolean"}},
        ("on",),
    ),
    (
        "get_installed_apps",
        "Apps from the .desktop files of the start menu and the Desktop folder: name, start_cmd.",
        get_installed_apps,
        {
            "start_menu": {"type": "boolean"},
            "desktop": {"type": "boolean"},
            "ignore_system_app": {"type": "boolean"},
        },
        (),
    ),
    (
        "start_app",
        "Start an app on the display; answers its processes (pname, pid, cmdline).",
        start_app,
        {
            "start_cmd": {"type": "string"},
            "work_directory": {"type": "string"},
            "activity": {"type": "string"},
        },
        ("start_cmd",),
    ),
    ("list_visible_apps", "The processes that own a window: pname, pid, cmdline.", list_visible_apps, {}, ()),
    (
        "stop_app_by_pname",
        "Stop every process with this name.",
        stop_app_by_pname,
        {"pname": {"type": "string"}},
        ("pname",),
    ),
    ("stop_app_by_pid", "Stop one process.", stop_app_by_pid, {"pid": INTEGER}, ("pid",)),
    (
        "stop_app_by_cmd",
        "Run a command that stops an app.",
        stop_app_by_cmd,
        {"stop_cmd": {"type": "string"}},
        ("stop_cmd",),
    ),
]

TOOLS = [
    Tool(name=name, description=description, run=on_display(run), properties=properties, required=required)
    for name, description, run, properties, required in TOOL_SPECS
]

"""`session.computer` without a server: the requests each method sends, AgentBay's validation and
key names, and the reading of the tools' answers into AgentBay's results."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cove import (
    AgentBay,
    AgentBayError,
    AsyncAgentBay,
    Config,
    InstalledApp,
    MouseButton,
    Process,
    ScrollDirection,
    SessionData,
    Window,
)
from cove.sdk import computer_calls, tool_calls
from cove.sdk.key_names import normalize_keys

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 16
Answer = Callable[[str, dict[str, Any]], tuple[str, bool]]


def finish(call: Any, text: str, is_error: bool = False) -> Any:
    """The result of `call` when its tool answers `text`."""
    body = {"request_id": "r1", "result": {"content": [{"type": "text", "text": text}], "isError": is_error}}
    return call.finish(200, {}, json.dumps(body).encode())


def shot(**fields: Any) -> str:
    return json.dumps(
        {"type": "image", "mime_type": "image/png", "data": base64.b64encode(PNG).decode()} | fields
    )


# The requests


def desktop(seen: list[tuple[str, dict[str, Any]]], answer: Answer) -> httpx.MockTransport:
    """A server whose tools answer `answer(tool, arguments)`; each call lands in `seen`."""

    def respond(request: httpx.Request) -> httpx.Response:
        tool = request.url.path.rsplit("/", 1)[1]
        arguments = json.loads(request.content)["arguments"]
        seen.append((tool, arguments))
        text, is_error = answer(tool, arguments)
        result = {"content": [{"type": "text", "text": text}], "isError": is_error}
        return httpx.Response(200, json={"request_id": "r1", "result": result})

    return httpx.MockTransport(respond)


TEXTS = {
    "get_cursor_position": '{"x": 3, "y": 4}',
    "get_screen_size": '{"width": 1280, "height": 800, "dpiScalingFactor": 1.0}',
    "system_screenshot": "http://cove.test/v1/screenshots/s/1.png?token=t",
    "screenshot": shot(),
    "list_root_windows": '[{"window_id": 7, "window_title": "xterm", "pid": 9}]',
    "get_active_window": '{"window_id": 7, "window_title": "xterm"}',
    "get_installed_apps": '[{"name": "XTerm", "start_cmd": "xterm"}]',
    "start_app": '[{"pname": "xterm", "pid": 9, "cmdline": "xterm"}]',
    "list_visible_apps": '[{"pname": "xterm", "pid": 9}]',
}


def test_every_method_sends_agentbays_tool_and_arguments() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    with AgentBay(api_key="k", cfg=Config(endpoint="http://cove.test")) as agent_bay:
        agent_bay._http = httpx.Client(
            base_url="http://cove.test",
            transport=desktop(seen, lambda tool, _: (TEXTS.get(tool, "ok"), False)),
        )
        computer = agent_bay._bind(SessionData(session_id="session-1")).computer
        results = [
            computer.click_mouse(1, 2),
            computer.click_mouse(1, 2, MouseButton.DOUBLE_LEFT),
            computer.move_mouse(5, 6),
            computer.drag_mouse(1, 2, 3, 4, "right"),
            computer.scroll(1, 2),
            computer.scroll(1, 2, ScrollDirection.LEFT, 3),
            computer.get_cursor_position(),
            computer.input_text("héllo"),
            computer.press_keys(["ctrl", "C"]),
            computer.press_keys(["shift"], hold=True),
            computer.release_keys(["shift"]),
            computer.get_screen_size(),
            computer.screenshot(),
            computer.beta_take_screenshot(),
            computer.list_root_windows(),
            computer.get_active_window(),
            computer.activate_window(7),
            computer.close_window(7),
            computer.maximize_window(7),
            computer.minimize_window(7),
            computer.restore_window(7),
            computer.resize_window(7, 600, 400),
            computer.fullscreen_window(7),
            computer.focus_mode(True),
            computer.get_installed_apps(),
            computer.start_app("xterm"),
            computer.start_app("xterm", work_directory="/tmp", activity="a"),
            computer.list_visible_apps(),
            computer.stop_app_by_pname("xterm"),
            computer.stop_app_by_pid(9),
            computer.stop_app_by_cmd("pkill xterm"),
        ]
    assert all(result.success and result.request_id == "r1" for result in results)
    assert seen == [
        ("click_mouse", {"x": 1, "y": 2, "button": "left"}),
        ("click_mouse", {"x": 1, "y": 2, "button": "double_left"}),
        ("move_mouse", {"x": 5, "y": 6}),
        ("drag_mouse", {"from_x": 1, "from_y": 2, "to_x": 3, "to_y": 4, "button": "right"}),
        ("scroll", {"x": 1, "y": 2, "direction": "up", "amount": 1}),
        ("scroll", {"x": 1, "y": 2, "direction": "left", "amount": 3}),
        ("get_cursor_position", {}),
        ("input_text", {"text": "héllo"}),
        ("press_keys", {"keys": ["Ctrl", "c"], "hold": False}),
        ("press_keys", {"keys": ["Shift"], "hold": True}),
        ("release_keys", {"keys": ["shift"]}),
        ("get_screen_size", {}),
        ("system_screenshot", {}),
        ("screenshot", {"format": "png"}),
        ("list_root_windows", {"timeout_ms": 3000}),
        ("get_active_window", {}),
        ("activate_window", {"window_id": 7}),
        ("close_window", {"window_id": 7}),
        ("maximize_window", {"window_id": 7}),
        ("minimize_window", {"window_id": 7}),
        ("restore_window", {"window_id": 7}),
        ("resize_window", {"window_id": 7, "width": 600, "height": 400}),
        ("fullscreen_window", {"window_id": 7}),
        ("focus_mode", {"on": True}),
        ("get_installed_apps", {"start_menu": True, "desktop": False, "ignore_system_app": True}),
        ("start_app", {"start_cmd": "xterm"}),
        ("start_app", {"start_cmd": "xterm", "work_directory": "/tmp", "activity": "a"}),
        ("list_visible_apps", {}),
        ("stop_app_by_pname", {"pname": "xterm"}),
        ("stop_app_by_pid", {"pid": 9}),
        ("stop_app_by_cmd", {"stop_cmd": "pkill xterm"}),
    ]
    assert results[0].data is True and results[6].data == '{"x": 3, "y": 4}'
    assert results[11].data == {"width": 1280, "height": 800, "dpiScalingFactor": 1.0}
    assert results[12].data.startswith("http://cove.test/v1/screenshots/")
    assert results[14].windows == [Window(window_id=7, title="xterm", pid=9)]
    assert results[25].data == [Process(pname="xterm", pid=9, cmdline="xterm")]


async def test_the_async_client_has_the_same_computer() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    async with AsyncAgentBay(api_key="k", cfg=Config(endpoint="http://cove.test")) as agent_bay:
        await agent_bay._http.aclose()
        agent_bay._http = httpx.AsyncClient(
            base_url="http://cove.test",
            transport=desktop(seen, lambda tool, _: (TEXTS.get(tool, "ok"), False)),
        )
        computer = agent_bay._bind(SessionData(session_id="session-1")).computer
        assert (await computer.press_keys(["CONTROL", "a"])).data is True
        assert (await computer.beta_take_screenshot()).data == PNG
        assert (await computer.get_installed_apps(desktop=True)).data == [
            InstalledApp(name="XTerm", start_cmd="xterm")
        ]
        with pytest.raises(ValueError):
            await computer.scroll(0, 0, "sideways")
    assert [tool for tool, _ in seen] == ["press_keys", "screenshot", "get_installed_apps"]
    assert seen[0][1]["keys"] == ["Ctrl", "a"]


def test_wrong_buttons_directions_and_formats_raise_before_any_request() -> None:
    with pytest.raises(ValueError, match="Invalid button 'left_double'"):
        computer_calls.click_mouse("s", 0, 0, "left_double")
    with pytest.raises(
        ValueError, match=r"Invalid button 'double_left'. Must be one of \['left', 'right', 'middle'\]"
    ):
        computer_calls.drag_mouse("s", 0, 0, 1, 1, MouseButton.DOUBLE_LEFT)
    with pytest.raises(ValueError, match="Invalid direction 'UP'"):
        computer_calls.scroll("s", 0, 0, "UP", 1)
    with pytest.raises(ValueError, match="Invalid format: must be 'png', 'jpeg', or 'jpg'"):
        computer_calls.beta_take_screenshot("s", "gif")
    call = computer_calls.beta_take_screenshot("s", " JPG ")
    assert call.body == {"arguments": {"format": "jpeg"}}


def test_a_tool_error_is_a_failure_with_the_tools_text() -> None:
    assert vars(finish(computer_calls.move_mouse("s", 1280, 0), "x 1280 is off the screen", True)) == {
        "request_id": "r1",
        "success": False,
        "error_message": "x 1280 is off the screen",
        "code": "",
        "http_status_code": 200,
        "data": None,
    }
    for call in (
        computer_calls.get_cursor_position("s"),
        computer_calls.list_root_windows("s", 3000),
        computer_calls.get_active_window("s"),
        computer_calls.start_app("s", "nope", "", ""),
        computer_calls.stop_app("s", "stop_app_by_pid", {"pid": 1}),
    ):
        result = finish(call, "it failed", True)
        assert (result.success, result.error_message) == (False, "it failed")
    with pytest.raises(AgentBayError, match="via MCP tool 'screenshot': no display"):
        computer_calls.image_or_raise(
            finish(computer_calls.beta_take_screenshot("s", "png"), "no display", True)
        )


def test_the_server_refusing_is_a_failure_too() -> None:
    body = json.dumps({"error": {"code": "SessionNotFound", "message": "no session s"}}).encode()
    result = computer_calls.list_visible_apps("s").finish(404, {}, body)
    assert (result.success, result.code, result.data) == (False, "SessionNotFound", [])
    with pytest.raises(AgentBayError, match="no session s"):
        computer_calls.image_or_raise(computer_calls.beta_take_screenshot("s", "png").finish(404, {}, body))


def test_screen_size_is_parsed_and_an_empty_answer_is_empty() -> None:
    call = computer_calls.get_screen_size("s")
    assert finish(call, '{"width": 1, "height": 2, "dpiScalingFactor": 1.0}').data["height"] == 2
    assert (finish(call, "").success, finish(call, "").data) == (True, "")
    broken = finish(call, "1280x800")
    assert not broken.success and broken.error_message.startswith("Failed to parse screen size JSON: ")


def test_windows_read_window_title_and_their_children() -> None:
    text = json.dumps(
        [
            {
                "window_id": 1,
                "window_title": "parent",
                "absolute_upper_left_x": 10,
                "absolute_upper_left_y": 20,
                "width": 300,
                "height": 200,
                "pid": 42,
                "pname": "xterm",
                "child_windows": [{"window_id": 2, "window_title": "child", "child_windows": [{}]}],
            },
            {},
        ]
    )
    windows = finish(computer_calls.list_root_windows("s", 3000), text).windows
    assert windows == [
        Window(
            window_id=1,
            title="parent",
            absolute_upper_left_x=10,
            absolute_upper_left_y=20,
            width=300,
            height=200,
            pid=42,
            pname="xterm",
            child_windows=[Window(window_id=2, title="child", child_windows=[Window()])],
        ),
        Window(window_id=0, title=""),
    ]
    assert finish(computer_calls.list_root_windows("s", 3000), "").windows == []
    active = computer_calls.get_active_window("s")
    assert finish(active, "").window is None and finish(active, "").success
    assert finish(active, '{"window_id": 5, "window_title": "t"}').window == Window(window_id=5, title="t")


@pytest.mark.parametrize("text", ['{"window_id": 1}', "[1, 2]", '[{"child_windows": [3]}]', "not json"])
def test_a_window_list_that_is_not_an_array_of_objects_fails(text: str) -> None:
    result = finish(computer_calls.list_root_windows("s", 3000), text)
    assert not result.success and result.error_message.startswith("Failed to parse windows JSON: ")


@pytest.mark.parametrize("text", ["", "{}", '[{"pid": 1}, "x"]'])
def test_apps_and_processes_need_a_json_array(text: str) -> None:
    apps = finish(computer_calls.get_installed_apps("s", True, False, True), text)
    assert not apps.success and apps.error_message.startswith("Failed to parse applications JSON: ")
    processes = finish(computer_calls.list_visible_apps("s"), text)
    assert not processes.success and processes.error_message.startswith("Failed to parse processes JSON: ")
    assert processes.data == []


def test_apps_and_processes_take_defaults_for_missing_fields() -> None:
    apps = finish(computer_calls.get_installed_apps("s", True, False, True), '[{}, {"stop_cmd": "x"}]').data
    assert apps == [InstalledApp(name="", start_cmd=""), InstalledApp(stop_cmd="x")]
    assert finish(computer_calls.list_visible_apps("s"), "[{}]").data == [
        Process(pname="", pid=0, cmdline=None)
    ]
    assert finish(computer_calls.list_visible_apps("s"), "[]").data == []


def test_a_screenshot_is_decoded_and_checked_as_agentbay_checks_it() -> None:
    png = computer_calls.image_or_raise(
        finish(computer_calls.beta_take_screenshot("s", "png"), shot(width=8, height=4))
    )
    assert (png.success, png.type, png.data, png.mime_type, png.width, png.height) == (
        True,
        "image",
        PNG,
        "image/png",
        8,
        4,
    )
    jpeg = shot(mime_type="IMAGE/JPEG", data=base64.b64encode(JPEG).decode())
    assert finish(computer_calls.beta_take_screenshot("s", "jpg"), jpeg).data == JPEG


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "returned empty data"),
        ("iVBORw0KGgo=", "non-JSON data"),
        ("{not json", "Invalid screenshot JSON"),
        (shot(data=""), "missing base64 field"),
        (shot(type=""), "non-empty string 'type'"),
        (shot(mime_type=None), "non-empty string 'mime_type'"),
        (shot(width="1280"), "integer 'width'"),
        (shot(height=1.5), "integer 'height'"),
        (shot(data="iVBO\nRw0K"), "Failed to decode screenshot data"),
        (shot(data=base64.b64encode(JPEG).decode()), "does not match expected format 'png'"),
        (shot(mime_type="image/jpeg"), "mime_type does not match expected format"),
    ],
)
def test_a_screenshot_that_is_not_right_raises(text: str, why: str) -> None:
    result = finish(computer_calls.beta_take_screenshot("s", "png"), text)
    assert not result.success and why in result.error_message
    with pytest.raises(AgentBayError, match=why):
        computer_calls.image_or_raise(result)


def test_press_keys_names_are_spelled_as_agentbays_session_spells_them() -> None:
    keys = ["CTRL", "control", "A", "7", "Win", "windows", "cmd", "RETURN", "esc", "pgdn", "up", "arrowLeft"]
    keys += ["f1", "F24", "f25", "minus", "backtick", "Hyper", "", "é", "ÉÉ"]
    assert normalize_keys(keys) == [
        "Ctrl",
        "Ctrl",
        "a",
        "7",
        "Win",
        "Win",
        "Command",
        "Enter",
        "Escape",
        "PageDown",
        "ArrowUp",
        "ArrowLeft",
        "F1",
        "F24",
        "f25",
        "-",
        "`",
        "Hyper",
        "",
        "é",
        "ÉÉ",
    ]
    assert normalize_keys(("alt", "TAB")) == ["Alt", "Tab"] and normalize_keys("ctrl") == "ctrl"


def test_call_mcp_tool_spells_press_keys_too_without_changing_the_callers_arguments() -> None:
    arguments = {"keys": ["ctrl", "V"], "hold": False}
    call = tool_calls.call_mcp_tool("s", "press_keys", arguments)
    assert call.body == {"arguments": {"keys": ["Ctrl", "v"], "hold": False}}
    assert arguments["keys"] == ["ctrl", "V"]
    assert tool_calls.call_mcp_tool("s", "release_keys", {"keys": ["ctrl"]}).body == {
        "arguments": {"keys": ["ctrl"]}
    }


KEYS = st.sampled_from(["window_id", "window_title", "child_windows", "pid", "pname", "start_cmd", "data"])
JSON = st.recursive(
    st.none() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10,
)
"""JSON values shaped like the tools' answers, and unlike them."""


@given(text=st.text(max_size=200) | JSON.map(json.dumps))
def test_any_answer_becomes_a_result_never_an_exception(text: str) -> None:
    for call in (
        computer_calls.list_root_windows("s", 3000),
        computer_calls.get_active_window("s"),
        computer_calls.get_installed_apps("s", True, False, True),
        computer_calls.start_app("s", "x", "", ""),
        computer_calls.get_screen_size("s"),
        computer_calls.beta_take_screenshot("s", "png"),
    ):
        assert finish(call, text).request_id == "r1"

"""The browser without a sandbox: Chromium's command line from AgentBay's options, the SDK's
BrowserOption on the wire, and the CDP URL's token."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove import BrowserOption, BrowserScreen, BrowserViewport
from cove.agent import browser
from cove.sessions import links


def test_honoured_options_become_chromium_switches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser, "user_namespaces", lambda: False)
    (tmp_path / "ext_a").mkdir()
    (tmp_path / "ext_a" / "manifest.json").write_text("{}")
    (tmp_path / "not_an_extension").mkdir()
    option = {
        "viewport": {"width": 1000, "height": 700},
        "userAgent": "agent/1",
        "cmdArgs": ["--lang=fr"],
        "defaultNavigateUrl": "chrome://version",
        "extensionPath": str(tmp_path),
        "useStealth": True,  # accepted, ignored
    }
    argv = browser.command(option, "/home/user/profile")
    assert argv[0] == "chromium" and "--no-sandbox" in argv
    assert "--remote-debugging-address=127.0.0.1" in argv and "--remote-debugging-port=9222" in argv
    assert "--user-data-dir=/home/user/profile" in argv and "--window-size=1000,700" in argv
    assert "--user-agent=agent/1" in argv and f"--load-extension={tmp_path}/ext_a" in argv
    assert argv[-2:] == ["--lang=fr", "chrome://version"]
    assert not any("Stealth" in arg for arg in argv)


def test_without_options_the_window_fills_the_display() -> None:
    argv = browser.command({}, "/p")
    assert "--window-size=1280,800" in argv and argv[-1] == "about:blank"
    assert not any(arg.startswith(("--user-agent", "--load-extension")) for arg in argv)


def test_chromium_keeps_its_own_sandbox_where_user_namespaces_can_be_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(browser, "user_namespaces", lambda: True)
    assert "--no-sandbox" not in browser.command({}, "/p")


def test_the_sdk_sends_agentbays_keys() -> None:
    option = BrowserOption(
        viewport=BrowserViewport(1280, 720), screen=BrowserScreen(), cmd_args=["--x"], browser_type="chrome"
    )
    assert option.to_map() == {
        "useStealth": False,
        "solveCaptchas": False,
        "viewport": {"width": 1280, "height": 720},
        "screen": {"width": 1920, "height": 1080},
        "extensionPath": "/tmp/extensions/",
        "cmdArgs": ["--x"],
        "browserType": "chrome",
    }
    with pytest.raises(ValueError, match="browser_type"):
        BrowserOption(browser_type="firefox")
    with pytest.raises(ValueError, match="extension_path"):
        BrowserOption(extension_path="")


def test_the_cdp_token_is_the_sessions_own(tmp_path: Path) -> None:
    token = links.cdp_token(tmp_path, "session-a")
    assert token == links.cdp_token(tmp_path, "session-a") != links.cdp_token(tmp_path, "session-b")
    assert token not in {links.desktop_token(tmp_path, "session-a", mode) for mode in (False, True)}

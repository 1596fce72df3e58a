"""The browser's proxy switches from AgentBay's `proxies` (a proxy with credentials, which starts the
chaining proxy, runs on real sessions in tests/integration/test_browser.py)."""

from __future__ import annotations

import pytest

from cove.agent import browser_proxy
from cove.agent.tools import InvalidArguments


def test_a_custom_proxy_is_chromiums_proxy_server() -> None:
    assert browser_proxy.switches(None) == [] and browser_proxy.switches([]) == []
    proxies = [{"type": "custom", "server": "proxy.example:3128"}]
    assert browser_proxy.switches(proxies) == ["--proxy-server=http://proxy.example:3128"]
    assert browser_proxy.switches([{"type": "custom", "server": "[fd00::1]:8080"}]) == [
        "--proxy-server=http://[fd00::1]:8080"
    ]


@pytest.mark.parametrize(
    ("proxies", "message"),
    [
        ([{"type": "wuying", "strategy": "restricted"}], "AgentBay's own proxy service"),
        ([{"type": "managed", "strategy": "polling", "userId": "u"}], "use type 'custom'"),
        ([{"type": "custom", "server": "a:1"}, {"type": "custom", "server": "b:2"}], "a list of one"),
        ([{"type": "custom", "server": "host:1 --disable-web-security"}], "host:port"),
        ([{"type": "custom"}], "host:port"),
        ("custom", "a list of one"),
    ],
)
def test_other_proxies_are_refused_naming_why(proxies: object, message: str) -> None:
    with pytest.raises(InvalidArguments, match=message):
        browser_proxy.switches(proxies)

"""Device and browser from a user agent: pure, no app."""
from __future__ import annotations

import pytest

from backoffice.users.agents import describe

OPERA_DESKTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0")
OPERA_ANDROID = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/120.0.0.0 Mobile Safari/537.36 OPR/79.0.0.0")
CHROME_ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Mobile Safari/537.36")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/119.0.0.0 Safari/537.36")
CHROME_LINUX = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/120.0.0.0 Safari/537.36")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.1 Mobile/15E148 Safari/604.1")


@pytest.mark.parametrize("ua,browser,os,device", [
    (OPERA_DESKTOP, "Opera 106", "Windows 10", "desktop"),
    (OPERA_ANDROID, "Opera 79", "Android 10", "mobile"),
    (CHROME_ANDROID, "Chrome Mobile 120", "Android 14", "mobile"),
    (ANDROID_TABLET, "Chrome 119", "Android 13", "tablet"),
    (CHROME_LINUX, "Chrome 120", "Linux", "desktop"),
    (SAFARI_IPHONE, "Mobile Safari 17", "iOS 17", "mobile"),
    ("", "", "", ""),
    (None, "", "", ""),
])
def test_describe(ua, browser, os, device):
    agent = describe(ua)
    assert (agent.browser, agent.os, agent.device) == (browser, os, device)


def test_chromium_opera_is_never_chrome_and_android_never_desktop_linux():
    assert "Chrome" not in describe(OPERA_DESKTOP).browser
    assert "Chrome" not in describe(OPERA_ANDROID).browser
    for ua in (CHROME_ANDROID, ANDROID_TABLET, OPERA_ANDROID):
        agent = describe(ua)
        assert agent.os.startswith("Android") and agent.device != "desktop"

"""Device and browser from a login's user agent (pure, no database).

Two rules the parser alone does not guarantee across its versions: a Chromium-based Opera
(`OPR/` in the string) is Opera, never Chrome; an Android device is never "desktop Linux".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from user_agents import parse

_OPR = re.compile(r"\bOPR/(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Agent:
    browser: str  # "Opera 106", "Chrome 120", "" when unknown
    os: str  # "Android 14", "Windows 10", "Linux", "" when unknown
    device: str  # "desktop", "mobile", "tablet", "bot", "" when unknown

    @property
    def summary(self) -> str:
        return " · ".join(p for p in (self.browser, self.os) if p)


def _major(version: str) -> str:
    return version.split(".")[0] if version else ""


@lru_cache(maxsize=2048)
def describe(user_agent: str | None) -> Agent:
    ua = (user_agent or "").strip()
    if not ua:
        return Agent("", "", "")
    parsed = parse(ua)
    browser = parsed.browser.family if parsed.browser.family != "Other" else ""
    version = _major(parsed.browser.version_string)
    opr = _OPR.search(ua)
    if opr:
        browser = "Opera"
        version = _major(opr.group(1))
    os_family = parsed.os.family if parsed.os.family != "Other" else ""
    os_version = parsed.os.version_string
    if "Android" in ua:
        os_family = "Android"
        match = re.search(r"Android (\d+(?:\.\d+)?)", ua)
        os_version = match.group(1) if match else os_version
    if parsed.is_bot:
        device = "bot"
    elif parsed.is_tablet:
        device = "tablet"
    elif parsed.is_mobile or (os_family == "Android" and "Mobile" in ua):
        device = "mobile"
    elif os_family == "Android":
        device = "tablet"
    elif parsed.is_pc:
        device = "desktop"
    else:
        device = ""
    os_text = f"{os_family} {_major(os_version)}".strip() if os_family in ("Android", "iOS", "Windows") and os_version else os_family
    if os_family == "Windows" and parsed.os.version_string:
        os_text = f"Windows {parsed.os.version_string}"
    return Agent(f"{browser} {version}".strip() if browser else "", os_text, device)

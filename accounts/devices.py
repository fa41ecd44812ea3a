"""What a sign-in's user agent says about the device, in a few words (plain Python).

``device_of`` names the browser (or API client) and the operating system without versions
(``Chrome on Windows``, ``Safari on iOS``, ``python-requests``): the device a sign-in is
recognised by, so a browser update is not a new device. ``describe`` adds the browser's
major version for the message the trader reads."""

from __future__ import annotations

import re

# Checked in order: several browsers name the others they are compatible with.
_BROWSERS = (
    ("Edge", r"Edg(?:e|A|iOS)?/(\d+)"),
    ("Opera", r"(?:OPR|Opera)/(\d+)"),
    ("Samsung Internet", r"SamsungBrowser/(\d+)"),
    ("Firefox", r"(?:Firefox|FxiOS)/(\d+)"),
    ("Chrome", r"(?:Chrome|CriOS)/(\d+)"),
    ("Safari", r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/"),
)
_SYSTEMS = (
    ("iOS", r"iPhone|iPad|iPod"),
    ("Android", r"Android"),
    ("Windows", r"Windows"),
    ("macOS", r"Mac OS X|Macintosh"),
    ("ChromeOS", r"CrOS"),
    ("Linux", r"Linux|X11"),
)
UNKNOWN = "unknown device"


def _browser(agent: str) -> tuple[str, str] | None:
    for name, pattern in _BROWSERS:
        found = re.search(pattern, agent)
        if found:
            return name, found.group(1)
    return None


def _system(agent: str) -> str:
    for name, pattern in _SYSTEMS:
        if re.search(pattern, agent):
            return name
    return ""


def _client(agent: str) -> str:
    """A program's own name (``curl/8.5.0`` -> ``curl``), for agents that are not browsers."""
    first = agent.split()[0] if agent.split() else ""
    name = first.split("/")[0]
    return name[:40] if name and name != "Mozilla" else ""


def device_of(agent: str | None) -> str:
    """The device a sign-in is recognised by: browser (or client) and system, no versions."""
    agent = (agent or "").strip()
    if not agent:
        return ""
    browser, system = _browser(agent), _system(agent)
    name = browser[0] if browser else _client(agent) or "browser"
    return f"{name} on {system}" if system else name


def describe(agent: str | None) -> str:
    """The device in a message: ``Chrome 120 on Windows``; ``unknown device`` without an agent."""
    agent = (agent or "").strip()
    if not agent:
        return UNKNOWN
    browser, system = _browser(agent), _system(agent)
    name = f"{browser[0]} {browser[1]}" if browser else _client(agent) or "browser"
    return f"{name} on {system}" if system else name


def request_ip(request) -> str | None:
    """The address a request came from (a DRF Request proxies META to the Django request)."""
    meta = getattr(request, "META", None) if request is not None else None
    return meta.get("REMOTE_ADDR") if meta else None


def request_user_agent(request) -> str:
    meta = getattr(request, "META", None) if request is not None else None
    return str((meta or {}).get("HTTP_USER_AGENT", "") or "")[:300]

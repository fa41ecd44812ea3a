#!/usr/bin/env python3
"""Screenshots of the main pages for the README, taken from the platform as `make run` runs it.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--wait 8]

Starts the embedded mode on a fresh SQLite file in a temporary directory (migrate,
collectstatic, seed_demo, daphne on a free port), waits for the market maker and the feed to
fill the books, signs in as the demo investor in Debian's Chromium (headless), and saves each
page at desktop width (1280 x 800) and a few at phone width (390 x 844). Nothing outside the
temporary directory is written but the images (and collectstatic's usual var/staticfiles).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BASE = Path(__file__).resolve().parents[1]
PYTHON = str(BASE / ".venv" / "bin" / "python") if (BASE / ".venv" / "bin" / "python").exists() else sys.executable
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
EMAIL = "investor@meridian.test"
PASSWORD = os.environ.get("DEMO_PASSWORD", "demo-Trader-2026")

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# (file name, path, viewport, what must be on the page before the picture is taken)
PAGES = [
    ("markets", "/markets/", DESKTOP, "#main table"),
    ("trade-btc-usdt", "/markets/BTC-USDT/", DESKTOP, "#main"),
    ("options", "/options/", DESKTOP, "#main table"),
    ("portfolio", "/portfolio/", DESKTOP, "#main"),
    ("wallet", "/wallet/", DESKTOP, "#main table"),
    ("alerts", "/alerts/", DESKTOP, "#main"),
    ("account", "/account/", DESKTOP, "#main"),
    ("trade-btc-usdt-phone", "/markets/BTC-USDT/", PHONE, "#main"),
    ("portfolio-phone", "/portfolio/", PHONE, "#main"),
]


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "trading.settings",
            "SQLITE_PATH": str(workdir / "embedded.sqlite3"),
            "EMAIL_FILE_PATH": str(workdir / "mail"),
            "MEDIA_ROOT": str(workdir / "private"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=BASE, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"manage.py {' '.join(args)} failed ({done.returncode})")


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the platform did not answer at {url} within {timeout:.0f} s")


def shoot(url: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(base_url=url, viewport=DESKTOP)
        page = context.new_page()
        page.goto("/login/?next=/portfolio/")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/portfolio/")
        for name, path, viewport, ready in PAGES:
            page.set_viewport_size(viewport)
            page.goto(path)
            page.wait_for_selector(ready)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(1500)  # charts and live panels paint
            target = out / f"{name}.png"
            page.screenshot(path=str(target))
            saved.append(target)
            shown = target.relative_to(BASE) if target.is_relative_to(BASE) else target
            say(f"{shown} ({path}, {viewport['width']} px)")
        browser.close()
    return saved


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(BASE / "docs" / "screenshots"), help="where the images go")
    parser.add_argument("--wait", type=float, default=8.0, help="seconds for the books to fill before the pictures")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="meridian-shots-") as tmp:
        workdir = Path(tmp)
        env = embedded_env(workdir)
        say("preparing the embedded platform (migrate, static files, demo data)")
        manage(env, "migrate", "--no-input", "-v0")
        manage(env, "collectstatic", "--no-input", "-v0")
        manage(env, "seed_demo")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        say(f"starting it at {url}")
        server = subprocess.Popen(
            [str(Path(PYTHON).with_name("daphne")), "-b", "127.0.0.1", "-p", str(port), "trading.asgi:application"],
            cwd=BASE,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(url)
            say(f"waiting {args.wait:.0f} s for the market maker and the feed")
            time.sleep(args.wait)
            saved = shoot(url, out)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    say(f"{len(saved)} screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

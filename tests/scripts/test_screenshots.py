"""scripts/screenshots.py, the README's pictures: it starts the embedded platform as `make run`
does, signs in as the demo investor and saves every page it names, at their widths."""

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

BASE = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_script_saves_each_page_at_its_width(tmp_path):
    sys.path.insert(0, str(BASE / "scripts"))
    try:
        import screenshots
    finally:
        sys.path.pop(0)
    done = subprocess.run(
        [sys.executable, str(BASE / "scripts" / "screenshots.py"), "--out", str(tmp_path), "--wait", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BASE,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{len(screenshots.PAGES)} screenshots in {tmp_path}" in done.stdout
    for name, _path, viewport, _ready in screenshots.PAGES:
        with Image.open(tmp_path / f"{name}.png") as image:
            assert image.format == "PNG" and image.size == (viewport["width"], viewport["height"]), name
            # a page, not a blank: more than a handful of colours
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50, name

"""The screen sizes the browser tests look at, and a phone's browser context."""

from __future__ import annotations

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def phone_context(browser, base_url: str, storage_state=None):
    """A phone's browser (390 px wide at 2x, touch) on ``base_url``, signed in as
    ``storage_state`` (another context's ``storage_state()``) if given."""
    return browser.new_context(
        base_url=base_url,
        storage_state=storage_state,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )

"""The email channel in the embedded mode, as ``make run`` runs it (a child process on a
fresh SQLite file with the settings' defaults and the in-process workers): the demo
trader's deposit is emailed by the embedded sweep through the console backend, so the mail
is on the console, and the demo's mailbox page lists it as it went out."""

import html
from pathlib import Path

import pytest

from tests.processes import run_embedded

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_make_run_shows_the_email_on_the_console_and_in_the_mailbox(tmp_path):
    seen = run_embedded(HERE / "mailbox_embedded_flow.py", tmp_path)

    assert seen["email_backend"] == "django.core.mail.backends.console.EmailBackend"
    assert seen["demo_mode"] is True
    assert seen["faucet"] == 201
    title, status = seen["deliveries"][-1]  # the faucet's, after the demo's own deposits
    assert (title, status) == ("Deposit of 0.50 BTC credited", "sent")
    assert {status for _, status in seen["deliveries"]} == {"sent"}
    subject = f"[Meridian Exchange] {title}"
    console = seen["console"]
    assert f"Subject: {subject}" in console
    assert "To: demo@meridian.test" in console
    assert "0.50 BTC is now in your available balance" in console
    assert console.count(f"Subject: {subject}") == 1  # the sweep sent it once
    assert seen["mailbox_status"] == 200
    page = html.unescape(seen["mailbox"])
    assert subject in page
    assert "to demo@meridian.test" in page
    assert "0.50 BTC is now in your available balance" in page

"""The staff console in a real browser, at desktop and phone width (issue 18, defect 20): its
front page counts what waits for staff (identity checks, withdrawals, settlements in manual
review) with a link to each queue, and a settlement's step reads as the four-step flow says
("3 of 4: venue swap", "done (all 4 steps)"), never "Step: 5" under a title that says step 4.

The settlements are run in the test's process through the back office's services against
the simulated venue (tests.settlement's fixtures); daphne serves the admin."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

from accounts.models import KycProfile, KycStatus
from ledger.services.funding import withdrawal_create
from settlement import services
from settlement.models import Settlement, State
from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.factories import DEFAULT_PASSWORD, UserFactory, enable_totp
from tests.orders.spot.conftest import funded_trader
from tests.settlement.conftest import (  # noqa: F401  (fixtures)
    _venue_calls_inline,
    emit,
    index_prints,
    set_faults,
    venue,
    venue_settings,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def current_code(device) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture
def settled_and_stuck(venue_settings, venue):  # noqa: F811
    done, stuck = emit(), emit()
    (done_id,) = services.settlements_accept(events=[done])
    services.settlements_run(ids=[done_id], through_venue=True)
    set_faults(venue_settings, "reject=1.0")
    (stuck_id,) = services.settlements_accept(events=[stuck])
    services.settlements_run(ids=[stuck_id], through_venue=True)
    return Settlement.objects.get(pk=done_id), Settlement.objects.get(pk=stuck_id)


def staff_sign_in(page) -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    device = enable_totp(staff)
    page.goto("/admin/login/?next=/admin/")
    page.fill("input[name=username]", staff.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.fill("input[name=otp_token]", current_code(device))
    page.locator("input[type=submit], button[type=submit]").first.click()
    expect(page).to_have_url(re.compile(r"/admin/$"))


def waiting_counts(page) -> dict[str, str]:
    rows = page.locator("#waiting-for-staff tr")
    counts = {}
    for row in rows.all():
        counts[row.locator("th a").inner_text().strip()] = row.locator("strong[data-count]").inner_text().strip()
    return counts


def test_the_console_counts_the_queues_and_says_each_settlements_step(
    page, browser, live_server_url, settled_and_stuck, screenshot_dir
):
    settled, stuck = settled_and_stuck
    assert (settled.state, stuck.state) == (State.SETTLED, State.MANUAL_REVIEW)
    for _ in range(2):
        KycProfile.objects.filter(user=UserFactory()).update(status=KycStatus.PENDING, full_name="Pending Person")
    trader = funded_trader(usdt="1000", btc="0")
    KycProfile.objects.filter(user=trader).update(status=KycStatus.APPROVED, full_name="Ada Lovelace", country="GB")
    withdrawal_create(user=trader, asset="USDT", amount=Decimal("100"), address="0x" + "ab" * 20)

    page.set_viewport_size(DESKTOP)
    staff_sign_in(page)
    expect(page.locator("#waiting-for-staff caption")).to_have_text("Waiting for staff")
    counts = waiting_counts(page)
    assert {
        "Identity checks to review": "2",
        "Withdrawals to approve": "1",
        "Settlements in manual review": "1",
    }.items() <= counts.items(), counts
    page.screenshot(path=str(screenshot_dir / "admin-index-desktop.png"), full_page=False)

    # the count's link opens the queue, where the stuck one says which step it stopped at
    page.locator("#waiting-for-staff").get_by_role("link", name="Settlements in manual review").click()
    expect(page).to_have_url(re.compile(r"/admin/settlement/settlement/\?state__exact=manual_review$"))
    row = page.locator("#result_list tbody tr").filter(has_text=stuck.ref)
    expect(row.locator("td.field-step_shown")).to_have_text("3 of 4: venue swap")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)

    # the settled one: its title says step 4 and its step says done, not 5
    page.goto(f"/admin/settlement/settlement/{settled.pk}/change/")
    expect(page.locator("#content h2, #content h1").first).to_be_visible()
    expect(page.locator(".field-step_shown .readonly")).to_have_text("done (all 4 steps)")
    assert "settled, step 4" in page.content()
    body = page.locator("#content").inner_text()
    assert not re.search(r"Step:?\s*5\b", body), body[:2000]

    # the phone: the counts and their links on screen
    context = phone_context(browser, live_server_url, page.context.storage_state())
    try:
        mobile = context.new_page()
        mobile.goto("/admin/")
        assert waiting_counts(mobile) == counts
        for cell in mobile.locator("#waiting-for-staff strong[data-count]").all():
            box = cell.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        mobile.screenshot(path=str(screenshot_dir / "admin-index-phone.png"), full_page=False)
        mobile.goto(f"/admin/settlement/settlement/{settled.pk}/change/")
        expect(mobile.locator(".field-step_shown .readonly")).to_have_text("done (all 4 steps)")
    finally:
        context.close()
